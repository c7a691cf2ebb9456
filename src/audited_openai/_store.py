"""The one interface to a database (:class:`Store`), and its one write path (:class:`Writes`).

The clients, the repository, the query module and the CLI use nothing else, so no
database detail (PRAGMAs, row-id arithmetic, full-text syntax) leaks above it. Writes
return ``concurrent.futures.Future`` objects settled by the database's writer thread
once committed; reads see this process's own writes. SQL comes from ``_sql`` in the
store's dialect. :func:`open_store` picks the backend for a path, URL or connection.

Every backend commits through :class:`Writes`, which makes the decisions once (the
durable writes first, one transaction a batch, each write again alone when one fails,
the chain's events sealed before the commit); a backend's :class:`Link` only begins,
commits and rolls back on its connection, and says in its words what failed.
"""

from __future__ import annotations

import functools
import os
import re
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit

from audited_openai import _review, _sql
from audited_openai._chain import command, review_state
from audited_openai._errors import AuditWriteError, InvalidLogError, StoreError
from audited_openai._writer import Job, Owner, all_failed, settle

if TYPE_CHECKING:
    import contextlib
    import sqlite3
    from collections.abc import Callable
    from concurrent.futures import Future

    from audited_openai._chain import Chain, Snapshot
    from audited_openai._sql import Dialect
    from audited_openai._writer import Outcome


POSTGRES_SCHEMES = ("postgresql://", "postgres://")
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
Durability = Literal["full", "balanced"]
DURABILITIES: tuple[Durability, ...] = ("balanced", "full")


def redacted(url: str) -> str:
    """The URL without its password (in the user part or as ``?password=``)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "password"]
    if parts.password is None and len(query) == len(parse_qsl(parts.query, keep_blank_values=True)):
        return url
    netloc = parts.netloc.rpartition("@")[2]
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    rest = f"?{urlencode(query)}" if query else ""
    return f"{parts.scheme}://{netloc}{parts.path}{rest}"


def checked_durability(value: object) -> Durability:
    """``value`` if it is a durability, else ValueError saying what is."""
    if value not in DURABILITIES:
        raise ValueError(f"durability must be 'full' or 'balanced', not {value!r}")
    return value


class Link(Protocol):
    """A backend's connection for its writer: what differs between databases, and only that."""

    location: str
    errors: tuple[type[Exception], ...]  # what its driver raises

    def ready(self, *, full: bool) -> None:
        """Set the connection up for a transaction synced in full, or not (before it begins)."""
        ...

    def begin(self, *, full: bool) -> Any:
        """The connection, in a new write transaction."""
        ...

    def commit(self, conn: Any) -> None:
        """Commit the transaction."""
        ...

    def rollback(self, conn: Any) -> None:
        """Roll it back (quietly: the write's own error is what is reported)."""
        ...

    def broken(self, conn: Any) -> bool:
        """Whether the connection is lost (no write can be tried again on it)."""
        ...

    def failed(self, what: str, cause: BaseException) -> AuditWriteError:
        """The error of writes that could not be done (``what``: "write to", "commit to")."""
        ...

    def after(self) -> None:
        """Once a batch is committed (SQLite: keep the WAL small)."""
        ...

    def idle(self) -> None:
        """Housekeeping while nothing is queued."""
        ...

    def close(self) -> None:
        """Close the connection."""
        ...


