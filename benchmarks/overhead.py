"""What the audit costs per call: against bare openai, Langfuse's wrapper and the physical floor.

    python benchmarks/overhead.py            # the full run (about ten minutes)
    python benchmarks/overhead.py --quick    # seconds; CI runs it to show it works
    python benchmarks/overhead.py --postgres postgresql://postgres@127.0.0.1/postgres

Langfuse's wrapper needs ``pip install -e '.[bench]'`` (it is skipped, saying so, without).
A full run writes its figures, with the commit, date and machine, to
``docs/performance.json``; ``python benchmarks/tables.py`` makes the docs' tables from it.

Every variant runs in a worker process of its own (Langfuse patches the SDK globally),
and the workers take turns in short rounds, so that each figure is a ratio from one run
on one machine whose speed drifts. A 10 KB prompt throughout. The variants:

* ``bare``: ``openai.OpenAI`` / ``AsyncOpenAI``;
* ``audited``: ``AuditedOpenAI`` / ``AsyncAuditedOpenAI`` writing to a SQLite file;
* ``audited-otel``: ``audited`` in an app that traces (OpenTelemetry's SDK tracer and
  meter providers, spans batched to an exporter that drops them): what live spans cost;
* ``official-otel``: ``bare`` instrumented by ``opentelemetry-instrumentation-openai-v2``
  with the same providers (only with ``--variants``): what the official spans cost;
* ``audited-nochain``: the same with the write path as it was before the tamper-evident
  chain (no events; a lone write in SQLite's own transaction), to show what the chain
  costs;
* ``audited-unpriced``: ``audited`` without pricing its calls (no cost columns written;
  only with ``--variants``): what the cost costs;
* ``audited-actor``: ``audited`` with who asked on every row (the client's ``actor=``
  and an ``audit_context(session=...)`` around the worker: the threads of the 16-thread
  case start without a context, so theirs carry the actor only; only with
  ``--variants``): what the actor and the session cost;
* ``audited-process``: ``audited`` with its writes committed by a writer process (the
  experiment of ``writer_process.py``; only with ``--variants``); its CPU counts both
  processes;
* ``langfuse``: ``langfuse.openai``'s clients, exporting to a sink on 127.0.0.1;
* ``floor``: the bare client plus what any write-ahead audit must do at the least: a raw
  ``sqlite3`` insert of the same row with ``synchronous=FULL`` before the call and its
  update with ``NORMAL`` after, into a table with only a primary key (WAL).

With ``--postgres URL`` (a server the run may create and drop a database on), two more:

* ``audited-pg``: the audited clients writing to a fresh PostgreSQL database;
* ``floor-pg``: the bare client plus a raw psycopg insert (``synchronous_commit=on``)
  and update (``off``) of the same row, into a table with only a primary key.

Measures:

1. single calls over respx (a mocked reply): median and p99 per variant; the overhead of
   a variant is its median minus bare's median;
2. 16 threads at once, over the loopback server in its own process: p99 latency, the
   p99 overhead against bare, and "database is locked" errors;
3. 200 asyncio tasks at once, over the loopback server: throughput against bare (the
   median of the rounds' paired ratios) and the event loop's longest blocks (p99);
   again against a loopback model that answers after 200 ms, and one that streams 50
   chunks in about 200 ms (each call reads its stream to the end): what apps live with.

With the single calls, each variant's CPU time per call: the whole process's (every
thread, ``time.process_time()``) over a round of calls until its queued work is done
(the audit's writes committed, Langfuse's batch exported), less bare's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
VARIANTS = ("bare", "audited", "audited-nochain", "audited-otel", "langfuse", "floor")
EXPERIMENTS = ("official-otel", "audited-process", "audited-unpriced", "audited-actor")
REQUEST_JSON = json.dumps({"messages": MESSAGES, "model": "gpt-4o"})
ROOT = Path(__file__).resolve().parent.parent
POSTGRES = "AUDITED_OPENAI_BENCH_POSTGRES"  # the database of the -pg variants, for the workers
# 200 tasks against three servers: one answering at once, after 200 ms, and streaming
TASKS = ("tasks", "model", "stream")
MODEL_LATENCY_S = 0.2  # the slow server's answer
STREAM_WORDS = 48  # a streamed answer: the role's chunk, 48 words, the finish: 50 chunks
CHUNK_DELAY_S = 0.004  # between chunks: 50 chunks in about 200 ms


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def ms(seconds: float) -> float:
    return seconds * 1000


# -- the worker: one variant, in a process of its own --------------------------------------------


class Floor:
    """The physical floor: the same row inserted FULL, updated NORMAL, in a table with a key only."""

    COLUMNS = (
        "call_id",
        "attempt",
        "endpoint",
        "model_name",
        "stream",
        "generation_status",
        "logged_at",
        "updated_at",
        "prompt_full_text",
        "request_json",
    )
    TABLE = (
        "CREATE TABLE IF NOT EXISTS generation_logs (id {key}, call_id TEXT, attempt INTEGER, "
        "endpoint TEXT, model_name TEXT, stream INTEGER, generation_status TEXT, "
        "logged_at TEXT, updated_at TEXT, prompt_full_text TEXT, request_json TEXT, "
        "tokens_prompt INTEGER, tokens_completion INTEGER, tokens_total INTEGER, "
        "duration_ms INTEGER, response_id TEXT, response_content TEXT, http_status INTEGER)"
    )
    INSERT = (
        "INSERT INTO generation_logs (call_id, attempt, endpoint, model_name, stream, "
        "generation_status, logged_at, updated_at, prompt_full_text, request_json) "
        "VALUES (?, 1, 'chat.completions', 'gpt-4o', 0, 'pending', ?, ?, ?, ?)"
    )
    UPDATE = (
        "UPDATE generation_logs SET generation_status = 'success', tokens_prompt = 2500, "
        "tokens_completion = 5, tokens_total = 2505, duration_ms = 1, response_id = 'x', "
        "response_content = 'Een definitie.', http_status = 200, "
        "updated_at = '2025-11-11T00:00:01.000Z' WHERE id = ?"
    )

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA busy_timeout = 30000")
        self.conn.execute(self.TABLE.format(key="INTEGER PRIMARY KEY"))
        self.lock = threading.Lock()

    def values(self) -> tuple[str, ...]:
        now = "2025-11-11T00:00:00.000Z"
        return uuid.uuid4().hex, now, now, PROMPT, REQUEST_JSON

    def before(self) -> int | None:
        with self.lock:
            self.conn.execute("PRAGMA synchronous = FULL")
            self.conn.execute("BEGIN IMMEDIATE")
            cursor = self.conn.execute(self.INSERT, self.values())
            self.conn.execute("COMMIT")
            return cursor.lastrowid

    def after(self, row_id: int | None) -> None:
        with self.lock:
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute(self.UPDATE, (row_id,))
            self.conn.execute("COMMIT")


class PostgresFloor(Floor):
    """The floor on PostgreSQL: insert with synchronous_commit on, update with off."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.pg = psycopg.connect(url, autocommit=True)
        self.pg.execute(self.TABLE.format(key="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"))
        self.lock = threading.Lock()

    def before(self) -> int | None:
        with self.lock, self.pg.transaction():
            self.pg.execute("SET LOCAL synchronous_commit = on")
            row = self.pg.execute(
                self.INSERT.replace("?", "%s") + " RETURNING id", self.values()
            ).fetchone()
            return int(row[0]) if row else None

    def after(self, row_id: int | None) -> None:
        with self.lock, self.pg.transaction():
            self.pg.execute("SET LOCAL synchronous_commit = off")
            self.pg.execute(self.UPDATE.replace("?", "%s"), (row_id,))


