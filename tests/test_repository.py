"""GenerationLogRepository: the spec's methods, round trips, erasure and bad input."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from audited_openai import (
    AuditWriteError,
    ErrorContext,
    GenerationContext,
    GenerationLogRepository,
    InvalidLogError,
    LogNotFoundError,
    ModelParameters,
    PromptContext,
    ResponseMetadata,
    StoreError,
)
from audited_openai._clock import utc_now
from tests.conftest import make_context
from tests.test_schema import DEFINITIES_DDL

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


def _full_response() -> ResponseMetadata:
    return ResponseMetadata(
        tokens_prompt=1234,
        tokens_completion=567,
        tokens_total=1801,
        finish_reason="stop",
        response_id="chatcmpl-AbCdEf123456",
        created_at=1731335025,
        duration_ms=2345,
        tokens_cached=1024,
        tokens_reasoning=0,
        response_model="gpt-4-turbo-2024-04-09",
        system_fingerprint="fp_123",
        content="Een verdachte is ...",
        http_status=200,
        ttft_ms=None,
    )


def _host_db(db_path: Path, *rows: tuple[int, str]) -> sqlite3.Connection:
    conn = sqlite3.connect(db_path)
    conn.execute(DEFINITIES_DDL)
    conn.executemany(
        "INSERT INTO definities (id, begrip, definitie, source_type) "
        "VALUES (?, ?, 'd', 'generated')",
        rows,
    )
    conn.commit()
    return conn


def test_create_pending_log(repo: GenerationLogRepository) -> None:
    """A pending row is created with every prompt field and its id is returned."""
    ctx = make_context(metadata={"feature": "x"}, request_json='{"model":"m"}', stream=True)
    log_id = repo.create_pending_log(ctx)
    assert ctx.id == log_id
    stored = repo.get(log_id)
    assert stored == ctx
    assert stored.status == "pending"


def test_round_trip_every_field_of_a_success(
    repo: GenerationLogRepository, app_db: Callable[..., Any]
) -> None:
    """A context read back equals the one written, every field of it (spec defect 4)."""
    app_db((456, "verdachte"))
    repo.refresh_host_objects()
    ctx = make_context(definitie_id=456, metadata={"ab": "variant-b", "n": [1, 2]}, attempt=2)
    ctx.request_json = '{"messages":[{"role":"user","content":"x"}],"model":"gpt-4"}'
    ctx.endpoint = "responses"
    log_id = repo.create_pending_log(ctx)
    ctx.mark_success(_full_response())
    repo.update_with_response(log_id, ctx)
    assert repo.get(log_id) == ctx
    assert repo.get(log_id).to_dict() == ctx.to_dict()


def test_round_trip_a_failure_with_partial_content(repo: GenerationLogRepository) -> None:
    """A failed row keeps its partial response and its error side by side."""
    ctx = make_context()
    log_id = repo.create_pending_log(ctx)
    ctx.response = ResponseMetadata(content="Een ver", duration_ms=40, http_status=200, ttft_ms=3)
    ctx.mark_failed(ErrorContext("stream abandoned", "StreamAbandoned", None, 200, 40))
    repo.complete(log_id, ctx)
    assert repo.get(log_id) == ctx


def test_update_with_error(repo: GenerationLogRepository) -> None:
    """update_with_error writes 'failed' with the error's type, message and traceback."""
    ctx = make_context()
    log_id = repo.create_pending_log(ctx)
    ctx.mark_failed(ErrorContext("Rate limit", "RateLimitError", "Traceback ...", 429, 12))
    repo.update_with_error(log_id, ctx)
    stored = repo.get(log_id)
    assert stored.status == "failed"
    assert stored.error == ErrorContext("Rate limit", "RateLimitError", "Traceback ...", 429, 12)
    assert stored.response is None


def test_update_with_error_writes_timeout(repo: GenerationLogRepository) -> None:
    """A context marked timeout is stored as 'timeout', not 'failed' (spec defect 7)."""
    ctx = make_context()
    log_id = repo.create_pending_log(ctx)
    ctx.mark_timeout(ErrorContext("Request timed out.", "APITimeoutError"))
    repo.update_with_error(log_id, ctx)
    assert repo.get(log_id).status == "timeout"


