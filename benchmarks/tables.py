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
    return MISSING if row is None else f"{row['overhead_ms']:+.3f}"


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


def _throughput(
    figures: dict[str, Any], variant: str, *, quartiles: bool, part: str = "tasks"
) -> str:
    row = figures[part].get(variant)
    if row is None:
        return MISSING
    spread = f" ({row['q1']:.2f}-{row['q3']:.2f})" if quartiles else ""
    return f"{row['throughput']:.2f}x{spread}"


def _block(figures: dict[str, Any], variant: str, part: str = "tasks") -> str:
    row = figures[part].get(variant)
    return MISSING if row is None else f"{row['loop_block_p99_ms']:.2f} ms"


def _cpu(figures: dict[str, Any], part: str, variant: str) -> str:
    row = figures[part].get(variant)
    return MISSING if row is None or "cpu_ms" not in row else f"{row['cpu_overhead_ms']:+.3f}"


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
PARTS = (
    ("single", "over respx (the call never waits)"),
    ("http", "over the loopback HTTP server in its own process"),
)
TASKS = (
    ("tasks", "200 asyncio tasks, a server answering at once"),
    ("model_tasks", "200 asyncio tasks, a model answering after 200 ms"),
    ("stream_tasks", "200 asyncio tasks, a model streaming 50 chunks"),
)


def single_table(figures: dict[str, Any], *, with_langfuse_ratio: bool) -> list[str]:
    """Single calls: the bare median, each variant's overhead, the ratios to the floor."""
    head = "| single call, 10 KB prompt | bare median ms | audited | langfuse | floor | audited / floor |"
    rule = "|---|---|---|---|---|---|"
    if with_langfuse_ratio:
        head, rule = head + " langfuse / floor |", rule + "---|"
    lines = [head, rule]
    for part, title in PARTS:
        cells = [title, f"{figures[part]['bare']['median_ms']:.3f}"]
        cells += [_over(figures, part, v) for v in VARIANTS]
        cells.append(_ratio(figures, part, "audited"))
        if with_langfuse_ratio:
            cells.append(_ratio(figures, part, "langfuse"))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def cpu_table(figures: dict[str, Any]) -> list[str]:
    """CPU time per call, every thread of the process, over bare's."""
    lines = [
        "| CPU per call (all threads) over bare, ms | bare's | audited | langfuse | floor |",
        "|---|---|---|---|---|",
    ]
    for part, title in PARTS:
        bare = figures[part]["bare"].get("cpu_ms")
        cells = [title, MISSING if bare is None else f"{bare:.3f}"]
        lines.append("| " + " | ".join(cells + [_cpu(figures, part, v) for v in VARIANTS]) + " |")
    return lines


