"""Template versions compared: the statistics against published figures, the counts
against the rows written, on both backends, and the command."""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from rich.console import Console

from audited_openai import (
    ErrorContext,
    GenerationLogRepository,
    InvalidLogError,
    ResponseMetadata,
    _stats,
    ab,
    cli,
    query,
)
from audited_openai._clock import utc_now
from tests.conftest import make_context

# -- the statistics, against figures published independently of this code ----------------


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [  # Newcombe (1998), Statistics in Medicine 17:857-872, table I, method 3 (Wilson)
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_intervals_are_newcombes(k: int, n: int, low: float, high: float) -> None:
    found = _stats.wilson(k, n)
    assert (round(found[0], 4), round(found[1], 4)) == (low, high)


@pytest.mark.parametrize(
    ("k1", "n1", "k2", "n2", "low", "high"),
    [  # Newcombe (1998), Statistics in Medicine 17:873-890, table II, method 10
        (56, 70, 48, 80, 0.0524, 0.3339),
        (9, 10, 3, 10, 0.1705, 0.8090),
        (6, 7, 2, 7, 0.0582, 0.8062),
        (5, 56, 0, 29, -0.0381, 0.1926),
    ],
)
def test_difference_intervals_are_newcombes(  # noqa: PLR0917 - one case's columns
    k1: int, n1: int, k2: int, n2: int, low: float, high: float
) -> None:
    found = _stats.newcombe(k1, n1, k2, n2)
    assert (round(found[0], 4), round(found[1], 4)) == (low, high)


def test_fishers_exact_test_gives_the_published_p_values() -> None:
    """Fisher's tea-tasting table (3 of 4 right): two-sided p = 0.4857 (Fisher 1935);
    SciPy's documented example [[8, 2], [1, 5]]: p = 0.0349650..."""
    assert round(_stats.fisher(3, 4, 1, 4), 4) == 0.4857
    assert math.isclose(_stats.fisher(8, 9, 2, 7), 0.03496503496503495, rel_tol=1e-9)
    assert _stats.two_proportions(8, 9, 2, 7).name == "Fisher's exact test"  # counts under 5


def test_the_z_test_by_hand() -> None:
    """30/100 against 20/100: pooled 0.25, se = sqrt(0.25 x 0.75 x 2/100) = 0.0612,
    z = 1.633, two-sided p = 0.1025."""
    test = _stats.two_proportions(30, 100, 20, 100)
    assert test.name == "two-proportion z test"
    assert (round(test.statistic, 3), round(test.p, 4)) == (1.633, 0.1025)


def test_mann_whitney_matches_scipys_documented_example_and_a_brute_force_u() -> None:
    """SciPy's example (ages of 5 men and 4 women): U = 17, asymptotic p = 0.1113."""
    men, women = [19, 22, 16, 29, 24], [20, 11, 17, 12]
    test = _stats.mann_whitney(Counter(men), Counter(women))
    assert test is not None
    assert test.statistic == 17
    assert round(test.p, 4) == 0.1113
    tied_a, tied_b = [1, 2, 2, 3, 3, 3, 7], [2, 3, 3, 4, 5, 5, 5, 6]
    u = sum((x > y) + 0.5 * (x == y) for x, y in itertools.product(tied_a, tied_b))
    tied = _stats.mann_whitney(Counter(tied_a), Counter(tied_b))
    assert tied is not None
    assert tied.statistic == u
    assert _stats.mann_whitney({}, Counter(tied_b)) is None
    assert _stats.mann_whitney({5: 3}, {5: 4}) == ("Mann-Whitney U", 6.0, 1.0)  # all equal


def test_nearest_rank_percentiles() -> None:
    values = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5]
    pairs = sorted(Counter(values).items())
    ordered = sorted(values)
    for percent in (1, 25, 50, 95, 100):
        assert (
            _stats.percentile(pairs, percent) == ordered[math.ceil(percent * len(values) / 100) - 1]
        )
    assert _stats.percentile([], 50) is None


# -- compare over a trail -------------------------------------------------------------------


def write(
    repo: GenerationLogRepository,
    version: str,
    outcomes: list[int | None],
    *,
    tokens: int = 1000,
    metadata: dict[str, Any] | None = None,
    replay_of: int | None = None,
    first_definitie: int = 1,
) -> list[int]:
    """One call per outcome: a duration in ms (success) or None (a failed attempt, then a
    retry that succeeds in 999 ms, so a call fails per attempt but not per call)."""
    ids = []
    for n, outcome in enumerate(outcomes):
        definitie = first_definitie + n
        ctx = make_context(definitie_id=definitie, metadata=metadata or {}, replay_of=replay_of)
        ctx.prompt.template_version = version
        ctx.prompt.model_params.name = "gpt-4o"
        log_id = repo.create_pending_log(ctx)
        duration = outcome
        if outcome is None:
            ctx.mark_failed(ErrorContext("busy", "RateLimitError", http_status=429))
            repo.update_with_error(log_id, ctx)
            retry = make_context(definitie_id=definitie, call_id=ctx.call_id, attempt=2)
            retry.prompt.template_version = version
            ids.append(repo.create_pending_log(retry))
            ctx = retry
            log_id = ids[-1]
            duration = 999
        ctx.mark_success(
            ResponseMetadata(
                tokens_prompt=tokens,
                tokens_completion=0,
                tokens_total=tokens,
                duration_ms=duration,
                finish_reason="stop",
                response_model="gpt-4o",
            )
        )
        repo.update_with_response(log_id, ctx)
        ids.append(log_id)
    return ids