def test_update_with_error_forces_failed_for_other_statuses(repo: GenerationLogRepository) -> None:
    """Whatever status the context carries, an error that is not a timeout is 'failed'."""
    ctx = make_context()
    log_id = repo.create_pending_log(ctx)
    ctx.error = ErrorContext("boom", "RuntimeError")
    repo.update_with_error(log_id, ctx)
    assert repo.get(log_id).status == "failed"


def test_link_to_definitie_and_get_by_definitie_id(repo: GenerationLogRepository) -> None:
    """The log of a definitie is its latest row; all rows come back oldest first."""
    first, second = make_context(), make_context()
    id1 = repo.create_pending_log(first)
    id2 = repo.create_pending_log(second)
    assert repo.get_by_definitie_id(7) is None
    repo.link_to_definitie(id1, 7)
    repo.link_to_definitie(id2, 7)
    latest = repo.get_by_definitie_id(7)
    assert latest is not None
    assert latest.id == id2
    assert [c.id for c in repo.get_all_for_definitie(7)] == [id1, id2]


def test_link_refuses_a_definitie_that_does_not_exist(
    repo: GenerationLogRepository, app_db: Callable[..., Any]
) -> None:
    """With a definities table present, linking to a missing definitie is refused."""
    app_db((1, "verdachte"))
    repo.refresh_host_objects()
    log_id = repo.create_pending_log(make_context())
    with pytest.raises(InvalidLogError, match="cannot link log"):
        repo.link_to_definitie(log_id, 999)
    repo.link_to_definitie(log_id, 1)
    assert repo.get(log_id).definitie_id == 1


def test_pending_log_with_missing_definitie_is_refused(
    repo: GenerationLogRepository, app_db: Callable[..., Any]
) -> None:
    """Inserting a row that names a missing definitie is refused, nothing written."""
    app_db((1, "verdachte"))
    repo.refresh_host_objects()
    with pytest.raises(InvalidLogError, match="refused"):
        repo.create_pending_log(make_context(definitie_id=2))
    assert repo.get_prompt_history() == []


def test_get_prompt_history_filters(repo: GenerationLogRepository) -> None:
    """Each filter narrows the history; results are newest first and limited."""
    base = datetime(2025, 11, 11, 12, 0, tzinfo=timezone.utc)
    ids = []
    for i, (version, status, model) in enumerate(
        [("2.0", "success", "gpt-4"), ("2.1", "failed", "gpt-4"), ("2.1", "success", "gpt-4o")]
    ):
        ctx = make_context(logged_at=base + timedelta(days=i), updated_at=base + timedelta(days=i))
        ctx.prompt.template_version = version
        ctx.prompt.model_params.name = model
        ids.append(repo.create_pending_log(ctx))
        if status == "success":
            ctx.mark_success(ResponseMetadata(tokens_total=10))
            repo.update_with_response(ids[-1], ctx)
        else:
            ctx.mark_failed(ErrorContext("x", "APIError"))
            repo.update_with_error(ids[-1], ctx)

    def history(**kwargs: object) -> list[int | None]:
        return [c.id for c in repo.get_prompt_history(**kwargs)]  # type: ignore[arg-type]

    assert history() == [ids[2], ids[1], ids[0]]
    assert history(template_version="2.1") == [ids[2], ids[1]]
    assert history(status="failed") == [ids[1]]
    assert history(model="gpt-4o") == [ids[2]]
    assert history(template_name="unified_definition_v2", limit=1) == [ids[2]]
    assert history(from_date=base + timedelta(hours=1)) == [ids[2], ids[1]]
    assert history(to_date=base + timedelta(hours=1)) == [ids[0]]
    assert history(endpoint="responses") == []
    first = repo.get(ids[0])
    assert history(call_id=first.call_id) == [ids[0]]
    repo.link_to_definitie(ids[0], 3)
    assert history(definitie_id=3) == [ids[0]]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"status": "done"}, "unknown status"),
        ({"limit": -1}, "limit"),
        ({"limit": "10"}, "limit"),
        ({"from_date": "2025-01-01"}, "must be a datetime"),
        ({"to_date": datetime(2025, 1, 1)}, "timezone-aware"),  # noqa: DTZ001 - the bad input
        ({"definitie_id": "456"}, "definitie_id must be an integer"),
    ],
)
def test_get_prompt_history_refuses_bad_filters(
    repo: GenerationLogRepository, kwargs: dict[str, object], message: str
) -> None:
    """Bad filter values get a clear error instead of a silent empty result."""
    with pytest.raises(InvalidLogError, match=message):
        repo.get_prompt_history(**kwargs)  # type: ignore[arg-type]


