"""The tamper-evident chain: every write to ``generation_logs`` appends a hashed event.

Each event (``generation_log_events``) records one write to one row: its kind
(``insert``, ``complete``, ``link``, ``reconcile``, ``erase``, ``retain``, or ``adopt``
for rows that were there before the chain), the row's state after it, and a hash over
the event and the hash of the event before. A review's events (``review``, ``erase``,
``retain``) have its id negated as their ``log_id`` (see ``_review``).
A row's state is its columns (``CHAINED``: all but ``updated_at``, in table order) as
a canonical JSON array, every free text (prompt, request, response, error, traceback,
metadata, modules) replaced by its SHA-256 digest, so the chain holds no personal text.
Columns added after the chain began (``LATER_COLUMNS``: ``replay_of``) are in a state
only when set, as an object after the others, so every state recorded before them
still holds:
erasing a definitie deletes its rows and appends ``erase`` events, and the chain
still proves what was there, when it went and by which command.

The event is appended in the same transaction as its write, after the store took
the database's write lock (SQLite's ``BEGIN IMMEDIATE``, PostgreSQL's advisory
lock), so the chain stays linear with any number of threads, processes and hosts
writing, and a killed writer leaves neither a row without its event nor the reverse.

``_verify`` recomputes the chain, ``_checkpoint`` signs and reads its head.
``updated_at`` is bookkeeping (a trigger keeps it) and not covered.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from audited_openai import _review, _sql
from audited_openai._clock import format_ts, utc_now
from audited_openai._rows import (
    CHAINED,
    FIRST_CHAINED,
    LATER_COLUMNS,
    TEXT_COLUMNS,
    WHO_COLUMNS,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

    from audited_openai._sql import Dialect

SINCE_VERSION = 7  # the schema version that added the chain
GENESIS = "0" * 64  # the "hash before" of the first event
# free texts, and who asked (personal data): digests in a state, so erasure leaves none
DIGESTED = frozenset(("prompt_modules_used", *TEXT_COLUMNS, *WHO_COLUMNS))
_DEFINITIE = CHAINED.index("definitie_id")
_DIGESTED_AT = tuple(name in DIGESTED for name in CHAINED)
_FIRST = len(FIRST_CHAINED)
NOTE_LIMIT = 500  # characters of the command line kept in an event
GONE = frozenset(("erase", "retain"))  # events of rows deleted through the library: no state


def command() -> str:
    """The command line of this process, as recorded by adopt, reconcile and erase events."""
    return shlex.join(sys.argv)[:NOTE_LIMIT] or "python"


def digest(value: object) -> str:
    """The digest standing in for a text in a row's state."""
    data = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else bytes(value)  # type: ignore[call-overload]
    return "sha256:" + hashlib.sha256(data).hexdigest()


def state(values: Sequence[Any]) -> str:
    """The canonical JSON of a row: an array of its ``CHAINED`` columns, texts as digests.

    The later columns (absent from ``values`` of a row read before they existed) follow
    as one object of those that are set, or not at all.
    """
    stated: list[Any] = [
        digest(value) if digested and value is not None else value
        for digested, value in zip(_DIGESTED_AT[:_FIRST], values[:_FIRST], strict=True)
    ]
    later = {
        name: digest(value) if name in DIGESTED else value
        # a row read before they existed has none of them: not strict
        for name, value in zip(LATER_COLUMNS, values[_FIRST:], strict=False)
        if value is not None
    }
    if later:
        stated.append(later)
    return json.dumps(stated, separators=(",", ":"), ensure_ascii=False, default=str)


def review_state(values: Sequence[Any]) -> str:
    """The canonical JSON of a review (``_review.COLUMNS`` in order), its texts as digests."""
    stated = [
        digest(value) if name in _review.DIGESTED and value is not None else value
        for name, value in zip(_review.COLUMNS, values, strict=True)
    ]
    return json.dumps(stated, separators=(",", ":"), ensure_ascii=False)


