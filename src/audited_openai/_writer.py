"""One writer thread per database and process: what it drains, it commits in one transaction.

Callers hand over a write and get a ``concurrent.futures.Future`` of its result: a sync
caller waits on it (``future.result()``), an async caller awaits
``asyncio.wrap_future(future)``, and a caller that need not wait (a completion) just
returns. Writes that arrive while a transaction commits go into the next one together,
with one sync to disk (group commit). Futures are running from the start: cancelling
one does nothing, so a write once handed over is never dropped. Writes still queued
when the interpreter exits are committed first (``atexit``); after ``fork()`` the child
starts with writers of its own.

Every store object of one database in a process shares its writer (:func:`shared_writer`,
keyed by the database's name): the writer and its connection are the database's, not the
object's, and they close with the last store object that used them.

Measured against the alternatives: the standard library's ``queue.SimpleQueue`` is the
queue (its ``put`` is safe from finalizers and signal handlers, which is where an
abandoned stream completes its row), and ``concurrent.futures.Future`` the hand-back.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import weakref
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any, Protocol

from audited_openai._errors import AuditWriteError

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger("audited_openai")

MAX_BATCH = 256  # writes committed in one transaction at most
IDLE_S = 1.0  # how often an idle writer runs its store's housekeeping


class Job:
    """One write waiting for, or in, a transaction: the work and who waits for it."""

    __slots__ = ("durable", "full", "future", "work")

    def __init__(self, work: Callable[[Any], Any], *, durable: bool, full: bool = False) -> None:
        """``work(connection)`` runs in the writer's transaction.

        ``durable``: a caller waits for it (a pending row): committed first, with a full
        sync. ``full``: a full sync too, though nobody waits (a store opened "full").
        """
        self.work = work
        self.durable = durable
        self.full = durable or full
        self.future: Future[Any] = Future()
        self.future.set_running_or_notify_cancel()


class Committer(Protocol):
    """What a backend gives its writer: a way to commit a batch, housekeeping, an end."""

    def commit(self, jobs: list[Job]) -> None:
        """Run every job in one transaction and settle each job's future."""
        ...

    def idle(self) -> None:
        """Housekeeping while nothing is queued (about once a second)."""
        ...

    def close(self) -> None:
        """Release the connection, once the thread has stopped."""
        ...


class Writer:
    """A queue and the one thread that commits it, for one database in one process."""

    def __init__(self, committer: Committer, name: str) -> None:
        """Commit through ``committer``; ``name`` names the thread."""
        self._committer = committer
        self.name = name
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._lock = threading.RLock()  # re-entrant: a finalizer may queue a write
        self._thread: threading.Thread | None = None
        self._unsettled = 0  # handed over and not yet committed (or failed)
        self._closed = False
        _WRITERS.add(self)

    def submit(
        self, work: Callable[[Any], Any], *, durable: bool = False, full: bool = False
    ) -> Future[Any]:
        """Queue ``work`` for the next transaction; its future settles after the commit."""
        job = Job(work, durable=durable, full=full)
        with self._lock:
            if self._closed:
                raise AuditWriteError(f"the audit store {self.name} is closed", path=self.name)
            self._unsettled += 1
            self._start()
        self._queue.put(job)
        return job.future

    def start(self) -> None:
        """Start the thread now (for housekeeping before the first write)."""
        with self._lock:
            self._start()

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"audited_openai-writer {self.name}", daemon=True
            )
            self._thread.start()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything handed over so far is settled; False on timeout.

        The queue is first in, first out: once a no-op queued behind them is settled,
        so are they.
        """
        if not self._unsettled or self._closed or threading.current_thread() is self._thread:
            return True
        try:
            self.submit(no_write).result(timeout)
        except FutureTimeout:
            return False
        except Exception:  # noqa: S110 - settled all the same: its error went to its caller
            pass
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Commit what is queued, then stop the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)
            if thread.is_alive():  # pragma: no cover - a write stuck past the timeout
                return  # its connection stays with it
        self._committer.close()

    def _run(self) -> None:
        while True:
            try:
                job = self._queue.get(timeout=IDLE_S)
            except queue.Empty:
                self._housekeeping()
                continue
            if job is None:
                return
            batch = [job]
            while len(batch) < MAX_BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # stop once this batch is committed
                    break
                batch.append(more)
            self._commit(batch)
            with self._lock:  # settled, their callbacks (a spool, a queued completion) run
                self._unsettled -= len(batch)

    def _commit(self, batch: list[Job]) -> None:
        """Commit a batch's writes; a flush's marker needs no transaction (nor the lock)."""
        writes = [job for job in batch if job.work is not no_write]
        try:
            if writes:
                self._committer.commit(writes)
        except BaseException as exc:  # pragma: no cover - commit settles every job itself
            log.exception("audit writer %s failed", self.name)
            for failed in writes:
                if not failed.future.done():
                    failed.future.set_exception(exc)
        for marker in batch:
            if marker.work is no_write:  # settled once every write before it is
                marker.future.set_result(None)

    def _housekeeping(self) -> None:
        try:
            self._committer.idle()
        except Exception:
            log.exception("audit housekeeping failed for %s", self.name)


def no_write(_connection: object) -> None:
    """A write that writes nothing: a marker in the queue."""


Outcome = tuple[Job, Any, bool]  # a job, its result or error, and whether it failed


def all_failed(jobs: list[Job], error: BaseException) -> list[Outcome]:
    """Every job failing with the same error (a transaction that could not be had)."""
    return [(job, error, True) for job in jobs]


def settle(outcomes: list[Outcome]) -> None:
    """Settle each job's future: its callers go on."""
    for job, value, failed in outcomes:
        if failed:
            job.future.set_exception(value)
        else:
            job.future.set_result(value)