def concurrency_table(figures: dict[str, Any]) -> list[str]:
    """16 threads and 200 tasks, over the loopback servers."""
    names = ("bare", *VARIANTS)
    rows = [
        ("16 threads: p99 latency", [_p99(figures, v) for v in names]),
        ('16 threads: errors, "database is locked"', [_errors(figures, v) for v in names]),
    ]
    for part, title in TASKS:
        if part not in figures:
            continue
        rows.append(
            (
                f"{title}: throughput against bare (quartiles)",
                [_throughput(figures, v, quartiles=True, part=part) for v in names],
            )
        )
        rows.append((f"{title}: event-loop block p99", [_block(figures, v, part) for v in names]))
    lines = [
        "| concurrency, loopback servers | bare | audited | langfuse | floor |",
        "|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join([title, *cells]) + " |" for title, cells in rows]
    return lines


def postgres_table(figures: dict[str, Any]) -> list[str]:
    """audited-pg beside floor-pg, where the run had them."""
    if "audited-pg" not in figures["single"]:
        return []
    lines = [
        "| PostgreSQL | audited-pg | floor-pg | audited-pg / floor-pg |",
        "|---|---|---|---|",
    ]
    for part, title in PARTS:
        cells = [_over(figures, part, "audited-pg"), _over(figures, part, "floor-pg")]
        cells.append(_ratio(figures, part, "audited-pg", "floor-pg"))
        lines.append(f"| single call {title}: overhead ms | " + " | ".join(cells) + " |")
    lines.append(
        "| 16 threads: p99 latency | "
        + " | ".join(_p99(figures, v) for v in ("audited-pg", "floor-pg"))
        + " | |"
    )
    for part, title in TASKS:
        if part in figures:
            cells = [
                _throughput(figures, v, quartiles=False, part=part)
                for v in ("audited-pg", "floor-pg")
            ]
            lines.append(f"| {title}: throughput against bare | " + " | ".join(cells) + " | |")
    return lines


def targets_table(figures: dict[str, Any]) -> list[str]:
    """Issue 29's targets, each met or missed in this run."""
    single, http, threads = (figures[k] for k in ("single", "http", "threads"))
    a, f, lf = "audited", "floor", "langfuse"
    ratios = [part[a]["overhead_ms"] / part[f]["overhead_ms"] for part in (single, http)]
    rows: list[tuple[str, str, bool]] = [
        (
            "single call: overhead at most 1.5x the floor's",
            f"{ratios[0]:.2f}x (respx), {ratios[1]:.2f}x (HTTP)",
            max(ratios) <= 1.5,
        )
    ]
    if lf in single and "cpu_ms" in single[a]:
        ours = [part[a]["cpu_overhead_ms"] for part in (single, http)]
        peer = [part[lf]["cpu_overhead_ms"] for part in (single, http)]
        rows.append(
            (
                "CPU per call over bare at most Langfuse's (chain on)",
                (
                    f"{ours[0]:+.3f} / {ours[1]:+.3f} ms against {peer[0]:+.3f} / {peer[1]:+.3f} ms "
                    "(respx / HTTP)"
                ),
                all(x <= y for x, y in zip(ours, peer, strict=True)),
            )
        )
    floor_p99 = threads[f]["p99_overhead_ms"]
    rows.append(
        (
            "16 threads: p99 overhead at most the floor's, no lock errors",
            (
                f"{threads[a]['p99_overhead_ms']:+.1f} ms against {floor_p99:+.1f} ms; "
                f"{threads[a]['lock_errors']} lock errors"
            ),
            threads[a]["p99_overhead_ms"] <= floor_p99 and threads[a]["lock_errors"] == 0,
        )
    )
    for part, title, against in (
        ("tasks", "200 tasks, answering at once", (f, lf)),
        ("model_tasks", "200 tasks, a 200 ms model", (lf,)),
    ):
        if part not in figures:
            continue
        tasks = figures[part]
        peers = [v for v in against if v in tasks]
        names = " and ".join(f"{v} {tasks[v]['throughput']:.2f}x" for v in peers)
        rows.append(
            (
                f"{title}: throughput at least {' and '.join(peers)}'s",
                f"{tasks[a]['throughput']:.2f}x against {names}",
                all(tasks[a]["throughput"] >= tasks[v]["throughput"] for v in peers),
            )
        )
        rows.append(
            (
                f"{title}: event-loop block p99 under 5 ms",
                f"{tasks[a]['loop_block_p99_ms']:.2f} ms",
                tasks[a]["loop_block_p99_ms"] < 5,
            )
        )
    if "audited-pg" in single:
        pg = [
            part["audited-pg"]["overhead_ms"] / part["floor-pg"]["overhead_ms"]
            for part in (single, http)
        ]
        loss = [1 - figures["tasks"][v]["throughput"] for v in ("audited-pg", "floor-pg")]
        task_ratio = loss[0] / loss[1] if loss[1] > 0 else float("inf")
        rows.append(
            (
                "PostgreSQL: audited-pg's overhead at most 1.3x floor-pg's (single, 200 tasks)",
                (
                    f"{pg[0]:.2f}x (respx), {pg[1]:.2f}x (HTTP); 200 tasks: {task_ratio:.2f}x the "
                    "throughput floor-pg loses"
                ),
                max(*pg, task_ratio) <= 1.3,
            )
        )
    if "audited-nochain" in single:
        chain = [
            part[a]["overhead_ms"] / part["audited-nochain"]["overhead_ms"]
            for part in (single, http)
        ]
        rows.append(
            (
                "the chain: at most 1.1x audited-nochain's overhead",
                f"{chain[0]:.2f}x (respx), {chain[1]:.2f}x (HTTP)",
                max(chain) <= 1.1,
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
    postgres = postgres_table(figures)
    return [
        *readme_block(figures),
        "",
        *cpu_table(figures),
        *(["", *postgres] if postgres else []),
        "",
        "Against the targets:",
        "",
        *targets_table(figures),
    ]


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