def make_clients(variant: str, workdir: Path, base_url: str, *, asynchronous: bool) -> Any:
    """A client of the variant: over respx (``BASE``, a classic httpx client) or HTTP."""
    import httpx

    options: dict[str, Any] = {"base_url": base_url, "api_key": "bench", "max_retries": 0}
    if base_url == BASE:
        options["http_client"] = httpx.AsyncClient() if asynchronous else httpx.Client()
    if variant.startswith("audited"):
        from audited_openai import AsyncAuditedOpenAI, AuditedOpenAI

        cls = AsyncAuditedOpenAI if asynchronous else AuditedOpenAI
        if variant == "audited-nochain":
            _write_path_before_the_chain()
        if variant == "audited-actor":
            options["actor"] = "medewerker-042"
        if variant == "audited-unpriced":
            from audited_openai import GenerationLogRepository

            # no cost columns: what the audit was before its calls were priced
            GenerationLogRepository._priced = lambda _repo, _ctx: {}  # type: ignore[method-assign]
        if variant == "audited-otel":
            _tracing()
        store = os.environ[POSTGRES] if variant == "audited-pg" else workdir / f"{variant}.db"
        client = cls(store, **options)
        if variant == "audited-process":
            import writer_process  # beside this file: the experiment of a writer process

            if writer_process._REMOTE is None:
                writer_process.install(str(store))
        return client
    if variant == "official-otel":
        _tracing()
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

        if not OpenAIInstrumentor().is_instrumented_by_opentelemetry:
            OpenAIInstrumentor().instrument()
    if variant == "langfuse":
        from langfuse.openai import openai as patched
    else:
        import openai as patched
    return (patched.AsyncOpenAI if asynchronous else patched.OpenAI)(**options)