class Writes:
    """The one write path: what the writer thread of a database commits, and how."""

    def __init__(self, link: Link, chain: Chain) -> None:
        """Commit on ``link``'s connection, sealing ``chain``'s events before each commit."""
        self.link, self.chain = link, chain

    def commit(self, jobs: list[Job]) -> None:
        """Commit a batch: the durable writes (pending rows, which callers wait for) first.

        Their callers go on while the rest (completions, which nobody waits for)
        commits after them, synced in full only if one of them asks for it. No write of
        a batch depends on another of it: a completion is queued once its pending row is
        committed. The connection is set up for the second transaction before the
        callers are woken: once they run, every call into the driver waits for the GIL.
        """
        durable = [job for job in jobs if job.durable]
        relaxed = [job for job in jobs if not job.durable]
        full = any(job.full for job in relaxed)
        done = self.run(durable, full=True) if durable else []
        if relaxed:
            self.link.ready(full=full)
        settle(done)
        if relaxed:
            settle(self.run(relaxed, full=full))
        self.link.after()

    def run(self, jobs: list[Job], *, full: bool) -> list[Outcome]:
        """Run ``jobs`` in one transaction; (job, result or error, failed) for each.

        The chain's events are sealed just before the commit, under the write lock, so
        they follow the last ones committed by any process. If one job fails they run
        again, each in its own transaction, so that only the bad one fails.
        """
        self.chain.discard()  # events of a transaction that did not commit
        unbegun: tuple[type[Exception], ...] = (StoreError, *self.link.errors)
        try:
            conn = self.link.begin(full=full)
        except unbegun as exc:  # no lock, no server: all fail
            return all_failed(jobs, self.link.failed("write to", exc))
        try:
            results = [job.work(conn) for job in jobs]
        except Exception as exc:
            self.link.rollback(conn)
            if len(jobs) == 1 or self.link.broken(conn):
                return all_failed(jobs, exc)
            return [outcome for job in jobs for outcome in self.run([job], full=full)]
        try:
            self.chain.seal(conn)
            self.link.commit(conn)
        except self.link.errors as exc:
            self.link.rollback(conn)
            return all_failed(jobs, self.link.failed("commit to", exc))
        return [(job, result, False) for job, result in zip(jobs, results, strict=True)]

    def idle(self) -> None:
        """The backend's housekeeping."""
        self.link.idle()

    def close(self) -> None:
        """Close the writer's connection."""
        self.link.close()