def named(stated: list[Any]) -> dict[str, Any]:
    """A state's columns by name (the later ones only where set)."""
    named = dict(zip(FIRST_CHAINED, stated, strict=False))
    if len(stated) > _FIRST and isinstance(stated[_FIRST], dict):
        named.update(stated[_FIRST])
    return named


def _netstring(field: object) -> str:
    if field is None:
        return "-,"
    text = str(field)
    return f"{len(text)}:{text},"


def link_hash(prev: str, event: Sequence[Any]) -> str:
    """The hash of an event (seq, log_id, definitie_id, kind, at, note, state) after ``prev``.

    sha256 over ``prev`` and each field as a netstring (``length:text,``; ``-,`` for
    NULL): unambiguous, and far cheaper than JSON-escaping the state a second time.
    """
    body = "".join(map(_netstring, event))
    return hashlib.sha256((prev + body).encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Snapshot:
    """A store's read transaction: ``rows(sql)`` streams a query's rows from it."""

    rows: Callable[[str], Iterator[Sequence[Any]]]
    has_definities: bool


class Chain:
    """Holds the events of a transaction's writes and appends them at its end (one dialect).

    Every write's event is held (:meth:`append`, :meth:`written`) and appended by
    :meth:`seal` just before the transaction commits, after ``lock`` (SQL taking the
    chain's lock until the transaction ends; none where the transaction holds the
    database's write lock already, as SQLite's ``BEGIN IMMEDIATE`` does): the rows of
    concurrent transactions are written in parallel, only their events in turn. Events
    are held per thread: a thread runs one transaction at a time.
    """

    def __init__(
        self, dialect: Dialect, *, lock: str | None = None, columns: Sequence[str] | None = None
    ) -> None:
        """SQL in ``dialect``'s placeholders; ``lock`` as above.

        ``columns``: the chained columns the table has, if not all of ``CHAINED`` (a
        migration's chain: those of its schema).
        """
        self.insert_event = _sql.insert_event(dialect)
        self.dialect = dialect
        self.lock = lock
        self.columns = columns
        self._local = threading.local()

    @property
    def returning(self) -> str:
        """What an INSERT or UPDATE returns: the chained columns of the rows it wrote."""
        return _sql.RETURNING if self.columns is None else " RETURNING " + ", ".join(self.columns)

    @property
    def chained_row(self) -> str:
        """A row's chained columns (its id)."""
        chained = _sql.CHAINED if self.columns is None else ", ".join(self.columns)
        return f"SELECT {chained} FROM generation_logs WHERE id = {self.dialect.param}"

    @property
    def held(self) -> list[tuple[str, int, int | None, str | None, str | None]]:
        """The events (kind, log id, definitie, note, state) held until :meth:`seal`."""
        try:
            return self._local.held  # type: ignore[no-any-return]
        except AttributeError:
            self._local.held = []
            return self._local.held  # type: ignore[no-any-return]

    def append(
        self,
        conn: Any,
        kind: str,
        log_id: int,
        *,
        erased_from: int | None = None,
        note: str | None = None,
        values: Sequence[Any] | None = None,
    ) -> None:
        """Append the event of a write to row ``log_id``.

        Its state is ``values`` (the ``CHAINED`` columns, as :meth:`written` has them). The
        events of rows that went (``GONE``) carry no state: ``erased_from`` is the
        definitie the row had. Held until :meth:`seal`.
        """
        del conn  # appended by seal, on the transaction's connection
        if kind in GONE:
            self.held.append((kind, log_id, erased_from, note, None))
            return
        assert values is not None  # noqa: S101 - written() passes what RETURNING gave
        self.held.append((kind, log_id, values[_DEFINITIE], note, state(values)))

    def append_review(
        self, kind: str, review_id: int, definitie_id: int, stated: str | None, note: str | None
    ) -> None:
        """Append the event of a review's write (its id negated: see ``_review``)."""
        self.held.append((kind, -review_id, definitie_id, note, stated))

    def discard(self) -> None:
        """Forget the events held: their transaction did not commit."""
        self._local.held = []

    def seal(self, conn: Any) -> None:
        """Take the lock (if any) and append the events held, just before the commit."""
        if not self.held:
            return
        if self.lock is not None:
            conn.execute(self.lock)
        held, self._local.held = self.held, []
        head = conn.execute(_sql.EVENT_HEAD).fetchone()
        seq, prev = (int(head[0]), head[1]) if head else (0, GENESIS)
        at = format_ts(utc_now())
        for kind, log_id, definitie_id, note, row_state in held:
            seq += 1
            event = (seq, log_id, definitie_id, kind, at, note, row_state)
            prev = link_hash(prev, event)
            conn.execute(self.insert_event, (*event, prev))

    def written(
        self, conn: Any, sql: str, params: Sequence[Any], kind: str, note: str | None = None
    ) -> list[Sequence[Any]]:
        """Run an INSERT or UPDATE of ``generation_logs``; an event for each row it wrote.

        Returns the rows in id order (``CHAINED`` columns, as ``RETURNING`` gives them).
        ``updated_at``, which AFTER triggers may still change, is not in them.
        """
        rows = sorted(conn.execute(sql + self.returning, params).fetchall(), key=lambda r: r[0])
        for values in rows:
            self.append(conn, kind, int(values[0]), note=note, values=values)
        return rows

    def erase(self, conn: Any, definitie_id: int) -> list[int]:
        """Delete a definitie's rows and reviews, an event for each; the rows' ids, in order."""
        rows = conn.execute(_sql.erase(self.dialect), (definitie_id,)).fetchall()
        reviews = conn.execute(_sql.erase_reviews(self.dialect), (definitie_id,)).fetchall()
        note = f"erase --definitie {definitie_id}: {command()}"
        return self._went(conn, "erase", note, rows, reviews)[0]

    def retain(self, conn: Any, before: str, limit: int) -> tuple[int, int]:
        """Delete up to ``limit`` rows and reviews from ``before``, none held; (rows, reviews).

        A ``retain`` event for each, as an erasure's.
        """
        rows, reviews = (
            conn.execute(_sql.retain(self.dialect, table), (before, limit)).fetchall()
            for table in ("generation_logs", "generation_reviews")
        )
        ids, review_ids = self._went(
            conn, "retain", f"retain, before {before}: {command()}", rows, reviews
        )
        return len(ids), len(review_ids)

    def _went(
        self,
        conn: Any,
        kind: str,
        note: str,
        rows: Iterable[tuple[int, int | None]],
        reviews: Iterable[tuple[int, int]],
    ) -> tuple[list[int], list[int]]:
        """The events of deleted rows and reviews ((id, definitie) each), in id order."""
        ids, review_ids = [], []
        for log_id, definitie_id in sorted(rows):
            self.append(conn, kind, log_id, erased_from=definitie_id, note=note)
            ids.append(log_id)
        for review_id, definitie_id in sorted(reviews):
            self.append_review(kind, review_id, definitie_id, None, note)
            review_ids.append(review_id)
        return ids, review_ids

    def as_chained(self, conn: Any, log_id: int) -> bool:
        """Whether row ``log_id`` is as its last event says.

        A write on top of a row changed behind the library's back would hide the change:
        a migration marks only rows that hold.
        """
        row = conn.execute(self.chained_row, (log_id,)).fetchone()
        event = conn.execute(_sql.last_state(self.dialect), (log_id,)).fetchone()
        return row is not None and event is not None and state(row) == event[0]

    def adopt(self, conn: Any, rows: Iterable[Sequence[Any]]) -> None:
        """Chain rows written before the chain existed, in id order, as ``adopt`` events."""
        head = conn.execute(_sql.EVENT_HEAD).fetchone()
        seq, prev = (int(head[0]), head[1]) if head else (0, GENESIS)
        at, note = format_ts(utc_now()), f"chained when adopted: {command()}"
        for values in rows:
            seq += 1
            event = (seq, values[0], values[_DEFINITIE], "adopt", at, note, state(values))
            prev = link_hash(prev, event)
            conn.execute(self.insert_event, (*event, prev))