def _with_prompt(**changes: object) -> GenerationContext:
    ctx = make_context()
    for key, value in changes.items():
        setattr(ctx.prompt.model_params, key, value)
    return ctx


@pytest.mark.parametrize(
    ("ctx", "message"),
    [
        (make_context(status="done"), "unknown status"),
        (make_context(status="success"), "must be 'pending'"),
        (_with_prompt(temperature=Decimal("2.5")), "model_temperature must be between 0 and 2"),
        (_with_prompt(temperature=Decimal("-0.1")), "model_temperature"),
        (_with_prompt(temperature="hot"), "must be a number"),
        (_with_prompt(top_p=Decimal("1.5")), "model_top_p"),
        (_with_prompt(frequency_penalty=Decimal(3)), "model_frequency_penalty"),
        (_with_prompt(presence_penalty=Decimal(-3)), "model_presence_penalty"),
        (_with_prompt(max_tokens=-5), "model_max_tokens must be a non-negative integer"),
        (_with_prompt(name=""), "model_params.name"),
        (make_context(definitie_id="456"), "definitie_id must be an integer"),
        (make_context(definitie_id=True), "definitie_id must be an integer"),
        (make_context(attempt=0), "attempt"),
        (make_context(metadata=["not", "a", "dict"]), "metadata must be a dict"),
        (make_context(prompt="just text"), "PromptContext"),
    ],
)
def test_bad_pending_contexts_write_nothing(
    repo: GenerationLogRepository, ctx: GenerationContext, message: str
) -> None:
    """Bad input to create_pending_log gets a clear error and writes nothing."""
    with pytest.raises(InvalidLogError, match=message):
        repo.create_pending_log(ctx)
    assert repo.get_prompt_history() == []


def test_bad_prompt_text_and_modules(repo: GenerationLogRepository) -> None:
    """A prompt that is not text, or modules that are not strings, are refused."""
    ctx = make_context()
    ctx.prompt.full_text = b"bytes"  # type: ignore[assignment]
    with pytest.raises(InvalidLogError, match="full_text"):
        repo.create_pending_log(ctx)
    ctx = make_context()
    ctx.prompt.modules_used = ["base", 3]  # type: ignore[list-item]
    with pytest.raises(InvalidLogError, match="modules_used"):
        repo.create_pending_log(ctx)


def test_circular_metadata_is_refused(repo: GenerationLogRepository) -> None:
    """Metadata that cannot become JSON gets a clear error."""
    loop: dict[str, object] = {}
    loop["self"] = loop
    with pytest.raises(InvalidLogError, match="not JSON-serialisable"):
        repo.create_pending_log(make_context(metadata=loop))


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (ResponseMetadata(tokens_prompt=-1), "tokens_prompt must be a non-negative"),
        (ResponseMetadata(tokens_completion=-1), "tokens_completion"),
        (ResponseMetadata(duration_ms=-1), "duration_ms"),
        (ResponseMetadata(http_status=42), "http_status"),
    ],
)
def test_bad_responses_write_nothing(
    repo: GenerationLogRepository, response: ResponseMetadata, message: str
) -> None:
    """Negative token counts and impossible statuses are refused; the row stays pending."""
    ctx = make_context()
    log_id = repo.create_pending_log(ctx)
    ctx.mark_success(response)
    with pytest.raises(InvalidLogError, match=message):
        repo.update_with_response(log_id, ctx)
    assert repo.get(log_id).status == "pending"


