"""Where an audited call's time goes: the caller's thread, the writer's statements, the floor's.

    python benchmarks/breakdown.py              # about two minutes
    python benchmarks/breakdown.py --calls 200  # seconds, to see it run
    python benchmarks/breakdown.py --postgres postgresql://postgres@127.0.0.1/postgres

Single calls over respx (a mocked reply), a 10 KB prompt, as in ``overhead.py``; each
case in a fresh process of its own, its rounds' medians:

1. **the caller**: wall time and the calling thread's CPU (``time.thread_time()``) per
   call of the bare client, of the audited client whose store answers every write at
   once (no writer, no database: the audit's own Python), and of the audited client;
2. **the writer**: the writer thread's CPU per call in each statement it runs, for the
   trail as it is, and with parts of it dropped after it was made (the full-text
   triggers; the secondary indexes; both and the events' index), with a 23-byte prompt,
   and the floor's statements (``overhead.Floor``).

With ``--postgres URL`` (a server it may create and drop databases on), also
3. **PostgreSQL**: the wall time per call of bare, of the audited client on a fresh
   database, of the same without its search column (the generated ``tsvector`` and its
   GIN index, dropped after the trail was made), and of the floor on PostgreSQL
   (``overhead.PostgresFloor``), alternating, the median of the rounds.

The dropped variants are experiments, not configurations: a trail without its index
cannot be searched. They say what each part of the schema costs a call.
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import overhead  # beside this file

CALLER = ("bare", "audited, store answering at once", "audited")
WRITER = {
    "the trail as it is": (),
    "without the full-text triggers": ("generation_logs_fts_",),
    "without the secondary indexes": ("idx_generation_logs_",),
    "without either, nor the events' index": (
        "generation_logs_fts_",
        "idx_generation_logs_",
        "idx_generation_log_events",
    ),
}
SHORT = "with a 23-byte prompt"
POSTGRES = ("bare", "audited-pg", "audited-pg without its search column", "floor-pg")
FLOOR = "the floor (overhead.Floor)"
ROUNDS = 5


class Timed:
    """A connection whose ``execute`` adds its thread's CPU time to a tally per statement."""

    def __init__(self, conn: Any, tally: collections.Counter[str]) -> None:
        self.conn, self.tally = conn, tally

    def execute(self, sql: str, *args: Any) -> Any:
        start = time.thread_time()
        try:
            return self.conn.execute(sql, *args)
        finally:
            self.tally[" ".join(sql.split()[:3])] += time.thread_time() - start

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


def _calls(client: Any, n: int, before: Any = None, after: Any = None) -> None:
    for _ in range(n):
        row = before() if before else None
        client.chat.completions.create(model="gpt-4o", messages=overhead.MESSAGES)
        if after:
            after(row)


def _rounds(client: Any, n: int, before: Any = None, after: Any = None) -> dict[str, float]:
    """Single calls over respx, after a warm-up: the medians of :data:`ROUNDS` rounds of
    ``n``, per call, of the wall time and of the calling thread's CPU (ms)."""
    import respx

    walls, cpus = [], []
    with respx.mock(base_url=overhead.BASE, assert_all_called=False) as router:
        route = router.post("/chat/completions").respond(json=overhead.BODY)
        _calls(client, 20, before, after)
        for _ in range(ROUNDS):
            route.calls.clear()  # respx keeps every request: a full GC would walk them all
            gc.collect()
            wall, cpu = time.perf_counter(), time.thread_time()
            _calls(client, n, before, after)
            walls.append((time.perf_counter() - wall) / n)
            cpus.append((time.thread_time() - cpu) / n)
    return {"wall_ms": statistics.median(walls) * 1e3, "cpu_ms": statistics.median(cpus) * 1e3}


def caller(case: str, n: int) -> dict[str, Any]:
    """Wall and calling-thread CPU per call, the median of the rounds."""
    workdir = Path(tempfile.mkdtemp())
    variant = "bare" if case == "bare" else "audited"
    client = overhead.make_clients(variant, workdir, overhead.BASE, asynchronous=False)
    if case == CALLER[1]:
        from audited_openai import _store

        ids = iter(range(1, 1 << 62))

        def settled(_self: Any, _work: Any, *, durable: bool, what: str) -> Future[Any]:
            del what
            future: Future[Any] = Future()
            future.set_result(next(ids) if durable else True)
            return future

        _store.Rows.submit = settled  # type: ignore[method-assign]
    return _rounds(client, n)


