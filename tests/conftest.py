"""Shared fixtures: a database path, a repository, and a clean audit context."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import httpx
import pytest
import respx

import audited_openai
from audited_openai import (
    AsyncAuditedOpenAI,
    AuditedOpenAI,
    GenerationContext,
    GenerationLogRepository,
    ModelParameters,
    PromptContext,
    _context,
    _rows,
    _writer,
)
from tests import pg_server

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A path for a fresh database file."""
    return tmp_path / "audit.db"


BACKENDS = ["sqlite", "postgresql"]


def postgres_server() -> str:
    """The server the tests create their databases on (tests/pg_server.py): its URL.

    None there skips the test, from this one line for all of them (or fails it, where
    AUDITED_OPENAI_REQUIRE_POSTGRES=1).
    """
    url, said = pg_server.admin_url()
    if url is None:
        skip_postgres(said)
    return url


def skip_postgres(why: str) -> NoReturn:
    """Skip a test that needs PostgreSQL, saying why (fail it where it is required)."""
    if os.environ.get("AUDITED_OPENAI_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL is required here: {why}")
    pytest.skip(f"PostgreSQL tests skipped: {why}")


def pytest_report_header() -> str:
    """Which PostgreSQL server the tests use, or why none: one line at the top."""
    return pg_server.admin_url()[1]


