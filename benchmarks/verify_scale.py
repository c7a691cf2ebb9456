"""How `verify` scales: the tamper-evident chain of a 1,000,000-row trail, recomputed.

    python benchmarks/verify_scale.py                  # 1,000,000 rows (builds once, ~12 GB)
    python benchmarks/verify_scale.py --rows 100000    # quick
    python benchmarks/verify_scale.py --db postgresql://postgres@127.0.0.1/verify_scale

The rows are query_scale.py's (10 KB prompts from shared modules, a year of dates, every
status); each gets the two events the client writes for a call (its pending insert and
its completion), so the chain holds 2,000,000 events. ``verify`` runs in a child
process, twice (the first run reads from disk, the second from the page cache), and its
peak RSS is compared with a verify of a tenth of the trail: constant memory means the
same peak whatever the size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import query_scale

from audited_openai import GenerationLogRepository, _chain
from audited_openai._rows import CHAINED
from audited_openai._sql import POSTGRES, SQLITE

HERE = Path(__file__).parent


def chain_rows(target: Path | str) -> None:
    """Append an insert and a complete event for every row (the rows as built, in id order)."""
    postgres = isinstance(target, str)
    chain = _chain.Chain(POSTGRES if postgres else SQLITE)
    started = time.perf_counter()
    cols = ", ".join(CHAINED)
    status = CHAINED.index("generation_status")
    if postgres:
        import psycopg

        conn: Any = psycopg.connect(target)
        reader = psycopg.connect(target)
        conn.execute("SET synchronous_commit = off")
        rows: Any = reader.cursor(name="rows")
        rows.itersize = 2000
        rows.execute(f"SELECT {cols} FROM generation_logs ORDER BY id")
    else:
        import sqlite3

        conn = sqlite3.connect(target, isolation_level=None)
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("BEGIN")
        rows = conn.execute(f"SELECT {cols} FROM generation_logs ORDER BY id")
    prev, seq, batch = _chain.GENESIS, 0, []
    for done, values in enumerate(rows, 1):
        pending = list(values)
        pending[status] = "pending"
        for kind, state in (("insert", pending), ("complete", values)):
            seq += 1
            at = values[CHAINED.index("logged_at")]
            event = (seq, values[0], values[1], kind, at, None, _chain.state(state))
            prev = _chain.link_hash(prev, event)
            batch.append((*event, prev))
        if len(batch) >= 20_000:
            conn.cursor().executemany(chain.insert_event, batch)
            batch.clear()
            rate = done / (time.perf_counter() - started)
            print(f"\rchained {done:,} rows ({rate:,.0f}/s)", end="", file=sys.stderr)
    if batch:
        conn.cursor().executemany(chain.insert_event, batch)
    conn.execute("COMMIT")
    if postgres:
        reader.close()
        conn.autocommit = True  # VACUUM runs outside a transaction
        conn.execute("VACUUM ANALYZE generation_log_events")
    conn.close()
    print(file=sys.stderr)


def timed_verify(target: Path | str) -> dict[str, Any]:
    """Verify in a child process: seconds, peak RSS (MiB), what it found."""
    code = (
        "import json, resource, sys, time\n"
        "from audited_openai import query\n"
        "t = time.perf_counter()\n"
        f"v = query.verify({str(target)!r})\n"
        "print(json.dumps({'seconds': round(time.perf_counter() - t, 1), 'ok': v.ok,\n"
        "    'events': v.events, 'rows': v.rows,\n"
        "    'rss_mib': round(int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM:')).split()[1]) / 1024),\n"
        "    'worker_rss_mib': round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return dict(json.loads(out))


def prepare(target: Path | str, rows: int, rebuild: bool) -> None:
    """Build the rows (query_scale's) and their chain, once."""
    if isinstance(target, str):
        if rebuild or query_scale._postgres_rows(target) == 0:
            query_scale._drop_postgres_table(target)
            import psycopg

            with psycopg.connect(target, autocommit=True) as conn:
                conn.execute("DROP TABLE IF EXISTS generation_log_events")
            query_scale.build_postgres(target, rows)
            chain_rows(target)
        return
    if rebuild:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
    if not target.exists():
        query_scale.build(target, rows)
        chain_rows(target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", default=None, help="a SQLite file or a postgresql:// URL")
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    if args.db and args.db.startswith("postgresql://"):
        big: Path | str = args.db
        small: Path | str = args.db.rsplit("/", 1)[0] + "/verify_scale_tenth"
        for url in (small,):
            import psycopg

            with psycopg.connect(args.db.rsplit("/", 1)[0] + "/postgres", autocommit=True) as c:
                if not c.execute("SELECT 1 FROM pg_database WHERE datname = 'verify_scale_tenth'").fetchone():  # fmt: skip
                    c.execute(f'CREATE DATABASE "{url.rsplit("/", 1)[1]}"')
    else:
        data = HERE / ".data"
        data.mkdir(parents=True, exist_ok=True)
        big = Path(args.db or data / f"verify_scale_{args.rows}.db")
        small = big.with_name(f"{big.stem}_tenth.db")
    started = time.perf_counter()
    prepare(small, args.rows // 10, args.rebuild)
    prepare(big, args.rows, args.rebuild)
    print(f"build: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    GenerationLogRepository(big).close()
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    for name, target in (("a tenth", small), ("all", big)):
        for run in ("first", "again"):
            print(f"verify {name} ({run}): {json.dumps(timed_verify(target))}", flush=True)


if __name__ == "__main__":
    main()
