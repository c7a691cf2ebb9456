"""GenerationLogRepository: the spec's API over a :class:`~audited_openai._store.Store`.

It validates and maps the project's data classes to rows (``_rows``) and leaves SQL to
``_sql`` and the store. It never imports ``openai``.
"""

from __future__ import annotations

import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from audited_openai import (
    _chain,
    _checkpoint,
    _compare,
    _health,
    _retention,
    _review,
    _rows,
    _spool,
    _sql,
    _verify,
)
from audited_openai._clock import format_ts, utc_now
from audited_openai._errors import InvalidLogError, LogNotFoundError
from audited_openai._models import STATUSES, Cost, GenerationContext, Status
from audited_openai._sql import Filters
from audited_openai._store import Store, open_store, redacted
from audited_openai._verify import Problem, Verification
from audited_openai.prices import PriceTable, resolve_prices

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from concurrent.futures import Future

    from typing_extensions import Self

    from audited_openai._retention import Hold, Policy
    from audited_openai._review import Review, Verdict
    from audited_openai._store import Durability


COLUMNS = _rows.TABLE_COLUMNS  # every column of generation_logs, in table order
__all__ = [
    "COLUMNS",
    "Filters",
    "GenerationContext",
    "GenerationLogRepository",
    "InvalidLogError",
    "LogNotFoundError",
    "Problem",
    "Verification",
    "redacted",
]