def test_completion_refuses_inconsistent_or_missing_parts(repo: GenerationLogRepository) -> None:
    """Completing without a response/error, as pending, or with disagreeing parts fails."""
    ctx = make_context()
    log_id = repo.create_pending_log(ctx)
    with pytest.raises(InvalidLogError, match="response is required"):
        repo.update_with_response(log_id, ctx)
    with pytest.raises(InvalidLogError, match="error is required"):
        repo.update_with_error(log_id, ctx)
    with pytest.raises(InvalidLogError, match="cannot be 'pending'"):
        repo.complete(log_id, ctx)
    ctx.response = ResponseMetadata(duration_ms=5)
    ctx.mark_failed(ErrorContext("x", "E", duration_ms=6))
    with pytest.raises(InvalidLogError, match="disagree on duration_ms"):
        repo.complete(log_id, ctx)
    assert repo.get(log_id).status == "pending"


@pytest.mark.parametrize("bad_id", ["1", 1.0, None, True])
def test_bad_log_ids(repo: GenerationLogRepository, bad_id: object) -> None:
    """A log id that is not an integer is refused."""
    with pytest.raises(InvalidLogError, match="log id must be an integer"):
        repo.get(bad_id)  # type: ignore[arg-type]


def test_unknown_log_ids(repo: GenerationLogRepository) -> None:
    """Updating, linking or reading an unknown id raises LogNotFoundError."""
    ctx = make_context()
    ctx.mark_success(ResponseMetadata())
    with pytest.raises(LogNotFoundError, match="no generation log with id 99"):
        repo.update_with_response(99, ctx)
    with pytest.raises(LogNotFoundError):
        repo.link_to_definitie(99, 1)
    with pytest.raises(LogNotFoundError):
        repo.get(99)
    with pytest.raises(InvalidLogError, match="definitie_id is required"):
        repo.link_to_definitie(99, None)  # type: ignore[arg-type]


def test_complete_only_pending_leaves_completed_rows(repo: GenerationLogRepository) -> None:
    """With only_pending, a row that is already complete is not overwritten."""
    ctx = make_context()
    log_id = repo.create_pending_log(ctx)
    ctx.mark_success(ResponseMetadata(content="first"))
    assert repo.complete(log_id, ctx, only_pending=True) is True
    ctx.mark_success(ResponseMetadata(content="second"))
    assert repo.complete(log_id, ctx, only_pending=True) is False
    stored = repo.get(log_id)
    assert stored.response is not None
    assert stored.response.content == "first"


def test_insert_log_imports_a_completed_row(repo: GenerationLogRepository) -> None:
    """insert_log writes a row in whatever state the context already has."""
    ctx = make_context()
    ctx.mark_success(_full_response())
    log_id = repo.insert_log(ctx)
    assert repo.get(log_id) == ctx


def test_erase_with_foreign_keys_off(sqlite_repo: GenerationLogRepository, db_path: Path) -> None:
    """Deleting a definitie from a connection without foreign_keys deletes its logs."""
    host = _host_db(db_path, (1, "verdachte"), (2, "getuige"))
    sqlite_repo.refresh_host_objects()
    keep = sqlite_repo.create_pending_log(make_context(definitie_id=2))
    for _ in range(2):
        sqlite_repo.create_pending_log(make_context(definitie_id=1))
    assert host.execute("PRAGMA foreign_keys").fetchone() == (0,)
    host.execute("DELETE FROM definities WHERE id = 1")
    host.commit()
    assert sqlite_repo.get_all_for_definitie(1) == []
    assert [c.id for c in sqlite_repo.get_all_for_definitie(2)] == [keep]


