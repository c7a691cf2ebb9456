"""The writer: one thread per database and process, group commit, failures kept apart, drained
at exit."""

from __future__ import annotations

import functools
import sqlite3
import subprocess
import sys
import textwrap
import threading
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from audited_openai import (
    AuditWriteError,
    GenerationLogRepository,
    InvalidLogError,
    ResponseMetadata,
)
from audited_openai._writer import Job, Writer, settle
from tests.conftest import child_env, fresh_postgres, make_context, rows

if TYPE_CHECKING:
    from collections.abc import Iterator
    from concurrent.futures import Future


def _hold(repo: GenerationLogRepository) -> tuple[threading.Event, Future[object]]:
    """Keep the writer busy until the event is set: writes handed over meanwhile queue up."""
    gate, started = threading.Event(), threading.Event()

    def wait(_conn: sqlite3.Connection) -> None:
        started.set()
        gate.wait(60)  # set by the test at once; the bound only ends a failed test

    busy = repo.store.writer().submit(wait)
    assert started.wait(5)
    return gate, busy


def _transactions(repo: GenerationLogRepository) -> list[str]:
    """Every statement the writer's connections run from now on."""
    statements: list[str] = []
    for durable in (True, False):
        repo.store.writer().submit(
            lambda conn: conn.set_trace_callback(statements.append), durable=durable
        ).result()
    return statements


@pytest.fixture
def repo(sqlite_repo: GenerationLogRepository) -> GenerationLogRepository:
    """These tests are about SQLite's schema and writer: only the SQLite store."""
    return sqlite_repo


def test_writes_queued_meanwhile_commit_in_one_transaction(
    sqlite_repo: GenerationLogRepository,
) -> None:
    """Pending rows handed over while a transaction runs share the next one (one sync),
    and each caller gets its own row's id."""
    statements = _transactions(sqlite_repo)
    gate, _ = _hold(sqlite_repo)
    statements.clear()  # the held transaction began already
    writes = [sqlite_repo.submit_pending_log(make_context()) for _ in range(20)]
    gate.set()
    ids = [write.result(60) for write in writes]
    assert ids == sorted(set(ids))
    assert [row["id"] for row in rows(sqlite_repo.path)] == ids
    begins = [s for s in statements if s == "BEGIN IMMEDIATE"]
    assert len(begins) == 1, "one transaction for all twenty rows (a flush takes none)"


def test_completions_queued_meanwhile_commit_in_one_relaxed_transaction(
    sqlite_repo: GenerationLogRepository,
) -> None:
    """Completions alone (no pending row among them) share one transaction, at the relaxed
    level of "balanced": no empty durable transaction, no switch to FULL, before it."""
    contexts = [make_context() for _ in range(5)]
    ids = [sqlite_repo.create_pending_log(ctx) for ctx in contexts]
    statements = _transactions(sqlite_repo)
    gate, _ = _hold(sqlite_repo)
    statements.clear()  # the held transaction began already
    for ctx in contexts:
        ctx.mark_success(ResponseMetadata(content="ok"))
    writes = [sqlite_repo.submit_complete(i, ctx) for i, ctx in zip(ids, contexts, strict=True)]
    gate.set()
    assert [write.result(60) for write in writes] == [True] * 5
    assert [s for s in statements if s == "BEGIN IMMEDIATE"] == ["BEGIN IMMEDIATE"]
    assert not [s for s in statements if "synchronous" in s.lower()], statements
    assert {row["generation_status"] for row in rows(sqlite_repo.path)} == {"success"}


def test_the_writer_thread_is_named_after_its_store(
    sqlite_repo: GenerationLogRepository, db_path: Path
) -> None:
    """A thread dump names the writer and its file; the thread never holds up exit."""
    sqlite_repo.create_pending_log(make_context())
    named = f"audited_openai-writer {db_path}"
    (thread,) = [t for t in threading.enumerate() if t.name == named]
    assert thread.daemon, "a writer still running at exit must not keep the process alive"


def test_a_failing_write_fails_alone(sqlite_repo: GenerationLogRepository) -> None:
    """A row the database refuses fails its own caller; the batch's others commit."""
    sqlite3.connect(sqlite_repo.path).execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON generation_logs WHEN NEW.model_name = 'nee' "
        "BEGIN SELECT RAISE(ABORT, 'refused'); END"
    ).connection.close()
    gate, _ = _hold(sqlite_repo)
    good = sqlite_repo.submit_pending_log(make_context())
    bad_context = make_context()
    bad_context.prompt.model_params.name = "nee"
    bad = sqlite_repo.submit_pending_log(bad_context)
    also_good = sqlite_repo.submit_pending_log(make_context())
    gate.set()
    assert good.result(5) < also_good.result(5)
    with pytest.raises(InvalidLogError, match="refused"):
        bad.result(5)
    assert len(rows(sqlite_repo.path)) == 2


