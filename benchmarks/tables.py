"""The performance tables of README.md and docs/performance.md, made from one run's figures.

    python benchmarks/overhead.py       # measures, and writes docs/performance.json
    python benchmarks/tables.py         # writes the tables of that run into both files
    python benchmarks/tables.py --check # exit 1 where a file's tables are not the run's

Each file holds its tables between two marker lines; nothing else in it is touched, so
prose around the tables that quotes a figure must name the run it quotes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ROOT / "docs" / "performance.json"
BEGIN = "<!-- tables: made by benchmarks/tables.py from docs/performance.json; do not edit -->"
END = "<!-- end of the tables -->"
MISSING = "n/a"


def _over(figures: dict[str, Any], part: str, variant: str) -> str:
    row = figures[part].get(variant)
    return MISSING if row is None else f"+{row['overhead_ms']:.3f}"


def _ratio(figures: dict[str, Any], part: str, variant: str, floor: str = "floor") -> str:
    row, base = figures[part].get(variant), figures[part].get(floor)
    if row is None or base is None or base["overhead_ms"] <= 0:
        return MISSING
    return f"{row['overhead_ms'] / base['overhead_ms']:.2f}x"


def _p99(figures: dict[str, Any], variant: str) -> str:
    row = figures["threads"].get(variant)
    return MISSING if row is None else f"{row['p99_ms']:.1f} ms"


def _errors(figures: dict[str, Any], variant: str) -> str:
    row = figures["threads"].get(variant)
    return MISSING if row is None else f"{row['errors']}, {row['lock_errors']}"


def _throughput(figures: dict[str, Any], variant: str, *, quartiles: bool) -> str:
    row = figures["tasks"].get(variant)
    if row is None:
        return MISSING
    spread = f" ({row['q1']:.2f}-{row['q3']:.2f})" if quartiles else ""
    return f"{row['throughput']:.2f}x{spread}"


def _block(figures: dict[str, Any], variant: str) -> str:
    row = figures["tasks"].get(variant)
    return MISSING if row is None else f"{row['loop_block_p99_ms']:.2f} ms"


def provenance(figures: dict[str, Any]) -> str:
    """The line naming the run: when, on which code, on what, by which command."""
    run = figures["run"]
    code = f"commit {run['commit']}" + (" with uncommitted changes" if run["changed"] else "")
    quick = " (a --quick run: too few calls to go by)" if run.get("quick") else ""
    return (
        f"The run of {run['date']}, on {code}{quick}: {run['machine']}, {run['cores']} cores, "
        f"Python {run['python']}, SQLite {run['sqlite']}, openai {run['openai']}, "
        f"Langfuse {run['langfuse'] or 'not installed'}; `{run['command']}`."
    )


VARIANTS = ("audited", "langfuse", "floor")


def single_table(figures: dict[str, Any], *, with_langfuse_ratio: bool) -> list[str]:
    """Single calls: the bare median, each variant's overhead, the ratios to the floor."""
    head = "| single call, 10 KB prompt | bare median ms | audited | langfuse | floor | audited / floor |"
    rule = "|---|---|---|---|---|---|"
    if with_langfuse_ratio:
        head, rule = head + " langfuse / floor |", rule + "---|"
    lines = [head, rule]
    for part, title in (
        ("single", "over respx (the call never waits)"),
        ("http", "over the loopback HTTP server in its own process"),
    ):
        cells = [title, f"{figures[part]['bare']['median_ms']:.3f}"]
        cells += [_over(figures, part, v) for v in VARIANTS]
        cells.append(_ratio(figures, part, "audited"))
        if with_langfuse_ratio:
            cells.append(_ratio(figures, part, "langfuse"))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def concurrency_table(figures: dict[str, Any]) -> list[str]:
    """16 threads and 200 tasks, over the loopback server."""
    names = ("bare", *VARIANTS)
    rows = [
        ("16 threads: p99 latency", [_p99(figures, v) for v in names]),
        ('16 threads: errors, "database is locked"', [_errors(figures, v) for v in names]),
        (
            "200 asyncio tasks: throughput against bare (quartiles)",
            [_throughput(figures, v, quartiles=True) for v in names],
        ),
        ("200 asyncio tasks: event-loop block p99", [_block(figures, v) for v in names]),
    ]
    lines = [
        "| concurrency, loopback HTTP server | bare | audited | langfuse | floor |",
        "|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join([title, *cells]) + " |" for title, cells in rows]
    return lines


def targets_table(figures: dict[str, Any]) -> list[str]:
    """The targets, each met or missed in this run."""
    single, http, threads, tasks = (figures[k] for k in ("single", "http", "threads", "tasks"))
    audited, floor, langfuse = "audited", "floor", "langfuse"
    ratios = [single[audited]["overhead_ms"] / single[floor]["overhead_ms"]]
    ratios.append(http[audited]["overhead_ms"] / http[floor]["overhead_ms"])
    threads_ratio = threads[audited]["p99_overhead_ms"] / http[floor]["overhead_ms"]
    rows: list[tuple[str, str, bool]] = []
    if langfuse in single:
        over = (single[audited]["overhead_ms"], http[audited]["overhead_ms"])
        peer = (single[langfuse]["overhead_ms"], http[langfuse]["overhead_ms"])
        rows.append(
            (
                "single call: overhead at most Langfuse's",
                f"{over[0]:.2f} / {over[1]:.2f} ms against {peer[0]:.2f} / {peer[1]:.2f} ms",
                all(a <= b for a, b in zip(over, peer, strict=True)),
            )
        )
    rows.append(
        (
            "single call: at most 1.5x the physical floor",
            f"{ratios[0]:.2f}x (respx), {ratios[1]:.2f}x (HTTP)",
            max(ratios) <= 1.5,
        )
    )
    rows.append(
        (
            "16 threads: p99 overhead under 10x the floor, no lock errors",
            f"{threads_ratio:.1f}x; {threads[audited]['lock_errors']} lock errors",
            threads_ratio < 10 and threads[audited]["lock_errors"] == 0,
        )
    )
    peer_throughput = tasks[langfuse]["throughput"] if langfuse in tasks else 0.0
    rows.append(
        (
            "200 tasks: throughput at least 0.9x bare and at least Langfuse's",
            f"{tasks[audited]['throughput']:.2f}x"
            + (f" against Langfuse's {peer_throughput:.2f}x" if langfuse in tasks else ""),
            tasks[audited]["throughput"] >= max(0.9, peer_throughput),
        )
    )
    rows.append(
        (
            "200 tasks: event-loop block p99 under 5 ms",
            f"{tasks[audited]['loop_block_p99_ms']:.2f} ms",
            tasks[audited]["loop_block_p99_ms"] < 5,
        )
    )
    lines = ["| target | measured | |", "|---|---|---|"]
    lines += [f"| {t} | {m} | {'met' if ok else 'missed'} |" for t, m, ok in rows]
    return lines


def readme_block(figures: dict[str, Any]) -> list[str]:
    return [
        provenance(figures),
        "",
        *single_table(figures, with_langfuse_ratio=False),
        "",
        *concurrency_table(figures),
    ]


def docs_block(figures: dict[str, Any]) -> list[str]:
    return [*readme_block(figures), "", "Against the targets:", "", *targets_table(figures)]


def rewritten(text: str, block: list[str], name: str) -> str:
    """``text`` with the lines between its markers replaced by ``block``."""
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        raise SystemExit(f"{name}: needs one line {BEGIN!r} and one {END!r}")
    head, _, rest = text.partition(BEGIN + "\n")
    _, _, tail = rest.partition(END)
    return head + BEGIN + "\n\n" + "\n".join(block) + "\n\n" + END + tail


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    parser.add_argument("--figures", type=Path, default=FIGURES)
    args = parser.parse_args()
    figures = json.loads(args.figures.read_text())
    stale = []
    for path, block in (
        (ROOT / "README.md", readme_block(figures)),
        (ROOT / "docs" / "performance.md", docs_block(figures)),
    ):
        text = path.read_text()
        new = rewritten(text, block, path.name)
        if new != text:
            stale.append(path.name)
            if not args.check:
                path.write_text(new)
    if stale and args.check:
        print(f"stale tables in {', '.join(stale)}: run python benchmarks/tables.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
