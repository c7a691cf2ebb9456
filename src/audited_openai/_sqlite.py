"""The SQLite store: a file (or a caller's in-memory connection) holding ``generation_logs``.

Writes go through one writer thread per file and process (see ``_writer``), shared by
every store object of the file, on a connection of its own (:class:`Writes`), each batch
in one ``BEGIN IMMEDIATE`` transaction: writers of
other processes queue on SQLite's lock with a busy timeout instead of failing with
"database is locked". A batch holding a pending row commits with
``synchronous=FULL``; one of completions only with ``NORMAL`` (WAL: a process crash
loses nothing, a power cut at worst a completion). Reads use one connection per
thread; no connection crosses ``fork()``.

While a process has the file open and the host app's ``definities`` table is there,
the writer's idle time finishes the erasures the host's own connection started (see
:meth:`SQLiteStore.finish_erasures`).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import tenacity

from audited_openai import _chain, _schema, _sql
from audited_openai._errors import AuditWriteError, StoreError
from audited_openai._store import Durability, Rows, Writes, checked_durability

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

FILE_MODE = 0o600
DEFAULT_BUSY_TIMEOUT_MS = 30_000
IN_MEMORY = ":memory:"
WAL_LIMIT = 32 * 2**20  # bytes: past this the writer truncates the WAL
CHAIN = _chain.Chain(_sql.SQLITE)


def retry_busy(action: Callable[[], Any], timeout_s: float) -> Any:
    """Run ``action`` again while SQLite says the database is locked or busy, up to a deadline.

    Two processes switching a fresh file to WAL at once can get SQLITE_BUSY without
    the busy handler being asked; every other error passes at once.
    """
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(
            lambda exc: (
                isinstance(exc, sqlite3.OperationalError)
                and ("locked" in str(exc) or "busy" in str(exc))
            )
        ),
        stop=tenacity.stop_after_delay(timeout_s),
        wait=tenacity.wait_random(0.001, 0.01),
        reraise=True,
    )(action)


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
        # What open_store needs to open this file again, in another process.
        self.reopen_target = None if self._shared is not None else self.location
        # One name for the file however it was spelt: every store of it flushes together.
        self.file = os.path.realpath(self.location.removeprefix("file:").split("?", 1)[0])
        self.name = self.file
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self.closed = False
        self.has_host = self._open()
        if self.has_host:
            self.writer().start()  # its idle time finishes the host's erasures

    def _locate(self, target: object) -> str:
        if isinstance(target, sqlite3.Connection):
            location = _main_file(target) or IN_MEMORY
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
                with contextlib.closing(self._connect_read_only()) as looking:
                    _schema.check(looking, path=where)
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
            return self._connect_read_only()
        return connect(self.location, self.busy_timeout_ms)

    def _connect_read_only(self) -> sqlite3.Connection:
        """Open the file for reading only; on a read-only file system as immutable.

        SQLite must create the ``-shm`` file to read a WAL database; where it cannot
        (and none is there), the file can only be read as one nobody changes.
        """
        uri = "file:" + quote(self.file) + "?mode=ro"
        for suffix in ("", "&immutable=1"):
            conn = sqlite3.connect(
                uri + suffix, uri=True, isolation_level=None, check_same_thread=False
            )
            try:
                conn.execute("PRAGMA schema_version").fetchone()
            except sqlite3.OperationalError:
                conn.close()
                if suffix:
                    raise
                continue
            conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
            return conn
        raise AssertionError  # pragma: no cover - the loop returns or raises

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
            conn.execute("PRAGMA secure_delete = ON")
            with _transaction(conn):
                ids = sorted(
                    row[0]
                    for row in conn.execute(
                        "DELETE FROM generation_logs WHERE definitie_id = ? RETURNING id",
                        (definitie_id,),
                    ).fetchall()
                )
                note = f"erase --definitie {definitie_id}: {_chain.command()}"
                for log_id in ids:
                    CHAIN.append(conn, "erase", log_id, erased_from=definitie_id, note=note)
                deleted = len(ids)
                if deleted:  # a deletion only marks the index; merging drops the old terms
                    conn.execute(_schema.MERGE_FTS)
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return int(deleted)

    def finish_erasures(self) -> list[int]:
        """Finish what deleting a definitie through the host's own connection started.

        The host's ``DELETE FROM definities`` blanks the definitie's texts in place and
        deletes its rows (a trigger), and requests the rest, which only this library
        can do: merge the full-text index and truncate the WAL. Returns the definitie
        ids finished (none if nothing was requested, or if a reader kept the WAL from
        restarting: then they stay requested).
        """
        with self._maintenance() as conn:
            return finish_erasures(conn)

    def scrub(self) -> None:
        """Remove the bytes of rows deleted by any connection (index merged, VACUUM, WAL)."""
        self.finish_erasures()
        with self._maintenance() as conn:
            with _transaction(conn):
                conn.execute(_schema.MERGE_FTS)
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()

    def checkpoint(self) -> None:
        """Copy the WAL into the database file and truncate it."""
        with self._maintenance() as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()

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


def connect(location: str, busy_timeout_ms: int) -> sqlite3.Connection:
    """A read-write connection: WAL, a busy timeout, foreign keys; the file made 0600."""
    if not location.startswith("file:") and not Path(location).exists():
        # Created here so it is 0600 whatever the umask (the -wal and -shm files
        # take the database file's mode).
        os.close(os.open(location, os.O_RDWR | os.O_CREAT, FILE_MODE))
    conn = sqlite3.connect(
        location,
        uri=location.startswith("file:"),
        isolation_level=None,
        check_same_thread=False,
        timeout=busy_timeout_ms / 1000,
    )
    conn.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
    retry_busy(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone(), busy_timeout_ms / 1000)
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


class Link:
    """SQLite's side of the one write path: the writer's one connection to a file.

    One connection, not one per sync level: a second one would find its page cache
    stale after every write of the first. A caller's in-memory connection (``conn``) is
    used as it is: its settings are the caller's.
    """

    errors: tuple[type[Exception], ...] = (sqlite3.Error,)

    def __init__(
        self,
        location: str,
        file: str,
        connect: Callable[[], sqlite3.Connection],
        conn: sqlite3.Connection | None = None,
    ) -> None:
        """Write to ``location`` (the path ``file``) on a connection from ``connect()``.

        It connects at the first commit.
        """
        self.location, self.file, self._connect = location, file, connect
        self._conn, self._own = conn, conn is None
        self._level = ""

    def _connection(self, *, full: bool) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self._connect()
        wanted = "FULL" if full else "NORMAL"
        if self._own and self._level != wanted:
            self._conn.execute(f"PRAGMA synchronous = {wanted}")
            self._level = wanted
        return self._conn

    def ready(self, *, full: bool) -> None:
        """Switch the connection's sync level."""
        self._connection(full=full)

    def begin(self, *, full: bool) -> sqlite3.Connection:
        """``BEGIN IMMEDIATE``: the transaction takes the database's write lock first."""
        conn = self._connection(full=full)
        conn.execute("BEGIN IMMEDIATE")
        return conn

    def commit(self, conn: sqlite3.Connection) -> None:
        """``COMMIT``."""
        conn.execute("COMMIT")

    def rollback(self, conn: sqlite3.Connection) -> None:
        """Roll back, if a transaction is open."""
        _rollback(conn)

    def broken(self, conn: sqlite3.Connection) -> bool:
        """Never: a file connection is not lost between statements."""
        del conn
        return False

    def failed(self, what: str, cause: BaseException) -> AuditWriteError:
        """``could not write to FILE: ...``."""
        return _write_error(f"could not {what} {self.location}", cause, self.location)

    def after(self) -> None:
        """Truncate the WAL once it passes ``WAL_LIMIT``.

        SQLite's own checkpoints are passive: with writers in other processes and a
        reader always at work, they never catch up, and the WAL grows without bound. A
        TRUNCATE checkpoint waits (the busy timeout) for the readers of old snapshots.
        """
        try:
            if Path(self.file + "-wal").stat().st_size < WAL_LIMIT:
                return
        except OSError:  # no WAL (yet)
            return
        with contextlib.suppress(sqlite3.Error):  # a busy WAL stays for the next commit
            self._connection(full=False).execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def idle(self) -> None:
        """The writer's housekeeping: finish erasures the host's connection requested."""
        finish_erasures(self._connection(full=False))

    def close(self) -> None:
        """Close the writer's connection (not a caller's)."""
        if self._conn is not None and self._own:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None


