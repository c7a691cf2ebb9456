"""GenerationLogRepository: the spec's API over the ``generation_logs`` table.

This module owns the SQL of the table. It never imports ``openai``: it takes and
returns the project's own data classes. A PostgreSQL store would implement the same
methods (see :class:`audited_openai.LogStore`).
"""

from __future__ import annotations

import functools
import itertools
import sqlite3
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from audited_openai import _erasure, _rows, _schema, _spool
from audited_openai._clock import format_ts, utc_now
from audited_openai._database import Changes, Database, Durability, Statement
from audited_openai._errors import AuditWriteError, InvalidLogError, LogNotFoundError
from audited_openai._models import STATUSES, GenerationContext, Status

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Sequence
    from concurrent.futures import Future


_COMPLETE = "UPDATE generation_logs SET {} WHERE id = ?".format(
    ", ".join(f"{column} = ?" for column in _rows.COMPLETION_COLUMNS)
)
_COMPLETE_PENDING = _COMPLETE + " AND generation_status = 'pending'"
# The same for many rows at once: the values of each row, then its id, in a VALUES list.
_COMPLETE_PENDING_MANY = (
    "UPDATE generation_logs SET {} FROM (VALUES {{}}) AS v "
    "WHERE generation_logs.id = v.column{} AND generation_logs.generation_status = 'pending'"
).format(
    ", ".join(f"{c} = v.column{i}" for i, c in enumerate(_rows.COMPLETION_COLUMNS, 1)),
    len(_rows.COMPLETION_COLUMNS) + 1,
)

# Filters of get_prompt_history: keyword -> SQL condition (values are always bound).
_FILTERS = {
    "template_version": "prompt_template_version = ?",
    "template_name": "prompt_template_name = ?",
    "status": "generation_status = ?",
    "model": "model_name = ?",
    "definitie_id": "definitie_id = ?",
    "endpoint": "endpoint = ?",
    "call_id": "call_id = ?",
    "from_date": "logged_at >= ?",
    "to_date": "logged_at <= ?",
}


