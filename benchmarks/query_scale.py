"""How the query side scales: a realistic trail of 1,000,000 rows, timed.

    python benchmarks/query_scale.py                 # 1,000,000 rows (builds once, ~10 GB)
    python benchmarks/query_scale.py --rows 20000    # quick
    python benchmarks/query_scale.py --db postgresql://postgres@127.0.0.1/query_scale

Prompts are assembled from shared modules as the definitie generator does (base,
context, examples, rules: about 10 KB), over a year of dates, six template versions,
four models and every status. The database is built once and reused (``--rebuild``
to start again). Reports medians of repeated runs (warm cache) and the first run,
and the peak RSS of exporting everything against exporting a tenth.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from audited_openai import GenerationLogRepository, query

if TYPE_CHECKING:
    from collections.abc import Iterator

HERE = Path(__file__).parent
WORDS = [
    "de",
    "het",
    "een",
    "verdachte",
    "getuige",
    "rechter",
    "officier",
    "justitie",
    "strafbaar",
    "feit",
    "wet",
    "artikel",
    "lid",
    "persoon",
    "handeling",
    "bevoegdheid",
    "procedure",
    "beslissing",
    "openbaar",
    "ministerie",
    "rechtbank",
    "hof",
    "dagvaarding",
    "vonnis",
    "hoger",
    "beroep",
    "cassatie",
    "aangifte",
    "proces",
    "verbaal",
    "bewijs",
    "verklaring",
    "opsporing",
    "aanhouding",
    "inverzekeringstelling",
    "voorlopige",
    "hechtenis",
    "schorsing",
    "raadsman",
    "slachtoffer",
    "benadeelde",
    "partij",
    "schadevergoeding",
    "maatregel",
    "straf",
    "taakstraf",
    "boete",
]
TEMPLATES = [("unified_definition", v) for v in ("1.0", "1.1", "2.0")] + [
    ("unified_definition_v2", v) for v in ("2.0", "2.1", "2.2-beta")
]
MODELS = ["gpt-4-turbo-2024-04-09", "gpt-4o-2024-08-06", "gpt-4o-mini", "gpt-4.1"]
STATUSES = ["success"] * 90 + ["failed"] * 6 + ["timeout"] * 2 + ["pending"] * 2
START = datetime(2025, 1, 1, tzinfo=timezone.utc)


def _text(rng: random.Random, size: int) -> str:
    out: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(WORDS)
        out.append(word)
        length += len(word) + 1
    return " ".join(out)


def _modules(rng: random.Random) -> dict[str, list[str]]:
    return {
        "base": [_text(rng, 2000) for _ in range(3)],
        "context": [_text(rng, 1000) for _ in range(20)],
        "examples": [_text(rng, 3000) for _ in range(50)],
        "rules": [_text(rng, 4000) for _ in range(10)],
    }


COLUMNS = (
    "call_id, attempt, endpoint, prompt_template_name, prompt_template_version, "
    "prompt_modules_used, model_name, model_temperature, model_max_tokens, stream, "
    "tokens_prompt, tokens_completion, tokens_total, duration_ms, response_finish_reason, "
    "response_id, http_status, generation_status, error_type, logged_at, updated_at, "
    "prompt_full_text, request_json, response_content, error_message"
)


def build(path: Path, rows: int, seed: int = 151) -> None:
    """Fill a fresh SQLite database with ``rows`` realistic generation logs."""
    GenerationLogRepository(path).close()  # the real schema
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    sql = f"INSERT INTO generation_logs ({COLUMNS}) VALUES ({', '.join('?' * 25)})"
    started = time.perf_counter()
    for done, values in generate(rows, seed):
        conn.execute("BEGIN")
        conn.executemany(sql, values)
        conn.execute("COMMIT")
        rate = done / (time.perf_counter() - started)
        print(f"\rbuilt {done:,}/{rows:,} rows ({rate:,.0f}/s)", end="", file=sys.stderr)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("ANALYZE")
    conn.close()
    print(file=sys.stderr)


def build_postgres(url: str, rows: int, seed: int = 151) -> None:
    """Fill a PostgreSQL database with the same rows, through COPY."""
    import psycopg

    GenerationLogRepository(url).close()  # the real schema
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        for done, values in generate(rows, seed):
            with (
                conn.transaction(),
                conn.cursor().copy(f"COPY generation_logs ({COLUMNS}) FROM STDIN") as copy,
            ):
                for row in values:
                    copy.write_row(row)
            rate = done / (time.perf_counter() - started)
            print(f"\rbuilt {done:,}/{rows:,} rows ({rate:,.0f}/s)", end="", file=sys.stderr)
        conn.execute("VACUUM ANALYZE generation_logs")
    print(file=sys.stderr)


def generate(rows: int, seed: int) -> Iterator[tuple[int, list[tuple[object, ...]]]]:
    """Batches of rows (``COLUMNS`` order), with how many were made so far."""
    rng = random.Random(seed)
    modules = _modules(rng)
    begrippen = [f"begrip{n:05d}" for n in range(5000)]
    batch = 10_000
    for first in range(0, rows, batch):
        values = []
        for n in range(first, min(rows, first + batch)):
            name, version = rng.choice(TEMPLATES)
            status = rng.choice(STATUSES)
            begrip = rng.choice(begrippen)
            parts = [rng.choice(modules[m]) for m in ("base", "context", "examples", "rules")]
            prompt = "\n\n".join(parts) + f"\n\nBegrip: {begrip}"
            moment = START + timedelta(seconds=n * 31_536_000 / rows + rng.random())
            stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
            success = status == "success"
            tokens_prompt = len(prompt) // 4
            tokens_completion = rng.randint(80, 400) if success else None
            values.append(
                (
                    uuid.uuid4().hex,
                    1,
                    "chat.completions",
                    name,
                    version,
                    '["base", "context", "examples", "rules"]',
                    rng.choice(MODELS),
                    0.3,
                    2000,
                    0,
                    tokens_prompt if success else None,
                    tokens_completion,
                    tokens_prompt + tokens_completion if tokens_completion else None,
                    rng.randint(800, 9000) if status != "pending" else None,
                    "stop" if success else None,
                    f"chatcmpl-{n}" if success else None,
                    200 if success else (429 if status == "failed" else None),
                    status,
                    {"failed": "RateLimitError", "timeout": "APITimeoutError"}.get(status),
                    stamp,
                    stamp,
                    prompt,
                    json.dumps(
                        {"model": "gpt-4o", "messages": [{"role": "user", "content": "..."}]}
                    ),
                    f"Een {begrip} is {_text(rng, 300)}" if success else None,
                    "Rate limit reached" if status == "failed" else None,
                )
            )
        yield min(rows, first + batch), values


def timed(fn: object, repeat: int) -> tuple[float, float]:
    """(first run, median of the rest) in milliseconds."""
    times = []
    for _ in range(repeat + 1):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append((time.perf_counter() - t) * 1000)
    return times[0], statistics.median(times[1:])


def export_rss(path: Path | str, fraction: float) -> tuple[int, float]:
    """Export in a child process; return (rows, peak RSS in MiB) of that child."""
    code = (
        "import os, resource, sys\n"
        "from datetime import datetime, timezone\n"
        "from audited_openai import query\n"
        f"since = datetime(2025, 1, 1, tzinfo=timezone.utc).replace(month={12 if fraction < 1 else 1}, day={5 if fraction < 1 else 1})\n"
        "with open(os.devnull, 'w') as out:\n"
        f"    n = query.export({str(path)!r}, 'jsonl', out, since=since)\n"
        "print(n, int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM:')).split()[1]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    rows, rss_kib = result.stdout.split()
    return int(rows), int(rss_kib) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", default=None, help="a SQLite file or a postgresql:// URL")
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    if args.db and args.db.startswith("postgresql://"):
        path: Path | str = args.db
        t = time.perf_counter()
        if args.rebuild or _postgres_rows(args.db) == 0:
            _drop_postgres_table(args.db)
            build_postgres(args.db, args.rows)
            print(f"build: {time.perf_counter() - t:.0f} s", file=sys.stderr)
        engine = "PostgreSQL"
    else:
        path = Path(args.db or HERE / ".data" / f"query_scale_{args.rows}.db")
        path.parent.mkdir(parents=True, exist_ok=True)
        if args.rebuild:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        if not path.exists():
            t = time.perf_counter()
            build(path, args.rows)
            print(f"build: {time.perf_counter() - t:.0f} s", file=sys.stderr)
        engine = f"SQLite {sqlite3.sqlite_version}"
    repo = GenerationLogRepository(path)
    total = repo.store.fetch("SELECT count(*) AS n FROM generation_logs")[0]["n"]
    if isinstance(path, str):
        size = repo.store.fetch("SELECT pg_database_size(current_database()) AS n")[0]["n"]
    else:
        size = sum(
            Path(f"{path}{s}").stat().st_size for s in ("", "-wal") if Path(f"{path}{s}").exists()
        )
    cases = {
        "history, 2 filters, limit 100": lambda: query.history(
            repo, status="failed", template_version="2.1", limit=100
        ),
        "history, 3 filters + since, limit 100": lambda: query.history(
            repo,
            status="success",
            model="gpt-4o-mini",
            template_name="unified_definition_v2",
            since=datetime(2025, 6, 1, tzinfo=timezone.utc),
            limit=100,
        ),
        "search, rare term (one begrip), limit 100": lambda: query.history(
            repo, search="begrip04242", limit=100
        ),
        "search, common word, limit 100": lambda: query.history(
            repo, search="verdachte", limit=100
        ),
        "search + filter, limit 100": lambda: query.history(
            repo, search="begrip00042", status="success", limit=100
        ),
        "stats (every aggregate)": lambda: query.stats(repo),
        "stats --since 30 days": lambda: query.stats(
            repo, since=datetime(2025, 12, 1, tzinfo=timezone.utc)
        ),
    }
    print(f"database: {total:,} rows, {size / 2**30:.1f} GiB, {repo.path}")
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, {engine}")
    print(f"{'query':45} {'first ms':>10} {'median ms':>10}")
    for name, fn in cases.items():
        first, median = timed(fn, args.repeat if "stats" not in name else max(3, args.repeat // 3))
        print(f"{name:45} {first:10.1f} {median:10.1f}")
    rows_small, rss_small = export_rss(path, 0.1)
    rows_all, rss_all = export_rss(path, 1.0)
    print(f"export jsonl, {rows_small:,} rows: peak RSS {rss_small:.0f} MiB")
    print(f"export jsonl, {rows_all:,} rows: peak RSS {rss_all:.0f} MiB")


def _postgres_rows(url: str) -> int:
    """Rows already there (0 for a database without the table)."""
    import psycopg

    with psycopg.connect(url) as conn:
        if not conn.execute("SELECT to_regclass('generation_logs')").fetchone()[0]:  # type: ignore[index]
            return 0
        return int(conn.execute("SELECT count(*) FROM generation_logs").fetchone()[0])  # type: ignore[index]


def _drop_postgres_table(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS generation_logs CASCADE")
        conn.execute("DROP TABLE IF EXISTS audited_openai_migrations")


if __name__ == "__main__":
    main()
