"""PostgreSQL's connections: the driver, the shared read pools, and the writer's link.

A lost connection is opened again (tenacity, a few seconds at most). The password of a
URL is used here only to connect: never stored, logged or shown.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import tenacity

from audited_openai._errors import AuditWriteError, InvalidLogError, StoreError
from audited_openai._store import redacted

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

RECONNECT_S = 3.0  # a lost connection is tried again for this long, then a write fails


def driver() -> Any:
    try:
        import psycopg  # noqa: PLC0415 - an optional extra
        import psycopg_pool  # noqa: PLC0415, F401
    except ImportError as exc:
        raise StoreError(
            "a postgresql:// audit database needs psycopg: pip install 'audited-openai[postgres]'"
        ) from exc
    return psycopg


def port(url: str) -> int:
    """The URL's port (5432 if none), or InvalidLogError saying it cannot be one."""
    netloc = urlsplit(url).netloc.rpartition("@")[2]
    given = netloc.rpartition("]")[2].rpartition(":")[2] if ":" in netloc else ""
    if not given:
        return 5432
    if not given.isdigit() or not 1 <= int(given) <= 65535:  # noqa: PLR2004 - TCP ports
        raise InvalidLogError(
            f"{redacted(url)}: the port must be a number from 1 to 65535, not {given!r}", "db"
        )
    return int(given)


# One read pool per database and connection options in a process, shared by its stores
# and closed with the last of them: a store left unclosed (a Streamlit rerun, say) costs
# no connections or threads of its own, and a pool is never collected by a thread of its own.
_POOLS: dict[tuple[str, str], tuple[ConnectionPool, int]] = {}
_POOLS_LOCK = threading.Lock()


def shared_pool(url: str, options: str) -> ConnectionPool:
    from psycopg_pool import ConnectionPool  # noqa: PLC0415 - the extra, checked before

    with _POOLS_LOCK:
        pool, users = _POOLS.get((url, options), (None, 0))
        if pool is None or pool.closed:
            pool, users = (
                ConnectionPool(
                    url,
                    min_size=1,
                    max_size=4,
                    kwargs={"autocommit": True, "options": options},
                    check=ConnectionPool.check_connection,
                    timeout=RECONNECT_S + 2,  # a read waits this long for the server, then fails
                    open=True,
                ),
                0,
            )
        _POOLS[url, options] = (pool, users + 1)
        return pool


def release_pool(url: str, options: str) -> None:
    with _POOLS_LOCK:
        pool, users = _POOLS.pop((url, options), (None, 0))
        if pool is None:
            return
        if users > 1:
            _POOLS[url, options] = (pool, users - 1)
        else:
            pool.close()


def _forget_pools_after_fork() -> None:
    global _POOLS_LOCK  # noqa: PLW0603 - process-wide state, new in the child
    _POOLS.clear()  # their threads and sockets are the parent's
    _POOLS_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_forget_pools_after_fork)


def cannot(what: str, where: str, exc: BaseException) -> str:
    said = " ".join(str(exc).split()) or type(exc).__name__
    return f"cannot {what} PostgreSQL at {where}: {said}"


def connect(
    psycopg: Any, url: str, options: str, where: str, location: str
) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(  # type: ignore[no-any-return]
            url, autocommit=True, connect_timeout=5, options=options
        )
    except psycopg.OperationalError as exc:
        raise StoreError(cannot("connect to", where, exc), path=location) from exc


def rollback(psycopg: Any, conn: psycopg.Connection[Any]) -> None:
    if not conn.broken:
        with contextlib.suppress(psycopg.Error):
            conn.execute("ROLLBACK")


class Link:
    """PostgreSQL's side of the one write path: the writer's connection to a database.

    A connection lost is opened again (tenacity, a few seconds at most); one the server
    dropped since the last write is only found out at ``BEGIN``, before anything was
    written on it, and replaced once.
    """

    def __init__(self, psycopg: Any, url: str, options: str, where: str, location: str) -> None:
        """Write to ``url`` (shown as ``location``), connecting at the first commit."""
        self.psycopg, self._url, self._options = psycopg, url, options
        self._where, self.location = where, location
        self.errors: tuple[type[Exception], ...] = (psycopg.Error,)
        self._conn: psycopg.Connection[Any] | None = None
        self._down = False  # the last reconnection failed

    def _connection(self) -> psycopg.Connection[Any]:
        """The connection, opened again if it was lost.

        The first write after the loss tries for a few seconds (a restart); once that
        failed, each write tries once, so that calls are not held while the server is down.
        """
        if self._conn is None or self._conn.closed or self._conn.broken:
            patience = 0.0 if self._down else RECONNECT_S
            try:
                self._conn = tenacity.Retrying(
                    retry=tenacity.retry_if_exception_type(StoreError),
                    stop=tenacity.stop_after_delay(patience),
                    wait=tenacity.wait_exponential(multiplier=0.05, max=0.5),
                    reraise=True,
                )(connect, self.psycopg, self._url, self._options, self._where, self.location)
            except StoreError:
                self._down = True
                raise
            self._down = False
        return self._conn

    def ready(self, *, full: bool) -> None:
        """Nothing: the level is set in the transaction itself."""

    def begin(self, *, full: bool) -> psycopg.Connection[Any]:
        """``BEGIN; SET LOCAL synchronous_commit`` in one round trip."""
        begin = f"BEGIN; SET LOCAL synchronous_commit = {'on' if full else 'off'}"
        conn = self._connection()
        try:
            conn.execute(begin)
        except self.psycopg.OperationalError:
            if not conn.broken:
                raise
            conn = self._connection()
            conn.execute(begin)
        return conn

    def commit(self, conn: psycopg.Connection[Any]) -> None:
        """``COMMIT``."""
        conn.execute("COMMIT")

    def rollback(self, conn: psycopg.Connection[Any]) -> None:
        """Roll back, unless the connection is gone."""
        rollback(self.psycopg, conn)

    def broken(self, conn: psycopg.Connection[Any]) -> bool:
        """Whether the server dropped the connection."""
        return bool(conn.broken)

    def failed(self, what: str, cause: BaseException) -> AuditWriteError:
        """``cannot write to PostgreSQL at HOST:PORT, database NAME: ...``."""
        said = str(cause) if isinstance(cause, StoreError) else cannot(what, self._where, cause)
        error = AuditWriteError(said, path=self.location)
        error.__cause__ = cause
        return error

    def after(self) -> None:
        """Nothing to tend."""

    def idle(self) -> None:
        """Nothing to tidy: deleting a definitie cascades through a real foreign key."""

    def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
