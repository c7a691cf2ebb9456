"""The PostgreSQL store: one audit trail for every app server (``pip install '...[postgres]'``).

The same table, statuses and promises as the SQLite store, through the same writer
thread (``_writer``) on a connection of its own: pending rows commit with
``synchronous_commit=on`` (durable once committed) before the request leaves;
completions may commit with ``synchronous_commit=off`` under "balanced" (a server
crash can lose the last completions, leaving their rows ``pending``, never a pending
row). Reads use a ``psycopg_pool`` pool, one per database in a process. Full-text
search is a ``tsvector`` of each completed row (Dutch, stemmed, and word for word) with
a GIN index. Timestamps are the
library's one UTC text format, as in SQLite, so that the same SQL reads both.

A lost connection is opened again (tenacity, a few seconds at most): while the server
is down, writes fail at once as ``AuditWriteError`` (under "raise" nothing is sent;
under "warn" rows are spooled), and once it is back the next write reconnects. The
password of the URL is kept only to connect: never stored, logged or shown.

The connections, the read pools and the writer's link are ``_postgres_connect``'s; the
migrations and the host's objects ``_postgres_schema``'s.
"""

from __future__ import annotations

import contextlib
import itertools
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from audited_openai import _chain, _sql
from audited_openai import _postgres_schema as schema
from audited_openai._errors import AuditWriteError, StoreError
from audited_openai._postgres_connect import (
    Link,
    cannot,
    connect,
    driver,
    port,
    release_pool,
    rollback,
    shared_pool,
)
from audited_openai._postgres_schema import WRITTEN
from audited_openai._store import Rows, Writes, checked_durability, redacted

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    import psycopg
    from psycopg_pool import ConnectionPool

    from audited_openai._store import Durability


