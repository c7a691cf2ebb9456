"""SQLite's connections: a file opened read-write, the writer's link, the erasure tail.

The writer's link is this backend's side of the one write path (``_store.Writes``); the
erasure tail (the full-text index merged, the WAL truncated) runs on the writer's
connection when it is idle, and in a store's own maintenance transactions.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import tenacity

from audited_openai import _chain, _schema, _sql
from audited_openai._errors import AuditWriteError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

FILE_MODE = 0o600
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


def connect_read_only(file: str, busy_timeout_ms: int) -> sqlite3.Connection:
    """Open ``file`` for reading only; on a read-only file system as immutable.

    SQLite must create the ``-shm`` file to read a WAL database; where it cannot
    (and none is there), the file can only be read as one nobody changes.
    """
    uri = "file:" + quote(file) + "?mode=ro"
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
        conn.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
        return conn
    raise AssertionError  # pragma: no cover - the loop returns or raises


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
            truncate_wal(self._connection(full=False))

    def idle(self) -> None:
        """The writer's housekeeping: finish erasures the host's connection requested."""
        finish_erasures(self._connection(full=False))

    def close(self) -> None:
        """Close the writer's connection (not a caller's)."""
        if self._conn is not None and self._own:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None


def erase(conn: sqlite3.Connection, definitie_id: int) -> int:
    """Delete a definitie's rows so that their text is in neither file; return how many."""
    conn.execute("PRAGMA secure_delete = ON")
    with transaction(conn):
        ids = CHAIN.erase(conn, definitie_id)
        if ids:  # a deletion only marks the index; merging drops the old terms
            conn.execute(_schema.MERGE_FTS)
    truncate_wal(conn)
    return len(ids)


def retain(conn: sqlite3.Connection, before: str, batch: int) -> tuple[int, int]:
    """Delete the rows and reviews from before ``before`` (none held), as :func:`erase` does.

    A transaction per ``batch`` of each, so memory stays flat and the writer gets its
    turns; (rows, reviews) deleted.
    """
    conn.execute("PRAGMA secure_delete = ON")
    rows = reviews = 0
    while True:
        with transaction(conn):
            done = CHAIN.retain(conn, before, batch)
        rows, reviews = rows + done[0], reviews + done[1]
        if max(done) < batch:
            break
    if rows:
        with transaction(conn):
            conn.execute(_schema.MERGE_FTS)
    truncate_wal(conn)
    return rows, reviews


def scrub(conn: sqlite3.Connection) -> None:
    """Remove the bytes of deleted rows: the index merged, ``VACUUM``, the WAL truncated."""
    with transaction(conn):
        conn.execute(_schema.MERGE_FTS)
    conn.execute("VACUUM")
    truncate_wal(conn)


def truncate_wal(conn: sqlite3.Connection) -> bool:
    """Copy the WAL into the database file and truncate it; False if a reader kept it."""
    return not conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]


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
        with transaction(conn):
            ids = sorted(
                {r[0] for r in conn.execute("SELECT definitie_id FROM generation_log_erasures")}
            )
            conn.execute(_schema.MERGE_FTS)
        if not truncate_wal(conn):
            return []
        with transaction(conn):
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
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
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


def main_file(conn: sqlite3.Connection) -> str:
    for row in conn.execute("PRAGMA database_list"):
        if row[1] == "main":
            return str(row[2] or "")
    return ""  # pragma: no cover - every connection has a main database


def file_sizes(file: str | None) -> dict[str, int | None]:
    """A database file's and its WAL's bytes and the room on their volume (None: in memory)."""
    if file is None:
        return dict.fromkeys(("database", "wal", "table", "free"))
    wal = Path(file + "-wal")
    return {
        "database": Path(file).stat().st_size,
        "wal": wal.stat().st_size if wal.exists() else 0,
        "table": None,
        "free": shutil.disk_usage(Path(file).parent).free,
    }