NO_POSTGRES = "Skipped: PostgreSQL tests skipped: "


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Every PostgreSQL skip reported from postgres_server(), where it is decided: the
    summary says it in one line (pytest would name each test's own line)."""
    report = yield
    longrepr = report.longrepr
    if report.skipped and isinstance(longrepr, tuple) and longrepr[2].startswith(NO_POSTGRES):
        report.longrepr = (__file__, postgres_server.__code__.co_firstlineno, longrepr[2])
    return report


@contextlib.contextmanager
def fresh_postgres() -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped afterwards."""
    import psycopg

    server = postgres_server()
    name = "ao_test_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = server.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        _writer.flush_all(timeout=30)
        from audited_openai import _postgres_connect

        for key in [key for key in _postgres_connect._POOLS if key[0] == url]:
            _postgres_connect._POOLS.pop(key)[0].close()  # stores left open by the test
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store for each backend: a SQLite file, or a PostgreSQL database."""
    if request.param == "sqlite":
        yield str(tmp_path / "audit.db")
        return
    with fresh_postgres() as url:
        yield url


@pytest.fixture
def repo(target: str) -> Iterator[GenerationLogRepository]:
    """A repository over a fresh store, for each backend."""
    repository = GenerationLogRepository(target)
    yield repository
    repository.close()


@pytest.fixture
def sqlite_repo(db_path: Path) -> Iterator[GenerationLogRepository]:
    """A repository over a fresh SQLite file (for what only SQLite has)."""
    repository = GenerationLogRepository(db_path)
    yield repository
    repository.close()


DEFINITIES = (
    "CREATE TABLE definities (id BIGINT PRIMARY KEY, begrip TEXT NOT NULL, "
    "definitie TEXT, source_type TEXT)"
)


@pytest.fixture
def app_db(target: str) -> Iterator[Callable[..., Any]]:
    """Make the host app's definities table in the store's database, with given rows;
    its connection (sqlite3, or psycopg in autocommit) deletes as the app would."""
    opened: list[Any] = []

    def make(*definities: tuple[int, str]) -> Any:
        opened.append(host(target, *definities))
        return opened[-1]

    yield make
    for conn in opened:
        conn.close()


def host(target: str | Path, *definities: tuple[int, str]) -> Any:
    """The host app's definities table in the store's database, with these rows; its
    connection (sqlite3, or psycopg in autocommit), to delete through as the app would."""
    conn = host_connection(target)
    marker = "%s" if str(target).startswith("postgresql://") else "?"
    conn.execute(DEFINITIES)
    for row in definities:
        conn.execute(
            f"INSERT INTO definities (id, begrip, definitie, source_type) "
            f"VALUES ({marker}, {marker}, 'd', 'generated')",
            row,
        )
    return conn


def execute(target: str | Path, sql: str, params: tuple[Any, ...] = ()) -> None:
    """Run one statement (``?`` markers) on the store's database, behind the library's
    back, as another program would, and commit it."""
    conn = host_connection(target)
    try:
        if str(target).startswith("postgresql://"):
            sql = sql.replace("?", "%s")
        conn.execute(sql, params)
    finally:
        conn.close()


def fetch(target: str | Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The rows of one query (``?`` markers) on the store's database, as another program
    would read them (nothing of this process flushed first)."""
    conn = host_connection(target)
    try:
        if str(target).startswith("postgresql://"):
            sql = sql.replace("?", "%s")
        return [tuple(row) for row in conn.execute(sql, params).fetchall()]
    finally:
        conn.close()


def host_connection(target: str | Path) -> Any:
    """A connection of the app's own to the store's database, in autocommit."""
    if str(target).startswith("postgresql://"):
        import psycopg

        return psycopg.connect(str(target), autocommit=True)
    return sqlite3.connect(target, isolation_level=None)


def audited_client(
    target: str, router: respx.MockRouter, **options: Any
) -> Iterator[AuditedOpenAI]:
    """An audited client over respx (every chat completion answered), closed after."""
    router.post("/chat/completions").respond(200, json=chat_body())
    with AuditedOpenAI(
        target, api_key=API_KEY, base_url=BASE_URL, http_client=httpx.Client(), **options
    ) as client:
        yield client


def make_context(**overrides: object) -> GenerationContext:
    """A pending context with a realistic prompt; keywords override fields."""
    params = ModelParameters(
        name="gpt-4-turbo-2024-04-09",
        temperature=Decimal("0.7"),
        max_tokens=2000,
        top_p=Decimal("1.0"),
        frequency_penalty=Decimal("0.0"),
        presence_penalty=Decimal("0.0"),
    )
    prompt = PromptContext(
        full_text="# DEFINITIE GENERATIE\n\nGenereer een definitie voor 'verdachte'.",
        model_params=params,
        template_version="2.0",
        template_name="unified_definition_v2",
        modules_used=["base", "context", "examples", "rules"],
    )
    ctx = GenerationContext(prompt=prompt)
    for key, value in overrides.items():
        setattr(ctx, key, value)
    return ctx


# -- the SDK over respx ------------------------------------------------------------

BASE_URL = "https://api.openai.test/v1"
API_KEY = "sk-canary-" + "7f3a9c1e5b" * 3


def chat_body(content: str = "Een verdachte is ...", **overrides: object) -> dict[str, object]:
    """A chat.completion body as the API returns it."""
    body: dict[str, object] = {
        "id": "chatcmpl-AbCdEf123456",
        "object": "chat.completion",
        "created": 1731335025,
        "model": "gpt-4o-2024-08-06",
        "system_fingerprint": "fp_abc123",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 1234,
            "completion_tokens": 567,
            "total_tokens": 1801,
            "prompt_tokens_details": {"cached_tokens": 1024},
            "completion_tokens_details": {"reasoning_tokens": 7},
        },
    }
    body.update(overrides)
    return body


def rows(path: Path | str, *, flush: bool = True) -> list[dict[str, object]]:
    """Every row of generation_logs, through a connection of its own, oldest first.

    This process's queued writes are committed first, as a read through the library
    would see them; ``flush=False``: what is committed now, as another process sees it
    (at the moment a request arrives, that is what proves the row was written ahead).
    """
    if flush:
        _writer.flush_all()
    if str(path).startswith("postgresql://"):
        import psycopg
        from psycopg.rows import dict_row

        from audited_openai._rows import TABLE_COLUMNS

        with psycopg.connect(str(path), row_factory=dict_row) as pg:
            if not pg.execute("SELECT to_regclass('generation_logs')").fetchone()["to_regclass"]:  # type: ignore[index]
                return []
            return pg.execute(  # type: ignore[return-value]
                f"SELECT {', '.join(TABLE_COLUMNS)} FROM generation_logs ORDER BY id"
            ).fetchall()
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        if not conn.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'generation_logs'"
        ).fetchone():
            return []
        return [dict(r) for r in conn.execute("SELECT * FROM generation_logs ORDER BY id")]
    finally:
        conn.close()


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    """A respx router for the test base URL; unmatched requests fail the test."""
    with respx.mock(base_url=BASE_URL, assert_all_called=False) as mock:
        yield mock


@pytest.fixture
def client(db_path: Path, router: respx.MockRouter) -> Iterator[AuditedOpenAI]:
    """An audited sync client over respx, writing to ``db_path``."""
    with AuditedOpenAI(
        db_path, api_key=API_KEY, base_url=BASE_URL, http_client=httpx.Client()
    ) as audited:
        yield audited


def async_client(db_path: Path | object, **kwargs: object) -> AsyncAuditedOpenAI:
    """An audited async client over respx (create it inside the running loop)."""
    return AsyncAuditedOpenAI(
        db_path,
        api_key=API_KEY,
        base_url=BASE_URL,
        http_client=httpx.AsyncClient(),
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture(autouse=True)
def _keep_main_module() -> Iterator[None]:
    """Streamlit's AppTest makes its script ``__main__`` and leaves it so; a process
    spawned later (multiprocessing's "spawn") would run that script instead."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture(autouse=True)
def _reset_audit_context() -> Iterator[None]:
    """Every test starts outside any audit_context."""
    token = _context._SCOPE.set(_context.AuditScope())
    yield
    _context._SCOPE.reset(token)


def child_env() -> dict[str, str]:
    """The environment of a Python child process: it imports this very ``audited_openai``
    (the copy under test, wherever it was imported from, as mutmut's mutants are) and
    the ``tests`` package."""
    package = Path(audited_openai.__file__).resolve().parent.parent
    tests_root = Path(__file__).resolve().parent.parent
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(package), str(tests_root)])}