def test_erase_definitie_removes_the_text_from_the_files(
    sqlite_repo: GenerationLogRepository, db_path: Path
) -> None:
    """erase_definitie deletes the rows and leaves no trace of their text on disk: not the
    text, and not the full-text index's term for it (lowercase, one token, stored without
    the prefix it shares with the term before it, so only its tail is looked for)."""
    canary = "zq" + os.urandom(8).hex()
    ctx = make_context(definitie_id=5)
    ctx.prompt.full_text = f"prompt met {canary} erin " * 50
    log_id = sqlite_repo.create_pending_log(ctx)
    ctx.mark_success(ResponseMetadata(content=f"antwoord {canary}"))
    sqlite_repo.update_with_response(log_id, ctx)  # completed, so also in the search index
    sqlite_repo.create_pending_log(make_context(definitie_id=6))
    with sqlite_repo.store.reading() as conn:
        hits = conn.execute(
            "SELECT count(*) FROM generation_logs_fts WHERE generation_logs_fts MATCH ?",
            (f'"{canary}"',),
        ).fetchone()
    assert hits == (1,)
    assert sqlite_repo.erase_definitie(5) == 1
    assert sqlite_repo.erase_definitie(5) == 0
    assert sqlite_repo.get_all_for_definitie(5) == []
    for suffix in ("", "-wal"):
        path = db_path.with_name(db_path.name + suffix)
        if path.exists():
            assert canary[2:].encode() not in path.read_bytes()


def test_views_return_generated_definities(
    repo: GenerationLogRepository, app_db: Callable[..., Any]
) -> None:
    """The spec's views show definities with their latest log, and failed generations."""
    app = app_db((1, "verdachte"), (2, "getuige"))
    repo.refresh_host_objects()
    old = make_context(definitie_id=1)
    repo.create_pending_log(old)
    new = make_context(definitie_id=1)
    new_id = repo.create_pending_log(new)
    new.mark_success(ResponseMetadata(tokens_total=99, duration_ms=5))
    repo.update_with_response(new_id, new)
    failed = make_context()
    failed_id = repo.create_pending_log(failed)
    failed.mark_failed(ErrorContext("Rate limit", "RateLimitError"))
    repo.update_with_error(failed_id, failed)
    rows = app.execute(
        "SELECT id, generation_log_id, tokens_total, generation_status "
        "FROM definities_with_generation ORDER BY id"
    ).fetchall()
    assert rows == [(1, new_id, 99, "success"), (2, None, None, None)]
    failures = app.execute("SELECT id, begrip, error_type FROM failed_generations").fetchall()
    assert failures == [(failed_id, None, "RateLimitError")]


def test_repository_from_an_open_connection(db_path: Path) -> None:
    """An open connection's file is reused without touching its transactions."""
    host = sqlite3.connect(db_path)
    host.execute("CREATE TABLE other (x)")
    repo = GenerationLogRepository(host)
    log_id = repo.create_pending_log(make_context())
    assert host.isolation_level == ""
    assert host.row_factory is None
    assert host.execute("SELECT id FROM generation_logs").fetchall() == [(log_id,)]
    assert repo.path == str(db_path)


def test_repository_on_an_in_memory_connection() -> None:
    """An in-memory connection is used as it is."""
    conn = sqlite3.connect(":memory:")
    conn.execute("SELECT 1")
    repo = GenerationLogRepository(conn)
    log_id = repo.create_pending_log(make_context())
    assert repo.get(log_id).status == "pending"
    assert repo.path == ":memory:"
    ctx = repo.get(log_id)
    ctx.mark_success(ResponseMetadata(tokens_total=1))
    repo.update_with_response(log_id, ctx)
    assert conn.execute("SELECT generation_status FROM generation_logs").fetchone() == ("success",)


def test_many_threads_write_at_once(repo: GenerationLogRepository) -> None:
    """Sixteen threads writing and completing rows at once lose nothing."""
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(25):
                ctx = make_context()
                log_id = repo.create_pending_log(ctx)
                ctx.mark_success(ResponseMetadata(tokens_total=1))
                repo.update_with_response(log_id, ctx)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    rows = repo.get_prompt_history(limit=1000)
    assert len(rows) == 400
    assert {row.status for row in rows} == {"success"}


def test_forked_child_opens_its_own_connection(sqlite_repo: GenerationLogRepository) -> None:
    """After fork the child never reuses the parent's connection."""
    sqlite_repo.create_pending_log(make_context())
    with sqlite_repo.store.reading() as conn:
        parent_conn = conn
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child, reported by exit code
        try:
            with sqlite_repo.store.reading() as child_conn:
                ok = child_conn is not parent_conn
            sqlite_repo.create_pending_log(make_context())
            os._exit(0 if ok else 3)
        except BaseException:
            os._exit(4)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(sqlite_repo.get_prompt_history()) == 2


