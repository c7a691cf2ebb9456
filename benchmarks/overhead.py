"""What the audit costs per call, against its floor, measured in one run.

    python benchmarks/overhead.py            # full run (a few minutes)
    python benchmarks/overhead.py --quick    # seconds; CI runs this to show it works

Every figure comes from the same run on the same machine, with a 10 KB prompt:

1. bare ``openai.OpenAI`` against ``AuditedOpenAI``, over respx and over the loopback
   server, sync and async, calls interleaved (bare, audited, bare, ...): medians, p99;
2. the floor: a raw ``sqlite3`` insert of the same row with ``synchronous=FULL`` plus
   its completion update, on the same schema and settings;
3. 16 threads (over respx, and over the loopback server in its own process) and 200
   asyncio tasks, at once: p99 overhead, event-loop lag p99, throughput against bare,
   and any "database is locked" error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import openai
import respx

from audited_openai import AsyncAuditedOpenAI, AuditedOpenAI, GenerationLogRepository
from audited_openai.testing import LoopbackServer, Reply

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

BASE = "http://bench.test/v1"
PROMPT = ("Genereer een juridische definitie volgens de regels. " * 200)[:10_240]
MESSAGES = [{"role": "user", "content": PROMPT}]
BODY = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 1731335025,
    "model": "gpt-4o",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Een definitie."},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 2500, "completion_tokens": 5, "total_tokens": 2505},
}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def ms(seconds: float) -> float:
    return seconds * 1000


# -- the floor -------------------------------------------------------------------------------


class Floor:
    """The raw minimum: insert the same row with ``synchronous=FULL``, complete it NORMAL.

    Same schema and settings as the library's store (WAL, busy timeout, the triggers
    and indexes of generation_logs), through a bare ``sqlite3`` connection.
    """

    def __init__(self, path: Path) -> None:
        GenerationLogRepository(path).get_prompt_history(limit=0)
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA busy_timeout = 30000")
        self.request_json = json.dumps({"messages": MESSAGES, "model": "gpt-4o"})

    def before(self) -> int | None:
        self.conn.execute("PRAGMA synchronous = FULL")
        self.conn.execute("BEGIN IMMEDIATE")
        cursor = self.conn.execute(
            "INSERT INTO generation_logs (call_id, attempt, endpoint, model_name, stream, "
            "generation_status, logged_at, updated_at, prompt_full_text, request_json) "
            "VALUES (?, 1, 'chat.completions', 'gpt-4o', 0, 'pending', ?, ?, ?, ?)",
            (
                uuid.uuid4().hex,
                "2025-11-11T00:00:00.000Z",
                "2025-11-11T00:00:00.000Z",
                PROMPT,
                self.request_json,
            ),
        )
        self.conn.execute("COMMIT")
        return cursor.lastrowid

    def after(self, row_id: int | None) -> None:
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.execute(
            "UPDATE generation_logs SET generation_status = 'success', tokens_prompt = 2500, "
            "tokens_completion = 5, tokens_total = 2505, duration_ms = 1, response_id = 'x', "
            "response_content = 'Een definitie.', http_status = 200, "
            "updated_at = '2025-11-11T00:00:01.000Z' WHERE id = ?",
            (row_id,),
        )
        self.conn.execute("COMMIT")


class ThreadFloors:
    """The floor's raw writes around a bare call, from many threads at once.

    What a hand-written audit would do: each thread its own connection, no group
    commit; SQLite's busy timeout orders the writers.
    """

    def __init__(self, path: Path, bare: Any) -> None:
        Floor(path)  # the schema
        self.path = path
        self.bare = bare
        self.local = threading.local()

    def call(self) -> None:
        floor: Floor | None = getattr(self.local, "floor", None)
        if floor is None:
            floor = self.local.floor = Floor(self.path)
        row_id = floor.before()
        self.bare.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        floor.after(row_id)


# -- the clients -------------------------------------------------------------------------------


def clients(db: Path, base_url: str = BASE, *, asynchronous: bool = False) -> tuple[Any, Any]:
    """A bare and an audited client (writing to ``db``), the same options each.

    Over respx (``BASE``) each gets a classic ``httpx`` client, which respx sees; async
    clients are made inside the running loop.
    """
    options: dict[str, Any] = {"base_url": base_url, "api_key": "bench", "max_retries": 0}
    http = (httpx.AsyncClient if asynchronous else httpx.Client) if base_url == BASE else None
    bare, audited = (
        (openai.AsyncOpenAI, AsyncAuditedOpenAI) if asynchronous else (openai.OpenAI, AuditedOpenAI)
    )
    return (
        bare(**options, **({"http_client": http()} if http else {})),
        audited(db, **options, **({"http_client": http()} if http else {})),
    )


# -- single calls, interleaved ----------------------------------------------------------------


def interleaved_sync(
    bare: Any, audited: Any, n: int, floor: Floor
) -> tuple[list[float], list[float], list[float]]:
    """Per call: bare, bare with the floor's writes around it, audited; in turn."""
    b, f, a = [], [], []
    for _ in range(3):  # warm up both
        bare.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        audited.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    for _ in range(n):
        t = time.perf_counter()
        bare.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        b.append(time.perf_counter() - t)
        t = time.perf_counter()
        row_id = floor.before()
        bare.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        floor.after(row_id)
        f.append(time.perf_counter() - t)
        t = time.perf_counter()
        audited.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        a.append(time.perf_counter() - t)
    return b, f, a


