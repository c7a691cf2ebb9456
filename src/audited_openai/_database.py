"""SQLite connections: one per thread, reopened after fork, WAL, immediate writes.

Every connection runs in autocommit mode with explicit ``BEGIN IMMEDIATE`` for
writes, so writers queue on SQLite's lock (with a busy timeout) instead of failing
with "database is locked" when a deferred transaction tries to upgrade.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from audited_openai import _schema

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

Durability = Literal["full", "balanced"]
Sync = Literal["FULL", "NORMAL"]
DEFAULT_BUSY_TIMEOUT_MS = 30_000
FILE_MODE = 0o600


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
                _schema.ensure_host_objects(conn)
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
            return _schema.ensure_host_objects(self.connection())

    # -- transactions ---------------------------------------------------------

    @contextlib.contextmanager
    def write(self, *, sync: Sync = "FULL") -> Iterator[sqlite3.Connection]:
        """Run a write transaction (``BEGIN IMMEDIATE``), committed with ``sync``."""
        with self._lock():
            conn = self.connection()
            self._set_sync(conn, sync)
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """Give this thread's connection for reading."""
        with self._lock():
            yield self.connection()

    def completion_sync(self) -> Sync:
        """Return the ``synchronous`` level for completion writes."""
        return "FULL" if self.durability == "full" else "NORMAL"

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
        for conn in self._all:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._all.clear()
        self._local = threading.local()


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