class GenerationLogRepository:
    """Reads and writes generation logs (the spec's repository).

    ``db`` is a SQLite path, or an open ``sqlite3.Connection`` (its file is reopened
    with this library's own connections, so the caller's transactions are never
    touched; an in-memory connection is used as it is, behind a lock). The store is
    opened and migrated here, so a path that cannot hold it fails now, not at the
    first model call. ``read_only=True`` writes nothing, not even a migration;
    ``create=False`` refuses a database that holds no audit trail, leaving it untouched.
    ``prices`` names the price table successful rows are priced with when completed (a
    :class:`~audited_openai.prices.PriceTable` or a TOML/JSON file; default
    ``$AUDITED_OPENAI_PRICES``, else :data:`audited_openai.prices.DEFAULT`).
    """

    def __init__(
        self,
        db: str | os.PathLike[str] | sqlite3.Connection | Store,
        *,
        durability: Durability = "balanced",
        busy_timeout_ms: int | None = None,
        read_only: bool = False,
        create: bool = True,
        prices: PriceTable | str | os.PathLike[str] | None = None,
    ) -> None:
        """Open the store at ``db`` and bring its schema up to date."""
        # A bad table fails before the store opens; a reader never prices, so it does
        # not read $AUDITED_OPENAI_PRICES unless asked (a bad file there cannot stop it).
        self._prices = None if read_only and prices is None else resolve_prices(prices)
        if isinstance(db, (str, os.PathLike, sqlite3.Connection)):
            self.store: Store = open_store(
                db,
                durability=durability,
                busy_timeout_ms=busy_timeout_ms,
                read_only=read_only,
                create=create,
            )
        elif hasattr(db, "insert") and hasattr(db, "dialect"):
            self.store = db
        else:
            raise TypeError(f"the audit database must be a path, not {type(db).__name__} {db!r}")

    @property
    def prices(self) -> PriceTable:
        """The price table successful completions are priced with."""
        if self._prices is None:
            self._prices = resolve_prices(None)
        return self._prices

    @property
    def path(self) -> str:
        """Where the store lives (``':memory:'`` for an in-memory connection)."""
        return self.store.location

    @property
    def durability(self) -> Durability:
        """``"balanced"`` or ``"full"``: see docs/store.md."""
        return self.store.durability

    # -- writes -----------------------------------------------------------------------------

    def create_pending_log(self, context: GenerationContext) -> int:
        """Commit a pending row durably and return its id."""
        return self._inserted(context, self.submit_pending_log(context))

    def submit_pending_log(self, context: GenerationContext) -> Future[int]:
        """Queue :meth:`create_pending_log`: a future of the id, settled once committed.

        Bad input raises here, at once.
        """
        row = _rows.prompt_row(context)
        if context.status != "pending":
            raise InvalidLogError(
                f"a new log must be 'pending', not {context.status!r}", field="generation_status"
            )
        return self.store.insert(row, durable=True)

    def insert_log(self, context: GenerationContext) -> int:
        """Insert a row in whatever state the context is, in one statement."""
        return self._inserted(context, self.submit_log(context))

    def submit_log(self, context: GenerationContext) -> Future[int]:
        """Queue :meth:`insert_log` without waiting: a future of the id."""
        row = _rows.prompt_row(context)
        if context.status != "pending":
            row.update(_rows.completion_row(context))
        return self.store.insert(row, durable=True)

    @staticmethod
    def _inserted(context: GenerationContext, write: Future[int]) -> int:
        context.id = write.result()
        return context.id

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
        """Write the outcome of ``context`` to row ``log_id`` and wait for the commit.

        With ``only_pending`` a row that is already complete is left alone and False
        is returned; otherwise an unknown id raises :class:`LogNotFoundError`.
        """
        changed = self.submit_complete(log_id, context, only_pending=only_pending).result()
        if not changed and not only_pending:
            raise LogNotFoundError(log_id)
        if changed:
            context.id = log_id
        return changed

    def submit_complete(
        self, log_id: int, context: GenerationContext, *, only_pending: bool = False
    ) -> Future[bool]:
        """Queue :meth:`complete` without waiting: a future of whether a row changed."""
        log_id = _rows.validate_log_id(log_id)
        if context.status == "pending":
            raise InvalidLogError("a completed log cannot be 'pending'", "generation_status")
        row = _rows.completion_row(context)
        if context.status != "success" or context.cost is not None:
            return self.store.complete(log_id, row, only_pending=only_pending)
        return self.store.complete(
            log_id, row, only_pending=only_pending, priced=lambda: self._priced(context)
        )

    def _priced(self, context: GenerationContext) -> dict[str, Any]:
        """The cost columns of a successful context (on the writer's thread, off the call)."""
        response, table = context.response, self.prices
        context.cost = Cost(
            amount=table.cost(
                getattr(response, "response_model", None),
                requested=context.prompt.model_params.name,
                tokens_prompt=getattr(response, "tokens_prompt", None),
                tokens_completion=getattr(response, "tokens_completion", None),
                tokens_cached=getattr(response, "tokens_cached", None),
                tokens_reasoning=getattr(response, "tokens_reasoning", None),
            ),
            currency=table.currency,
            price_version=table.version,
        )
        return _rows.cost_row(context.cost)

    def link_to_definitie(self, log_id: int, definitie_id: int) -> None:
        """Link a log to the definitie it produced, once that definitie is saved."""
        log_id = _rows.validate_log_id(log_id)
        if _rows.validate_definitie_id(definitie_id) is None:
            raise InvalidLogError("definitie_id is required", field="definitie_id")
        try:
            found = self.store.link(log_id, definitie_id).result()
        except InvalidLogError as exc:
            raise InvalidLogError(
                f"cannot link log {log_id} to definitie {definitie_id}: {exc}", "definitie_id"
            ) from exc
        if not found:
            raise LogNotFoundError(log_id)

    def record_review(
        self,
        definitie_id: int,
        verdict: Verdict,
        *,
        reviewer: str,
        note: str | None = None,
        edited_text: str | None = None,
        log_id: int | None = None,
    ) -> Review:
        """Record a person's judgement of a generated definitie; return the review.

        ``verdict`` is ``approved``, ``rejected`` or ``edited`` (then ``edited_text``
        is the text as the reviewer changed it); ``log_id`` is the generation judged,
        by default the definitie's log (its latest row that is no replay). Committed
        and chained before it returns; reviews are never changed: judge again instead.
        """
        row = _review.review_row(
            definitie_id,
            verdict,
            reviewer=reviewer,
            note=note,
            edited_text=edited_text,
            log_id=log_id,
        )
        row["reviewed_at"] = format_ts(utc_now())
        values = self.store.record_review(row).result()
        return _review.row_to_review(dict(zip(_review.COLUMNS, values, strict=True)))

    def reviews(
        self, *, definitie_id: int | None = None, log_id: int | None = None
    ) -> list[Review]:
        """The reviews of a definitie or of one generation log, oldest first."""
        if (definitie_id is None) == (log_id is None):
            raise InvalidLogError("give either definitie_id or log_id", "definitie_id")
        if definitie_id is not None:
            _rows.validate_definitie_id(definitie_id)
            sql, key = _sql.reviews_of(self.store.dialect, "definitie"), definitie_id
        else:
            sql, key = _sql.reviews_of(self.store.dialect, "log"), _rows.validate_log_id(log_id)
        return [_review.row_to_review(row) for row in self.store.fetch(sql, (key,))]

    def latest_verdicts(self, definitie_ids: list[int]) -> dict[int, str]:
        """The verdict of the latest review of each of these definities that has one."""
        for definitie_id in definitie_ids:
            _rows.validate_definitie_id(definitie_id)
        wanted = sorted(set(definitie_ids))
        if not wanted:
            return {}
        rows = self.store.fetch_tuples(_sql.verdicts_of(self.store.dialect, len(wanted)), wanted)
        return {int(definitie_id): verdict for definitie_id, verdict in rows}

    def erase_definitie(self, definitie_id: int) -> int:
        """Delete every log and review of a definitie so that its text is gone from the store.

        In SQLite: with ``secure_delete`` (freed pages zeroed), the full-text index
        merged, and the WAL checkpointed, so the text is in neither file. Returns the
        number of rows deleted.
        """
        if _rows.validate_definitie_id(definitie_id) is None:
            raise InvalidLogError("definitie_id is required", field="definitie_id")
        held = self.held(definitie_id)
        if held is not None:
            raise InvalidLogError(
                f"definitie {definitie_id} is under a legal hold ({held.reason}): release it "
                "before erasing",
                "definitie_id",
            )
        return self.store.erase_definitie(definitie_id)

    # -- retention ---------------------------------------------------------------------

    def set_retention(self, keep: str, *, force: bool = False) -> Policy:
        """Keep rows and reviews for ``keep`` (``400d``, ``60w``, ``18mo``, ``2y``).

        Stored in the database; :meth:`retain` applies it. Under six months is refused
        unless ``force`` (the EU AI Act asks a deployer to keep logs that long).
        """
        days = _retention.parse_keep(keep)
        if days < _retention.MIN_DAYS and not force:
            raise _retention.too_short(days, keep.strip())
        forced = int(days < _retention.MIN_DAYS)
        values = (days, keep.strip(), forced, format_ts(utc_now()), _chain.command())
        self.store.execute(_sql.set_policy(self.store.dialect), values, "set the retention")
        policy = self.retention()
        assert policy is not None  # noqa: S101 - just written
        return policy

    def retention(self) -> Policy | None:
        """The retention policy, or None when there is none (rows are kept for good)."""
        found = self.store.fetch_tuples(_sql.POLICY, [])
        return _retention.Policy.of(found[0]) if found else None

    def clear_retention(self) -> bool:
        """Remove the policy (rows are kept for good); whether there was one."""
        return bool(self.store.execute(_sql.CLEAR_POLICY, (), "clear the retention"))

    def retain(self, *, dry_run: bool = False) -> dict[str, Any]:
        """Remove the rows and reviews older than the policy, except those held.

        As an erasure does: the text gone from the files, a ``retain`` event for each
        (``verify`` passes and counts them). Returns ``before`` (the cutoff), ``rows``,
        ``reviews`` (removed, or that would be with ``dry_run``) and ``held`` (old rows
        kept by a hold).
        """
        policy = self.retention()
        if policy is None:
            raise InvalidLogError(
                "no retention policy: set one first (audited-openai retention --keep 2y)", "keep"
            )
        before = format_ts(utc_now() - timedelta(days=policy.keep_days))
        rows, reviews, held = self.store.fetch_tuples(
            _sql.retained(self.store.dialect), [before] * 3
        )[0]
        found = {
            "before": before,
            "keep": policy.keep,
            "rows": int(rows),
            "reviews": int(reviews),
            "held": int(held),
            "dry_run": dry_run,
        }
        if not dry_run:
            found["rows"], found["reviews"] = self.store.retain(before, _retention.BATCH)
        return found

    def hold(self, definitie_id: int, reason: str) -> Hold:
        """Put a definitie under a legal hold: :meth:`retain` and erasure leave it alone."""
        if _rows.validate_definitie_id(definitie_id) is None:
            raise InvalidLogError("definitie_id is required", field="definitie_id")
        values = (
            definitie_id,
            _retention.checked_reason(reason),
            format_ts(utc_now()),
            _chain.command(),
        )
        self.store.execute(_sql.hold(self.store.dialect), values, "hold the definitie")
        found = self.held(definitie_id)
        assert found is not None  # noqa: S101 - just written
        return found

    def release(self, definitie_id: int) -> None:
        """Lift a definitie's hold (InvalidLogError if it has none)."""
        if _rows.validate_definitie_id(definitie_id) is None:
            raise InvalidLogError("definitie_id is required", field="definitie_id")
        if not self.store.execute(_sql.release(self.store.dialect), (definitie_id,), "release"):
            raise InvalidLogError(f"definitie {definitie_id} is not on hold", "definitie_id")

    def held(self, definitie_id: int) -> Hold | None:
        """A definitie's hold, or None."""
        found = self.store.fetch_tuples(_sql.held(self.store.dialect), [definitie_id])
        return _retention.Hold.of(found[0]) if found else None

    def holds(self) -> list[Hold]:
        """Every hold, by definitie."""
        return [_retention.Hold.of(row) for row in self.store.fetch_tuples(_sql.HOLDS, [])]

    def reconcile(self, older_than: timedelta) -> int:
        """Mark rows pending for longer than ``older_than`` as 'timeout' ('abandoned').

        A pending row that old belongs to a process that died before completing it;
        younger rows may still be in flight and are left alone. Returns how many.
        """
        if not isinstance(older_than, timedelta) or older_than <= timedelta(0):
            raise InvalidLogError(f"older_than must be a positive timedelta, not {older_than!r}")
        moment = utc_now()
        return self.store.reconcile(format_ts(moment), format_ts(moment - older_than))

    def finish_erasures(self) -> list[int]:
        """Finish what deleting a definitie through the host app's connection started.

        The host's ``DELETE FROM definities`` removes the definitie's logs and blanks
        their text at once (a trigger), and requests the rest (merging the full-text
        index, truncating the WAL), which the writer's idle time does about once a
        second while this process has the file open; this does it now. Returns the
        definitie ids finished.
        """
        return self.store.finish_erasures()

    def scrub(self) -> None:
        """Remove the bytes of rows deleted by any connection (in SQLite: ``VACUUM``).

        It takes time in proportion to the file; run it after deletions with plain
        SQL, not per call.
        """
        self.store.scrub()

    def refresh_host_objects(self) -> bool:
        """Create the views and erasure triggers if a ``definities`` table now exists."""
        return self.store.refresh_host_objects()

    def flush(self) -> None:
        """Wait until every write this process queued here is committed."""
        self.store.flush()

    def close(self) -> None:
        """Commit what is queued and release the store's connections."""
        self.store.close()

    def __enter__(self) -> Self:
        """``with GenerationLogRepository(db) as repo:`` closes it at the end."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the repository."""
        self.close()

    # -- reads ------------------------------------------------------------------------------

    def _contexts(self, sql: str, params: list[Any] | tuple[Any, ...]) -> list[GenerationContext]:
        return [_rows.row_to_context(row) for row in self.store.fetch(sql, params)]

    def get(self, log_id: int) -> GenerationContext:
        """Return the log with this id, or raise :class:`LogNotFoundError`."""
        log_id = _rows.validate_log_id(log_id)
        found = self._contexts(_sql.by_id(self.store.dialect), (log_id,))
        if not found:
            raise LogNotFoundError(log_id)
        return found[0]

    def get_by_definitie_id(self, definitie_id: int) -> GenerationContext | None:
        """Return the log of a definitie (its latest row that is no replay), or None."""
        found = self.history(_sql.Filters(definitie_id=definitie_id, replays=False), 1)
        return found[0] if found else None

    def get_all_for_definitie(self, definitie_id: int) -> list[GenerationContext]:
        """Return every log of a definitie, oldest first."""
        definitie_id = _rows.validate_definitie_id(definitie_id)  # type: ignore[assignment]
        return self._contexts(_sql.by_definitie(self.store.dialect), (definitie_id,))

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
        filters = _sql.Filters(
            since=_date_bound("from_date", from_date),
            until=_date_bound("to_date", to_date),
            status=status,
            model=model,
            template_name=template_name,
            template_version=template_version,
            definitie_id=definitie_id,
            endpoint=endpoint,
            call_id=call_id,
        )
        return self.history(filters, limit, by_time=True)

    def history(
        self, filters: _sql.Filters, limit: int, *, by_time: bool = False
    ) -> list[GenerationContext]:
        """Logs matching ``filters``, newest first (by id, or by time), at most ``limit``."""
        _rows.validate_count(limit, "limit")
        found = self._contexts(*_sql.listing(filters, self.store.dialect, limit, by_time=by_time))
        wide = _sql.wide_listing(filters, self.store.dialect, limit, by_time=by_time)
        if wide is not None and len(found) < limit:  # a rare word: the index finds it
            found = self._contexts(*wide)
        return found

    def verify(
        self,
        *,
        checkpoint: str | os.PathLike[str] | dict[str, Any] | None = None,
        public_key: str | os.PathLike[str] | None = None,
        progress: Callable[[int, int], None] | None = None,
        workers: int | None = None,
    ) -> Verification:
        """Recompute the tamper-evident chain and check every row (``query.verify``)."""
        return _verify.verify_store(
            self.store,
            checkpoint=checkpoint,
            public_key=public_key,
            progress=progress,
            workers=workers,
        )

    def verify_log(self, log_id: int) -> Verification:
        """Check one row against its last event, and that event's link."""
        return _verify.verify_log(self.store, _rows.validate_log_id(log_id))

    def checkpoint(self, key: str | os.PathLike[str] | None = None) -> dict[str, Any]:
        """The chain's head, signed with an Ed25519 PEM ``key`` if given."""
        return _checkpoint.of_store(self.store, key)

    # -- aggregates and pages (every figure computed by the database) -----------------------

    def usage_by_day(self, *, zone: tzinfo | None = None, **filters: Any) -> list[dict[str, Any]]:
        """Tokens and cost of successful generations per day, newest day first.

        The days are UTC's, or those of ``zone`` (say the viewer's ``Europe/Amsterdam``):
        then the rows are counted per ten minutes of UTC and folded into the zone's days,
        so bound the period with ``since``. ``cost`` is the sum of the ``priced``
        generations' costs (a ``Decimal`` in ``cost_currency``): ``None`` when none was
        priced or the day mixes currencies.
        """
        bucket = _sql.TEN_MINUTES if zone not in (None, timezone.utc) else None
        found = self.store.fetch(
            *_sql.usage_by_day(Filters(**filters), self.store.dialect, bucket=bucket)
        )
        if zone is not None and bucket is not None:
            found = _fold_days(found, zone)
        for row in found:
            row.pop("counted")
            nanos, currencies = row.pop("cost_nanos"), row.pop("currencies")
            mixed = int(currencies) > 1
            row["cost"] = None if nanos is None or mixed else Decimal(nanos) / _rows.NANOS
            row["cost_currency"] = None if mixed else row.pop("cost_currency")
            row["priced"] = int(row.pop("priced"))
        return found

    def most_expensive(self, n: int = 10, **filters: Any) -> list[dict[str, Any]]:
        """The ``n`` successful generations (no replays) that used the most tokens.

        With the ``cost`` of each (a ``Decimal`` in ``cost_currency``, or ``None``).
        """
        n = _rows.validate_count(n, "n")
        found = self.store.fetch(*_sql.most_expensive(Filters(**filters), self.store.dialect, n))
        for row in found:
            nanos = row.pop("cost_nanos")
            row["cost"] = None if nanos is None else Decimal(nanos) / _rows.NANOS
        return found

    def census(self, **filters: Any) -> list[dict[str, Any]]:
        """Rows counted per template, status and model (and how many have a duration)."""
        return self.store.fetch(*_sql.census(Filters(**filters), self.store.dialect))

    def duration_at_rank(self, group: tuple[Any, Any, Any], rank: int, **filters: Any) -> Any:
        """The ``rank``-th smallest successful duration of (model, template, version)."""
        sql = _sql.percentile(Filters(**filters), self.store.dialect, group, rank)
        return self.store.fetch(*sql)[0]["duration_ms"]

    def count(self, **filters: Any) -> int:
        """How many logs match the filters."""
        return int(self.store.fetch(*_sql.count(Filters(**filters), self.store.dialect))[0]["n"])

    def iter_rows(self, batch: int = 500, **filters: Any) -> Iterator[tuple[Any, ...]]:
        """Every matching row (``COLUMNS`` order), oldest first, ``batch`` at a time.

        Keyset pagination: no long-lived read transaction, constant memory.
        """
        found, last = Filters(**filters), 0
        while True:
            page = self.store.fetch_tuples(*_sql.page(found, self.store.dialect, last, batch))
            if not page:
                return
            yield from page
            last = page[-1][0]

    def iter_logs(self, batch: int = 500, **filters: Any) -> Iterator[GenerationContext]:
        """:meth:`iter_rows` as contexts."""
        for values in self.iter_rows(batch, **filters):
            yield _rows.row_to_context(dict(zip(COLUMNS, values, strict=True)))

    def export_otlp(
        self,
        endpoint: str | None = None,
        *,
        progress: Callable[[int], None] | None = None,
        batch: int = 500,
        **filters: Any,
    ) -> int:
        """The matching completed rows sent to an OTLP/HTTP endpoint as spans (``_otel``)."""
        from audited_openai import _otel  # noqa: PLC0415 - the optional extra

        return _otel.backfill(
            self.iter_logs(batch, **filters), endpoint, progress=progress, batch=batch
        )

    def compare(
        self,
        a: str,
        b: str,
        *,
        by: str | None = None,
        experiment: str | None = None,
        filters: Filters | None = None,
    ) -> dict[str, Any]:
        """Variants ``a`` and ``b`` compared (``query.compare``), from the reads below."""
        return _compare.compare(self, a, b, by=by, experiment=experiment, filters=filters)

    def compare_groups(
        self,
        by: str,
        variants: tuple[str, str],
        filters: Filters,
        experiment: str | None = None,
    ) -> dict[str, list[dict[str, Any]]]:
        """What ``query.compare`` counts, per variant.

        ``outcomes``, ``definities``, ``reviews`` (the latest verdict of each definitie
        reviewed) and a histogram of each of ``_sql.MEASURES``: six grouped reads, run
        side by side.
        """
        args = (by, variants, filters, self.store.dialect, experiment)
        reads = {
            "outcomes": _sql.compare_outcomes(*args),
            "definities": _sql.compare_definities(*args),
            "reviews": _sql.compare_reviews(*args),
            **{measure: _sql.compare_histogram(*args, measure) for measure in _sql.MEASURES},
        }
        with ThreadPoolExecutor(max_workers=min(len(reads), os.cpu_count() or 1)) as pool:
            found = {name: pool.submit(self.store.fetch, *read) for name, read in reads.items()}
            return {name: future.result() for name, future in found.items()}

    # -- health (``query.status``) ---------------------------------------------------------

    def status(
        self,
        *,
        since: datetime | None = None,
        pending_after: timedelta = _health.PENDING_AFTER,
        disk_days: float = _health.DISK_DAYS,
    ) -> dict[str, Any]:
        """The trail's health (``query.status``), from the reads below (``_health``)."""
        return _health.report(self, since=since, pending_after=pending_after, disk_days=disk_days)

    def host_columns(self) -> frozenset[str]:
        """The columns of the host app's ``definities`` table (none when it is not there)."""
        return frozenset(row["name"] for row in self.store.fetch(self.store.dialect.host_columns))

    def generated_definities(self, since: datetime | None = None) -> tuple[int, list[int]]:
        """How many definities were generated, and the ids of those without a log.

        ``since``: only those created then or later (``created_at``). A log is a
        successful generation that is no replay.
        """
        dialect, params = self.store.dialect, [format_ts(since)] if since else []
        total = self.store.fetch(_sql.generated(dialect, since=since is not None), params)
        missing = self.store.fetch(_sql.without_log(dialect, since=since is not None), params)
        return int(total[0]["n"]), [int(row["id"]) for row in missing]

    def pending_rows(self, before: datetime) -> dict[str, Any]:
        """Pending rows: ``n``, ``stale`` (logged before ``before``), the ``oldest`` time and id."""
        found = self.store.fetch(_sql.pending(self.store.dialect), [format_ts(before)])[0]
        oldest = self.store.fetch(_sql.OLDEST_PENDING) if found["n"] else []
        return {
            "n": int(found["n"]),
            "stale": int(found["stale"]),
            "oldest": found["oldest"],
            "oldest_id": oldest[0]["id"] if oldest else None,
        }

    def outcomes(self, day: datetime, week: datetime, before: datetime) -> list[dict[str, Any]]:
        """Rows since ``before`` counted per period, status, error type and success's duration.

        The periods (``_sql.outcomes``): ``day``, ``week`` (the rest of it) and ``before``.
        """
        moments = [format_ts(moment) for moment in (day, week, before)]
        return self.store.fetch(_sql.outcomes(self.store.dialect), moments)

    def row_count(self) -> int:
        """How many rows the trail holds."""
        return int(self.store.fetch(_sql.ROW_COUNT)[0]["n"])

    def chain_head(self) -> tuple[int, str | None]:
        """The chain's length and its last hash (None when it is empty)."""
        found = self.store.fetch(_sql.EVENT_HEAD)
        return (int(found[0]["seq"]), str(found[0]["hash"])) if found else (0, None)

    def last_check(self, kind: str) -> dict[str, Any] | None:
        """The newest ``verify`` or ``checkpoint`` record (``record_check``), or None."""
        found = self.store.fetch(_sql.last_check(self.store.dialect), [kind])
        return found[0] if found else None

    def record_check(
        self, kind: str, *, events: int, summary: str, problems: int = 0, ok: bool | None = None
    ) -> None:
        """Record a verification (``ok``, its ``problems``) or a checkpoint, for ``status``."""
        if kind not in ("verify", "checkpoint"):
            raise InvalidLogError(f"a check is 'verify' or 'checkpoint', not {kind!r}", "kind")
        flag = None if ok is None else int(ok)
        self.store.record_check(
            (kind, format_ts(utc_now()), flag, int(events), int(problems), summary)
        )

    def sizes(self) -> dict[str, int | None]:
        """The store's bytes (``database``, ``wal``, ``table``) and ``free`` room, where known."""
        return self.store.sizes()

    def attempts_of(self, call_ids: list[str]) -> dict[tuple[str, int], dict[str, Any]]:
        """The id and status of every row of these calls, by (call id, attempt)."""
        if not call_ids:
            return {}
        found = self.store.fetch(_sql.attempts(self.store.dialect, len(call_ids)), call_ids)
        return {(row["call_id"], row["attempt"]): row for row in found}

    def recover_spool(self) -> int:
        """Import the rows spooled when the store could not take them; return how many.

        Idempotent: a row is matched by ``(call_id, attempt)``, inserted when missing
        and completed when still pending; a line seen before changes nothing.
        """
        path = _spool.spool_path(self.path)
        if path is None:
            return 0
        self.flush()  # rows this process is spooling are in the file first
        imported = 0
        for file in _spool.claim(path):
            for context in _spool.read(file):
                imported += self._import(context)
            file.unlink()
        return imported

    def _import(self, context: GenerationContext) -> int:
        found = self.attempts_of([context.call_id]).get((context.call_id, context.attempt))
        if found is None:
            self.insert_log(context)
            return 1
        if found["generation_status"] == "pending" and context.status != "pending":
            return int(self.complete(found["id"], context, only_pending=True))
        return 0