def _write_path_before_the_chain() -> None:
    """The SQLite write path as it was before the chain: no events, and a batch of one
    write run alone in SQLite's own transaction (no BEGIN IMMEDIATE ... COMMIT)."""
    from audited_openai import _chain, _store

    _chain.Chain.append = lambda *_args, **_kwargs: None  # type: ignore[method-assign]
    chained = _store.Writes.run

    def run(self: Any, jobs: list[Any], *, full: bool) -> list[Any]:
        if len(jobs) == 1:
            conn = self.link._connection(full=full)  # the SQLite link's own connection
            try:
                return [(jobs[0], jobs[0].work(conn), False)]
            except Exception as exc:
                return [(jobs[0], exc, True)]
        return chained(self, jobs, full=full)

    _store.Writes.run = run  # type: ignore[method-assign]


def _tracing() -> None:
    """An app that traces: the SDK's tracer and meter providers, spans batched to an
    exporter that drops them (the cost measured is the spans', not a collector's)."""
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:  # noqa: ARG002
            return SpanExportResult.SUCCESS

    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Drop()))
    trace.set_tracer_provider(provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))


def worker(variant: str, workdir: Path, server: str, model: str, streamer: str) -> None:
    """Serve measurements for one variant: a command per line in, a JSON line out.

    ``server`` answers at once, ``model`` after 200 ms, ``streamer`` streams 50 chunks.
    """
    import respx

    floor = (
        Floor(workdir / "floor.db")
        if variant == "floor"
        else PostgresFloor(os.environ[POSTGRES] + "_floor")
        if variant == "floor-pg"
        else None
    )
    sync_mock = make_clients(variant, workdir, BASE, asynchronous=False)
    sync_http = make_clients(variant, workdir, server, asynchronous=False)
    loop = asyncio.new_event_loop()
    async_http = loop.run_until_complete(_make_async(variant, workdir, server))
    async_clients = {
        "tasks": async_http,
        "model": loop.run_until_complete(_make_async(variant, workdir, model)),
        "stream": loop.run_until_complete(_make_async(variant, workdir, streamer)),
    }
    remote = None
    if variant == "audited-process":
        import writer_process as remote  # beside this file: its writer process
    if variant == "audited-actor":
        from audited_openai import audit_context

        audit_context(session="sessie-8f2c41d07a9e").__enter__()  # for the worker's life

    def call(client: Any) -> None:
        row = floor.before() if floor else None
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        if floor:
            floor.after(row)

    def cpu() -> float:
        """The CPU time of this process and, for audited-process, of its writer process."""
        return time.process_time() + (remote.cpu_seconds() if remote else 0.0)

    def settle() -> None:
        """What the calls made still owe: the audit's queued writes, Langfuse's batch."""
        if remote:
            remote.flush()
        if variant.startswith("audited"):
            sync_mock.audit_store.flush()
        elif variant == "langfuse":
            from langfuse import get_client

            get_client().flush()

    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        route = router.post("/chat/completions").respond(json=BODY)
        for _ in range(5):  # warm up: connections, the schema, imports
            call(sync_mock)
            call(sync_http)
        print("ready", flush=True)
        for line in sys.stdin:
            command, *args = line.split()
            route.calls.clear()  # respx keeps every request: a full GC would walk them all
            gc.collect()
            if command == "single":
                result = single(call, sync_mock, int(args[0]), settle, cpu)
            elif command == "single-http":
                result = single(call, sync_http, int(args[0]), settle, cpu)
            elif command == "threads":
                result = threads(lambda: call(sync_http), int(args[0]), int(args[1]))
            elif command in TASKS:
                client = async_clients[command]
                result = loop.run_until_complete(
                    tasks(client, floor, int(args[0]), int(args[1]), command == "stream")
                )
            else:
                result = {"error": f"unknown command {command}"}
            print(json.dumps(result), flush=True)
    if variant.startswith("audited"):
        sync_mock.audit_store.flush()