def test_a_forked_child_finishes_host_erasures_too(
    sqlite_repo: GenerationLogRepository, db_path: Path
) -> None:
    """The parent's writer thread does not survive fork(): the child starts its own."""
    side = db_path.with_name("side.db")
    _host_db(side, (1, "verdachte"))
    assert GenerationLogRepository(side).refresh_host_objects()  # the parent's writer watches it
    canary = _canary_log(
        sqlite_repo, 1
    )  # no definities table here yet: the parent never watches this one
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child, reported by exit code
        try:
            _host_db(db_path, (1, "verdachte")).close()
            child = GenerationLogRepository(db_path)
            child.refresh_host_objects()
            other = sqlite3.connect(db_path)
            other.execute("DELETE FROM definities WHERE id = 1")
            other.commit()
            other.close()
            os._exit(0 if _gone_from_disk(db_path, canary) else 3)
        except BaseException:
            os._exit(4)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_read_only_file_raises_audit_write_error(db_path: Path) -> None:
    """A database that cannot be written gives AuditWriteError with the cause."""
    GenerationLogRepository(db_path).create_pending_log(make_context())
    repo = GenerationLogRepository(f"file:{db_path}?mode=ro")
    assert len(repo.get_prompt_history()) == 1
    with pytest.raises(AuditWriteError, match="could not write the pending log") as info:
        repo.create_pending_log(make_context())
    assert isinstance(info.value.__cause__, sqlite3.Error)


def _synchronous_of_each_write(repo: GenerationLogRepository) -> dict[str, int]:
    """The synchronous level (2 FULL, 1 NORMAL) of the connection that committed a pending
    row (INSERT), completed it (UPDATE), linked it, and reconciled another."""
    found: dict[str, int] = {}
    doing = ["INSERT"]

    def watch(conn: sqlite3.Connection) -> None:
        def trace(statement: str) -> None:
            if statement.startswith(("INSERT INTO generation_logs", "UPDATE generation_logs")):
                level = conn.execute("PRAGMA synchronous").fetchone()[0]
                found.setdefault(doing[0], level)

        conn.set_trace_callback(trace)

    repo.store.writer().submit(watch).result()
    ctx = make_context()
    log_id = repo.create_pending_log(ctx)
    ctx.mark_success(ResponseMetadata(content="ok"))
    doing[0] = "UPDATE"
    repo.update_with_response(log_id, ctx)
    doing[0] = "link"
    repo.link_to_definitie(log_id, 3)
    repo.create_pending_log(make_context(logged_at=utc_now() - timedelta(hours=1)))
    doing[0] = "reconcile"
    assert repo.reconcile(timedelta(minutes=1)) == 1
    return found


def test_durability_option(db_path: Path) -> None:
    """'balanced' commits the pending row with synchronous=FULL and the completion and the
    link with NORMAL; 'full' commits them all with FULL; a reconcile (a verdict on other
    processes' rows) is FULL under both; bad values are refused."""
    balanced = GenerationLogRepository(db_path)
    assert _synchronous_of_each_write(balanced) == {
        "INSERT": 2,
        "UPDATE": 1,
        "link": 1,
        "reconcile": 2,
    }
    full = GenerationLogRepository(db_path.with_name("full.db"), durability="full")
    assert _synchronous_of_each_write(full) == {"INSERT": 2, "UPDATE": 2, "link": 2, "reconcile": 2}
    with pytest.raises(ValueError, match="durability"):
        GenerationLogRepository(db_path, durability="fast")  # type: ignore[arg-type]


def test_to_dict_has_the_spec_shape() -> None:
    """to_dict works for a pending context (spec defect 5) and uses the one UTC format."""
    ctx = GenerationContext(prompt=PromptContext("p", ModelParameters("gpt-4")))
    data = ctx.to_dict()
    assert data["response"] is None
    assert data["error"] is None
    assert data["prompt"]["model_params"]["temperature"] is None
    assert data["logged_at"].endswith("Z")