class PostgresStore(Rows):
    """``generation_logs`` in a PostgreSQL database; see the module docstring."""

    dialect = _sql.POSTGRES
    chain = WRITTEN

    def __init__(
        self,
        url: str,
        *,
        durability: Durability = "balanced",
        busy_timeout_ms: int = 30_000,
        read_only: bool = False,
        create: bool = True,
    ) -> None:
        """Connect to ``url`` (``postgresql://user:password@host:port/database``) and migrate.

        ``read_only``: change nothing (a database without a current trail is refused);
        ``create=False``: a database without a trail is refused untouched.
        """
        checked_durability(durability)
        self.psycopg = driver()
        self.refused: tuple[type[Exception], ...] = (self.psycopg.errors.IntegrityError,)
        self.errors: tuple[type[Exception], ...] = (self.psycopg.Error,)
        self.durability: Durability = durability
        self.read_only = read_only
        self._url = url
        self.location = self.name = redacted(url)
        self.reopen_target = url  # for a verify worker (on its stdin, never in argv)
        parts = urlsplit(url)
        database = parts.path.lstrip("/") or "(default)"
        self._where = f"{parts.hostname or 'localhost'}:{port(url)}, database {database}"
        self._options = f"-c lock_timeout={int(busy_timeout_ms)}" + (
            " -c default_transaction_read_only=on" if read_only else ""
        )
        self.closed = False
        # a clear error now for a wrong password, database or host
        conn = connect(self.psycopg, url, self._options, self._where, self.location)
        try:
            if read_only or not create:
                schema.check(conn, path=self.location, current=read_only)
            if not read_only:
                self._migrate(conn)
                self.refresh_host_objects(conn)
        finally:
            conn.close()
        self._pool: ConnectionPool | None = shared_pool(url, self._options)

    # -- connections -------------------------------------------------------------------------

    def _reads(self) -> ConnectionPool:
        if self._pool is None:
            raise StoreError(f"{self.location} is closed", path=self.location)
        return self._pool

    def _cannot(self, what: str, exc: BaseException) -> str:
        return cannot(what, self._where, exc)

    @contextlib.contextmanager
    def reading(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection, once this process's queued writes are in."""
        self.flush()
        try:
            with self._reads().connection() as conn:
                yield conn
        except self.psycopg.Error as exc:
            raise StoreError(self._cannot("read from", exc), path=self.location) from exc

    def fetch(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Rows of a query, as dictionaries."""
        from psycopg.rows import dict_row  # noqa: PLC0415

        with self.reading() as conn, conn.cursor(row_factory=dict_row) as cursor:
            return cursor.execute(sql, params).fetchall()

    def fetch_tuples(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        """Rows of a query, as tuples."""
        with self.reading() as conn:
            return [tuple(row) for row in conn.execute(sql, params).fetchall()]

    # -- the schema -----------------------------------------------------------------------

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        """Create the schema once; two processes doing it at once take turns."""
        try:
            schema.migrate(conn, path=self.location)
        except self.psycopg.Error as exc:
            raise StoreError(self._cannot("migrate", exc), path=self.location) from exc

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[_chain.Snapshot]:
        """One REPEATABLE READ transaction; each query streamed by a server-side cursor."""
        self.flush()
        names = itertools.count()
        try:
            with self._reads().connection() as conn:
                conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                try:
                    has_definities = bool(
                        conn.execute("SELECT to_regclass('definities')").fetchone()[0]  # type: ignore[index]
                    )

                    def rows(sql: str) -> Iterator[Sequence[Any]]:
                        with conn.cursor(name=f"audited_openai_{next(names)}") as cursor:
                            cursor.itersize = 2000
                            cursor.execute(sql)
                            yield from cursor

                    yield _chain.Snapshot(rows, has_definities)
                finally:
                    rollback(self.psycopg, conn)
        except self.psycopg.Error as exc:
            raise StoreError(self._cannot("read", exc), path=self.location) from exc

    def refresh_host_objects(self, conn: psycopg.Connection[Any] | None = None) -> bool:
        """Add the foreign key to the host's ``definities`` and the views, if it is there."""
        with contextlib.ExitStack() as stack:
            return schema.add_host_objects(conn or stack.enter_context(self._reads().connection()))

    def schema_version(self) -> int:
        """The newest migration applied."""
        with self.reading() as conn:
            return schema.version(conn)

    def sizes(self) -> dict[str, int | None]:
        """The database's bytes and the trail's (rows, events, indexes, TOAST).

        The server's volume is not this client's to see.
        """
        found = self.fetch(
            "SELECT pg_database_size(current_database()) AS database,"
            " pg_total_relation_size('generation_logs')"
            f" + pg_total_relation_size('{_sql.EVENTS}') AS trail"
        )[0]
        return {"database": found["database"], "wal": None, "table": found["trail"], "free": None}

    # -- writes -----------------------------------------------------------------------------

    def could_not(self, what: str, cause: BaseException) -> str:
        """``cannot write the log in PostgreSQL at HOST:PORT, database NAME: ...``."""
        return self._cannot(what + " in", cause)

    def committer(self) -> Writes:
        """The writer side of this database (one per process, shared by its store objects)."""
        link = Link(self.psycopg, self._url, self._options, self._where, self.location)
        return Writes(link, WRITTEN)

    def erase_definitie(self, definitie_id: int) -> int:
        """Delete a definitie's rows: gone from every query and from pg_dump."""

        def work(conn: psycopg.Connection[Any]) -> int:
            return len(WRITTEN.erase(conn, definitie_id))

        return int(self.submit(work, durable=True, what="erase").result())

    def retain(self, before: str, batch: int) -> tuple[int, int]:
        """Delete the rows and reviews from before ``before`` that no hold keeps."""
        rows = reviews = 0
        while True:
            done = self.submit(
                lambda conn: WRITTEN.retain(conn, before, batch), durable=True, what="retain"
            ).result()
            rows, reviews = rows + done[0], reviews + done[1]
            if max(done) < batch:
                return rows, reviews

    def finish_erasures(self) -> list[int]:
        """Nothing is left to finish: the foreign key's cascade deletes at once."""
        return []

    def scrub(self) -> None:
        """VACUUM the table: the space of deleted rows is reclaimed, their bytes dropped."""
        self.flush()
        try:
            with self._reads().connection() as conn:
                conn.execute("VACUUM generation_logs")
        except self.psycopg.Error as exc:
            raise AuditWriteError(self._cannot("vacuum", exc), path=self.location) from exc

    def close(self) -> None:
        """Commit what is queued, give the writer back, close the connections."""
        self.close_writer()
        self.closed = True
        if self._pool is not None:
            release_pool(self._url, self._options)
            self._pool = None