class Owner:
    """A store object: it uses the one writer of its database in this process.

    The writer is taken at the first write (or housekeeping) and given back by
    :meth:`close_writer`; the last store object to give it back closes it.
    """

    name: str  # the database: reads flush every writer of it first
    closed: bool
    _writer: Writer | None = None
    _writer_pid = 0

    @property
    def writer_key(self) -> str:
        """What the store objects sharing one writer have in common (the database)."""
        return self.name

    def committer(self) -> Committer:
        """A new writer side for this database (made once per process)."""
        raise NotImplementedError

    def writer(self) -> Writer:
        """The writer of this database in this process (a new one after ``fork()``)."""
        if self.closed:
            raise AuditWriteError(f"the audit store {self.name} is closed", path=self.name)
        pid = os.getpid()
        with _OWNERS_LOCK:
            if self._writer is None or self._writer_pid != pid:
                self._writer = shared_writer(self.writer_key, self.name, self.committer)
                self._writer_pid = pid
            return self._writer

    def flush(self) -> None:
        """Wait until this process's queued writes to this database are committed."""
        flush_all(self.name)

    def close_writer(self) -> None:
        """Give the writer back; the last store object of the database closes it."""
        with _OWNERS_LOCK:
            writer, self._writer = self._writer, None
            mine = writer is not None and self._writer_pid == os.getpid()
        if mine:
            release_writer(self.writer_key)


# The writer of each database in this process, and how many store objects use it.
_SHARED: dict[str, tuple[Writer, int]] = {}


def shared_writer(key: str, name: str, committer: Callable[[], Committer]) -> Writer:
    """The writer of ``key`` in this process; if none, one named ``name`` on ``committer()``."""
    with _OWNERS_LOCK:
        writer, users = _SHARED.get(key, (None, 0))
        if writer is None:
            writer = Writer(committer(), name)
        _SHARED[key] = (writer, users + 1)
        return writer


def release_writer(key: str) -> None:
    """One user fewer of the writer of ``key``; the last one closes it."""
    with _OWNERS_LOCK:
        writer, users = _SHARED.pop(key, (None, 0))
        if writer is None:
            return
        if users > 1:
            _SHARED[key] = (writer, users - 1)
            return
    writer.close()  # outside the lock: it waits for what is queued


_WRITERS: weakref.WeakSet[Writer] = weakref.WeakSet()
_OWNERS_LOCK = threading.RLock()


def flush_all(name: str | None = None, timeout: float | None = None) -> None:
    """Wait until the writers of this process (of one store, by name) have committed."""
    for writer in list(_WRITERS):
        if name is None or writer.name == name:
            writer.flush(timeout)


@atexit.register
def _drain() -> None:
    """At exit, commit what is queued: a row must not stay pending because its process ended."""
    for writer in list(_WRITERS):
        if not writer.flush(timeout=30):  # pragma: no cover - a stuck disk at exit
            log.error("audit writes still queued after 30 s at exit: their rows stay pending")
        writer.close()


def _forget_after_fork() -> None:
    # The parent's threads are not in the child; its writers' locks may have been held.
    global _OWNERS_LOCK  # noqa: PLW0603 - process-wide state, new in the child
    _WRITERS.clear()
    _SHARED.clear()
    _OWNERS_LOCK = threading.RLock()


os.register_at_fork(after_in_child=_forget_after_fork)