def test_compare_counts_what_was_written(repo: GenerationLogRepository) -> None:
    """2.0: 6 calls, 2 of them with a failed first attempt; 2.1: 6 calls, none. A
    replay, a pending row and another version are not compared."""
    old = write(repo, "2.0", [500, 600, None, 700, None, 800], tokens=2000)
    write(repo, "2.1", [100, 110, 120, 130, 140, 150])
    write(repo, "2.1", [5], replay_of=old[0])
    write(repo, "3.0", [1])
    repo.create_pending_log(make_context())
    found = query.compare(repo, "2.0", "2.1")
    first, second = found["variants"]
    assert (first["calls"], first["attempts"], first["failed_attempts"]) == (6, 8, 2)
    assert (first["failed_calls"], first["definities"]) == (0, 6)
    assert first["attempt_failure"]["rate"] == 2 / 8
    assert (first["attempt_failure"]["low"], first["attempt_failure"]["high"]) == _stats.wilson(
        2, 8
    )
    assert (second["calls"], second["attempts"], second["failed_attempts"]) == (6, 6, 0)
    # durations of the successes, 2.0: 500 600 700 800 999 999 -> p50 700, p95 999
    assert (first["latency"]["p50"], first["latency"]["p95"]) == (700, 999)
    assert (second["latency"]["p50"], second["latency"]["p95"]) == (120, 150)
    assert first["finish_reasons"] == {"stop": 6}
    # 2,000 input tokens of gpt-4o at 2.50 a million: 0.005 USD a success
    assert first["cost"]["p50"] == 0.005
    assert first["cost"]["total"] == pytest.approx(0.03)
    assert (first["cost"]["currency"], found["currency"]) == ("USD", "USD")
    verdicts = {d["measure"]: d for d in found["differences"]}
    assert verdicts["attempt_failure"]["test"] == "Fisher's exact test"
    assert verdicts["attempt_failure"]["p"] == pytest.approx(_stats.fisher(2, 8, 0, 6))
    assert not verdicts["attempt_failure"]["shown"]
    assert verdicts["attempt_failure"]["verdict"].startswith("no difference shown")
    assert verdicts["latency"]["shown"]
    assert verdicts["latency"]["better"] == "2.1"
    assert verdicts["latency"]["verdict"].startswith("2.1 is faster: median 700 ms vs 120 ms")
    assert verdicts["tokens"]["better"] == "2.1"
    assert verdicts["cost"]["verdict"].startswith("2.1 costs less")
    # the chart's bins: 20 from 100 ms to the 99th percentile (999 ms), 44.95 ms wide
    latency = found["histograms"]["latency"]
    assert (len(latency["edges"]), latency["edges"][0], latency["edges"][-1]) == (21, 100, 999)
    assert latency["counts"]["2.1"][:2] == [5, 1]  # 100-140 ms, then 150 ms
    assert [i for i, n in enumerate(latency["counts"]["2.0"]) if n] == [8, 11, 13, 15, 19]
    assert latency["counts"]["2.0"][19] == 2  # 999 ms twice: the last bin holds its edge
    assert found["histograms"]["cost"]["edges"][0] == pytest.approx(0.0025)  # 1,000 tokens


def test_a_clear_difference_in_failures_is_shown(repo: GenerationLogRepository) -> None:
    write(repo, "2.0", [None] * 30 + [100] * 30)
    write(repo, "2.1", [None] * 5 + [100] * 55)
    found = query.compare(repo, "2.0", "2.1")
    rate = next(d for d in found["differences"] if d["measure"] == "attempt_failure")
    assert rate["test"] == "two-proportion z test"
    assert rate["shown"]
    assert rate["better"] == "2.1"
    low, high = _stats.newcombe(30, 90, 5, 65)
    assert (rate["difference_low"], rate["difference_high"]) == (low, high)
    assert rate["verdict"] == (
        "2.1 fails less often per attempt: 33.3 % vs 7.7 % (p < 0.001; the intervals do not overlap)"
    )