def _date_bound(name: str, value: datetime | None) -> datetime | None:
    if value is not None and not isinstance(value, datetime):
        raise InvalidLogError(f"{name} must be a datetime, not {value!r}", field=name)
    if value is not None and value.tzinfo is None:
        raise InvalidLogError(f"{name} must be timezone-aware (UTC)", field=name)
    return value


_SUMMED = ("generations", "tokens_prompt", "tokens_completion", "tokens_total", "counted", "priced")


def _fold_days(found: list[dict[str, Any]], zone: tzinfo) -> list[dict[str, Any]]:
    """Rows per ten minutes of UTC folded into the days of ``zone``, newest day first."""
    days: dict[str, dict[str, Any]] = {}
    for row in found:
        moment = datetime.fromisoformat(f"{row['day']}0:00+00:00")
        day = moment.astimezone(zone).date().isoformat()
        into = days.setdefault(
            day,
            {
                "day": day,
                **dict.fromkeys(_SUMMED, 0),
                "max_tokens": None,
                "cost_nanos": None,
                "currency_set": set(),
                "currencies": 0,
            },
        )
        for key in _SUMMED:
            into[key] += row[key]
        if row["max_tokens"] is not None:
            into["max_tokens"] = max(into["max_tokens"] or 0, row["max_tokens"])
        if row["cost_nanos"] is not None:
            into["cost_nanos"] = (into["cost_nanos"] or 0) + row["cost_nanos"]
        if row["cost_currency"] is not None:
            into["currency_set"].add(row["cost_currency"])
        into["currencies"] = max(into["currencies"], int(row["currencies"]))
    folded = []
    for day in sorted(days, reverse=True):
        row = days[day]
        currencies, counted = row.pop("currency_set"), row["counted"]
        row["avg_tokens"] = round(row["tokens_total"] / counted, 1) if counted else None
        row["cost_currency"] = min(currencies, default=None)
        row["currencies"] = max(row["currencies"], len(currencies))
        folded.append(row)
    return folded