def finish_erasures(conn: sqlite3.Connection) -> list[int]:
    """Merge the index and truncate the WAL for the erasures the host requested.

    The definitie ids finished; none if none was requested, or if a reader kept the
    WAL from restarting (then they stay requested).
    """
    try:
        if not conn.execute("SELECT 1 FROM generation_log_erasures LIMIT 1").fetchone():
            return []
    except sqlite3.OperationalError:  # no definities table: never requested
        return []
    before = conn.execute("PRAGMA secure_delete").fetchone()[0]
    conn.execute("PRAGMA secure_delete = ON")  # the old index pages are zeroed
    try:
        with _transaction(conn):
            ids = sorted(
                {r[0] for r in conn.execute("SELECT definitie_id FROM generation_log_erasures")}
            )
            conn.execute(_schema.MERGE_FTS)
        if conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]:
            return []
        with _transaction(conn):
            conn.executemany(
                "DELETE FROM generation_log_erasures WHERE definitie_id = ?", [(i,) for i in ids]
            )
    finally:  # the writer's own connection writes on without zeroing what it frees
        conn.execute(f"PRAGMA secure_delete = {int(before)}")
    return ids


def _write_error(message: str, cause: BaseException, location: str) -> AuditWriteError:
    error = AuditWriteError(f"{message}: {cause}", path=location)
    error.__cause__ = cause
    return error


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """A write transaction outside the writer; the chain's events sealed before its end."""
    CHAIN.discard()
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        CHAIN.seal(conn)
    except BaseException:
        _rollback(conn)
        raise
    conn.execute("COMMIT")


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _main_file(conn: sqlite3.Connection) -> str:
    for row in conn.execute("PRAGMA database_list"):
        if row[1] == "main":
            return str(row[2] or "")
    return ""  # pragma: no cover - every connection has a main database