class Rows(Owner):
    """What every store writes the same way: each write and its events, on the one path.

    A backend names its chain, its driver's errors (``refused``: a row the database
    refuses; ``errors``: any other) and their words (:meth:`could_not`).
    """

    dialect: Dialect
    chain: Chain
    location: str
    read_only: bool
    durability: Durability
    refused: tuple[type[Exception], ...]
    errors: tuple[type[Exception], ...]

    def could_not(self, what: str, cause: BaseException) -> str:
        """Words for a write that failed: what could not be done, where, and why."""
        raise NotImplementedError

    def inline(self) -> Writes | None:
        """Where writes run at once instead of on the writer (a caller's own connection)."""
        return None

    def submit(self, work: Callable[[Any], Any], *, durable: bool, what: str) -> Future[Any]:
        """Queue ``work`` for the writer; its future settles after the commit.

        Errors come as the library's own: :class:`InvalidLogError` for a row the
        database refuses, else :class:`AuditWriteError` saying what could not be done.
        """
        if self.read_only:
            raise AuditWriteError(f"{self.location} was opened read-only", path=self.location)
        mapped = functools.partial(self._mapped, work, what)
        inline = self.inline()
        if inline is None:
            return self.writer().submit(mapped, durable=durable, full=self.durability == "full")
        job = Job(mapped, durable=durable)
        settle(inline.run([job], full=True))
        return job.future

    def _mapped(self, work: Callable[[Any], Any], what: str, conn: Any) -> Any:
        try:
            return work(conn)
        except self.refused as exc:
            raise InvalidLogError(f"row refused by the database: {exc}") from exc
        except self.errors as exc:
            raise AuditWriteError(self.could_not(what, exc), path=self.location) from exc

    def insert(self, row: dict[str, Any], *, durable: bool = True) -> Future[int]:
        """Queue an INSERT of ``row``; the future gives its id once committed."""
        sql, values = _sql.insert(tuple(row), self.dialect), tuple(row.values())
        pending = row.get("generation_status") == "pending"

        def work(conn: Any) -> int:
            return int(self.chain.written(conn, sql, values, "insert")[0][0])

        what = "write the pending log" if pending else "write the log"
        return self.submit(work, durable=durable, what=what)

    def complete(
        self,
        log_id: int,
        values: dict[str, Any],
        *,
        only_pending: bool,
        priced: Callable[[], dict[str, Any]] | None = None,
    ) -> Future[bool]:
        """Queue the completion of row ``log_id``; the future tells whether a row changed.

        ``priced`` gives more columns (the cost), computed on the writer's thread.
        """

        def work(conn: Any) -> bool:
            row = values if priced is None else {**values, **priced()}
            sql = _sql.complete(tuple(row), self.dialect, only_pending=only_pending)
            return bool(self.chain.written(conn, sql, (*row.values(), log_id), "complete"))

        return self.submit(work, durable=False, what=f"complete log {log_id}")

    def link(self, log_id: int, definitie_id: int) -> Future[bool]:
        """Queue linking row ``log_id`` to a definitie; the future tells whether it exists."""
        sql = _sql.link(self.dialect)
        return self.submit(
            lambda conn: bool(self.chain.written(conn, sql, (definitie_id, log_id), "link")),
            durable=False,
            what=f"link log {log_id}",
        )

    def record_review(self, row: dict[str, Any]) -> Future[tuple[Any, ...]]:
        """Queue a review (``_review.review_row``'s columns and ``reviewed_at``), durably.

        Its log is the definitie's log (its latest row that is no replay) unless
        ``log_id`` names one; the future gives the review's columns once committed,
        or InvalidLogError when that log is not the definitie's.
        """
        insert, sql = _sql.insert_review(self.dialect), _sql.log_of_definitie(self.dialect)

        def work(conn: Any) -> tuple[Any, ...]:
            definitie_id, log_id = row["definitie_id"], row["log_id"]
            found = conn.execute(sql, (definitie_id, log_id, log_id)).fetchone()
            if found is None:
                raise InvalidLogError(
                    f"definitie {definitie_id} has no generation log"
                    + ("" if log_id is None else f" {log_id}")
                    + " to review",
                    "log_id" if log_id is not None else "definitie_id",
                )
            values = (definitie_id, found[0], *(row[name] for name in _review.COLUMNS[3:]))
            review = tuple(conn.execute(insert, values).fetchone())
            self.chain.append_review(
                "review", int(review[0]), definitie_id, review_state(review), None
            )
            return review

        return self.submit(work, durable=True, what="record the review")

    def reconcile(self, now: str, cutoff: str) -> int:
        """Settle rows pending since before ``cutoff`` as 'timeout'; return how many."""
        sql, note = _sql.reconcile(self.dialect), command()

        def work(conn: Any) -> int:
            return len(self.chain.written(conn, sql, (now, cutoff), "reconcile", note))

        return int(self.submit(work, durable=True, what="reconcile").result())

    def execute(self, sql: str, params: tuple[Any, ...], what: str) -> int:
        """Run one statement that writes no chained row and wait; the rows it changed."""

        def work(conn: Any) -> int:
            return int(conn.execute(sql, params).rowcount)

        return int(self.submit(work, durable=True, what=what).result())

    def execute_many(self, sql: str, rows: list[tuple[Any, ...]], what: str) -> None:
        """Run one statement that writes no chained row for each of ``rows``, and wait."""

        def work(conn: Any) -> None:
            for row in rows:
                conn.execute(sql, row)

        self.submit(work, durable=True, what=what).result()

    def record_check(self, values: tuple[Any, ...]) -> None:
        """Record a verification or a checkpoint (``_sql.record_check``'s columns) and wait."""
        self.execute(_sql.record_check(self.dialect), values, "record the check")