async def interleaved_async(
    bare: Any, audited: Any, n: int, floor: Floor
) -> tuple[list[float], list[float], list[float]]:
    b, f, a = [], [], []
    for _ in range(3):
        await bare.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        await audited.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    for _ in range(n):
        t = time.perf_counter()
        await bare.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        b.append(time.perf_counter() - t)
        t = time.perf_counter()
        row_id = floor.before()
        await bare.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        floor.after(row_id)
        f.append(time.perf_counter() - t)
        t = time.perf_counter()
        await audited.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        a.append(time.perf_counter() - t)
    return b, f, a


# -- concurrency --------------------------------------------------------------------------------


_MOCKS: list[respx.MockRouter] = []


@contextlib.contextmanager
def mocked_api(side_effect: Callable[[httpx.Request], Any] | None = None) -> Iterator[None]:
    """respx answering ``POST /chat/completions`` (with ``BODY``, or ``side_effect``)."""
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        route = router.post("/chat/completions")
        if side_effect is None:
            route.respond(json=BODY)
        else:
            route.mock(side_effect=side_effect)
        _MOCKS.append(router)
        try:
            yield
        finally:
            _MOCKS.remove(router)


def fresh_start() -> None:
    """Drop respx's call history and collect the garbage of what ran before, untimed.

    respx keeps every request and response it mocked: over a section that is tens of
    thousands of 10 KB requests, and every full collection walks them all, more often
    on the side that allocates more. Without this, garbage made in one side's run is
    also collected during the next side's run, which then pays for it. A run's own
    garbage is still collected, and paid for, within that run.
    """
    for router in _MOCKS:
        router.reset()
    gc.collect()