def test_a_lock_held_past_the_busy_timeout_fails_the_batch_then_the_writer_goes_on(
    db_path: Path,
) -> None:
    """If BEGIN cannot get the lock, every write of the batch gets AuditWriteError with the
    cause; once the lock is free, the next writes commit."""
    repo = GenerationLogRepository(db_path, busy_timeout_ms=50)
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    with pytest.raises(AuditWriteError, match="locked") as info:
        repo.create_pending_log(make_context())
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    holder.execute("ROLLBACK")
    holder.close()
    assert repo.create_pending_log(make_context()) == 1


def test_a_write_once_handed_over_is_never_dropped(sqlite_repo: GenerationLogRepository) -> None:
    """Futures are running from the start: cancelling one does not stop its write."""
    gate, _ = _hold(sqlite_repo)
    write = sqlite_repo.submit_pending_log(make_context())
    assert write.cancel() is False
    gate.set()
    assert write.result(5) == 1


def test_reads_see_this_processes_writes_through_any_store_of_the_file(
    sqlite_repo: GenerationLogRepository, db_path: Path
) -> None:
    """A read through another repository of the same file (spelt differently) waits for
    the writes queued here."""
    gate, _ = _hold(sqlite_repo)
    write = sqlite_repo.submit_pending_log(make_context())
    other = GenerationLogRepository(f"file:{db_path}?mode=ro")
    threading.Timer(0.05, gate.set).start()
    assert len(other.get_prompt_history()) == 1
    assert write.done()


def test_writes_to_a_callers_in_memory_connection_run_at_once() -> None:
    """No disk to wait for, and perhaps one thread's connection: written here and now."""
    repo = GenerationLogRepository(sqlite3.connect(":memory:"))
    write = repo.submit_pending_log(make_context())
    assert write.done()
    assert write.result() == 1
    assert repo.get(1).status == "pending"


