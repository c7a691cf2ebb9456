"""SQLite connections: one per thread, reopened after fork, WAL, immediate writes.

Every connection runs in autocommit mode with explicit ``BEGIN IMMEDIATE`` for
writes, so writers queue on SQLite's lock (with a busy timeout) instead of failing
with "database is locked" when a deferred transaction tries to upgrade.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeVar

from audited_openai import _erasure, _futures, _schema

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from concurrent.futures import Future

log = logging.getLogger("audited_openai")
T = TypeVar("T")
U = TypeVar("U")
Durability = Literal["full", "balanced"]
Sync = Literal["FULL", "NORMAL"]
DEFAULT_BUSY_TIMEOUT_MS = 30_000
FILE_MODE = 0o600
MERGE_ROWS = 200  # statements merged into one carry at most this many rows


class Changes(NamedTuple):
    """What a :class:`Statement` did: the new row's id (an INSERT) and rows changed."""

    lastrowid: int | None
    rowcount: int


@dataclasses.dataclass(frozen=True, slots=True)
class Statement:
    """One SQL statement and its values: a write a group commit may merge with others.

    ``merge`` turns the values of several statements with this same ``sql`` into one
    statement doing all of them (a multi-row INSERT, an UPDATE ... FROM VALUES). The
    leader runs each kind of statement of a batch at once: one statement (and one
    wait for the GIL) instead of one per row. When the merged statement fails, or
    changes fewer rows than it had, the batch runs again statement by statement, so
    results and errors are exactly those of running each alone.
    """

    sql: str
    values: tuple[Any, ...]
    merge: Callable[[list[tuple[Any, ...]]], tuple[str, tuple[Any, ...]]] | None = None

    def __call__(self, conn: sqlite3.Connection) -> Changes:
        """Run alone."""
        cursor = conn.execute(self.sql, self.values)
        return Changes(cursor.lastrowid, cursor.rowcount)


