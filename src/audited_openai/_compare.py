"""Two variants compared (``query.compare``): outcomes, tokens, latency and cost, tested.

A variant is a value of a column (``template_version``, ``template_name``, ``model``)
or of a key of the rows' metadata (``arm`` within an ``experiment``, or any key the app
sets). The rows compared are the completed ones that are no replays. Per variant:
calls (first attempts), attempts, definities; the failure rate per attempt and per
call with 95 % Wilson intervals; where reviews exist, the approval and edit rates of
the definities reviewed (each by its latest review, of the generation it judged);
tokens, cost and latency (mean, p50, p95); finish reasons. Then, per measure, the
difference with a plain verdict from a proper test (``_stats``): two proportions (z,
or Fisher's exact test for small counts) for the rates, Mann-Whitney U for latency,
tokens and cost. A difference is "shown" at the 5 % level; where it is not, the
verdict says so rather than pick a winner.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from audited_openai import _sql, _stats
from audited_openai._errors import InvalidLogError
from audited_openai._rows import NANOS

if TYPE_CHECKING:
    from audited_openai._repository import GenerationLogRepository

ALPHA = 0.05
BINS = 20  # of each measure's chart
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
# measure -> (what it is, the unit shown, the verb of the better variant)
DISTRIBUTIONS = {
    "duration_ms": ("latency", "ms", "is faster"),
    "tokens_total": ("tokens", "tokens", "uses fewer tokens"),
    "cost_nanos": ("cost", "", "costs less"),
}
# rate -> (what it is, the verb of the better variant, whether higher is better)
RATES = {
    "attempt_failure": ("failure rate per attempt", "fails less often per attempt", False),
    "call_failure": ("failure rate per call", "fails less often per call", False),
    "approval": ("approval rate", "is approved more often", True),
    "edit": ("edit rate", "needs editing less often", False),
}
REVIEWED_RATES = ("approval", "edit")  # only where reviews exist


def compare(
    repo: GenerationLogRepository,
    a: str,
    b: str,
    *,
    by: str | None = None,
    experiment: str | None = None,
    filters: _sql.Filters | None = None,
) -> dict[str, Any]:
    """The comparison of variants ``a`` and ``b`` (see the module docstring)."""
    by = by or ("arm" if experiment is not None else "template_version")
    variants = _validated(by, a, b, experiment)
    found = repo.compare_groups(by, variants, filters or _sql.Filters(), experiment)
    per = [_variant(found, name) for name in variants]
    currencies = sorted({row["unit"] for row in found["cost_nanos"]})
    notes = []
    if len(currencies) > 1:
        notes.append(f"costs in more than one currency ({', '.join(currencies)}): not compared")
    reviewed = any(v["reviewed"] for v in per)
    differences = [_rate(key, per) for key in RATES if reviewed or key not in REVIEWED_RATES]
    currency = currencies[0] if len(currencies) == 1 else ""
    differences += [
        _distribution(measure, found[measure], variants, currency)
        for measure in DISTRIBUTIONS
        if measure != "cost_nanos" or len(currencies) <= 1
    ]
    return {
        "by": by,
        "experiment": experiment,
        "a": a,
        "b": b,
        "currency": currency or None,
        "variants": per,
        "differences": differences,
        "notes": notes,
        "histograms": {
            label: _bins(found[measure], variants, NANOS if measure == "cost_nanos" else 1)
            for measure, (label, _unit, _verb) in DISTRIBUTIONS.items()
        },
    }


def _bins(rows: list[dict[str, Any]], variants: tuple[str, str], scale: int) -> dict[str, Any]:
    """Both variants' values in the same ``BINS`` equal bins, for a chart.

    ``edges`` (one more than the bins, in the measure's unit) run from the smallest
    value to the 99th percentile of both; the rare values above it count in the last bin.
    """
    first, second = (_histogram(rows, name) for name in variants)
    both = dict(first)
    for value, n in second.items():
        both[value] = both.get(value, 0) + n
    if not both:
        return {"edges": [], "counts": {name: [] for name in variants}}
    low = min(both)
    high = _stats.percentile(sorted(both.items()), 99) or low
    width = (high - low) / BINS or 1
    counts = {}
    for name, histogram in zip(variants, (first, second), strict=True):
        bins = [0] * BINS
        for value, n in histogram.items():
            bins[min(BINS - 1, int((value - low) / width))] += n
        counts[name] = bins
    return {"edges": [_unit(low + i * width, scale) for i in range(BINS + 1)], "counts": counts}


def _validated(by: str, a: object, b: object, experiment: object) -> tuple[str, str]:
    if not isinstance(by, str) or not _KEY.fullmatch(by):
        raise InvalidLogError(
            f"by must be template_version, template_name, model or a metadata key, not {by!r}",
            "by",
        )
    for name, value in (("a", a), ("b", b)):
        if not isinstance(value, str) or not value:
            raise InvalidLogError(f"variant {name} must be a non-empty string, not {value!r}", name)
    if a == b:
        raise InvalidLogError(f"compare two different variants, not {a!r} with itself", "b")
    if experiment is not None and (not isinstance(experiment, str) or not experiment):
        raise InvalidLogError(f"experiment must be a non-empty string, not {experiment!r}")
    return (str(a), str(b))


def _variant(found: dict[str, list[dict[str, Any]]], name: str) -> dict[str, Any]:
    """One variant's figures from the grouped reads."""
    attempts = failed = calls = successes = 0
    reasons: dict[str, int] = {}
    for row in found["outcomes"]:
        if row["variant"] != name:
            continue
        n = int(row["n"])
        attempts += n
        calls += n if row["first"] else 0
        if row["status"] == "success":
            successes += n
            reason = row["finish_reason"] or "unknown"
            reasons[reason] = reasons.get(reason, 0) + n
        else:
            failed += n
    failed_calls = max(0, calls - successes)
    definities = next((int(r["n"]) for r in found["definities"] if r["variant"] == name), 0)
    figures: dict[str, Any] = {
        "variant": name,
        "calls": calls,
        "attempts": attempts,
        "definities": definities,
        "successes": successes,
        "failed_attempts": failed,
        "attempt_failure": _proportion(failed, attempts),
        "failed_calls": failed_calls,
        "call_failure": _proportion(failed_calls, calls),
        "finish_reasons": dict(sorted(reasons.items(), key=lambda item: -item[1])),
    }
    verdicts = {r["verdict"]: int(r["n"]) for r in found["reviews"] if r["variant"] == name}
    reviewed = sum(verdicts.values())
    figures["reviewed"] = reviewed
    figures["verdicts"] = verdicts
    figures["approval"] = _proportion(verdicts.get("approved", 0), reviewed)
    figures["edit"] = _proportion(verdicts.get("edited", 0), reviewed)
    for measure, (label, _unit, _verb) in DISTRIBUTIONS.items():
        counts = _histogram(found[measure], name)
        figures[label] = _summary(counts, scale=NANOS if measure == "cost_nanos" else 1)
    figures["cost"]["unknown"] = successes - figures["cost"]["n"]
    units = {row["unit"] for row in found["cost_nanos"] if row["variant"] == name}
    figures["cost"]["currency"] = units.pop() if len(units) == 1 else None
    return figures


def _histogram(rows: list[dict[str, Any]], name: str) -> dict[float, int]:
    counts: dict[float, int] = {}
    for row in rows:
        if row["variant"] == name:
            counts[row["value"]] = counts.get(row["value"], 0) + int(row["n"])
    return counts


def _proportion(k: int, n: int) -> dict[str, Any]:
    low, high = _stats.wilson(k, n)
    return {"k": k, "n": n, "rate": k / n if n else None, "low": low, "high": high}


def _summary(counts: dict[float, int], *, scale: int) -> dict[str, Any]:
    """n, mean, p50, p95 (and the total) of a histogram, in the measure's unit."""
    pairs = sorted(counts.items())
    n = sum(counts.values())
    total = sum(value * count for value, count in pairs)

    def scaled(value: float | None) -> float | None:
        return None if value is None else _unit(value, scale)

    return {
        "n": n,
        "mean": scaled(total / n) if n else None,
        "p50": scaled(_stats.percentile(pairs, 50)),
        "p95": scaled(_stats.percentile(pairs, 95)),
        "total": scaled(total),
    }


def _unit(value: float, scale: int) -> float:
    return float(value) / scale


def _rate(key: str, per: list[dict[str, Any]]) -> dict[str, Any]:
    label, verb, higher_is_better = RATES[key]
    first, second = per[0][key], per[1][key]
    difference: dict[str, Any] = {"measure": key, "label": label, "kind": "rate"}
    if not first["n"] or not second["n"]:
        empty = per[0]["variant"] if not first["n"] else per[1]["variant"]
        return {**difference, "shown": False, "verdict": f"not compared: {empty} has no rows"}
    test = _stats.two_proportions(first["k"], first["n"], second["k"], second["n"])
    low, high = _stats.newcombe(first["k"], first["n"], second["k"], second["n"])
    overlap = first["low"] <= second["high"] and second["low"] <= first["high"]
    shown = test.p < ALPHA
    better = None
    if shown:
        first_better = (first["rate"] > second["rate"]) == higher_is_better
        better = per[0]["variant"] if first_better else per[1]["variant"]
    rates = f"{_percent(first['rate'])} vs {_percent(second['rate'])}"
    if shown:
        said = "the intervals do not overlap" if not overlap else "the intervals overlap"
        verdict = f"{better} {verb}: {rates} ({_p(test.p)}; {said})"
    else:
        verdict = f"no difference shown in the {label} at this sample size: {rates} ({_p(test.p)})"
    return {
        **difference,
        "test": test.name,
        "statistic": test.statistic if test.statistic == test.statistic else None,  # NaN: none
        "p": test.p,
        "difference": first["rate"] - second["rate"],
        "difference_low": low,
        "difference_high": high,
        "intervals_overlap": overlap,
        "shown": shown,
        "better": better,
        "verdict": verdict,
    }


def _distribution(
    measure: str, rows: list[dict[str, Any]], variants: tuple[str, str], currency: str
) -> dict[str, Any]:
    label, unit, verb = DISTRIBUTIONS[measure]
    unit = unit or currency
    first, second = (_histogram(rows, name) for name in variants)
    difference: dict[str, Any] = {"measure": label, "label": label, "kind": "distribution"}
    test = _stats.mann_whitney(first, second)
    if test is None:
        return {**difference, "shown": False, "verdict": f"not compared: too few rows with {label}"}
    shown = test.p < ALPHA
    n1, n2 = sum(first.values()), sum(second.values())
    a_larger = test.statistic > n1 * n2 / 2
    better = (variants[1] if a_larger else variants[0]) if shown else None
    scale = NANOS if measure == "cost_nanos" else 1
    medians = [_stats.percentile(sorted(h.items()), 50) for h in (first, second)]
    shown_medians = " vs ".join(_amount(m, scale, unit) for m in medians)
    if shown:
        verdict = f"{better} {verb}: median {shown_medians} ({_p(test.p)})"
    else:
        verdict = (
            f"no difference shown in {label} at this sample size:"
            f" median {shown_medians} ({_p(test.p)})"
        )
    return {
        **difference,
        "test": test.name,
        "statistic": test.statistic,
        "p": test.p,
        # how often a value of a exceeds one of b (ties half): 0.5 is no difference
        "superiority": test.statistic / (n1 * n2),
        "shown": shown,
        "better": better,
        "verdict": verdict,
    }


def _percent(rate: float) -> str:
    return f"{rate * 100:.1f} %"


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"  # noqa: PLR2004


def _amount(value: float | None, scale: int, unit: str) -> str:
    if value is None:
        return "-"
    if scale == 1:
        return f"{value:,.0f} {unit}"
    return f"{value / scale:.6f}".rstrip("0").rstrip(".") + f" {unit}"