def test_queued_writes_are_committed_at_exit(db_path: Path) -> None:
    """A process that ends right after queueing (no flush, no close) loses nothing."""
    GenerationLogRepository(db_path).flush()
    script = textwrap.dedent(
        f"""
        from audited_openai import GenerationLogRepository, ResponseMetadata
        from tests.conftest import make_context
        repo = GenerationLogRepository({str(db_path)!r})
        for _ in range(50):
            ctx = make_context()
            log_id = repo.create_pending_log(ctx)
            ctx.mark_success(ResponseMetadata(content="ok"))
            repo.submit_complete(log_id, ctx)  # queued, not waited for
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, env=child_env(), timeout=60)
    found = rows(db_path)
    assert len(found) == 50
    assert {row["generation_status"] for row in found} == {"success"}


def test_idle_writer_does_its_stores_housekeeping(monkeypatch: pytest.MonkeyPatch) -> None:
    """With nothing queued, the writer asks its store to tidy up, about once a second."""
    monkeypatch.setattr("audited_openai._writer.IDLE_S", 0.01)
    tidied = threading.Event()

    class Store:
        def commit(self, _jobs: list[object]) -> None:
            raise AssertionError  # pragma: no cover - nothing is queued

        def idle(self) -> None:
            tidied.set()

        def close(self) -> None:
            """Nothing to release."""

    writer = Writer(Store(), "idle")
    writer.start()
    assert tidied.wait(5)
    writer.close()


def test_a_flush_with_every_write_settled_returns_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every read flushes first: once each write handed over is settled, a flush queues
    nothing and returns at once, even while the writer is busy with its housekeeping."""
    monkeypatch.setattr("audited_openai._writer.IDLE_S", 0.01)
    tidying, release = threading.Event(), threading.Event()
    release.set()

    class Store:
        def commit(self, jobs: list[Job]) -> None:
            settle([(job, job.work(None), False) for job in jobs])

        def idle(self) -> None:
            tidying.set()
            release.wait(10)

        def close(self) -> None:
            """Nothing to release."""

    writer = Writer(Store(), "settled")
    writer.start()
    for _ in range(3):
        writer.submit(lambda _conn: None).result(5)
    release.clear()
    tidying.clear()
    assert tidying.wait(5)  # the writer is now held in its housekeeping
    try:
        assert writer.flush(timeout=0.5) is True
    finally:
        release.set()
        writer.close()


def test_failing_housekeeping_is_logged_and_the_writer_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Housekeeping that raises is logged with the store's name, and tried again later;
    writes handed over meanwhile are committed as ever."""
    monkeypatch.setattr("audited_openai._writer.IDLE_S", 0.01)
    tries = threading.Semaphore(0)
    committed: list[object] = []

    class Store:
        def commit(self, jobs: list[Job]) -> None:
            settle([(job, job.work(None), False) for job in jobs])
            committed.extend(jobs)

        def idle(self) -> None:
            tries.release()
            raise OSError("disk went away")

        def close(self) -> None:
            """Nothing to release."""

    writer = Writer(Store(), "tidy")
    writer.start()
    assert tries.acquire(timeout=5)
    assert tries.acquire(timeout=5)  # tried again after failing
    assert writer.submit(lambda _conn: 7).result(5) == 7
    writer.close()
    assert len(committed) == 1
    failed = [r for r in caplog.records if r.getMessage() == "audit housekeeping failed for tidy"]
    assert failed
    assert isinstance(failed[0].exc_info[1], OSError)  # type: ignore[index]


def test_a_read_from_the_writers_own_thread_does_not_wait_for_itself(
    sqlite_repo: GenerationLogRepository,
) -> None:
    """A callback on a write's future runs on the writer thread; a read there (which
    flushes first) returns instead of waiting for the thread it runs on."""
    seen: list[str] = []
    done = threading.Event()

    def read(future: Future[int]) -> None:
        seen.append(sqlite_repo.get(future.result()).status)
        done.set()

    gate, _ = _hold(sqlite_repo)
    sqlite_repo.submit_pending_log(make_context()).add_done_callback(read)
    sqlite_repo.submit_pending_log(make_context())  # queued behind: unsettled meanwhile
    gate.set()
    assert done.wait(10), "the read waited for its own thread"
    assert seen == ["pending"]


def test_a_flush_waits_for_a_write_still_running_after_an_earlier_batch(
    sqlite_repo: GenerationLogRepository,
) -> None:
    """A batch that settles while a later write is still running leaves that write counted:
    a flush then waits for it (here, until its timeout) instead of returning at once."""
    writer = sqlite_repo.store.writer()
    gate, first = _hold(sqlite_repo)
    running, release = threading.Event(), threading.Event()

    def slow(_conn: sqlite3.Connection) -> None:
        running.set()
        release.wait(60)

    second = writer.submit(slow)
    gate.set()
    assert first.result(5) is None
    assert running.wait(5)
    assert writer.flush(timeout=0.2) is False  # the slow write is not settled
    release.set()
    assert second.result(5) is None
    assert writer.flush(timeout=5) is True


class _CommitFails(sqlite3.Connection):
    """A connection whose COMMIT fails while ``failing`` is set (as an I/O error would)."""

    failing = False

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql == "COMMIT" and _CommitFails.failing:
            raise sqlite3.OperationalError("disk I/O error")
        return super().execute(sql, *args)


def test_a_commit_that_fails_fails_its_writes_and_rolls_back(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """COMMIT failing after every statement of the batch ran: each write fails with
    AuditWriteError naming the file and the cause, nothing of the batch stays, and the
    next write goes through."""
    monkeypatch.setattr(
        "audited_openai._sqlite.sqlite3.connect",
        functools.partial(sqlite3.connect, factory=_CommitFails),
    )
    repo = GenerationLogRepository(db_path)
    repo.flush()
    monkeypatch.setattr(_CommitFails, "failing", True)
    with pytest.raises(AuditWriteError, match=r"^could not commit to .+: disk I/O error$") as e:
        repo.create_pending_log(make_context())
    assert e.value.path == str(db_path)
    assert isinstance(e.value.__cause__, sqlite3.OperationalError)
    monkeypatch.setattr(_CommitFails, "failing", False)
    assert repo.create_pending_log(make_context()) >= 1
    assert len(rows(db_path)) == 1  # the failed batch left nothing behind
    repo.close()


def test_a_closed_writer_refuses_new_writes(sqlite_repo: GenerationLogRepository) -> None:
    """After close() (everything queued committed first) nothing more is accepted."""
    write = sqlite_repo.submit_pending_log(make_context())
    sqlite_repo.close()
    assert write.result() == 1
    with pytest.raises(AuditWriteError, match="closed"):
        sqlite_repo.store.writer().submit(lambda _conn: None)


def test_the_writer_truncates_a_big_wal(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past WAL_LIMIT the writer checkpoints and truncates the WAL: it stays small, where
    SQLite's own passive checkpoints would let it grow to megabytes."""
    monkeypatch.setattr("audited_openai._sqlite_connect.WAL_LIMIT", 64 * 1024)
    repo = GenerationLogRepository(db_path)
    for _ in range(60):
        ctx = make_context()
        ctx.prompt.full_text = "Regels en voorbeelden. " * 1000  # about 23 KB a row
        repo.create_pending_log(ctx)
    wal = db_path.with_name(db_path.name + "-wal")
    assert wal.stat().st_size < 256 * 1024
    assert len(rows(db_path)) == 60