class Database:
    """A SQLite file holding ``generation_logs``, shared safely by threads and forks.

    ``durability="balanced"`` (default) commits the pending row with
    ``synchronous=FULL`` and the completion with ``synchronous=NORMAL``: in WAL mode
    the latter survives a process crash and keeps the file consistent on power loss,
    where at worst the completion is lost and the row reads 'pending'.
    ``durability="full"`` makes every write ``synchronous=FULL``.
    """

    def __init__(
        self,
        target: str | os.PathLike[str] | sqlite3.Connection,
        *,
        durability: Durability = "balanced",
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    ) -> None:
        """Open ``target`` (a path, or an open connection whose file is reused)."""
        if durability not in ("full", "balanced"):
            raise ValueError(f"durability must be 'full' or 'balanced', not {durability!r}")
        self.durability: Durability = durability
        self.busy_timeout_ms = busy_timeout_ms
        self._shared: sqlite3.Connection | None = None
        self._shared_lock = threading.RLock()
        if isinstance(target, sqlite3.Connection):
            file = _main_file(target)
            if file:
                self.path = file
            else:  # in-memory or temporary: the only way in is the caller's connection
                self.path = ":memory:"
                self._shared = target
        else:
            self.path = str(Path(target))
        self._local = threading.local()
        self._ready = False
        self._ready_lock = threading.Lock()
        self._all: list[sqlite3.Connection] = []
        self._own_queue: tuple[int, _WriteQueue] | None = None
        self.closed = False

    # -- connections ----------------------------------------------------------

    def connection(self) -> sqlite3.Connection:
        """Return this thread's connection, opening (or reopening after fork) it."""
        if self._shared is not None:
            self._prepare_shared()
            return self._shared
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        # A connection must never cross fork(): drop the inherited one without closing
        # it (closing could release the parent's locks) and open a fresh one.
        conn = self._open()
        self._local.conn = conn
        self._local.pid = os.getpid()
        self._local.sync = None
        return conn

    def _open(self) -> sqlite3.Connection:
        if not self.path.startswith(("file:", ":memory:")) and not Path(self.path).exists():
            # Create the file ourselves so it is 0600 whatever the umask; SQLite gives
            # its -wal and -shm files the database file's mode.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
            os.close(fd)
        conn = sqlite3.connect(
            self.path,
            uri=self.path.startswith("file:"),
            isolation_level=None,
            check_same_thread=False,
            timeout=self.busy_timeout_ms / 1000,
        )
        self._configure(conn)
        with self._ready_lock:
            if not self._ready:
                _schema.migrate(conn, path=self.path)
                if _schema.ensure_host_objects(conn):
                    _erasure.watch(self)
                self._ready = True
        self._all.append(conn)
        return conn

    def _configure(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
        if self.path != ":memory:":
            _retry_locked(
                lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone(),
                self.busy_timeout_ms,
            )
        conn.execute("PRAGMA foreign_keys = ON")

    def _prepare_shared(self) -> None:
        with self._ready_lock:
            if self._ready:
                return
            assert self._shared is not None  # noqa: S101 - only called when shared
            self._configure(self._shared)
            _schema.migrate(self._shared, path=None)
            _schema.ensure_host_objects(self._shared)
            self._ready = True

    def refresh_host_objects(self) -> bool:
        """Re-check for a ``definities`` table and create the views and triggers."""
        with self._lock():
            present = _schema.ensure_host_objects(self.connection())
        if present:
            _erasure.watch(self)
        return present

    # -- transactions ---------------------------------------------------------

    def run(self, work: Callable[[sqlite3.Connection], T], *, sync: Sync = "FULL") -> T:
        """Run ``work(conn)`` in a write transaction committed with ``sync``; return its result.

        Group commit: writers of this process that arrive while a transaction is being
        committed queue up, and the next one commits them all in one transaction with
        one sync. A job that fails rolls the batch back and fails alone; the others
        run again in the next batch.
        Threads never wait in SQLite's sleeping busy handler for each other.
        """
        queue = self._queue()
        job = _Job(self, work, sync)
        with queue.lock:
            queue.jobs.append(job)
            lead = not queue.busy
            queue.busy = True
        if not lead:
            job.event.wait()  # type: ignore[union-attr]  # a job of run() has one
        if not job.finished:  # leading (first, or promoted): commit batches until done
            try:
                while not job.finished:
                    with queue.lock:
                        batch, queue.jobs = queue.jobs, []
                    self._commit(batch, queue)
            finally:
                queue.hand_over()
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[no-any-return]

    def submit(
        self,
        work: Callable[[sqlite3.Connection], T],
        *,
        sync: Sync = "FULL",
        then: Callable[[Callable[[], T]], U] | None = None,
    ) -> Future[U]:
        """Queue ``work`` for the next group commit and return at once.

        The future resolves with the result once the transaction is committed (or
        with the error); with ``then``, with ``then(outcome)`` instead, where
        ``outcome()`` returns the result or raises the error (called in the thread
        that committed, so it must not wait for this database). A background writer
        thread commits when no caller of :meth:`run` is leading, so an event loop can
        wait for many writes while no thread waits for each. The future is running
        from the start: cancelling it does nothing, and the write is never dropped.
        """
        settle: Callable[[Callable[[], Any]], Any] = then or _call
        if self._shared is not None:
            # A caller's in-memory connection: no disk to wait for, and it may only be
            # usable from this thread. Run it here and now.
            return _futures.now(lambda: settle(lambda: self.run(work, sync=sync)))
        queue = self._queue()
        future: Future[U] = _futures.running()
        job = _Job(self, work, sync, future, settle)
        with queue.lock:
            queue.jobs.append(job)
            if not queue.busy:
                queue.busy = True
                queue.lead_in_background()
        return future

    def _queue(self) -> _WriteQueue:
        if self._shared is None:
            return _queue_for(self.path)
        # A caller's in-memory connection: its writers queue apart from any other's.
        if self._own_queue is None or self._own_queue[0] != os.getpid():
            self._own_queue = (os.getpid(), _WriteQueue())
        return self._own_queue[1]

    def _commit(self, batch: list[_Job], queue: _WriteQueue) -> None:
        """Commit a batch; every job ends finished, or back in the queue if not its fault."""
        merged = _mergeable(batch)
        try:
            with self._lock():
                conn = self.connection()
                full = any(j.sync == "FULL" for j in batch)
                if full or not queue.jobs or self._last_sync() is None:
                    # While others wait, a batch needing only NORMAL keeps a connection's
                    # FULL (as durable or more): under load each statement costs the
                    # leader a wait for the GIL, more than the sync it saves.
                    self._set_sync(conn, "FULL" if full else "NORMAL")
                conn.execute("BEGIN IMMEDIATE")
                try:
                    if merged and not _run_merged(conn, batch):
                        _rollback(conn)  # then once more below, each job alone
                        merged = False
                        conn.execute("BEGIN IMMEDIATE")
                    if not merged and not _run_each(conn, batch, queue):
                        return
                    conn.execute("COMMIT")
                except BaseException:
                    _rollback(conn)
                    raise
        except BaseException as exc:  # BEGIN or COMMIT failed: the whole batch did
            for job in batch:
                if not job.finished:
                    job.finish(error=exc)
            return
        for job in batch:
            job.finish()

    @contextlib.contextmanager
    def write(self, *, sync: Sync = "FULL") -> Iterator[sqlite3.Connection]:
        """Run a block in a write transaction of its own (``BEGIN IMMEDIATE``)."""
        with self.alone() as conn:
            self._set_sync(conn, sync)
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextlib.contextmanager
    def alone(self) -> Iterator[sqlite3.Connection]:
        """Give this thread's connection while no other writer of this process runs.

        For statements that cannot run inside a transaction, such as ``VACUUM``.
        """
        queue = self._queue()
        queue.acquire_exclusive()
        try:
            with self._lock():
                yield self.connection()
        finally:
            queue.hand_over()

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """Give this thread's connection for reading."""
        with self._lock():
            yield self.connection()

    def completion_sync(self) -> Sync:
        """Return the ``synchronous`` level for completion writes."""
        return "FULL" if self.durability == "full" else "NORMAL"

    def _last_sync(self) -> Sync | None:
        """The ``synchronous`` level last set on this thread's connection (None: unknown)."""
        if self._shared is not None:
            return None
        return self._local.sync  # type: ignore[no-any-return]

    def _set_sync(self, conn: sqlite3.Connection, sync: Sync) -> None:
        if self._shared is not None:
            conn.execute(f"PRAGMA synchronous = {sync}")
            return
        if self._local.sync != sync:
            conn.execute(f"PRAGMA synchronous = {sync}")
            self._local.sync = sync

    def _lock(self) -> contextlib.AbstractContextManager[object]:
        if self._shared is not None:
            return self._shared_lock
        return contextlib.nullcontext()

    def close(self) -> None:
        """Close the connections this object opened (never a caller's connection)."""
        self.closed = True
        for conn in self._all:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._all.clear()
        self._local = threading.local()


class _Job:
    """One piece of write work waiting for, or in, a group commit.

    A job of :meth:`Database.run` has a thread waiting on its event (and may be
    asked to lead); a job of :meth:`Database.submit` has a future instead.
    """

    __slots__ = (
        "database",
        "error",
        "event",
        "finished",
        "future",
        "result",
        "settle",
        "sync",
        "work",
    )

    def __init__(
        self,
        database: Database,
        work: Callable[[sqlite3.Connection], Any],
        sync: Sync,
        future: Future[Any] | None = None,
        settle: Callable[[Callable[[], Any]], Any] | None = None,
    ) -> None:
        self.database = database
        self.work = work
        self.sync = sync
        self.future = future
        self.settle = settle
        self.event = threading.Event() if future is None else None  # a thread waits on it
        self.finished = False
        self.result: Any = None
        self.error: BaseException | None = None

    def finish(self, *, error: BaseException | None = None) -> None:
        """Mark done (with ``error`` if it failed) and wake the caller."""
        if error is not None:
            self.result, self.error = None, error
        self.finished = True
        if self.event is not None:
            self.event.set()
        if self.future is not None:
            settle = self.settle or _call
            _futures.settle(self.future, lambda: settle(self._outcome))

    def _outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result


def _call(outcome: Callable[[], T]) -> T:
    return outcome()


class _WriteQueue:
    """The writers of one database file in this process: a leader and its followers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.idle = threading.Condition(self.lock)
        self.wake = threading.Condition(self.lock)
        self.jobs: list[_Job] = []
        self.busy = False
        self.writer: threading.Thread | None = None
        self.writer_leads = False

    def requeue(self, jobs: list[_Job]) -> None:
        """Put jobs back at the head of the queue, as they were."""
        with self.lock:
            for job in jobs:
                job.result, job.error = None, None
            self.jobs[:0] = jobs

    def hand_over(self) -> None:
        """Pass the lead to the first waiting job (or the writer), or mark the queue idle."""
        with self.lock:
            if not self.jobs:
                self.busy = False
                self.idle.notify_all()
            elif self.jobs[0].event is not None:
                self.jobs[0].event.set()  # its thread wakes unfinished: it leads now
            else:
                self.lead_in_background()

    def lead_in_background(self) -> None:
        """Have the writer thread lead (called holding the lock, with ``busy`` set)."""
        self.writer_leads = True
        if self.writer is None:
            self.writer = threading.Thread(
                target=self._write, name="audited_openai-writer", daemon=True
            )
            self.writer.start()
        self.wake.notify()

    def _write(self) -> None:
        """The writer thread: commit batches whenever asked to lead, until idle."""
        while True:
            with self.lock:
                while not self.writer_leads:
                    self.wake.wait()
                self.writer_leads = False
            try:
                while True:
                    with self.lock:
                        batch, self.jobs = self.jobs, []
                    if not batch:
                        break
                    batch[0].database._commit(batch, self)
            except BaseException:  # pragma: no cover - _commit finishes every job itself
                log.exception("audit writer failed")
            finally:
                self.hand_over()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no job is queued or being committed; False on timeout."""
        with self.lock:
            return self.idle.wait_for(lambda: not self.busy, timeout)

    def acquire_exclusive(self) -> None:
        """Wait until no one writes, then hold the lead for a block of one's own."""
        with self.lock:
            while self.busy:
                self.idle.wait()
            self.busy = True


_QUEUES: dict[str, _WriteQueue] = {}
_QUEUES_LOCK = threading.Lock()


def _queue_for(path: str) -> _WriteQueue:
    with _QUEUES_LOCK:
        queue = _QUEUES.get(path)
        if queue is None:
            queue = _QUEUES[path] = _WriteQueue()
        return queue


@atexit.register
def _drain() -> None:
    """At exit, let the writer threads commit what is queued (rows must not stay pending)."""
    for queue in list(_QUEUES.values()):
        if not queue.wait_idle(timeout=30):  # pragma: no cover - a stuck disk at exit
            log.error("audit writes still queued at exit for 30 s: their rows stay pending")


def _reset_after_fork() -> None:
    # Locks held by threads of the parent would never be released in the child.
    global _QUEUES_LOCK  # noqa: PLW0603 - process-wide state, reset in the child
    _QUEUES.clear()
    _QUEUES_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_reset_after_fork)