class Store(Protocol):
    """Where generation logs live; see the module docstring."""

    location: str  # a file path, or a URL without its password
    durability: Durability
    dialect: Dialect

    def insert(self, row: dict[str, Any], *, durable: bool = True) -> Future[int]:
        """Queue an INSERT; ``durable`` commits it with a full sync (a pending row)."""
        ...

    def complete(
        self,
        log_id: int,
        values: dict[str, Any],
        *,
        only_pending: bool,
        priced: Callable[[], dict[str, Any]] | None = None,
    ) -> Future[bool]:
        """Queue writing the completion columns of a row (and ``priced()``'s, on its thread)."""
        ...

    def link(self, log_id: int, definitie_id: int) -> Future[bool]:
        """Queue linking a row to a definitie."""
        ...

    def record_review(self, row: dict[str, Any]) -> Future[tuple[Any, ...]]:
        """Queue a review, durably; the future gives its columns."""
        ...

    def flush(self) -> None:
        """Wait until this process's queued writes are committed."""
        ...

    def reconcile(self, now: str, cutoff: str) -> int:
        """Settle rows pending since before ``cutoff`` as 'timeout'."""
        ...

    def erase_definitie(self, definitie_id: int) -> int:
        """Delete a definitie's rows, leaving none of their text behind."""
        ...

    def finish_erasures(self) -> list[int]:
        """Finish erasures the host app's own connection started."""
        ...

    def scrub(self) -> None:
        """Remove what rows deleted by other means left behind."""
        ...

    def refresh_host_objects(self) -> bool:
        """Create the views and triggers over the host's ``definities`` table, if there."""
        ...

    def fetch(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Rows of a query, as dictionaries."""
        ...

    def fetch_tuples(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        """Rows of a query, as tuples."""
        ...

    def snapshot(self) -> contextlib.AbstractContextManager[Snapshot]:
        """One read transaction whose query results are streamed (for ``verify``)."""
        ...

    def schema_version(self) -> int:
        """The newest migration applied."""
        ...

    def record_check(self, values: tuple[Any, ...]) -> None:
        """Record a verification or a checkpoint, for ``status``."""
        ...

    def execute(self, sql: str, params: tuple[Any, ...], what: str) -> int:
        """Run one statement that writes no chained row; the rows it changed."""
        ...

    def retain(self, before: str, batch: int) -> tuple[int, int]:
        """Delete rows and reviews from before ``before``, none held: (rows, reviews)."""
        ...

    def execute_many(self, sql: str, rows: list[tuple[Any, ...]], what: str) -> None:
        """Run one statement for each of ``rows``."""
        ...

    def sizes(self) -> dict[str, int | None]:
        """Bytes: ``database``, ``wal`` (SQLite), ``table`` (PostgreSQL), ``free`` on its volume."""
        ...

    def close(self) -> None:
        """Commit what is queued and release the connections."""
        ...


def open_store(
    target: str | os.PathLike[str] | sqlite3.Connection,
    *,
    durability: Durability = "balanced",
    busy_timeout_ms: int | None = None,
    read_only: bool = False,
    create: bool = True,
) -> Store:
    """Open the store at ``target``: a ``postgresql://`` URL, or a SQLite path or connection.

    It is migrated unless ``read_only``; with ``create=False`` only if it already holds
    an audit trail (a database without one is refused untouched).
    """
    from audited_openai._sqlite import DEFAULT_BUSY_TIMEOUT_MS, SQLiteStore  # noqa: PLC0415

    options: dict[str, Any] = {
        "durability": durability,
        "busy_timeout_ms": DEFAULT_BUSY_TIMEOUT_MS if busy_timeout_ms is None else busy_timeout_ms,
        "read_only": read_only,
        "create": create,
    }
    if isinstance(target, str) and target.startswith(POSTGRES_SCHEMES):
        from audited_openai._postgres import PostgresStore  # noqa: PLC0415

        return PostgresStore(target, **options)
    if isinstance(target, (str, os.PathLike)):
        _check_path(os.fspath(target))
    return SQLiteStore(target, **options)


def _check_path(target: str) -> None:
    """A SQLite path or ``file:`` URI: not empty, and no URL of another database."""
    if not target.strip():
        raise InvalidLogError(
            "the audit database's name is empty: give a file path or a postgresql:// URL", "db"
        )
    found = _URL.match(target)
    if found is None or found.group(1).lower() == "file":
        return
    scheme, rest = found.group(1), target[found.end() :]
    hint = (  # SQLAlchemy's sqlite:///x is the file x, sqlite:////x the file /x
        f" (for SQLite, the file's path itself: {rest.removeprefix('/') or '...'})"
        if scheme.lower().startswith("sqlite")
        else ""
    )
    raise InvalidLogError(
        f"{redacted(target)}: a {scheme}:// database is not supported; give a SQLite file "
        f"path or a postgresql:// URL{hint}",
        "db",
    )