def test_reconcile_times_out_only_stale_pending_rows(repo: GenerationLogRepository) -> None:
    """Rows pending longer than the cut-off become timeout/abandoned; nothing else changes."""
    old = utc_now() - timedelta(hours=1)
    stale = make_context(logged_at=old, updated_at=old)
    stale_id = repo.create_pending_log(stale)
    fresh_id = repo.create_pending_log(make_context())
    done = make_context(logged_at=old, updated_at=old)
    done_id = repo.create_pending_log(done)
    done.mark_success(ResponseMetadata(tokens_total=5))
    repo.update_with_response(done_id, done)
    assert repo.reconcile(timedelta(minutes=15)) == 1
    reconciled = repo.get(stale_id)
    assert reconciled.status == "timeout"
    assert reconciled.error is not None
    assert reconciled.error.error_type == "abandoned"
    assert repo.get(fresh_id).status == "pending"
    assert repo.get(done_id) == done
    assert repo.reconcile(timedelta(minutes=15)) == 0
    with pytest.raises(InvalidLogError, match="positive timedelta"):
        repo.reconcile(timedelta(0))


def _canary_log(repo: GenerationLogRepository, definitie_id: int) -> str:
    """A completed log (so also in the search index) whose texts hold a canary."""
    canary = "kanarie" + os.urandom(8).hex()  # lower case: verbatim in the index too
    ctx = make_context(definitie_id=definitie_id)
    ctx.prompt.full_text = f"prompt met {canary} erin " * 50
    ctx.request_json = json.dumps({"messages": [{"content": canary}]})
    log_id = repo.create_pending_log(ctx)
    ctx.mark_success(ResponseMetadata(content=f"antwoord {canary}"))
    repo.update_with_response(log_id, ctx)
    return canary


def _on_disk(db_path: Path, canary: str) -> bool:
    return any(
        canary.encode() in path.read_bytes()
        for path in (db_path, db_path.with_name(db_path.name + "-wal"))
        if path.exists()
    )


def _gone_from_disk(db_path: Path, canary: str, within: float = 15) -> bool:
    """Wait up to ``within`` seconds for the canary to leave both files."""
    deadline = time.monotonic() + within
    while _on_disk(db_path, canary):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.mark.parametrize("checkpointed", [False, True], ids=["in the WAL", "in the file"])
def test_host_delete_leaves_no_text_once_its_erasure_is_finished(
    sqlite_repo: GenerationLogRepository, db_path: Path, checkpointed: bool
) -> None:
    """The host's own DELETE blanks and deletes at once; finishing removes every trace."""
    host = _host_db(db_path, (1, "verdachte"), (2, "getuige"))
    sqlite_repo.refresh_host_objects()
    canary = _canary_log(sqlite_repo, 1)
    other = _canary_log(sqlite_repo, 2)
    if checkpointed:
        sqlite_repo.store.checkpoint()
    host.execute("DELETE FROM definities WHERE id = 1")
    host.commit()
    assert sqlite_repo.get_all_for_definitie(1) == []
    assert sqlite_repo.finish_erasures() == [1]
    assert sqlite_repo.finish_erasures() == []
    assert not _on_disk(db_path, canary)
    assert _on_disk(db_path, other), "the other definitie's logs are untouched"
    with sqlite_repo.store.reading() as conn:
        hits = conn.execute(
            "SELECT rowid FROM generation_logs_fts WHERE generation_logs_fts MATCH ?", (other,)
        ).fetchall()
        assert hits == [(sqlite_repo.get_all_for_definitie(2)[0].id,)]
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        conn.execute(
            "INSERT INTO generation_logs_fts (generation_logs_fts) VALUES ('integrity-check')"
        )


def test_the_writer_finishes_host_erasures_by_itself(
    sqlite_repo: GenerationLogRepository, db_path: Path
) -> None:
    """Nobody calls anything: within a few seconds the text is gone from both files."""
    host = _host_db(db_path, (1, "verdachte"))
    sqlite_repo.refresh_host_objects()
    canary = _canary_log(sqlite_repo, 1)
    host.execute("DELETE FROM definities WHERE id = 1")
    host.commit()
    host.close()
    assert _gone_from_disk(db_path, canary)

    def requests() -> tuple[int]:
        with sqlite_repo.store.reading() as conn:
            return conn.execute("SELECT count(*) FROM generation_log_erasures").fetchone()

    # The request is deleted just after the WAL is truncated: wait for that too.
    deadline = time.monotonic() + 15
    while requests() != (0,) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert requests() == (0,)