class GenerationLogRepository:
    """Reads and writes generation logs in a SQLite file (the spec's repository).

    ``db`` is a path or an open ``sqlite3.Connection`` (its file is reopened with this
    library's own connections, so the caller's transactions are never touched; an
    in-memory connection is used as it is, behind a lock).
    """

    def __init__(
        self,
        db: str | os.PathLike[str] | sqlite3.Connection,
        *,
        durability: Durability = "balanced",
        busy_timeout_ms: int = 30_000,
    ) -> None:
        """Open the store; the schema is migrated on first use."""
        self.database = Database(db, durability=durability, busy_timeout_ms=busy_timeout_ms)

    @property
    def path(self) -> str:
        """The database file (``':memory:'`` for an in-memory connection)."""
        return self.database.path

    # -- writes -----------------------------------------------------------------

    def create_pending_log(self, context: GenerationContext) -> int:
        """Commit a pending row durably (``synchronous=FULL``) and return its id."""
        work = self._insert_work(_pending_row(context))
        return self._inserted(context, lambda: self.database.run(work))

    def submit_pending_log(self, context: GenerationContext) -> Future[int]:
        """Queue :meth:`create_pending_log` without blocking: a future of the row id.

        Bad input raises here, at once; the future resolves after the commit.
        """
        return self.database.submit(
            self._insert_work(_pending_row(context)),
            then=lambda outcome: self._inserted(context, outcome),
        )

    def insert_log(self, context: GenerationContext) -> int:
        """Insert a row in whatever state the context is, in one statement."""
        row = _rows.prompt_row(context)
        if context.status != "pending":
            row.update(_rows.completion_row(context))
        work = self._insert_work(row)
        return self._inserted(context, lambda: self.database.run(work))

    @staticmethod
    def _insert_work(row: dict[str, Any]) -> Statement:
        columns = tuple(row)
        merge = functools.partial(_merge_inserts, columns)
        return Statement(_insert_sql(columns), tuple(row.values()), merge)

    def _inserted(self, context: GenerationContext, write: Callable[[], Changes]) -> int:
        """Run (or collect) an insert; map its errors; set and return the new id."""
        try:
            cursor = write()
        except sqlite3.IntegrityError as exc:
            raise InvalidLogError(f"row refused by the database: {exc}") from exc
        except sqlite3.Error as exc:
            raise AuditWriteError(
                f"could not write the pending log to {self.path}: {exc}", path=self.path
            ) from exc
        assert cursor.lastrowid is not None  # noqa: S101 - an INSERT always sets it
        context.id = cursor.lastrowid
        return cursor.lastrowid

    def update_with_response(self, log_id: int, context: GenerationContext) -> None:
        """Complete a row with a successful response (status 'success')."""
        if context.response is None:
            raise InvalidLogError("context.response is required", field="response")
        context.status = "success"
        self.complete(log_id, context)

    def update_with_error(self, log_id: int, context: GenerationContext) -> None:
        """Complete a row with an error: 'timeout' when the context says so, else 'failed'."""
        if context.error is None:
            raise InvalidLogError("context.error is required", field="error")
        if context.status != "timeout":
            context.status = "failed"
        self.complete(log_id, context)

    def complete(
        self, log_id: int, context: GenerationContext, *, only_pending: bool = False
    ) -> bool:
        """Write the outcome of ``context`` to row ``log_id``.

        With ``only_pending`` a row that is already complete is left alone and False
        is returned; otherwise an unknown id raises :class:`LogNotFoundError`.
        """
        work = self._complete_work(log_id, context, only_pending=only_pending)
        sync = self.database.completion_sync()
        return self._completed(
            log_id, context, only_pending, lambda: self.database.run(work, sync=sync)
        )

    def submit_complete(
        self, log_id: int, context: GenerationContext, *, only_pending: bool = False
    ) -> Future[bool]:
        """Queue :meth:`complete` without blocking: a future of its result."""
        work = self._complete_work(log_id, context, only_pending=only_pending)
        return self.database.submit(
            work,
            sync=self.database.completion_sync(),
            then=lambda outcome: self._completed(log_id, context, only_pending, outcome),
        )

    @staticmethod
    def _complete_work(log_id: int, context: GenerationContext, *, only_pending: bool) -> Statement:
        log_id = _rows.validate_log_id(log_id)
        if context.status == "pending":
            raise InvalidLogError("a completed log cannot be 'pending'", "generation_status")
        values = (*_rows.completion_row(context).values(), log_id)
        if only_pending:
            return Statement(_COMPLETE_PENDING, values, _merge_pending_completions)
        return Statement(_COMPLETE, values)

    def _completed(
        self,
        log_id: int,
        context: GenerationContext,
        only_pending: bool,
        write: Callable[[], Changes],
    ) -> bool:
        try:
            cursor = write()
        except sqlite3.Error as exc:
            raise AuditWriteError(
                f"could not complete log {log_id} in {self.path}: {exc}", path=self.path
            ) from exc
        if cursor.rowcount == 0:
            if only_pending:
                return False
            raise LogNotFoundError(log_id)
        context.id = log_id
        return True

    def link_to_definitie(self, log_id: int, definitie_id: int) -> None:
        """Link a log to the definitie it produced, once that definitie is saved."""
        log_id = _rows.validate_log_id(log_id)
        if _rows.validate_definitie_id(definitie_id) is None:
            raise InvalidLogError("definitie_id is required", field="definitie_id")
        try:
            cursor = self.database.run(
                lambda conn: conn.execute(
                    "UPDATE generation_logs SET definitie_id = ? WHERE id = ?",
                    (definitie_id, log_id),
                ),
                sync=self.database.completion_sync(),
            )
        except sqlite3.IntegrityError as exc:
            raise InvalidLogError(
                f"cannot link log {log_id} to definitie {definitie_id}: {exc}",
                field="definitie_id",
            ) from exc
        if cursor.rowcount == 0:
            raise LogNotFoundError(log_id)

    def erase_definitie(self, definitie_id: int) -> int:
        """Delete every log of a definitie so its text is gone from the file.

        Runs with ``secure_delete`` (freed pages are zeroed) and checkpoints the WAL
        afterwards, so the text is in neither file. Returns the number of rows deleted.
        """
        definitie_id = _rows.validate_definitie_id(definitie_id)  # type: ignore[assignment]
        with self.database.write(sync="FULL") as conn:
            conn.execute("PRAGMA secure_delete = ON")
            cursor = conn.execute(
                "DELETE FROM generation_logs WHERE definitie_id = ?", (definitie_id,)
            )
            deleted = cursor.rowcount
            if deleted:
                # A deletion only marks the full-text index; merging drops the old terms.
                conn.execute(_schema.MERGE_FTS)
        self.checkpoint()
        return deleted

    def reconcile(self, older_than: timedelta) -> int:
        """Mark rows pending for longer than ``older_than`` as 'timeout' ('abandoned').

        A pending row that old belongs to a process that died before completing it;
        younger rows may still be in flight and are left alone. Returns how many.
        """
        if not isinstance(older_than, timedelta) or older_than <= timedelta(0):
            raise InvalidLogError(f"older_than must be a positive timedelta, not {older_than!r}")
        moment = utc_now()
        now, cutoff = format_ts(moment), format_ts(moment - older_than)
        with self.database.write(sync="FULL") as conn:
            cursor = conn.execute(
                "UPDATE generation_logs SET generation_status = 'timeout', "
                "error_type = 'abandoned', "
                "error_message = 'still pending at reconcile: its process died or lost it', "
                "updated_at = ? WHERE generation_status = 'pending' AND logged_at < ?",
                (now, cutoff),
            )
        return cursor.rowcount

    def finish_erasures(self) -> list[int]:
        """Finish what deleting a definitie through another connection started.

        The host app's ``DELETE FROM definities`` removes the definitie's logs and
        blanks their text in the table at once (a trigger), and requests the rest:
        merging the full-text index and truncating the WAL, which only this library
        can do. A watcher thread does it about once a second while this process has
        the file open; this does it now. Returns the definitie ids finished (none if
        nothing was requested, or a reader kept the WAL from restarting).
        """
        return _erasure.finish(self.database)

    def scrub(self) -> None:
        """Remove the bytes of rows deleted by any connection from both files.

        Rows deleted with plain SQL by another connection (not through a definitie,
        whose erasure blanks the text first) are gone, but their text stays in free
        pages, in the full-text index until its next merge, and in the WAL until it
        restarts: this finishes requested erasures, merges the index, rewrites the
        file (``VACUUM``) and truncates the WAL. It takes time in proportion to the
        file; run it after such deletions, not per call.
        """
        self.finish_erasures()
        with self.database.write(sync="FULL") as conn:
            conn.execute(_schema.MERGE_FTS)
        with self.database.alone() as conn:
            conn.execute("VACUUM")
        self.checkpoint()

    def checkpoint(self) -> None:
        """Copy the WAL into the database file and truncate it."""
        with self.database.read() as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()

    # -- reads ------------------------------------------------------------------

    def get(self, log_id: int) -> GenerationContext:
        """Return the log with this id, or raise :class:`LogNotFoundError`."""
        log_id = _rows.validate_log_id(log_id)
        rows = self._select("WHERE id = ?", (log_id,))
        if not rows:
            raise LogNotFoundError(log_id)
        return rows[0]

    def get_by_definitie_id(self, definitie_id: int) -> GenerationContext | None:
        """Return the log of a definitie (its latest row), or None."""
        definitie_id = _rows.validate_definitie_id(definitie_id)  # type: ignore[assignment]
        rows = self._select("WHERE definitie_id = ? ORDER BY id DESC LIMIT 1", (definitie_id,))
        return rows[0] if rows else None

    def get_all_for_definitie(self, definitie_id: int) -> list[GenerationContext]:
        """Return every log of a definitie, oldest first."""
        definitie_id = _rows.validate_definitie_id(definitie_id)  # type: ignore[assignment]
        return self._select("WHERE definitie_id = ? ORDER BY id", (definitie_id,))

    def get_prompt_history(
        self,
        template_version: str | None = None,
        from_date: datetime | None = None,
        to_date: datetime | None = None,
        status: Status | None = None,
        limit: int = 100,
        *,
        template_name: str | None = None,
        model: str | None = None,
        definitie_id: int | None = None,
        endpoint: str | None = None,
        call_id: str | None = None,
    ) -> list[GenerationContext]:
        """Return logs matching every filter given, newest first, at most ``limit``."""
        if status is not None and status not in STATUSES:
            raise InvalidLogError(f"unknown status {status!r}", field="generation_status")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise InvalidLogError(f"limit must be a non-negative integer, not {limit!r}", "limit")
        values: dict[str, object] = {
            "template_version": template_version,
            "template_name": template_name,
            "status": status,
            "model": model,
            "definitie_id": _rows.validate_definitie_id(definitie_id),
            "endpoint": endpoint,
            "call_id": call_id,
            "from_date": _date_bound("from_date", from_date),
            "to_date": _date_bound("to_date", to_date),
        }
        conditions = [_FILTERS[key] for key, value in values.items() if value is not None]
        params = [value for value in values.values() if value is not None]
        where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
        return self._select(f"{where}ORDER BY logged_at DESC, id DESC LIMIT ?", (*params, limit))

    def _select(self, clause: str, params: Sequence[object]) -> list[GenerationContext]:
        with self.database.read() as conn:
            cursor = conn.cursor()
            cursor.row_factory = sqlite3.Row
            rows = cursor.execute(f"SELECT * FROM generation_logs {clause}", params).fetchall()
        return [_rows.row_to_context(row) for row in rows]

    def recover_spool(self) -> int:
        """Import the rows spooled when the store could not take them; return how many.

        Idempotent: a row is matched by ``(call_id, attempt)``, inserted when missing
        and completed when still pending; a line seen before changes nothing.
        """
        path = _spool.spool_path(self.path)
        if path is None:
            return 0
        imported = 0
        for file in _spool.claim(path):
            for context in _spool.read(file):
                imported += self._import(context)
            file.unlink()
        return imported

    def _import(self, context: GenerationContext) -> int:
        with self.database.read() as conn:
            found = conn.execute(
                "SELECT id, generation_status FROM generation_logs "
                "WHERE call_id = ? AND attempt = ?",
                (context.call_id, context.attempt),
            ).fetchone()
        if found is None:
            self.insert_log(context)
            return 1
        if found[1] == "pending" and context.status != "pending":
            return int(self.complete(found[0], context, only_pending=True))
        return 0

    def refresh_host_objects(self) -> bool:
        """Create the views and erasure trigger if a ``definities`` table now exists."""
        return self.database.refresh_host_objects()

    def close(self) -> None:
        """Close the connections this repository opened."""
        self.database.close()


