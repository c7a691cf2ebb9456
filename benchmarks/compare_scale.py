"""How `compare` scales: two template versions of 500,000 rows each, compared, timed.

    python benchmarks/compare_scale.py                   # 1,000,000 rows (builds once, ~10 GB)
    python benchmarks/compare_scale.py --rows 20000      # quick
    python benchmarks/compare_scale.py --db postgresql://postgres@127.0.0.1/compare_scale

The rows are query_scale.py's (10 KB prompts from shared modules, four models, every
status, a year of dates), dealt at random to ``unified_definition_v2`` 2.1 or 2.2 (2.2
a little faster and failing a little less often, so that there is a difference to
find), 90 % of them linked to one of 100,000 definities, each success priced by the
default price table as the writer prices it. Reports the first run and the median of
the rest of ``query.compare(db, "2.1", "2.2")``, and the peak RSS of a process that
compares the whole trail against one that compares a tenth of it (``--since``): the
memory is the histograms' distinct values, not the rows.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import query_scale

from audited_openai import GenerationLogRepository, prices
from audited_openai._rows import NANOS

HERE = Path(__file__).parent
COLUMNS = query_scale.COLUMNS + ", definitie_id, cost_nanos, cost_currency, price_version"
NAMES = query_scale.COLUMNS.split(", ")
AT = {name: NAMES.index(name) for name in NAMES}
# a tenth of the trail: the last 36.5 days of query_scale's year (2025)
TENTH = "2025-11-25T12:00:00Z"


def rows(count: int) -> Any:
    """query_scale's rows, each dealt to 2.1 or 2.2, linked and priced."""
    rng = random.Random(31)
    for done, batch in query_scale.generate(count, seed=151):
        out = []
        for row in batch:
            values = list(row)
            candidate = rng.random() < 0.5
            values[AT["prompt_template_name"]] = "unified_definition_v2"
            values[AT["prompt_template_version"]] = "2.2" if candidate else "2.1"
            if candidate and values[AT["duration_ms"]] is not None:
                values[AT["duration_ms"]] = int(values[AT["duration_ms"]] * 0.97)
            success = values[AT["generation_status"]] == "success"
            if not candidate and success and rng.random() < 0.02:  # 2.1 fails more often
                _fail(values)
            definitie = rng.randint(1, 100_000) if rng.random() < 0.9 else None
            cost = None, None, None
            if values[AT["generation_status"]] == "success":
                amount = prices.DEFAULT.cost(
                    values[AT["model_name"]],
                    tokens_prompt=values[AT["tokens_prompt"]],
                    tokens_completion=values[AT["tokens_completion"]],
                )
                nanos = None if amount is None else int(amount * NANOS)
                cost = nanos, prices.DEFAULT.currency, prices.DEFAULT.version
            out.append((*values, definitie, *cost))
        yield done, out


def _fail(values: list[Any]) -> None:
    """A success turned into a rate-limited failure."""
    for name in NAMES:
        if name.startswith(("tokens_", "response_")):
            values[AT[name]] = None
    values[AT["generation_status"]] = "failed"
    values[AT["error_type"]] = "RateLimitError"
    values[AT["http_status"]] = 429
    values[AT["error_message"]] = "Rate limit reached"


def build(target: str, count: int) -> None:
    """A fresh trail of ``count`` rows (the real schema, with its triggers and indexes)."""
    if target.startswith("postgresql://"):
        import psycopg

        query_scale._drop_postgres_table(target)
        GenerationLogRepository(target).close()
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute("SET synchronous_commit = off")
            for done, batch in rows(count):
                with (
                    conn.transaction(),
                    conn.cursor().copy(f"COPY generation_logs ({COLUMNS}) FROM STDIN") as copy,
                ):
                    for row in batch:
                        copy.write_row(row)
                print(f"\rbuilt {done:,}/{count:,} rows", end="", file=sys.stderr)
            conn.execute("VACUUM ANALYZE generation_logs")
    else:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        GenerationLogRepository(target).close()
        conn = sqlite3.connect(target, isolation_level=None)
        conn.execute("PRAGMA synchronous = OFF")
        marks = ", ".join("?" * len(COLUMNS.split(", ")))
        sql = f"INSERT INTO generation_logs ({COLUMNS}) VALUES ({marks})"
        for done, batch in rows(count):
            conn.execute("BEGIN")
            conn.executemany(sql, batch)
            conn.execute("COMMIT")
            print(f"\rbuilt {done:,}/{count:,} rows", end="", file=sys.stderr)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("ANALYZE")
        conn.close()
    print(file=sys.stderr)


def peak_rss(target: str, since: str | None) -> tuple[int, float]:
    """Compare in a child process; (calls compared, its peak RSS in MiB)."""
    code = (
        "import resource\n"
        "from audited_openai import query\n"
        "from audited_openai._clock import parse_ts\n"
        f"since = {since!r} and parse_ts({since!r})\n"
        f"found = query.compare({target!r}, '2.1', '2.2', since=since or None)\n"
        "calls = sum(v['calls'] for v in found['variants'])\n"
        "print(calls, int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM:')).split()[1]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    calls, rss_kib = result.stdout.split()
    return int(calls), int(rss_kib) / 1024


def main() -> None:
    """Build once (or with ``--rebuild``), then time the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", default=None, help="a SQLite file or a postgresql:// URL")
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    target = args.db or str(HERE / ".data" / f"compare_scale_{args.rows}.db")
    built = None
    if not args.rebuild:
        try:
            with GenerationLogRepository(target, read_only=True) as repo:
                built = repo.row_count()
        except Exception:
            built = None
    if built != args.rows:
        started = time.perf_counter()
        build(target, args.rows)
        print(f"build: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    times, found = [], {}
    with GenerationLogRepository(target, read_only=True) as repo:
        for _ in range(args.repeat + 1):
            started = time.perf_counter()
            found = repo.compare("2.1", "2.2")
            times.append(time.perf_counter() - started)
    backend = "PostgreSQL" if target.startswith("postgresql://") else "SQLite"
    per = ", ".join(f"{v['variant']}: {v['attempts']:,} rows" for v in found["variants"])
    print(f"trail: {args.rows:,} rows, {per} ({backend}, {target.rsplit('@', 1)[-1]})")
    print(
        f"compare: first {times[0] * 1000:.0f} ms, median of {args.repeat} "
        f"{statistics.median(times[1:]) * 1000:.0f} ms"
    )
    for difference in found["differences"]:
        print(f"  {difference['verdict']}")
    whole, tenth = peak_rss(target, None), peak_rss(target, TENTH)
    print(
        f"peak RSS: {whole[1]:.0f} MiB comparing {whole[0]:,} calls, "
        f"{tenth[1]:.0f} MiB comparing {tenth[0]:,} (a tenth)"
    )


if __name__ == "__main__":
    main()