def test_an_old_erase_trigger_is_replaced(
    sqlite_repo: GenerationLogRepository, db_path: Path
) -> None:
    """A file made by an earlier version gets the blanking trigger and the request table."""
    host = _host_db(db_path, (1, "verdachte"))
    sqlite_repo.refresh_host_objects()
    host.executescript(
        "DROP TABLE generation_log_erasures;"
        "DROP TRIGGER generation_logs_erase_with_definitie;"
        "CREATE TRIGGER generation_logs_erase_with_definitie AFTER DELETE ON definities "
        "FOR EACH ROW BEGIN DELETE FROM generation_logs WHERE definitie_id = OLD.id; END;"
    )
    assert sqlite_repo.refresh_host_objects()
    (sql,) = host.execute(
        "SELECT sql FROM sqlite_master WHERE name = 'generation_logs_erase_with_definitie'"
    ).fetchone()
    assert "generation_log_erasures" in sql


def test_scrub_after_rows_were_deleted_with_plain_sql(
    sqlite_repo: GenerationLogRepository, db_path: Path
) -> None:
    """A DELETE by another connection leaves bytes behind; scrub removes them."""
    canary = _canary_log(sqlite_repo, 1)
    other = sqlite3.connect(db_path)
    other.execute("DELETE FROM generation_logs")
    other.commit()
    other.close()
    assert _on_disk(db_path, canary), "without a scrub the text is still in the files"
    sqlite_repo.scrub()
    assert not _on_disk(db_path, canary)


def test_a_store_that_cannot_be_used_fails_when_opened(tmp_path: Path) -> None:
    """Opening creates and migrates the store at once: a directory, a missing folder or a
    read-only place fails there, with the path in one clear line, not at the first call."""
    with pytest.raises(StoreError, match="is a directory"):
        GenerationLogRepository(tmp_path)
    with pytest.raises(StoreError, match=r"cannot use the audit database .*missing"):
        GenerationLogRepository(tmp_path / "missing" / "audit.db")
    fresh = tmp_path / "fresh.db"
    GenerationLogRepository(fresh)
    assert fresh.exists()
    assert sqlite3.connect(fresh).execute("SELECT count(*) FROM generation_logs").fetchone() == (0,)
    place = tmp_path / "ro"
    place.mkdir()
    if subprocess.run(["mount", "--bind", str(place), str(place)], check=False).returncode:
        pytest.skip("cannot make a read-only mount here (needs root)")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(place)], check=True)
        with pytest.raises(StoreError, match="Read-only file system"):
            GenerationLogRepository(place / "audit.db")
    finally:
        subprocess.run(["umount", "--lazy", str(place)], check=True)


def test_bad_arguments_to_a_repository_are_refused() -> None:
    """A path must be a path; the options must be what they say."""
    with pytest.raises(TypeError, match="must be a path"):
        GenerationLogRepository(123)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="busy_timeout_ms"):
        GenerationLogRepository(":memory:", busy_timeout_ms="5")  # type: ignore[arg-type]


def test_a_completion_in_the_same_millisecond_keeps_its_time(
    repo: GenerationLogRepository,
) -> None:
    """updated_at is what the completion wrote, even when it equals the pending row's
    (the trigger touches only updates that change neither it nor the status); a link,
    which sets neither, is still touched."""
    moment = datetime(2025, 11, 11, 9, 0, 0, 123000, tzinfo=timezone.utc)
    ctx = make_context(logged_at=moment, updated_at=moment)
    log_id = repo.create_pending_log(ctx)
    ctx.mark_success(ResponseMetadata(content="ok"))
    ctx.updated_at = moment  # the same millisecond
    repo.update_with_response(log_id, ctx)
    assert repo.get(log_id).updated_at == moment
    repo.link_to_definitie(log_id, 7)
    assert repo.get(log_id).updated_at > moment