def writer(case: str, n: int) -> dict[str, float]:
    """The writer thread's CPU per call in each statement (ms), over ``n`` calls."""
    import respx

    tally: collections.Counter[str] = collections.Counter()
    workdir = Path(tempfile.mkdtemp())
    if case == FLOOR:
        floor = overhead.Floor(workdir / "floor.db")
        floor.conn = Timed(floor.conn, tally)  # type: ignore[assignment]
        client = overhead.make_clients("bare", workdir, overhead.BASE, asynchronous=False)
        run = (floor.before, floor.after)
    else:
        from audited_openai import _sqlite_connect

        connection = _sqlite_connect.Link._connection
        _sqlite_connect.Link._connection = lambda self, *, full: Timed(  # type: ignore[method-assign,assignment]
            connection(self, full=full), tally
        )
        client = overhead.make_clients("audited", workdir, overhead.BASE, asynchronous=False)
        client.audit_store.flush()
        _drop(workdir / "audited.db", WRITER.get(case, ()))
        if case == SHORT:
            overhead.MESSAGES[:] = [{"role": "user", "content": "Genereer een definitie."}]
        run = (None, None)
    with respx.mock(base_url=overhead.BASE, assert_all_called=False) as router:
        router.post("/chat/completions").respond(json=overhead.BODY)
        _calls(client, 20, *run)
        if case != FLOOR:
            client.audit_store.flush()
        tally.clear()
        _calls(client, n, *run)
        if case != FLOOR:
            client.audit_store.flush()
    return {sql: seconds / n * 1e3 for sql, seconds in tally.most_common()}


def postgres(case: str, n: int) -> dict[str, Any]:
    """Wall time per call on a fresh database of ``$AUDITED_OPENAI_BENCH_SERVER``."""
    import psycopg

    server = os.environ["AUDITED_OPENAI_BENCH_SERVER"]
    with overhead.postgres_database(server) as url:
        assert url is not None
        os.environ[overhead.POSTGRES] = url
        variant = "bare" if case in ("bare", "floor-pg") else "audited-pg"
        client = overhead.make_clients(
            variant, Path(tempfile.mkdtemp()), overhead.BASE, asynchronous=False
        )
        floor = overhead.PostgresFloor(url + "_floor") if case == "floor-pg" else None
        if case == POSTGRES[2]:
            client.audit_store.flush()
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("ALTER TABLE generation_logs DROP COLUMN search_vector")
        timed = _rounds(client, n, *((floor.before, floor.after) if floor else ()))
        if variant != "bare":
            client.audit_store.flush()
            client.audit_store.close()
    return timed


def _drop(path: Path, prefixes: tuple[str, ...]) -> None:
    conn = sqlite3.connect(path)
    objects = conn.execute(
        "SELECT type, name FROM sqlite_master WHERE type IN ('index', 'trigger')"
    )
    for kind, name in objects.fetchall():
        if name.startswith(prefixes) and name != "idx_generation_logs_call":  # the upsert's key
            conn.execute(f'DROP {kind} "{name}"')
    conn.commit()
    conn.close()


def _in_a_process(part: str, case: str, n: int) -> Any:
    done = subprocess.run(
        [sys.executable, __file__, "--part", part, case, "--calls", str(n)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per round (default 2000)")
    parser.add_argument(
        "--postgres", metavar="URL", help="also PostgreSQL's cases, on databases made here"
    )
    parser.add_argument("--part", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part:
        part, case = args.part
        measure = {"caller": caller, "writer": writer, "postgres": postgres}[part]
        print(json.dumps(measure(case, args.calls)))
        return
    print(f"single calls over respx, 10 KB prompt, {args.calls} calls a round\n")
    print("| the caller's thread, per call | wall ms | its CPU ms |")
    print("|---|---|---|")
    for case in CALLER:
        row = _in_a_process("caller", case, args.calls)
        print(f"| {case} | {row['wall_ms']:.3f} | {row['cpu_ms']:.3f} |")
    print(
        "\n| the statements' CPU per call (the writer thread; the floor's on the caller's), ms | statements | total |"
    )
    print("|---|---|---|")
    for case in (*WRITER, SHORT, FLOOR):
        row = _in_a_process("writer", case, args.calls)
        parts = ", ".join(f"{sql} {ms:.3f}" for sql, ms in row.items() if ms >= 0.005)
        print(f"| {case} | {parts} | {sum(row.values()):.3f} |")
    if args.postgres:
        os.environ["AUDITED_OPENAI_BENCH_SERVER"] = args.postgres
        walls: dict[str, list[float]] = {case: [] for case in POSTGRES}
        for _ in range(3):  # alternating: the server's speed drifts
            for case in POSTGRES:
                walls[case].append(_in_a_process("postgres", case, args.calls)["wall_ms"])
        bare = statistics.median(walls["bare"])
        print("\n| PostgreSQL, single calls over respx | median ms | overhead ms |")
        print("|---|---|---|")
        for case in POSTGRES:
            wall = statistics.median(walls[case])
            print(f"| {case} | {wall:.3f} | {'' if case == 'bare' else f'{wall - bare:+.3f}'} |")


if __name__ == "__main__":
    main()