def _run_each(conn: sqlite3.Connection, batch: list[_Job], queue: _WriteQueue) -> bool:
    """Run the jobs one by one; False if one failed (it fails alone, the rest requeued)."""
    for job in batch:
        try:
            job.result = job.work(conn)
        except BaseException as exc:  # noqa: PERF203 - per job, on purpose
            # A job's own failure (or interrupt) undoes the transaction: it fails
            # alone, the others go back to the queue and run again. (No savepoint per
            # job: each one costs the leader a statement, and a wait for the GIL.)
            _rollback(conn)
            job.finish(error=exc)
            queue.requeue([j for j in batch if j is not job])
            return False
    return True


def _mergeable(batch: list[_Job]) -> bool:
    kinds = [job.work.sql for job in batch if isinstance(job.work, Statement) and job.work.merge]
    return len(kinds) > len(set(kinds))


def _run_merged(conn: sqlite3.Connection, batch: list[_Job]) -> bool:
    """Run the batch with statements of one kind merged; False if that did not work.

    Jobs of one batch never depend on each other (each caller waits for its own
    before writing again), so any order is theirs: each kind runs where it first
    appears.
    """
    groups: dict[object, list[_Job]] = {}
    for job in batch:
        work = job.work
        key = work.sql if isinstance(work, Statement) and work.merge else id(job)
        groups.setdefault(key, []).append(job)
    try:
        for group in groups.values():
            if len(group) == 1:
                group[0].result = group[0].work(conn)
                continue
            for start in range(0, len(group), MERGE_ROWS):
                if not _run_chunk(conn, group[start : start + MERGE_ROWS]):
                    return False
    except Exception:
        return False
    return True


