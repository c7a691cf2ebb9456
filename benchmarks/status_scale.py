"""How `status` scales: the health report over 1,000,000 rows and 100,000 definities, timed.

    python benchmarks/status_scale.py                    # 1,000,000 rows (builds once, ~13 GB)
    python benchmarks/status_scale.py --rows 20000 --definities 2000    # quick
    python benchmarks/status_scale.py --db postgresql://postgres@127.0.0.1/status_scale
    python benchmarks/status_scale.py --days 14          # every row inside status's fortnight

The rows are query_scale.py's (10 KB prompts from shared modules, six template
versions, four models, every status), over the ``--days`` before the build (a year:
about 2,700 rows a day), 90 % of them linked to one of the host's definities (the
example app's table, 5 % of it hand-written), the rest unlinked failures and retries;
the last 1 % of the definities have no row at all, so `status` has something to name.
The report is computed as ``query.status`` does, at the moment of the newest row (so a
trail built days ago is timed as it was). Reports the first run and the median of the
rest, and how many definities it named.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import query_scale

from audited_openai import GenerationLogRepository, _health
from audited_openai._clock import parse_ts

HERE = Path(__file__).parent
APP = HERE.parent / "examples" / "definitie_app"
sys.path.insert(0, str(APP))

from definities import POSTGRES_SCHEMA, SCHEMA  # noqa: E402 - the example app's own table

LOGGED_AT = query_scale.COLUMNS.split(", ").index("logged_at")


def rows(count: int, definities: int, days: int, end: datetime) -> Any:
    """query_scale's rows, moved to the ``days`` before ``end``, each with a definitie id."""
    rng = random.Random(33)
    linked = max(1, definities * 99 // 100)  # the last 1 % get no row
    span = timedelta(days=days).total_seconds()
    for done, batch in query_scale.generate(count, seed=151):
        moved = []
        for n, row in enumerate(batch, start=done - len(batch)):
            moment = end - timedelta(seconds=span - n * span / count)
            stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
            values = list(row)
            values[LOGGED_AT] = values[LOGGED_AT + 1] = stamp
            definitie = rng.randint(1, linked) if rng.random() < 0.9 else None
            moved.append((*values, definitie))
        yield done, moved


def build(target: str, count: int, definities: int, days: int) -> None:
    """The host's definities, then the trail (the real schema, with its triggers or key)."""
    postgres = target.startswith("postgresql://")
    end = datetime.now(timezone.utc)
    columns = query_scale.COLUMNS + ", definitie_id"
    if postgres:
        import psycopg

        with psycopg.connect(target, autocommit=True) as conn:
            for table in ("generation_logs", "generation_log_events", "generation_log_checks"):
                conn.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
            conn.execute("DROP TABLE IF EXISTS audited_openai_migrations, definities CASCADE")
            conn.execute(POSTGRES_SCHEMA)
            _definities(conn, definities, "%s")
        GenerationLogRepository(target).close()  # the schema, the foreign key, the views
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute("SET synchronous_commit = off")
            for done, batch in rows(count, definities, days, end):
                with (
                    conn.transaction(),
                    conn.cursor().copy(f"COPY generation_logs ({columns}) FROM STDIN") as copy,
                ):
                    for row in batch:
                        copy.write_row(row)
                print(f"\rbuilt {done:,}/{count:,} rows", end="", file=sys.stderr)
            conn.execute("VACUUM ANALYZE")
    else:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(target, isolation_level=None)
        conn.execute(SCHEMA)
        _definities(conn, definities, "?")
        conn.close()
        GenerationLogRepository(target).close()  # the schema, the views and triggers
        conn = sqlite3.connect(target, isolation_level=None)
        conn.execute("PRAGMA synchronous = OFF")
        marks = ", ".join("?" * len(columns.split(", ")))
        sql = f"INSERT INTO generation_logs ({columns}) VALUES ({marks})"
        for done, batch in rows(count, definities, days, end):
            conn.execute("BEGIN")
            conn.executemany(sql, batch)
            conn.execute("COMMIT")
            print(f"\rbuilt {done:,}/{count:,} rows", end="", file=sys.stderr)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("ANALYZE")
        conn.close()
    print(file=sys.stderr)


def _definities(conn: Any, count: int, mark: str) -> None:
    """``count`` definities, one in twenty hand-written (imported)."""
    sql = (
        "INSERT INTO definities (id, begrip, definitie, source_type) "
        f"VALUES ({mark}, {mark}, {mark}, {mark})"
    )
    values = [
        (n, f"begrip{n:06d}", "...", "imported" if n % 20 == 0 else "generated")
        for n in range(1, count + 1)
    ]
    if mark == "?":
        conn.execute("BEGIN")
        conn.executemany(sql, values)
        conn.execute("COMMIT")
    else:
        with conn.cursor() as cursor:
            cursor.executemany(sql, values)


def main() -> None:
    """Build once (or with ``--rebuild``), then time the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--definities", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=365, help="the days the rows span")
    parser.add_argument("--db", default=None, help="a SQLite file or a postgresql:// URL")
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    target = args.db or str(
        HERE / ".data" / f"status_scale_{args.rows}_{args.definities}_{args.days}.db"
    )
    repo = None
    if not args.rebuild:
        try:
            repo = GenerationLogRepository(target, read_only=True)
            if repo.row_count() != args.rows:
                repo.close()
                repo = None
        except Exception:
            repo = None
    if repo is None:
        started = time.perf_counter()
        build(target, args.rows, args.definities, args.days)
        print(f"build: {time.perf_counter() - started:.0f} s", file=sys.stderr)
        repo = GenerationLogRepository(target, read_only=True)
    newest = repo.store.fetch("SELECT max(logged_at) AS t FROM generation_logs")[0]["t"]
    now = parse_ts(newest)
    times, found = [], {}
    for _ in range(args.repeat + 1):
        started = time.perf_counter()
        found = _health.report(repo, now=now)
        times.append(time.perf_counter() - started)
    repo.close()
    size = found["size"]["database_bytes"] or 0
    print(
        f"trail: {found['size']['rows']:,} rows over {args.days} days, "
        f"{found['definities']['generated']:,} generated definities, {size / 2**30:.1f} GiB "
        f"({found['backend']}, {target.rsplit('@', 1)[-1]})"
    )
    print(
        f"status: first {times[0] * 1000:.0f} ms, median of {args.repeat} "
        f"{statistics.median(times[1:]) * 1000:.0f} ms; named "
        f"{len(found['definities']['without_log']):,} definities without a log, "
        f"{found['periods']['week']['rows']:,} rows in the last week"
    )


if __name__ == "__main__":
    main()