def _date_bound(name: str, value: datetime | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidLogError(f"{name} must be a datetime, not {value!r}", field=name)
    if value.tzinfo is None:
        raise InvalidLogError(f"{name} must be timezone-aware (UTC)", field=name)
    return format_ts(value)


def _pending_row(context: GenerationContext) -> dict[str, Any]:
    row = _rows.prompt_row(context)
    if context.status != "pending":
        raise InvalidLogError(
            f"a new log must be 'pending', not {context.status!r}", field="generation_status"
        )
    return row


@functools.cache
def _insert_sql(columns: tuple[str, ...], rows: int = 1) -> str:
    one = "({})".format(", ".join("?" for _ in columns))
    return "INSERT INTO generation_logs ({}) VALUES {}".format(
        ", ".join(columns), ", ".join([one] * rows)
    )


def _merge_inserts(
    columns: tuple[str, ...], rows: list[tuple[Any, ...]]
) -> tuple[str, tuple[Any, ...]]:
    """One INSERT of many rows (a group commit's pending rows, with the same columns)."""
    return _insert_sql(columns, len(rows)), tuple(itertools.chain.from_iterable(rows))


def _merge_pending_completions(rows: list[tuple[Any, ...]]) -> tuple[str, tuple[Any, ...]]:
    """One UPDATE ... FROM VALUES completing many pending rows."""
    one = "({})".format(", ".join("?" for _ in rows[0]))
    sql = _COMPLETE_PENDING_MANY.format(", ".join([one] * len(rows)))
    return sql, tuple(itertools.chain.from_iterable(rows))