async def _make_async(variant: str, workdir: Path, server: str) -> Any:
    client = make_clients(variant, workdir, server, asynchronous=True)
    for _ in range(5):
        await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    return client


def single(
    call: Callable[[Any], None],
    client: Any,
    n: int,
    settle: Callable[[], None],
    clock: Callable[[], float] = time.process_time,
) -> dict[str, Any]:
    """``n`` calls one after another: each one's latency, and the CPU time of them all.

    The CPU time is the whole process's (every thread), up to the moment the calls' last
    queued work is done (``settle``): what a batch of calls costs the machine.
    """
    latencies = []
    cpu = clock()
    for _ in range(n):
        start = time.perf_counter()
        call(client)
        latencies.append(time.perf_counter() - start)
    settle()
    return {"latencies": latencies, "cpu": clock() - cpu}


def threads(call: Callable[[], None], workers: int, calls: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[str] = []
    barrier = threading.Barrier(workers)

    def work() -> None:
        barrier.wait()
        for _ in range(calls):
            start = time.perf_counter()
            try:
                call()
            except Exception as exc:
                errors.append(str(exc))
            latencies.append(time.perf_counter() - start)

    pool = [threading.Thread(target=work) for _ in range(workers)]
    start = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return {"latencies": latencies, "wall": time.perf_counter() - start, "errors": errors}


async def tasks(
    client: Any, floor: Floor | None, count: int, calls: int, stream: bool = False
) -> dict[str, Any]:
    """``count`` tasks at once; a loop block is how long one callback ran without yielding.

    With ``stream`` each call streams its answer and reads it to the end.
    """
    latencies: list[float] = []
    blocks: list[float] = []
    errors: list[str] = []
    original = asyncio.events.Handle._run

    def timed_run(handle: asyncio.events.Handle) -> None:
        start = time.perf_counter()
        original(handle)
        blocks.append(time.perf_counter() - start)

    async def work() -> None:
        for _ in range(calls):
            start = time.perf_counter()
            try:
                row = await asyncio.to_thread(floor.before) if floor else None
                if stream:
                    chunks = await client.chat.completions.create(
                        model="gpt-4o", messages=MESSAGES, stream=True
                    )
                    async for _chunk in chunks:
                        pass
                else:
                    await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
                if floor:
                    await asyncio.to_thread(floor.after, row)
            except Exception as exc:
                errors.append(str(exc))
            latencies.append(time.perf_counter() - start)

    asyncio.events.Handle._run = timed_run  # type: ignore[method-assign]
    try:
        start = time.perf_counter()
        await asyncio.gather(*(work() for _ in range(count)))
        wall = time.perf_counter() - start
    finally:
        asyncio.events.Handle._run = original  # type: ignore[method-assign]
    return {"latencies": latencies, "wall": wall, "blocks": blocks, "errors": errors}


# -- the orchestra ------------------------------------------------------------------------------


class _Sink(BaseHTTPRequestHandler):
    """Langfuse's export target: takes every batch, answers 200."""

    batches = 0  # what Langfuse exported: a run whose sink got nothing measured no export

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        _Sink.batches += 1
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def loopback_process(reply: str = "Reply('Een definitie.')") -> Iterator[str]:
    """The loopback server in a process of its own (its threads take no GIL of ours),
    answering every request with ``reply`` (the code of a :class:`testing.Reply`)."""
    code = (
        "import sys\n"
        "from audited_openai.testing import LoopbackServer, Reply\n"
        f"with LoopbackServer(default={reply}) as server:\n"
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


class Workers:
    """One worker process per variant; ``run`` asks each in turn."""

    def __init__(self, variants: list[str], workdir: Path, servers: list[str], sink: str) -> None:
        env = {
            **os.environ,
            "LANGFUSE_PUBLIC_KEY": "pk-lf-bench",
            "LANGFUSE_SECRET_KEY": "sk-lf-bench",
            "LANGFUSE_HOST": sink,
            "LANGFUSE_BASE_URL": sink,
        }
        self.procs = {}
        for variant in variants:
            directory = workdir / variant
            directory.mkdir()
            self.procs[variant] = subprocess.Popen(
                [sys.executable, __file__, "--worker", variant, str(directory), *servers],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
        for variant, proc in self.procs.items():
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise SystemExit(f"the {variant} worker did not start")

    def run(self, variant: str, command: str) -> dict[str, Any]:
        proc = self.procs[variant]
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.write(command + "\n")
        proc.stdin.flush()
        return json.loads(proc.stdout.readline())  # type: ignore[no-any-return]

    def close(self) -> None:
        for proc in self.procs.values():
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(60)


def rounds(
    workers: Workers, variants: list[str], command: str, count: int
) -> dict[str, list[dict[str, Any]]]:
    """``count`` rounds; in each every variant runs ``command`` once, the order rotating."""
    results: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for index in range(count):
        order = variants[index % len(variants) :] + variants[: index % len(variants)]
        for variant in order:
            results[variant].append(workers.run(variant, command))
    return results


def joined(results: list[dict[str, Any]], key: str) -> list[Any]:
    return [value for result in results for value in result[key]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few calls of each, to see it run")
    parser.add_argument(
        "--postgres", metavar="URL", help="also audited-pg and floor-pg, on a database made here"
    )
    parser.add_argument(
        "--variants", help="a comma-separated list instead of the default (e.g. bare,audited,floor)"
    )
    parser.add_argument(
        "--json",
        metavar="PATH",
        help="where the figures go (default: docs/performance.json; none for --quick)",
    )
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        variant, directory, *servers = args.worker
        worker(variant, Path(directory), *servers)
        return
    try:
        import langfuse  # noqa: F401
    except ImportError:
        variants = ["bare", "audited", "audited-nochain", "audited-otel", "floor"]
        print("langfuse is not installed (pip install -e '.[bench]'): its row is left out")
    else:
        variants = list(VARIANTS)
    quick = args.quick
    if args.variants:
        variants = args.variants.split(",")
        unknown = set(variants) - {*VARIANTS, *EXPERIMENTS, "audited-pg", "floor-pg"}
        if unknown or "bare" not in variants or "floor" not in variants:
            parser.error(f"--variants needs bare and floor, and knows no {sorted(unknown)}")
    if args.postgres:
        variants += ["audited-pg", "floor-pg"]
    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    sink_url = f"http://127.0.0.1:{sink.server_address[1]}"
    with (
        tempfile.TemporaryDirectory() as tmp,
        loopback_process() as server,
        loopback_process(f"Reply('Een definitie.', latency={MODEL_LATENCY_S})") as model,
        loopback_process(
            f"Reply(' '.join(['woord'] * {STREAM_WORDS}), chunk_delay={CHUNK_DELAY_S})"
        ) as streamer,
        postgres_database(args.postgres) as url,
    ):
        if url:
            os.environ[POSTGRES] = url
        workers = Workers(variants, Path(tmp), [server, model, streamer], sink_url)
        try:
            single_rounds = rounds(
                workers, variants, f"single {20 if quick else 100}", 2 if quick else 10
            )
            http_rounds = rounds(
                workers, variants, f"single-http {20 if quick else 100}", 2 if quick else 10
            )
            thread_rounds = rounds(
                workers, variants, f"threads 16 {3 if quick else 10}", 1 if quick else 10
            )
            task_rounds = {
                command: rounds(
                    workers,
                    variants,
                    f"{command} {50 if quick else 200} {1 if quick else 2}",
                    1 if quick else 10,
                )
                for command in TASKS
            }
        finally:
            workers.close()
    sink.shutdown()
    figures = summary(variants, single_rounds, http_rounds, thread_rounds, task_rounds)
    figures["run"]["langfuse_batches"] = _Sink.batches if "langfuse" in variants else None
    figures["run"]["quick"] = quick
    report(figures)
    target = args.json or (None if quick else str(ROOT / "docs" / "performance.json"))
    if target:
        Path(target).write_text(json.dumps(figures, indent=1) + "\n")
        print(f"\nthe figures: {target} (python benchmarks/tables.py writes the docs' tables)")


@contextlib.contextmanager
def postgres_database(server: str | None) -> Iterator[str | None]:
    """A fresh database on ``server`` for the -pg variants, dropped afterwards."""
    if not server:
        yield None
        return
    import psycopg

    name = f"ao_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
        admin.execute(f"CREATE DATABASE {name}_floor")  # the floor's table of its own
    try:
        yield server.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            admin.execute(f"DROP DATABASE IF EXISTS {name}_floor WITH (FORCE)")


def floor_of(variant: str) -> str:
    """The floor a variant is compared with: PostgreSQL's for the -pg variants."""
    return "floor-pg" if variant.endswith("-pg") else "floor"


def single_table(title: str, variants: list[str], rows: dict[str, dict[str, float]]) -> None:
    """Print one single-call table from the summary's figures."""
    print(f"\nsingle call {title}, 10 KB prompt, n = {rows['bare']['n']} per variant")
    print(
        "| variant | median ms | p99 ms | overhead ms | overhead / floor | CPU ms | CPU overhead ms |"
    )
    print("|---|---|---|---|---|---|---|")
    for v in variants:
        row = rows[v]
        over = row["overhead_ms"]
        ratio = "" if v == "bare" else f"{over / rows[floor_of(v)]['overhead_ms']:.2f}x"
        extra = "" if v == "bare" else f"{over:+.3f}"
        cpu = "" if v == "bare" else f"{row['cpu_overhead_ms']:+.3f}"
        print(
            f"| {v} | {row['median_ms']:.3f} | {row['p99_ms']:.3f} | {extra} | {ratio} "
            f"| {row['cpu_ms']:.3f} | {cpu} |"
        )


def report(figures: dict[str, Any]) -> None:
    """Print the run's tables (the figures :func:`summary` made)."""
    run, variants = figures["run"], figures["variants"]
    single, http = figures["single"], figures["http"]
    print(
        f"machine: {run['machine']}, {run['cores']} cores, Python {run['python']}, "
        f"SQLite {run['sqlite']}, openai {run['openai']}"
    )
    single_table("over respx (a mocked reply: the call never waits)", variants, single)
    single_table("over the loopback HTTP server in its own process", variants, http)

    print("\n16 threads at once, loopback HTTP server in its own process")
    print("| variant | median ms | p99 ms | p99 overhead ms | / floor | errors | lock errors |")
    print("|---|---|---|---|---|---|---|")
    for v in variants:
        row = figures["threads"][v]
        extra = "" if v == "bare" else f"{row['p99_overhead_ms']:+.2f}"
        floor = http[floor_of(v)]["overhead_ms"]
        ratio = "" if v == "bare" else f"{row['p99_overhead_ms'] / floor:.1f}x"
        print(
            f"| {v} | {row['median_ms']:.2f} | {row['p99_ms']:.2f} | {extra} | {ratio} "
            f"| {row['errors']} | {row['lock_errors']} |"
        )

    for key, server in (
        ("tasks", "a loopback HTTP server answering at once"),
        ("model_tasks", f"a loopback model answering after {MODEL_LATENCY_S * 1000:.0f} ms"),
        ("stream_tasks", "a loopback model streaming 50 chunks in about 200 ms"),
    ):
        print(
            f"\n200 asyncio tasks at once, {server} in its own process, "
            f"{figures[key]['bare']['rounds']} rounds"
        )
        print(
            "| variant | throughput vs bare (median, quartiles) | calls/s | loop block p99 ms | errors |"
        )
        print("|---|---|---|---|---|")
        for v in variants:
            row = figures[key][v]
            print(
                f"| {v} | {row['throughput']:.2f}x ({row['q1']:.2f}-{row['q3']:.2f}) "
                f"| {row['calls_per_s']:.0f} | {row['loop_block_p99_ms']:.2f} | {row['errors']} |"
            )
    for v in variants:
        if v.startswith("floor"):
            print(f"\nthe {v} overhead per call (over HTTP): {http[v]['overhead_ms']:.3f} ms")

    def over(rows: dict[str, dict[str, float]], v: str) -> float:
        return rows[v]["overhead_ms"]

    if "official-otel" in variants:
        print(
            "the official instrumentation's spans cost "
            f"{over(single, 'official-otel'):+.3f} ms a call over respx, "
            f"{over(http, 'official-otel'):+.3f} ms over HTTP (over bare)"
        )
    if "audited-otel" in variants and "audited" in variants:
        print(
            "live OpenTelemetry spans cost "
            f"{over(single, 'audited-otel') - over(single, 'audited'):+.3f} ms a call over respx, "
            f"{over(http, 'audited-otel') - over(http, 'audited'):+.3f} ms over HTTP"
        )
    if "audited-actor" in variants:
        print(
            "the actor and the session cost "
            f"{over(single, 'audited-actor') - over(single, 'audited'):+.3f} ms a call over "
            f"respx, {over(http, 'audited-actor') - over(http, 'audited'):+.3f} ms over HTTP "
            "(audited-actor against audited)"
        )
    if "audited-unpriced" in variants:
        print(
            "pricing each call costs "
            f"{over(single, 'audited') - over(single, 'audited-unpriced'):+.3f} ms a call over "
            f"respx, {over(http, 'audited') - over(http, 'audited-unpriced'):+.3f} ms over HTTP "
            "(audited against audited-unpriced)"
        )
    if "audited-nochain" in variants:
        print(
            "the chain's cost: audited's overhead is "
            f"{over(http, 'audited') / over(http, 'audited-nochain'):.2f}x audited-nochain's "
            f"(over HTTP), {over(single, 'audited') / over(single, 'audited-nochain'):.2f}x over respx"
        )


def _the_run() -> dict[str, Any]:
    """Which code was measured, where and when."""
    import openai

    def git(*args: str) -> str:
        try:
            done = subprocess.run(
                ["git", *args],  # noqa: S607 - git as the PATH finds it
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=False,
            )
        except OSError:  # no git here
            return ""
        return done.stdout.strip()

    try:
        import langfuse

        langfuse_version: str | None = getattr(langfuse, "__version__", None) or "installed"
    except ImportError:
        langfuse_version = None
    return {
        "commit": git("rev-parse", "--short", "HEAD") or None,
        "changed": bool(git("status", "--porcelain", "--", "src", "benchmarks")),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "openai": openai.__version__,
        "langfuse": langfuse_version,
        "command": " ".join(["python benchmarks/overhead.py", *sys.argv[1:]]),
    }


def summary(
    variants: list[str],
    single_rounds: dict[str, list[dict[str, Any]]],
    http_rounds: dict[str, list[dict[str, Any]]],
    thread_rounds: dict[str, list[dict[str, Any]]],
    task_rounds: dict[str, dict[str, list[dict[str, Any]]]],
) -> dict[str, Any]:
    """The run's figures (milliseconds), as docs/performance.json keeps them.

    ``task_rounds`` by command (:data:`TASKS`): ``tasks`` (a server answering at once),
    ``model`` (after 200 ms) and ``stream`` (50 chunks), kept as ``tasks``,
    ``model_tasks`` and ``stream_tasks``.
    """

    def single(results: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
        bare = statistics.median(joined(results["bare"], "latencies"))
        bare_cpu = statistics.median(r["cpu"] / len(r["latencies"]) for r in results["bare"])
        out = {}
        for v in variants:
            lat = joined(results[v], "latencies")
            cpu = statistics.median(r["cpu"] / len(r["latencies"]) for r in results[v])
            out[v] = {
                "median_ms": ms(statistics.median(lat)),
                "p99_ms": ms(pct(lat, 99)),
                "overhead_ms": ms(statistics.median(lat) - bare),
                "cpu_ms": ms(cpu),
                "cpu_overhead_ms": ms(cpu - bare_cpu),
                "n": len(lat),
            }
        return out

    p99_bare = pct(joined(thread_rounds["bare"], "latencies"), 99)
    threads = {}
    for v in variants:
        lat, errors = joined(thread_rounds[v], "latencies"), joined(thread_rounds[v], "errors")
        threads[v] = {
            "median_ms": ms(statistics.median(lat)),
            "p99_ms": ms(pct(lat, 99)),
            "p99_overhead_ms": ms(pct(lat, 99) - p99_bare),
            "errors": len(errors),
            "lock_errors": sum("locked" in e for e in errors),
        }

    def tasks(results: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
        out = {}
        for v in variants:
            ratios = [
                b["wall"] / r["wall"] for b, r in zip(results["bare"], results[v], strict=True)
            ]
            q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
            out[v] = {
                "throughput": statistics.median(ratios),
                "q1": q[0],
                "q3": q[2],
                "calls_per_s": statistics.median(
                    len(r["latencies"]) / r["wall"] for r in results[v]
                ),
                "loop_block_p99_ms": ms(pct(joined(results[v], "blocks"), 99)),
                "errors": len(joined(results[v], "errors")),
                "rounds": len(ratios),
            }
        return out

    return {
        "run": _the_run(),
        "variants": variants,
        "single": single(single_rounds),
        "http": single(http_rounds),
        "threads": threads,
        "tasks": tasks(task_rounds["tasks"]),
        "model_tasks": tasks(task_rounds["model"]),
        "stream_tasks": tasks(task_rounds["stream"]),
    }


if __name__ == "__main__":
    main()