def test_approval_and_edit_rates_where_reviews_exist(repo: GenerationLogRepository) -> None:
    """Each definitie counts once, by its latest review of a row of the variant."""
    write(repo, "2.0", [100] * 20)
    write(repo, "2.1", [100] * 20, first_definitie=101)
    assert "approval" not in {
        d["measure"] for d in query.compare(repo, "2.0", "2.1")["differences"]
    }
    old = ["approved"] * 4 + ["edited"] * 12 + ["rejected"] * 4
    new = ["approved"] * 18 + ["edited", "rejected"]
    repo.record_review(1, "rejected", reviewer="jurist-7")  # judged again below: not counted
    for first, verdicts in ((1, old), (101, new)):
        for n, verdict in enumerate(verdicts):
            text = "nieuwe tekst" if verdict == "edited" else None
            repo.record_review(first + n, verdict, reviewer="jurist-7", edited_text=text)
    found = query.compare(repo, "2.0", "2.1")
    first_v, second_v = found["variants"]
    assert (first_v["reviewed"], first_v["verdicts"]) == (
        20,
        {"approved": 4, "edited": 12, "rejected": 4},
    )
    assert first_v["approval"]["rate"] == 0.2
    assert (first_v["approval"]["low"], first_v["approval"]["high"]) == _stats.wilson(4, 20)
    assert second_v["edit"]["rate"] == 0.05
    verdicts = {d["measure"]: d for d in found["differences"]}
    approval, edit = verdicts["approval"], verdicts["edit"]
    expected = _stats.two_proportions(4, 20, 18, 20)
    assert (approval["test"], approval["p"]) == (expected.name, pytest.approx(expected.p))
    assert approval["verdict"].startswith("2.1 is approved more often: 20.0 % vs 90.0 % (")
    assert edit["verdict"].startswith("2.1 needs editing less often: 60.0 % vs 5.0 % (")
    lines = cli.compare_lines(found)
    assert any(line.startswith("approved") and "20.0 %" in line for line in lines)


def test_compare_an_experiment_by_its_arms(repo: GenerationLogRepository) -> None:
    """ab.experiment's metadata selects the rows; other experiments' rows do not count."""
    write(repo, "2.0", [100, 100], metadata={"experiment": "lengte", "arm": "kort"})
    write(repo, "2.1", [200, 200, 200], metadata={"experiment": "lengte", "arm": "lang"})
    write(repo, "2.1", [300], metadata={"experiment": "anders", "arm": "lang"})
    found = query.compare(repo, "kort", "lang", experiment="lengte")
    assert found["by"] == "arm"
    assert [v["calls"] for v in found["variants"]] == [2, 3]
    by_key = query.compare(repo, "kort", "lang", by="arm")
    assert [v["calls"] for v in by_key["variants"]] == [2, 4]


def test_ab_experiment_metadata_is_what_compare_reads(repo: GenerationLogRepository) -> None:
    """Rows recorded inside ab.experiment carry the arm compare selects on."""
    from audited_openai._context import current_scope

    arms = {"2.0": 0.5, "2.1": 0.5}
    for begrip in ("verdachte", "getuige", "dader", "slachtoffer"):
        with ab.experiment("versie", begrip, arms) as arm:
            metadata = dict(current_scope().metadata)
        assert metadata == {"experiment": "versie", "arm": arm}
        write(repo, arm, [100], metadata=metadata)
    found = query.compare(repo, "2.0", "2.1", experiment="versie")
    assert sum(v["calls"] for v in found["variants"]) == 4


def test_compare_within_a_period(repo: GenerationLogRepository) -> None:
    write(repo, "2.0", [100])
    write(repo, "2.1", [100])
    later = utc_now() + timedelta(hours=1)
    found = query.compare(repo, "2.0", "2.1", since=later)
    assert [v["attempts"] for v in found["variants"]] == [0, 0]
    assert all(not d["shown"] for d in found["differences"])
    assert found["differences"][0]["verdict"] == "not compared: 2.0 has no rows"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("2.0", "2.0"), "compare two different variants"),
        (("2.0", ""), "variant b must be a non-empty string"),
    ],
)
def test_bad_input_is_refused(
    repo: GenerationLogRepository, args: tuple[str, str], message: str
) -> None:
    with pytest.raises(InvalidLogError, match=message):
        query.compare(repo, *args)
    with pytest.raises(InvalidLogError, match="by must be template_version"):
        query.compare(repo, "a", "b", by="x'; DROP TABLE generation_logs; --")


def test_the_command_prints_json_when_piped_and_80_columns_on_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "a.db"
    with GenerationLogRepository(db) as repo:
        write(repo, "2.0", [None] * 30 + [100] * 30)
        write(repo, "unified_definition_v2 met een heel lange versienaam", [None] * 5 + [90] * 55)
    runner = CliRunner()
    piped = runner.invoke(cli.main, ["--db", str(db), "compare", "2.0", "2.1"])
    assert piped.exit_code == 0, piped.output
    assert json.loads(piped.stdout)["variants"][1]["calls"] == 0
    monkeypatch.setattr(cli, "_console", lambda: Console(force_terminal=True, width=80))
    long = "unified_definition_v2 met een heel lange versienaam"
    shown = runner.invoke(cli.main, ["--db", str(db), "compare", "2.0", long])
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert max(map(len, lines)) <= 80
    assert lines[2].split()[0] == "2.0"
    assert "unified_definition_v2 met\u2026" in lines[2]
    assert any(line.startswith("failed per attempt    33.3 % (24.5-43.6)") for line in lines)
    assert "- unified_definition_v2 met een heel lange versienaam fails less often per" in lines
    bad = runner.invoke(cli.main, ["--db", str(db), "compare", "2.0", "2.0"])
    assert bad.exit_code == 2
    assert bad.stderr == "error: compare two different variants, not '2.0' with itself\n"