@pytest.fixture
def unpriced(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows completed as an audited_openai before schema 11 did: with no cost columns
    (a trail :func:`as_schema` takes back to an older schema must not have them)."""
    monkeypatch.setattr(GenerationLogRepository, "_priced", lambda _repo, _ctx: {})


def as_schema(target: str | Path, version: int) -> None:
    """Take a store back to an older schema (14: before the Merkle roots; 13: before retention; 12: before reviews; 11: before actor and session; 10: before cost; 9: the narrow timestamp index; 8: before
    status's table and index; 7: before replays; 6: before the chain), as an older
    audited_openai left it, rows and all."""
    postgres = str(target).startswith("postgresql://")
    steps = _before_merkle() if version < 15 else []
    steps += _before_retention() if version < 14 else []
    steps += _before_reviews(postgres) if version < 13 else []
    steps += _before_actor(postgres) if version < 12 else []
    steps += _before_cost(postgres) if version < 11 else []
    if version >= 10:
        _as_schema_steps(target, steps, old_view=False)
        return
    steps += [
        "DROP INDEX idx_generation_logs_timestamp",
        "CREATE INDEX idx_generation_logs_timestamp ON generation_logs(logged_at)",
        "DELETE FROM audited_openai_migrations WHERE version >= 10",
    ]
    if version < 9:
        steps += _before_status()
    if version < 8:
        steps += _before_replays()
    if version < 7:
        steps += [
            "DROP TABLE generation_log_events",
            "DELETE FROM audited_openai_migrations WHERE version >= 7",
        ]
    _as_schema_steps(target, steps, old_view=not postgres and version < 8)


def _before_merkle() -> list[str]:
    return [
        "DROP TABLE generation_log_merkle",
        "DELETE FROM audited_openai_migrations WHERE version >= 15",
    ]


def _before_retention() -> list[str]:
    return [
        "DROP TABLE generation_log_retention",
        "DROP TABLE generation_log_holds",
        "DROP INDEX idx_generation_reviews_time",
        "DELETE FROM audited_openai_migrations WHERE version >= 14",
    ]


def _before_reviews(postgres: bool) -> list[str]:
    trigger = [] if postgres else ["DROP TRIGGER IF EXISTS generation_reviews_erase_with_definitie"]
    return [
        *trigger,
        "DROP TABLE generation_reviews",
        "DELETE FROM audited_openai_migrations WHERE version >= 13",
    ]


def _before_actor(postgres: bool) -> list[str]:
    # SQLite's erasure trigger blanks them (the library puts it back on open)
    trigger = [] if postgres else ["DROP TRIGGER IF EXISTS generation_logs_erase_with_definitie"]
    return [
        *trigger,
        "DROP INDEX idx_generation_logs_actor",
        "DROP INDEX idx_generation_logs_session",
        *(f"ALTER TABLE generation_logs DROP COLUMN {c}" for c in _rows.WHO_COLUMNS),
        "DELETE FROM audited_openai_migrations WHERE version >= 12",
    ]


def _before_cost(postgres: bool) -> list[str]:
    status = "" if postgres else ", generation_status"
    return [
        "DROP INDEX idx_generation_logs_compare",
        "DROP INDEX idx_generation_logs_usage",
        "CREATE INDEX idx_generation_logs_usage ON generation_logs(substr(logged_at, 1, 10),"
        " tokens_prompt, tokens_completion, tokens_total, logged_at" + status + ")"
        " WHERE generation_status = 'success'",
        *(f"ALTER TABLE generation_logs DROP COLUMN {c}" for c in _rows.COST_COLUMNS),
        "DELETE FROM audited_openai_migrations WHERE version >= 11",
    ]


def _before_status() -> list[str]:
    return [
        "DROP INDEX idx_generation_logs_generated",
        "DROP TABLE generation_log_checks",
        "DELETE FROM audited_openai_migrations WHERE version >= 9",
    ]


def _before_replays() -> list[str]:
    return [
        "DROP VIEW IF EXISTS definities_with_generation",
        "DROP INDEX idx_generation_logs_definitie",
        "ALTER TABLE generation_logs DROP COLUMN replay_of",
        "CREATE INDEX idx_generation_logs_definitie ON generation_logs(definitie_id)",
        "DELETE FROM audited_openai_migrations WHERE version >= 8",
    ]


def _as_schema_steps(target: str | Path, steps: list[str], *, old_view: bool) -> None:
    conn = host_connection(target)
    try:
        for step in steps:
            conn.execute(step)
        if old_view:  # SQLite's view as schema 7 had it, over the host's table if there
            from audited_openai import _schema

            if _schema.has_host_table(conn):
                conn.execute(OLD_VIEW)
    finally:
        conn.close()


OLD_VIEW = """CREATE VIEW definities_with_generation AS
SELECT d.*, gl.id AS generation_log_id, gl.prompt_template_version, gl.model_name,
    gl.tokens_total, gl.duration_ms, gl.generation_status, gl.logged_at AS generated_at
FROM definities d LEFT JOIN generation_logs gl
    ON gl.id = (SELECT max(g2.id) FROM generation_logs g2 WHERE g2.definitie_id = d.id)
WHERE d.source_type = 'generated'"""