class _CheckpointBusy(sqlite3.Connection):
    """A connection whose TRUNCATE checkpoint fails while ``failing`` is set (busy)."""

    failing = False

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql == "PRAGMA wal_checkpoint(TRUNCATE)" and _CheckpointBusy.failing:
            raise sqlite3.OperationalError("database is locked")
        return super().execute(sql, *args)


def test_a_checkpoint_that_fails_leaves_the_wal_for_the_next_commit(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A TRUNCATE checkpoint refused (busy) costs no write and logs no writer failure:
    the WAL stays past its limit until a later commit truncates it."""
    monkeypatch.setattr(
        "audited_openai._sqlite.sqlite3.connect",
        functools.partial(sqlite3.connect, factory=_CheckpointBusy),
    )
    monkeypatch.setattr("audited_openai._sqlite_connect.WAL_LIMIT", 64 * 1024)
    monkeypatch.setattr(_CheckpointBusy, "failing", True)
    repo = GenerationLogRepository(db_path)
    wal = db_path.with_name(db_path.name + "-wal")
    for _ in range(8):
        ctx = make_context()
        ctx.prompt.full_text = "Regels en voorbeelden. " * 1000  # about 23 KB a row
        assert repo.create_pending_log(ctx) >= 1
    repo.flush()
    assert wal.stat().st_size > 64 * 1024
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "WARNING")]
    monkeypatch.setattr(_CheckpointBusy, "failing", False)
    repo.create_pending_log(make_context())
    repo.flush()  # the WAL is tended once the batch's callers are woken
    assert wal.stat().st_size == 0
    assert len(rows(db_path)) == 9
    repo.close()


def test_close_commits_what_is_queued_then_the_thread_ends(
    sqlite_repo: GenerationLogRepository, db_path: Path
) -> None:
    """Writes queued behind a busy one when close() is called are all committed, in one
    batch before the stop, and the writer's thread is gone afterwards."""
    writer = sqlite_repo.store.writer()
    gate, busy = _hold(sqlite_repo)
    writes = [sqlite_repo.submit_pending_log(make_context()) for _ in range(3)]
    closing = threading.Thread(target=writer.close)
    closing.start()
    threading.Timer(0.05, gate.set).start()
    closing.join(10)
    assert not closing.is_alive()
    assert busy.result(0) is None
    assert [write.result(0) for write in writes] == [1, 2, 3]
    assert writer._thread is not None
    assert not writer._thread.is_alive()
    assert {row["generation_status"] for row in rows(db_path)} == {"pending"}


def test_close_is_done_once_and_never_starts_a_thread() -> None:
    """A second close() returns at once; closing a writer that never wrote starts nothing."""

    class Store:
        def commit(self, _jobs: list[object]) -> None:
            raise AssertionError  # pragma: no cover - nothing is queued

        def idle(self) -> None:
            """Nothing to tidy."""

        def close(self) -> None:
            """Nothing to release."""

    unused = Writer(Store(), "unused")
    unused.close()
    assert unused._thread is None
    assert unused.flush() is True  # closed: nothing left to wait for

    writer = Writer(Store(), "twice")
    writer.start()
    thread = writer._thread
    assert thread is not None
    writer.close()
    assert not thread.is_alive()
    writer.close()
    assert writer._queue.empty()  # no second stop marker was queued


def test_close_gives_up_after_its_timeout_on_a_stuck_write(
    sqlite_repo: GenerationLogRepository,
) -> None:
    """A write that never ends does not hold close() past its timeout."""
    writer = sqlite_repo.store.writer()
    gate, busy = _hold(sqlite_repo)
    writer.close(timeout=0.05)
    assert writer._thread is not None
    assert writer._thread.is_alive()
    gate.set()
    assert busy.result(10) is None
    writer._thread.join(10)
    assert not writer._thread.is_alive()


def test_a_failed_write_says_what_could_not_be_done(
    sqlite_repo: GenerationLogRepository, db_path: Path
) -> None:
    """A write the database fails (not refuses) raises AuditWriteError naming the write,
    the row and the file."""
    ctx = make_context()
    log_id = sqlite_repo.create_pending_log(ctx)
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE gone (x)")
    conn.execute(
        "CREATE TRIGGER broken BEFORE UPDATE ON generation_logs BEGIN DELETE FROM gone; END"
    )
    conn.execute("DROP TABLE gone")  # the trigger fails when it runs: no such table
    conn.commit()
    conn.close()
    ctx.mark_success(ResponseMetadata(content="ok"))
    with pytest.raises(AuditWriteError, match=f"could not complete log {log_id} in .*no such"):
        sqlite_repo.update_with_response(log_id, ctx)
    with pytest.raises(AuditWriteError, match=f"could not link log {log_id} in .*no such") as e:
        sqlite_repo.link_to_definitie(log_id, 5)
    assert e.value.path == str(db_path)
    with pytest.raises(AuditWriteError, match=r"^could not reconcile in .*no such"):
        sqlite_repo.reconcile(timedelta(microseconds=1))
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE gone (x)")
    conn.execute(
        "CREATE TRIGGER broken_insert BEFORE INSERT ON generation_logs BEGIN DELETE FROM gone; END"
    )
    conn.execute("DROP TABLE gone")
    conn.commit()
    conn.close()
    with pytest.raises(AuditWriteError, match=r"^could not write the pending log in .*no such"):
        sqlite_repo.create_pending_log(make_context())
    with pytest.raises(AuditWriteError, match=r"^could not write the log in .*no such"):
        sqlite_repo.submit_log(ctx).result()


def test_a_store_opened_read_only_refuses_writes_by_name(db_path: Path) -> None:
    """read_only=True: a write is refused before it is queued, naming the store."""
    GenerationLogRepository(db_path).flush()
    store = GenerationLogRepository(db_path, read_only=True)
    with pytest.raises(AuditWriteError, match=r" was opened read-only$") as refused:
        store.create_pending_log(make_context())
    assert str(refused.value) == f"{db_path} was opened read-only"
    assert refused.value.path == str(db_path)
    assert rows(db_path) == []


# -- one writer per database and process ------------------------------------------------------


def _writer_threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"audited_openai-writer {name}"]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_store_objects_of_one_database_share_one_writer(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Two repositories on one database (the second spelt another way) write through one
    thread; it outlives the first one closed and stops with the last."""
    if backend == "sqlite":
        target, other = str(tmp_path / "audit.db"), str(tmp_path / "." / "audit.db")
    else:
        target = other = request.getfixturevalue("_postgres_database")
    first, second = GenerationLogRepository(target), GenerationLogRepository(other)
    name = first.store.name
    assert first.create_pending_log(make_context()) == 1
    assert second.create_pending_log(make_context()) == 2
    assert first.store.writer() is second.store.writer()
    assert len(_writer_threads(name)) == 1
    first.close()
    assert second.create_pending_log(make_context()) == 3
    assert len(_writer_threads(name)) == 1
    (thread,) = _writer_threads(name)
    second.close()
    thread.join(10)
    assert not thread.is_alive()
    assert _writer_threads(name) == []
    assert [row["id"] for row in rows(target)] == [1, 2, 3]


@pytest.fixture
def _postgres_database() -> Iterator[str]:
    with fresh_postgres() as url:
        yield url


def test_stores_of_different_durability_share_a_writer_and_each_gets_its_sync(
    db_path: Path,
) -> None:
    """A completion of a "full" store is synced in full even on the writer it shares
    with a "balanced" one; the balanced store's completions stay NORMAL."""
    balanced = GenerationLogRepository(db_path)
    full = GenerationLogRepository(db_path, durability="full")
    levels: list[int] = []

    def level(conn: sqlite3.Connection) -> None:
        levels.append(conn.execute("PRAGMA synchronous").fetchone()[0])

    for repo in (balanced, full):
        assert repo.store.submit(level, durable=False, what="look").result() is None
    assert levels == [1, 2]  # NORMAL, then FULL
    balanced.close()
    full.close()


def test_a_closed_store_refuses_writes_though_its_database_writer_lives_on(
    db_path: Path,
) -> None:
    still = GenerationLogRepository(db_path)
    closed = GenerationLogRepository(db_path)
    still.create_pending_log(make_context())
    closed.close()
    with pytest.raises(AuditWriteError, match=r"^the audit store .+ is closed$"):
        closed.create_pending_log(make_context())
    assert still.create_pending_log(make_context()) == 2
    still.close()
