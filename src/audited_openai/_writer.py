"""One writer thread per store: what it drains from its queue, it commits in one transaction.

Callers hand over a write and get a ``concurrent.futures.Future`` of its result: a sync
caller waits on it (``future.result()``), an async caller awaits
``asyncio.wrap_future(future)``, and a caller that need not wait (a completion) just
returns. Writes that arrive while a transaction commits go into the next one together,
with one sync to disk (group commit). Futures are running from the start: cancelling
one does nothing, so a write once handed over is never dropped. Writes still queued
when the interpreter exits are committed first (``atexit``); after ``fork()`` the child
starts with writers of its own.

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

    __slots__ = ("durable", "future", "work")

    def __init__(self, work: Callable[[Any], Any], *, durable: bool) -> None:
        """``work(connection)`` runs in the writer's transaction; ``durable``: a full sync."""
        self.work = work
        self.durable = durable
        self.future: Future[Any] = Future()
        self.future.set_running_or_notify_cancel()


class Committer(Protocol):
    """What a backend gives its writer: a way to commit a batch, and idle housekeeping."""

    def commit(self, jobs: list[Job]) -> None:
        """Run every job in one transaction and settle each job's future."""
        ...

    def idle(self) -> None:
        """Housekeeping while nothing is queued (about once a second)."""
        ...


class Writer:
    """A queue and the one thread that commits it, for one store in one process."""

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

    def submit(self, work: Callable[[Any], Any], *, durable: bool = False) -> Future[Any]:
        """Queue ``work`` for the next transaction; its future settles after the commit."""
        job = Job(work, durable=durable)
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
    """A store with one writer per process, named after what it writes to."""

    name: str
    _writer: tuple[int, Writer] | None = None

    def writer(self) -> Writer:
        """The writer of this store in this process (a new one after ``fork()``)."""
        pid = os.getpid()
        with _OWNERS_LOCK:
            if self._writer is None or self._writer[0] != pid:
                self._writer = (pid, Writer(self, self.name))  # type: ignore[arg-type]
            return self._writer[1]

    def flush(self) -> None:
        """Wait until this process's queued writes to this store are committed.

        Every store object of the same database counts, so reads see this process's
        own writes.
        """
        flush_all(self.name)

    def close_writer(self) -> None:
        """Commit what this store's writer has queued, and stop it."""
        if self._writer is not None and self._writer[0] == os.getpid():
            self._writer[1].close()


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
    _OWNERS_LOCK = threading.RLock()


os.register_at_fork(after_in_child=_forget_after_fork)
