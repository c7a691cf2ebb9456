"""The SQLite store: a file (or a caller's in-memory connection) holding ``generation_logs``.

Writes go through one writer thread per file and process (``_writer``) on a connection
of its own (``_sqlite_connect.Link``), a batch in one ``BEGIN IMMEDIATE`` transaction:
other processes' writers wait on SQLite's lock (a busy timeout), not "database is
locked". A batch with a pending row commits with ``synchronous=FULL``, completions with
``NORMAL`` (WAL: a process crash loses nothing, a power cut at worst a completion).
Reads use one connection per thread; no connection crosses ``fork()``.

While the file is open beside the host app's ``definities`` table, the writer's idle
time finishes the erasures the host's own connection started (``finish_erasures``).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audited_openai import _chain, _schema, _sql
from audited_openai._errors import AuditWriteError, StoreError
from audited_openai._sqlite_connect import (
    CHAIN,
    Link,
    connect,
    connect_read_only,
    erase,
    file_sizes,
    finish_erasures,
    main_file,
    retain,
    scrub,
    truncate_wal,
)
from audited_openai._store import Durability, Rows, Writes, checked_durability

if TYPE_CHECKING:
    from collections.abc import Iterator

DEFAULT_BUSY_TIMEOUT_MS = 30_000
IN_MEMORY = ":memory:"


class SQLiteStore(Rows):
    """``generation_logs`` in a SQLite file; see the module docstring."""

    dialect = _sql.SQLITE
    chain = CHAIN

    def __init__(
        self,
        target: str | os.PathLike[str] | sqlite3.Connection,
        *,
        durability: Durability = "balanced",
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        read_only: bool = False,
        create: bool = True,
    ) -> None:
        """Open ``target`` (a path, or a connection whose file is reopened) and migrate it.

        ``read_only``: write nothing, not even a migration (a file that is not there, or
        holds no current audit trail, is an error); read-only files and file systems can
        be read. ``create=False``: a file without an audit trail is refused untouched.
        """
        checked_durability(durability)
        if isinstance(busy_timeout_ms, bool) or not isinstance(busy_timeout_ms, int):
            raise TypeError(f"busy_timeout_ms must be an integer, not {busy_timeout_ms!r}")
        self.durability: Durability = durability
        self.busy_timeout_ms = busy_timeout_ms
        self.read_only = read_only
        self.create = create
        self._shared: sqlite3.Connection | None = None
        self._lock = threading.RLock()  # guards a shared connection, and the writer's creation
        self.location = self._locate(target)
        self.reopen_target = None if self._shared is not None else self.location  # open_store
        # One name for the file however it was spelt: every store of it flushes together.
        self.file = self.name = os.path.realpath(self.location.removeprefix("file:").split("?")[0])
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self.closed = False
        self.has_host = self._open()
        if self.has_host:
            self.writer().start()  # its idle time finishes the host's erasures

    def _locate(self, target: object) -> str:
        if isinstance(target, sqlite3.Connection):
            location = main_file(target) or IN_MEMORY
            if location == IN_MEMORY:  # the caller's connection is the only way in
                self._shared = target
                target.execute("PRAGMA foreign_keys = ON")
            return location
        if isinstance(target, (str, os.PathLike)):
            return str(target) if str(target).startswith("file:") else str(Path(target))
        raise TypeError(
            f"the audit database must be a path or a sqlite3 connection, not {target!r}"
        )

    def _open(self) -> bool:
        """Check or migrate the schema; whether the host's definities table is there."""
        where = self.location
        if self._shared is None and Path(self.file).is_dir():
            raise StoreError(f"{where} is a directory, not a database file", path=where)
        own_file = self._shared is None
        if (self.read_only or not self.create) and own_file and not Path(self.file).is_file():
            raise StoreError(f"no database at {where}", path=where)
        try:
            if self.read_only:
                _schema.check(self._reader(), path=where, current=True)
                return False
            if not self.create and own_file:  # looked at before anything is written to it
                with contextlib.closing(connect_read_only(self.file, self.busy_timeout_ms)) as c:
                    _schema.check(c, path=where)
            conn = self._reader()
            _schema.migrate(conn, path=where)
            return _schema.ensure_host_objects(conn)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot use the audit database {where}: {exc}", path=where) from exc

    # -- connections ---------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        """A connection of this store's own (closed with it), or the caller's in-memory one."""
        if self._shared is not None:
            return self._shared
        conn = self.open_connection()
        self._all.append(conn)
        return conn

    def open_connection(self) -> sqlite3.Connection:
        """A new connection to the file, read-only if the store is."""
        if self.read_only:
            return connect_read_only(self.file, self.busy_timeout_ms)
        return connect(self.location, self.busy_timeout_ms)

    def _reader(self) -> sqlite3.Connection:
        """The connection of this thread (a fresh one after ``fork()``)."""
        found: tuple[int, sqlite3.Connection] | None = getattr(self._local, "conn", None)
        if found is not None and found[0] == os.getpid():
            return found[1]
        conn = self._connect()
        self._local.conn = (os.getpid(), conn)
        return conn

    @contextlib.contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The connection of this thread, once the queued writes of this process are in."""
        self.flush()
        with self._guard():
            try:
                yield self._reader()
            except sqlite3.Error as exc:
                raise StoreError(
                    f"cannot read the audit database {self.location}: {exc}", path=self.location
                ) from exc

    def _guard(self) -> contextlib.AbstractContextManager[object]:
        return self._lock if self._shared is not None else contextlib.nullcontext()

    # -- the writer ----------------------------------------------------------------------

    refused: tuple[type[Exception], ...] = (sqlite3.IntegrityError,)
    errors: tuple[type[Exception], ...] = (sqlite3.Error,)

    def could_not(self, what: str, cause: BaseException) -> str:
        """``could not write the log in FILE: ...``."""
        return f"could not {what} in {self.location}: {cause}"

    def inline(self) -> Writes | None:
        """A caller's in-memory connection: its writes run here and now.

        It has no disk to wait for and may belong to one thread: a transaction of ours,
        under its lock (:meth:`_guard`).
        """
        if self._shared is None:
            return None
        return Writes(Link(self.location, self.file, self.open_connection, self._shared), CHAIN)

    @property
    def writer_key(self) -> str:
        """The file, and the parameters of a ``file:`` URI (``mode=ro`` opens it apart)."""
        _, _, parameters = self.location.partition("?")
        return f"{self.file}?{parameters}" if parameters else self.file

    def committer(self) -> Writes:
        """The writer side of this file (one per process, shared by its store objects)."""
        return Writes(Link(self.location, self.file, self.open_connection), CHAIN)

    def flush(self) -> None:
        """Wait until this process's queued writes to this file are committed."""
        if self._shared is None:
            super().flush()

    # -- writes ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _maintenance(self) -> Iterator[sqlite3.Connection]:
        """The connection of this thread, for work outside the writer (once it caught up)."""
        with self.reading() as conn:
            try:
                yield conn
            except sqlite3.Error as exc:
                raise AuditWriteError(
                    f"could not change {self.location}: {exc}", path=self.location
                ) from exc

    def erase_definitie(self, definitie_id: int) -> int:
        """Delete a definitie's rows so that their text is in neither file; return how many."""
        with self._maintenance() as conn:
            return erase(conn, definitie_id)

    def retain(self, before: str, batch: int) -> tuple[int, int]:
        """Delete the rows and reviews from before ``before`` that no hold keeps."""
        with self._maintenance() as conn:
            return retain(conn, before, batch)

    def finish_erasures(self) -> list[int]:
        """Finish the erasures the host's ``DELETE FROM definities`` requested.

        A trigger blanked and deleted the rows; merging the index and truncating the WAL
        are ours. The ids finished; none while a reader keeps the WAL from restarting.
        """
        with self._maintenance() as conn:
            return finish_erasures(conn)

    def scrub(self) -> None:
        """Remove the bytes of rows deleted by any connection (index merged, VACUUM, WAL)."""
        self.finish_erasures()
        with self._maintenance() as conn:
            scrub(conn)

    def checkpoint(self) -> None:
        """Copy the WAL into the database file and truncate it."""
        with self._maintenance() as conn:
            truncate_wal(conn)

    def refresh_host_objects(self) -> bool:
        """Create the views and erasure triggers if a ``definities`` table now exists."""
        with self._maintenance() as conn:
            self.has_host = _schema.ensure_host_objects(conn)
        if self.has_host and self._shared is None:
            self.writer().start()
        return self.has_host

    # -- reads -------------------------------------------------------------------------------

    def fetch(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Run a query; rows as dictionaries."""
        with self.reading() as conn:
            cursor = conn.execute(sql, params)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def fetch_tuples(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        """Run a query; rows as tuples."""
        with self.reading() as conn:
            return [tuple(row) for row in conn.execute(sql, params).fetchall()]

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[_chain.Snapshot]:
        """One read transaction on a connection of its own, its results streamed."""
        self.flush()
        conn = self._connect()
        own = conn is not self._shared
        try:
            with self._guard():
                if own:
                    conn.execute("BEGIN")
                has_definities = _schema.has_host_table(conn)
                yield _chain.Snapshot(lambda sql: iter(conn.execute(sql)), has_definities)
        except sqlite3.Error as exc:
            raise StoreError(
                f"cannot read the audit database {self.location}: {exc}", path=self.location
            ) from exc
        finally:
            if own:
                self._all.remove(conn)
                conn.close()

    def schema_version(self) -> int:
        """The newest migration applied."""
        with self.reading() as conn:
            return _schema.current_version(conn)

    def sizes(self) -> dict[str, int | None]:
        """The file's and its WAL's bytes, and the room left on their volume."""
        return file_sizes(None if self._shared is not None else self.file)

    def close(self) -> None:
        """Commit what is queued, give the writer back, close this store's own connections."""
        self.close_writer()
        self.closed = True
        for conn in self._all:
            if conn is not self._shared:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
        self._all.clear()
        self._local = threading.local()