def threads(call: Callable[[], Any], workers: int, calls: int) -> tuple[list[float], float, int]:
    """(latencies, wall seconds, errors) of ``workers`` threads making ``calls`` each."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal errors
        mine = []
        for _ in range(calls):
            t = time.perf_counter()
            try:
                call()
            except Exception as exc:
                with lock:
                    errors += 1
                print(f"error: {exc}", file=sys.stderr)
            mine.append(time.perf_counter() - t)
        with lock:
            latencies.extend(mine)

    fresh_start()
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        for future in [pool.submit(work) for _ in range(workers)]:
            future.result()
    return latencies, time.perf_counter() - start, errors


def concurrent_threads(  # noqa: PLR0917 - one benchmark's knobs
    label: str,
    bare: Any,
    audited: Any,
    floor_call: Callable[[], None] | None,
    pairs: int,
    per_thread: int,
    floor_median: float,
) -> None:
    """16 threads on bare and audited clients (and the floor's raw writes): a few lines.

    As with tasks, the sides alternate in short runs; the p99 of each side is taken
    over all its calls (so all saw the same drift of the machine), and per round.
    """
    sides: dict[str, Callable[[], Any]] = {
        "bare": lambda: bare.chat.completions.create(model="gpt-4o", messages=MESSAGES),
        "audited": lambda: audited.chat.completions.create(model="gpt-4o", messages=MESSAGES),
    }
    if floor_call is not None:
        sides["floor"] = floor_call
    for call in sides.values():  # warm-up: connections, the database's schema
        threads(call, 16, 2)
    lat: dict[str, list[float]] = {side: [] for side in sides}
    ratios: dict[str, list[float]] = {side: [] for side in sides if side != "bare"}
    round_overheads: list[float] = []  # p99 audited - p99 bare, per round
    errors = 0
    for i in range(pairs):
        walls, round_p99 = {}, {}
        order = list(sides.items())
        for side, call in order if i % 2 == 0 else order[::-1]:
            latencies, walls[side], err = threads(call, 16, per_thread)
            lat[side] += latencies
            round_p99[side] = pct(latencies, 99)
            errors += err
        for side, values in ratios.items():
            values.append(walls["bare"] / walls[side])
        round_overheads.append(round_p99["audited"] - round_p99["bare"])
    p99 = {side: pct(values, 99) for side, values in lat.items()}
    median = {side: statistics.median(values) for side, values in lat.items()}
    print(
        f"16 threads x {per_thread} calls ({label}), {pairs} rounds: p99 bare "
        f"{ms(p99['bare']):.1f} ms, audited {ms(p99['audited']):.1f} ms: overhead "
        f"{ms(p99['audited'] - p99['bare']):.1f} ms = "
        f"{(p99['audited'] - p99['bare']) / floor_median:.1f}x the single-call floor; "
        f"median latency bare {ms(median['bare']):.1f} ms, audited {ms(median['audited']):.1f} ms; "
        f"throughput vs bare: median {statistics.median(ratios['audited']):.2f}x (quartiles "
        f"{quartiles(ratios['audited'])}); lock errors: {errors}"
    )
    print(
        f"  per round (p99 of each side's {16 * per_thread} calls): overhead median "
        f"{ms(statistics.median(round_overheads)):.1f} ms (quartiles "
        f"{quartiles([ms(v) for v in round_overheads])} ms) = "
        f"{statistics.median(round_overheads) / floor_median:.1f}x the single-call floor"
    )
    if "floor" in sides:
        print(
            f"  the floor's raw writes from the same 16 threads (no group commit): p99 "
            f"{ms(p99['floor']):.1f} ms: overhead {ms(p99['floor'] - p99['bare']):.1f} ms; "
            f"throughput vs bare: median {statistics.median(ratios['floor']):.2f}x "
            f"(quartiles {quartiles(ratios['floor'])})"
        )


async def tasks(client: Any, count: int, calls: int) -> tuple[list[float], float, list[float], int]:
    """(latencies, wall seconds, loop blocks, errors) of ``count`` concurrent tasks.

    A loop block is how long one callback ran on the event loop without yielding:
    the time every other task had to wait because of it (asyncio's own measure of a
    slow callback, taken for every callback).
    """
    latencies: list[float] = []
    blocks: list[float] = []
    errors = 0
    original = asyncio.events.Handle._run

    def timed_run(handle: asyncio.events.Handle) -> None:
        t = time.perf_counter()
        original(handle)
        blocks.append(time.perf_counter() - t)

    async def work() -> None:
        nonlocal errors
        for _ in range(calls):
            t = time.perf_counter()
            try:
                await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
            except Exception as exc:
                errors += 1
                print(f"error: {exc}", file=sys.stderr)
            latencies.append(time.perf_counter() - t)

    fresh_start()
    asyncio.events.Handle._run = timed_run  # type: ignore[method-assign]
    try:
        start = time.perf_counter()
        await asyncio.gather(*(work() for _ in range(count)))
        wall = time.perf_counter() - start
    finally:
        asyncio.events.Handle._run = original  # type: ignore[method-assign]
    return latencies, wall, blocks, errors


def concurrent_tasks(
    label: str,
    store: Path | Any,
    pairs: int,
    per_task: int,
    base_url: str = BASE,
) -> None:
    """200 tasks on bare and audited clients, in ``pairs`` short runs of each: one line.

    This machine's speed drifts by tens of percent over seconds, so the two sides
    alternate in runs of about a second (which goes first alternates too), and each
    pair gives one throughput ratio; the median ratio is the figure. A warm-up run of
    each comes first (connections, the database's schema).
    """

    async def run() -> None:
        abare, aaudited = clients(store, base_url, asynchronous=True)
        async with abare, aaudited:
            await tasks(abare, 200, per_task)
            await tasks(aaudited, 200, per_task)
            lags: dict[str, list[float]] = {"bare": [], "audited": []}
            ratios, errors = [], 0
            for i in range(pairs):
                walls = {}
                order = [("bare", abare), ("audited", aaudited)]
                for side, client in order if i % 2 == 0 else order[::-1]:
                    _, walls[side], lag, err = await tasks(client, 200, per_task)
                    lags[side] += lag
                    errors += err if side == "audited" else 0
                ratios.append(walls["bare"] / walls["audited"])
        print(
            f"200 tasks x {per_task} calls ({label}), {pairs} pairs of runs: event-loop lag "
            f"(block per callback) p99 bare {ms(pct(lags['bare'], 99)):.2f} ms, audited "
            f"{ms(pct(lags['audited'], 99)):.2f} ms; throughput vs bare: median "
            f"{statistics.median(ratios):.2f}x (quartiles {quartiles(ratios)}); errors: {errors}"
        )

    asyncio.run(run())


def quartiles(values: list[float]) -> str:
    q1, _, q3 = statistics.quantiles(values, n=4) if len(values) > 1 else values * 3
    return f"{q1:.2f}-{q3:.2f}"


async def reply_after_a_turn(_request: httpx.Request) -> httpx.Response:
    """The mocked reply, after one turn of the event loop (as a socket's reply comes)."""
    await asyncio.sleep(0)
    return httpx.Response(200, json=BODY)


@contextlib.contextmanager
def loopback_process() -> Iterator[str]:
    """The loopback server in a process of its own (its threads take no GIL of ours)."""
    code = (
        "import sys\n"
        "from audited_openai.testing import LoopbackServer, Reply\n"
        "with LoopbackServer(default=Reply('Een definitie.')) as server:\n"
        "    print(server.base_url, flush=True)\n"
        "    sys.stdin.read()\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        yield process.stdout.readline().strip()
    finally:
        process.stdin.close()
        process.wait(30)


class AnswerOnly:
    """A store that writes nothing: a thread answers each queued write at once.

    Audited calls still wait for their writes as with the real store, so comparing
    against it shows what the waiting alone costs and what the writing adds.
    """

    path = ":answer-only:"

    # The store interface's signatures; most arguments go unused here.

    def __init__(self) -> None:
        self.ids = itertools.count(1)
        self.pool = ThreadPoolExecutor(1)

    def create_pending_log(self, context: Any) -> int:  # noqa: ARG002
        return next(self.ids)

    def complete(self, log_id: int, context: Any, *, only_pending: bool = False) -> bool:  # noqa: ARG002
        return True

    def insert_log(self, context: Any) -> int:  # noqa: ARG002
        return next(self.ids)

    def link_to_definitie(self, log_id: int, definitie_id: int) -> None:
        pass

    def submit_pending_log(self, context: Any) -> Future[int]:
        return self.pool.submit(self.create_pending_log, context)

    def submit_complete(
        self,
        log_id: int,
        context: Any,
        *,
        only_pending: bool = False,  # noqa: ARG002
    ) -> Future[bool]:
        return self.pool.submit(self.complete, log_id, context)


# -- the run ----------------------------------------------------------------------------------------


def row(name: str, bare: list[float], floor: list[float], audited: list[float]) -> str:
    med = statistics.median
    floor_overhead = med(floor) - med(bare)
    overhead = med(audited) - med(bare)
    return (
        f"| {name} | {ms(med(bare)):.3f} | {ms(floor_overhead):.3f} | {ms(overhead):.3f} "
        f"| {ms(pct(audited, 99) - pct(bare, 99)):.3f} | {overhead / floor_overhead:.2f}x |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few calls each: checks it works")
    args = parser.parse_args()
    n = 20 if args.quick else 1000
    per_thread = 5 if args.quick else 10
    per_task = 2
    pairs = 1 if args.quick else 20
    tmp = Path(tempfile.mkdtemp(prefix="audited-bench-"))
    floor = Floor(tmp / "floor.db")
    floor_times = []
    for _ in range(n):
        t = time.perf_counter()
        floor.after(floor.before())
        floor_times.append(time.perf_counter() - t)
    floor_median = statistics.median(floor_times)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, openai {openai.__version__}; prompt 10 KB; n={n}"
    )
    print(
        f"floor alone, in a tight loop (raw insert FULL + update NORMAL): median "
        f"{ms(floor_median):.3f} ms, p99 {ms(pct(floor_times, 99)):.3f} ms"
    )
    print()
    print("The floor column is the same raw writes placed around a bare call, interleaved with")
    print("the other two, so cache and disk conditions are the same for all three.")
    print()
    print(
        "| path | bare median ms | floor median ms | audit overhead median ms | audit overhead p99 ms | overhead / floor |"
    )
    print("|---|---|---|---|---|---|")

    with mocked_api():
        bare, audited = clients(tmp / "respx.db")
        print(row("sync, respx", *interleaved_sync(bare, audited, n, floor)))

        async def run_async() -> tuple[list[float], list[float], list[float]]:
            abare, aaudited = clients(tmp / "respx-async.db", asynchronous=True)
            async with abare, aaudited:
                return await interleaved_async(abare, aaudited, n, floor)

        print(row("async, respx", *asyncio.run(run_async())))

    with LoopbackServer(default=Reply("Een definitie.")) as server:
        bare, audited = clients(tmp / "loop.db", server.base_url)
        print(row("sync, loopback HTTP", *interleaved_sync(bare, audited, n, floor)))

        async def run_loop_async() -> tuple[list[float], list[float], list[float]]:
            abare, aaudited = clients(tmp / "loop-async.db", server.base_url, asynchronous=True)
            async with abare, aaudited:
                return await interleaved_async(abare, aaudited, n, floor)

        print(row("async, loopback HTTP", *asyncio.run(run_loop_async())))

    print()
    with mocked_api():
        bare, audited = clients(tmp / "threads.db")
        floors = ThreadFloors(tmp / "threads-floor.db", bare)
        concurrent_threads("respx", bare, audited, floors.call, pairs, per_thread, floor_median)
    with loopback_process() as base_url:
        bare, audited = clients(tmp / "threads-http.db", base_url)
        concurrent_threads(
            "loopback HTTP server in its own process",
            bare,
            audited,
            None,
            pairs,
            per_thread,
            floor_median,
        )
    for name in ("threads.db", "threads-http.db"):
        rows = GenerationLogRepository(tmp / name).get_prompt_history(limit=100_000)
        assert len(rows) == 16 * (per_thread * pairs + 2), f"{name}: rows equal requests"
        assert all(r.status == "success" for r in rows), name

    # 200 tasks: bare against audited, for three ways a reply can arrive.
    print()
    with mocked_api():
        concurrent_tasks("respx, reply at once", tmp / "instant.db", pairs, per_task)
        # The bare client above never yields to the loop; this measures what waiting
        # alone costs an audited call there, with a store that writes nothing.
        concurrent_tasks(
            "respx, reply at once, store that only answers from a thread",
            AnswerOnly(),
            pairs,
            per_task,
        )
    with mocked_api(reply_after_a_turn):
        concurrent_tasks("respx, reply after one loop turn", tmp / "turn.db", pairs, per_task)
    with loopback_process() as base_url:
        concurrent_tasks(
            "loopback HTTP server in its own process",
            tmp / "http.db",
            pairs,
            per_task,
            base_url,
        )
    for name in ("instant.db", "turn.db", "http.db"):
        rows = GenerationLogRepository(tmp / name).get_prompt_history(limit=100_000)
        assert len(rows) == 200 * per_task * (pairs + 1), f"{name}: rows equal requests"
        assert all(r.status == "success" for r in rows), name


if __name__ == "__main__":
    main()