def _run_chunk(conn: sqlite3.Connection, jobs: list[_Job]) -> bool:
    statements: list[Statement] = [job.work for job in jobs]  # type: ignore[misc]
    first = statements[0]
    assert first.merge is not None  # noqa: S101 - grouped by _run_merged
    sql, values = first.merge([statement.values for statement in statements])
    cursor = conn.execute(sql, values)
    if cursor.rowcount != len(jobs):
        return False
    inserted = first.sql.lstrip().upper().startswith("INSERT") and cursor.lastrowid
    for index, job in enumerate(jobs):
        # One statement inserts its rows in order, with consecutive ids.
        row_id = cursor.lastrowid - len(jobs) + 1 + index if inserted else None  # type: ignore[operator]
        job.result = Changes(row_id, 1)
    return True


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _main_file(conn: sqlite3.Connection) -> str:
    for row in conn.execute("PRAGMA database_list"):
        if row[1] == "main":
            return str(row[2] or "")
    return ""  # pragma: no cover - every connection has a main database


def _retry_locked(action: Callable[[], object], timeout_ms: int) -> None:
    """Run ``action`` again while SQLite says the database is locked or busy.

    Changing the journal mode can fail with SQLITE_BUSY without invoking the busy
    handler when another process is doing the same on a fresh file.
    """
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        try:
            action()
        except sqlite3.OperationalError as exc:  # noqa: PERF203 - retried on purpose
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)
        else:
            return
