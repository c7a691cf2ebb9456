"""The SQL of the trail (``generation_logs`` and its events): the statements the stores run.

Filters come from an allowlist and every value is bound, so no filter value can change
a statement. What differs between databases (the placeholder, full-text search, the
day of a timestamp) is a :class:`Dialect`; the rest is plain SQL both accept.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from audited_openai import _review, _rows
from audited_openai._clock import format_ts
from audited_openai._errors import InvalidLogError
from audited_openai._models import STATUSES

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

COLUMNS = _rows.TABLE_COLUMNS
EVENTS, EVENT_COLUMNS, CHAINED = _rows.EVENTS, _rows.EVENT_COLUMNS, ", ".join(_rows.CHAINED)


@dataclass(frozen=True)
class Dialect:
    """How one database spells what standard SQL leaves open."""

    name: str  # "sqlite" or "postgresql"
    param: str  # the placeholder of a bound value
    day: str  # the UTC day (YYYY-MM-DD) of gl.logged_at
    search: Callable[[str], tuple[str, list[str]]]  # query text -> (condition on gl, values)
    # A listing with a search, driven by the index: (FROM ..., condition, ORDER BY ...)
    search_listing: tuple[str, str, str] | None = None
    # Or: first among this many newest rows, then (too few found) through the index
    search_window: int | None = None
    # The names of the host's definities columns (none when there is no such table)
    host_columns: str = ""
    # A moment of d.created_at (any of the host's formats) compared with a bound UTC time
    created_since: str = ""


def _sqlite_search(text: str) -> tuple[str, list[str]]:
    return (
        "gl.id IN (SELECT rowid FROM generation_logs_fts WHERE generation_logs_fts MATCH ?)",
        [fts_query(text)],
    )


def _postgres_search(text: str) -> tuple[str, list[str]]:
    # The vector holds each text twice: stemmed as Dutch, and word for word (simple).
    query = tsquery(text)
    return (
        "gl.search_vector @@ (to_tsquery('dutch', %s) || to_tsquery('simple', %s))",
        [query, query],
    )


SQLITE = Dialect(
    name="sqlite",
    param="?",
    day="substr(gl.logged_at, 1, 10)",
    search=_sqlite_search,
    host_columns="SELECT name FROM pragma_table_info('definities')",
    created_since="julianday(d.created_at) >= julianday(?)",
    # The index yields matches in rowid order, so a listing with a limit stops early.
    search_listing=(
        "generation_logs_fts JOIN generation_logs gl ON gl.id = generation_logs_fts.rowid",
        "generation_logs_fts MATCH ?",
        "generation_logs_fts.rowid DESC",
    ),
)
POSTGRES = Dialect(
    name="postgresql",
    param="%s",
    day="substr(gl.logged_at, 1, 10)",
    search=_postgres_search,
    host_columns=(
        "SELECT column_name AS name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = 'definities'"
    ),
    created_since="CAST(d.created_at AS timestamptz) >= CAST(%s AS timestamptz)",
    # PostgreSQL cannot tell a rare word from a common one (its statistics keep only
    # the most common lexemes), so a listing first looks among the newest rows, where a
    # common word is found at once, and only then asks the GIN index, which is quick
    # exactly when the word is rare.
    search_window=5000,
)


@dataclass(frozen=True)
class Filters:
    """The filters of the query side, validated when made (a bad value writes nothing)."""

    since: datetime | None = None
    until: datetime | None = None
    status: str | None = None
    model: str | None = None
    template_name: str | None = None
    template_version: str | None = None
    definitie_id: int | None = None
    endpoint: str | None = None
    call_id: str | None = None
    search: str | None = None
    after_id: int | None = None
    replays: bool | None = None  # only replays (True), none (False), or both
    actor: str | None = None
    session: str | None = None
    reviewed: bool | None = None  # of a definitie with a review (True), without (False)

    def __post_init__(self) -> None:
        """Refuse values that cannot mean anything, with a clear error."""
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
                raise InvalidLogError(f"{name} must be a timezone-aware datetime", name)
        if self.status is not None and self.status not in STATUSES:
            raise InvalidLogError(
                f"unknown status {self.status!r}; expected one of {', '.join(STATUSES)}", "status"
            )
        texts = ("model", "template_name", "template_version", "endpoint", "call_id", "search")
        for name in (*texts, "actor", "session"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise InvalidLogError(f"{name} must be text, not {value!r}", name)
            if isinstance(value, str) and "\x00" in value and name != "search":
                raise InvalidLogError(f"{name} must not contain a NUL character", name)
        if self.search is not None:
            fts_query(self.search)
        self._check_the_rest()

    def _check_the_rest(self) -> None:
        """The ids and the replays flag."""
        _rows.validate_definitie_id(self.definitie_id)
        if self.after_id is not None:
            if isinstance(self.after_id, bool) or not isinstance(self.after_id, int):
                raise InvalidLogError(
                    f"after_id must be an integer, not {self.after_id!r}", "after_id"
                )
            _rows.validate_log_id(self.after_id)  # in range
        for name in ("replays", "reviewed"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, bool):
                raise InvalidLogError(f"{name} must be True or False, not {value!r}", name)


# filter name -> condition on gl ({} is the placeholder); the only SQL a filter adds
_CONDITIONS = {
    "since": "gl.logged_at >= {}",
    "until": "gl.logged_at <= {}",
    "status": "gl.generation_status = {}",
    "model": "gl.model_name = {}",
    "template_name": "gl.prompt_template_name = {}",
    "template_version": "gl.prompt_template_version = {}",
    "definitie_id": "gl.definitie_id = {}",
    "endpoint": "gl.endpoint = {}",
    "call_id": "gl.call_id = {}",
    "after_id": "gl.id < {}",
    "actor": "gl.actor = {}",
    "session": "gl.session_id = {}",
}


REVIEWED = "EXISTS (SELECT 1 FROM generation_reviews r WHERE r.definitie_id = gl.definitie_id)"


def where(filters: Filters, dialect: Dialect, *extra: str) -> tuple[str, list[Any]]:
    """``WHERE ...`` (or "") for the filters that are set, and the values to bind."""
    conditions: list[str] = []
    params: list[Any] = []
    for field in fields(filters):
        value = getattr(filters, field.name)
        if value is None:
            continue
        if field.name == "search":
            condition, values = dialect.search(value)
        elif field.name == "replays":
            condition, values = f"gl.replay_of IS {'NOT ' if value else ''}NULL", []
        elif field.name == "reviewed":
            condition, values = (
                REVIEWED if value else f"gl.definitie_id IS NOT NULL AND NOT {REVIEWED}",
                [],
            )
        else:
            condition = _CONDITIONS[field.name].format(dialect.param)
            values = [format_ts(value) if isinstance(value, datetime) else value]
        conditions.append(condition)
        params.extend(values)
    conditions.extend(extra)
    return ("WHERE " + " AND ".join(conditions) if conditions else ""), params


def search_terms(text: str) -> list[tuple[str, bool]]:
    """Free text as terms that must all occur: (a word or a phrase, a prefix?).

    ``"a phrase"`` stays a phrase and ``word*`` a prefix; nothing else is syntax.
    """
    terms: list[tuple[str, bool]] = []
    text = text.replace("\x00", " ")  # FTS5 strings end at NUL
    for index, part in enumerate(text.split('"')):
        if index % 2 == 1:
            if part.strip():
                terms.append((part, False))
            continue
        terms.extend((w.rstrip("*"), w.endswith("*")) for w in part.split() if w.rstrip("*"))
    if not terms:
        raise InvalidLogError("search needs at least one word", "search")
    return terms


def fts_query(text: str) -> str:
    """Free text as an SQLite FTS5 query: each term quoted, so no input is syntax."""
    return " ".join(f'"{term}"' + ("*" if prefix else "") for term, prefix in search_terms(text))


def tsquery(text: str) -> str:
    """Free text as a PostgreSQL tsquery: each word quoted, phrases as ``<->``."""

    def lexeme(word: str) -> str:
        return "'" + word.replace("\\", "\\\\").replace("'", "''") + "'"

    terms = []
    for term, prefix in search_terms(text):
        words = term.split()
        phrase = " <-> ".join(lexeme(word) for word in words)
        terms.append(f"({phrase}{':*' if prefix else ''})")
    return " & ".join(terms)


# -- writes ------------------------------------------------------------------------------


@functools.cache
def insert(columns: tuple[str, ...], dialect: Dialect) -> str:
    """``INSERT`` of one row with these columns."""
    marks = ", ".join(dialect.param for _ in columns)
    return f"INSERT INTO generation_logs ({', '.join(columns)}) VALUES ({marks})"


@functools.cache
def complete(columns: tuple[str, ...], dialect: Dialect, *, only_pending: bool) -> str:
    """``UPDATE`` writing these columns of one row (their values, then the id)."""
    sets = ", ".join(f"{column} = {dialect.param}" for column in columns)
    sql = f"UPDATE generation_logs SET {sets} WHERE id = {dialect.param}"
    return sql + " AND generation_status = 'pending'" if only_pending else sql


def link(dialect: Dialect) -> str:
    """``UPDATE`` linking a row to a definitie (definitie id, then the row id)."""
    return f"UPDATE generation_logs SET definitie_id = {dialect.param} WHERE id = {dialect.param}"


def mark_replay(dialect: Dialect) -> str:
    """``UPDATE`` marking a row as a replay (the original's id, then the row's)."""
    return f"UPDATE generation_logs SET replay_of = {dialect.param} WHERE id = {dialect.param}"


def erase(dialect: Dialect) -> str:
    """``DELETE`` of a definitie's rows (its id), returning (id, definitie) of each."""
    return (
        f"DELETE FROM generation_logs WHERE definitie_id = {dialect.param}"
        " RETURNING id, definitie_id"
    )


def erase_reviews(dialect: Dialect) -> str:
    """``DELETE`` of a definitie's reviews (its id), returning (id, definitie) of each."""
    return (
        f"DELETE FROM generation_reviews WHERE definitie_id = {dialect.param}"
        " RETURNING id, definitie_id"
    )


REVIEW_COLUMNS = ", ".join(_review.COLUMNS)


def insert_review(dialect: Dialect) -> str:
    """``INSERT`` of a review (``_review.COLUMNS`` but the id), returning its columns."""
    marks = ", ".join([dialect.param] * (len(_review.COLUMNS) - 1))
    return (
        f"INSERT INTO generation_reviews ({', '.join(_review.COLUMNS[1:])}) VALUES ({marks})"
        f" RETURNING {REVIEW_COLUMNS}"
    )


def log_of_definitie(dialect: Dialect) -> str:
    """The id of a definitie's log (definitie id, then a log id or NULL twice).

    The named log if it is the definitie's, else its latest row that is no replay.
    """
    p, log = dialect.param, f"CAST({dialect.param} AS BIGINT)"
    return (
        f"SELECT id FROM generation_logs WHERE definitie_id = {p}"
        f" AND (id = {log} OR ({log} IS NULL AND replay_of IS NULL)) ORDER BY id DESC LIMIT 1"
    )


def reviews_of(dialect: Dialect, by: str) -> str:
    """A definitie's or a log's reviews (``by``: its column), oldest first."""
    column = {"definitie": "definitie_id", "log": "log_id"}[by]
    return (
        f"SELECT {REVIEW_COLUMNS} FROM generation_reviews WHERE {column} = {dialect.param}"
        " ORDER BY id"
    )


def verdicts_of(dialect: Dialect, count: int) -> str:
    """(definitie, verdict) of the reviews of ``count`` definities, oldest first."""
    marks = ", ".join([dialect.param] * count)
    return (
        f"SELECT definitie_id, verdict FROM generation_reviews WHERE definitie_id IN ({marks})"
        " ORDER BY id"
    )


# -- retention (see _retention) ------------------------------------------------------------

_HELD = "EXISTS (SELECT 1 FROM generation_log_holds h WHERE h.definitie_id = {}.definitie_id)"
_RETAINED = {  # table -> (alias, its time column)
    "generation_logs": ("gl", "logged_at"),
    "generation_reviews": ("r", "reviewed_at"),
}


def retain(dialect: Dialect, table: str) -> str:
    """``DELETE`` of the oldest rows of ``table`` from before a moment, none held.

    Binds the moment, then how many at most; returns (id, definitie) of each.
    """
    alias, at = _RETAINED[table]
    p = dialect.param
    return (
        f"DELETE FROM {table} WHERE id IN (SELECT {alias}.id FROM {table} {alias}"
        f" WHERE {alias}.{at} < {p} AND NOT {_HELD.format(alias)} ORDER BY {alias}.{at}"
        f" LIMIT {p}) RETURNING id, definitie_id"
    )


def retained(dialect: Dialect) -> str:
    """How many rows, reviews and held rows there are from before a moment (it, thrice)."""
    p = dialect.param
    return (
        f"SELECT (SELECT count(*) FROM generation_logs gl WHERE gl.logged_at < {p}"
        f" AND NOT {_HELD.format('gl')}),"
        f" (SELECT count(*) FROM generation_reviews r WHERE r.reviewed_at < {p}"
        f" AND NOT {_HELD.format('r')}),"
        f" (SELECT count(*) FROM generation_logs gl WHERE gl.logged_at < {p}"
        f" AND {_HELD.format('gl')})"
    )


POLICY = "SELECT keep_days, keep, forced, set_at, set_by FROM generation_log_retention"
HOLDS = "SELECT definitie_id, reason, held_at, held_by FROM generation_log_holds ORDER BY 1"
CLEAR_POLICY = "DELETE FROM generation_log_retention"


def set_policy(dialect: Dialect) -> str:
    """Set the one policy (keep_days, keep, forced, set_at, set_by)."""
    p = dialect.param
    return (
        "INSERT INTO generation_log_retention (id, keep_days, keep, forced, set_at, set_by)"
        f" VALUES (1, {p}, {p}, {p}, {p}, {p}) ON CONFLICT (id) DO UPDATE SET"
        " keep_days = excluded.keep_days, keep = excluded.keep, forced = excluded.forced,"
        " set_at = excluded.set_at, set_by = excluded.set_by"
    )


def hold(dialect: Dialect) -> str:
    """Hold a definitie (its id, the reason, held_at, held_by); again: the new reason."""
    p = dialect.param
    return (
        "INSERT INTO generation_log_holds (definitie_id, reason, held_at, held_by)"
        f" VALUES ({p}, {p}, {p}, {p}) ON CONFLICT (definitie_id) DO UPDATE SET"
        " reason = excluded.reason, held_at = excluded.held_at, held_by = excluded.held_by"
    )


def release(dialect: Dialect) -> str:
    """Release a definitie's hold (its id)."""
    return f"DELETE FROM generation_log_holds WHERE definitie_id = {dialect.param}"


def held(dialect: Dialect) -> str:
    """A definitie's hold, if it has one (its id)."""
    return f"{HOLDS.removesuffix(' ORDER BY 1')} WHERE definitie_id = {dialect.param}"


def reconcile(dialect: Dialect) -> str:
    """``UPDATE`` settling rows pending since before a moment (now, then the moment)."""
    return (
        "UPDATE generation_logs SET generation_status = 'timeout', error_type = 'abandoned', "
        "error_message = 'still pending at reconcile: its process died or lost it', "
        f"updated_at = {dialect.param} "
        f"WHERE generation_status = 'pending' AND logged_at < {dialect.param}"
    )


# -- reads -------------------------------------------------------------------------------


def listing(
    filters: Filters, dialect: Dialect, limit: int, *, by_time: bool = False
) -> tuple[str, list[Any]]:
    """Whole rows, newest first (by id, or by time then id), at most ``limit``."""
    source, order = (
        "generation_logs gl",
        "gl.logged_at DESC, gl.id DESC" if by_time else "gl.id DESC",
    )
    if filters.search is not None and dialect.search_listing is not None and not by_time:
        source, condition, order = dialect.search_listing
        clause, params = where(replace(filters, search=None), dialect, condition)
        params.append(fts_query(filters.search))
    elif filters.search is not None and dialect.search_window is not None and not by_time:
        recent, params = where(replace(filters, search=None), dialect)
        condition, values = dialect.search(filters.search)
        p = dialect.param
        sql = (
            "SELECT gl.* FROM generation_logs gl WHERE gl.id IN (SELECT gl.id FROM"
            f" (SELECT gl.id, gl.search_vector FROM generation_logs gl {recent}"
            f" ORDER BY gl.id DESC LIMIT {dialect.search_window}) gl"
            f" WHERE {condition} ORDER BY gl.id DESC LIMIT {p}) ORDER BY gl.id DESC"
        )
        return sql, [*params, *values, limit]
    else:
        clause, params = where(filters, dialect)
    sql = f"SELECT gl.* FROM {source} {clause} ORDER BY {order} LIMIT {dialect.param}"
    return sql, [*params, limit]


def wide_listing(
    filters: Filters, dialect: Dialect, limit: int, *, by_time: bool = False
) -> tuple[str, list[Any]] | None:
    """The search listing through the index, for when the newest rows held too few matches.

    None where :func:`listing` is already the whole answer.
    """
    if filters.search is None or dialect.search_window is None or by_time:
        return None
    clause, params = where(filters, dialect)
    # id + 0: not the primary key's order, so that the planner takes the GIN index
    order = f"ORDER BY gl.id + 0 DESC LIMIT {dialect.param}"
    return f"SELECT gl.* FROM generation_logs gl {clause} {order}", [*params, limit]


def count(filters: Filters, dialect: Dialect) -> tuple[str, list[Any]]:
    """How many rows match."""
    clause, params = where(filters, dialect)
    return f"SELECT count(*) AS n FROM generation_logs gl {clause}", params


def page(filters: Filters, dialect: Dialect, after: int, size: int) -> tuple[str, list[Any]]:
    """Rows (every column, in ``COLUMNS`` order) with ids above ``after``, oldest first."""
    clause, params = where(filters, dialect, f"gl.id > {dialect.param}")
    select = ", ".join(f"gl.{column}" for column in COLUMNS)
    sql = f"SELECT {select} FROM generation_logs gl {clause} ORDER BY gl.id LIMIT {dialect.param}"
    return sql, [*params, after, size]


def census(filters: Filters, dialect: Dialect) -> tuple[str, list[Any]]:
    """Rows counted per template, status and model (and how many have a duration)."""
    clause, params = where(filters, dialect)
    sql = (
        "SELECT gl.prompt_template_name AS template_name,"
        " gl.prompt_template_version AS template_version, gl.generation_status AS status,"
        " gl.model_name AS model, count(*) AS n, count(gl.duration_ms) AS timed"
        f" FROM generation_logs gl {clause} GROUP BY gl.prompt_template_name,"
        " gl.prompt_template_version, gl.generation_status, gl.model_name"
    )
    return sql, params


# Ten minutes of UTC (``YYYY-MM-DDTHH:M``): fine enough to fold into the days of any
# zone whose offset is a multiple of ten minutes (every zone but the :45 ones)
TEN_MINUTES = "substr(gl.logged_at, 1, 15)"


def usage_by_day(
    filters: Filters, dialect: Dialect, *, bucket: str | None = None
) -> tuple[str, list[Any]]:
    """Tokens and cost of successful generations per UTC day (or ``bucket``), newest first."""
    clause, params = where(filters, dialect, "gl.generation_status = 'success'")
    group = bucket or dialect.day
    sql = (
        f"SELECT {group} AS day, count(*) AS generations,"
        " coalesce(sum(gl.tokens_prompt), 0) AS tokens_prompt,"
        " coalesce(sum(gl.tokens_completion), 0) AS tokens_completion,"
        " coalesce(sum(gl.tokens_total), 0) AS tokens_total,"
        " CAST(round(avg(gl.tokens_total), 1) AS DOUBLE PRECISION) AS avg_tokens,"
        " max(gl.tokens_total) AS max_tokens, count(gl.tokens_total) AS counted,"
        " sum(gl.cost_nanos) AS cost_nanos, count(gl.cost_nanos) AS priced,"
        " min(gl.cost_currency) AS cost_currency,"
        " count(DISTINCT gl.cost_currency) AS currencies"
        # the day is the very expression of idx_generation_logs_usage: a streaming aggregate
        f" FROM generation_logs gl {clause} GROUP BY {group} ORDER BY day DESC"
    )
    return sql, params


def most_expensive(filters: Filters, dialect: Dialect, n: int) -> tuple[str, list[Any]]:
    """The ``n`` successful generations with the most tokens (replays are not generations)."""
    clause, params = where(
        filters, dialect, "gl.generation_status = 'success'", "gl.replay_of IS NULL"
    )
    sql = (
        "SELECT gl.id, gl.definitie_id, gl.model_name, gl.prompt_template_name,"
        " gl.prompt_template_version, gl.tokens_total, gl.duration_ms, gl.logged_at,"
        " gl.cost_nanos, gl.cost_currency"
        f" FROM generation_logs gl {clause}"
        f" ORDER BY gl.tokens_total DESC, gl.id DESC LIMIT {dialect.param}"
    )
    return sql, [*params, n]


def percentile(
    filters: Filters, dialect: Dialect, group: tuple[Any, Any, Any], rank: int
) -> tuple[str, list[Any]]:
    """The ``rank``-th smallest successful duration of one (model, template, version).

    A group's missing template is ``IS NULL`` and a present one ``=`` (not ``IS NOT
    DISTINCT FROM``, which PostgreSQL cannot look up in an index).
    """
    p = dialect.param
    columns = ("gl.model_name", "gl.prompt_template_name", "gl.prompt_template_version")
    equal = [
        f"{column} = {p}" if value is not None else f"{column} IS NULL"
        for column, value in zip(columns, group, strict=True)
    ]
    clause, params = where(
        filters, dialect, "gl.generation_status = 'success'", "gl.duration_ms IS NOT NULL", *equal
    )
    sql = (
        f"SELECT gl.duration_ms FROM generation_logs gl {clause}"
        f" ORDER BY gl.duration_ms LIMIT 1 OFFSET {p}"
    )
    return sql, [*params, *(value for value in group if value is not None), rank - 1]


def attempts(dialect: Dialect, count: int) -> str:
    """The call, attempt, id and status of the rows of ``count`` calls (their ids)."""
    marks = ", ".join(dialect.param for _ in range(count))
    return (
        "SELECT call_id, attempt, id, generation_status FROM generation_logs"
        f" WHERE call_id IN ({marks})"
    )


def attempt(dialect: Dialect) -> str:
    """The id and status of the row of one attempt (call id, attempt)."""
    p = dialect.param
    return (
        f"SELECT id, generation_status FROM generation_logs WHERE call_id = {p} AND attempt = {p}"
    )


def by_id(dialect: Dialect) -> str:
    """The row with an id."""
    return f"SELECT gl.* FROM generation_logs gl WHERE gl.id = {dialect.param}"


def by_definitie(dialect: Dialect) -> str:
    """Every row of a definitie, oldest first."""
    p = dialect.param
    return f"SELECT gl.* FROM generation_logs gl WHERE gl.definitie_id = {p} ORDER BY gl.id"


# -- compare (``query.compare``) -------------------------------------------------------------

# What a variant can be: a column, or (any other name) a key of additional_metadata.
COMPARED_COLUMNS = {
    "template_version": "gl.prompt_template_version",
    "template_name": "gl.prompt_template_name",
    "model": "gl.model_name",
}
MEASURES = ("duration_ms", "tokens_total", "cost_nanos")  # compared as distributions


def metadata_value(key: str, dialect: Dialect) -> tuple[str, list[Any]]:
    """A key of a row's metadata as text (NULL where absent), and its bound value."""
    if dialect.name == "sqlite":
        return "CAST(json_extract(gl.additional_metadata, ?) AS TEXT)", ['$."' + key + '"']
    return "(gl.additional_metadata::jsonb ->> %s)", [key]


def _compared(
    by: str, variants: tuple[str, str], filters: Filters, dialect: Dialect, experiment: str | None
) -> tuple[str, list[Any], str, list[Any]]:
    """The variant's expression and values, and the FROM ... WHERE of the compared rows.

    Completed rows that are no replays, of either variant; the literal ``!= 'pending'``
    lets SQLite take the partial idx_generation_logs_compare.
    """
    p = dialect.param
    values: list[Any] = []
    if by in COMPARED_COLUMNS:
        variant = COMPARED_COLUMNS[by]
    else:
        variant, values = metadata_value(by, dialect)
    extra, extra_values = [f"{variant} IN ({p}, {p})"], [*values, *variants]
    if experiment is not None:
        named, named_values = metadata_value("experiment", dialect)
        extra.append(f"{named} = {p}")
        extra_values += [*named_values, experiment]
    clause, params = where(
        filters, dialect, *extra, "gl.generation_status != 'pending'", "gl.replay_of IS NULL"
    )
    return variant, values, f"FROM generation_logs gl {clause}", [*params, *extra_values]


def compare_outcomes(
    by: str, variants: tuple[str, str], filters: Filters, dialect: Dialect, experiment: str | None
) -> tuple[str, list[Any]]:
    """Completed rows per variant, status, first attempt or not, and finish reason."""
    variant, values, source, params = _compared(by, variants, filters, dialect, experiment)
    sql = (
        f"SELECT {variant} AS variant, gl.generation_status AS status,"
        " CASE WHEN gl.attempt = 1 THEN 1 ELSE 0 END AS first,"
        " gl.response_finish_reason AS finish_reason, count(*) AS n"
        f" {source} GROUP BY 1, 2, 3, 4"
    )
    return sql, [*values, *params]


def compare_definities(
    by: str, variants: tuple[str, str], filters: Filters, dialect: Dialect, experiment: str | None
) -> tuple[str, list[Any]]:
    """How many definities each variant's rows belong to."""
    variant, values, source, params = _compared(by, variants, filters, dialect, experiment)
    sql = f"SELECT {variant} AS variant, count(DISTINCT gl.definitie_id) AS n {source} GROUP BY 1"
    return sql, [*values, *params]


def compare_reviews(
    by: str, variants: tuple[str, str], filters: Filters, dialect: Dialect, experiment: str | None
) -> tuple[str, list[Any]]:
    """Per variant and verdict, the definities whose latest review judged a row of it."""
    variant, values, source, params = _compared(by, variants, filters, dialect, experiment)
    joined = source.replace(
        "FROM generation_logs gl",
        "FROM generation_reviews r JOIN generation_logs gl ON gl.id = r.log_id",
        1,
    )
    sql = (
        f"SELECT {variant} AS variant, r.verdict AS verdict, count(*) AS n {joined}"
        " AND r.id = (SELECT max(r2.id) FROM generation_reviews r2"
        " WHERE r2.definitie_id = r.definitie_id) GROUP BY 1, 2"
    )
    return sql, [*values, *params]


def compare_histogram(  # noqa: PLR0917 - compare_outcomes' arguments and the measure
    by: str,
    variants: tuple[str, str],
    filters: Filters,
    dialect: Dialect,
    experiment: str | None,
    measure: str,
) -> tuple[str, list[Any]]:
    """A measure of the successful rows per variant: (variant, unit, value, how many).

    The cost comes per currency (``unit``); the others with a NULL unit, not grouped
    by, so that SQLite reads the latency in the order of idx_generation_logs_compare
    without sorting. Unordered: the histogram is sorted in Python, per variant.
    """
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}")
    variant, values, source, params = _compared(by, variants, filters, dialect, experiment)
    cost = measure == "cost_nanos"
    unit, groups = ("gl.cost_currency", "1, 2, 3") if cost else ("NULL", "1, 3")
    sql = (
        f"SELECT {variant} AS variant, {unit} AS unit, gl.{measure} AS value, count(*) AS n"
        f" {source} AND gl.generation_status = 'success' AND gl.{measure} IS NOT NULL"
        f" GROUP BY {groups}"
    )
    return sql, [*values, *params]


# -- health (``status``) -------------------------------------------------------------------


def generated(dialect: Dialect, *, since: bool) -> str:
    """How many definities the host's table says were generated.

    Bound: the moment of ``created_at`` they are counted from, when ``since``.
    """
    created = f" AND {dialect.created_since}" if since else ""
    return f"SELECT count(*) AS n FROM definities d WHERE d.source_type = 'generated'{created}"


def without_log(dialect: Dialect, *, since: bool) -> str:
    """Generated definities with no successful generation (no replay): their ids.

    Bound: the moment of ``created_at`` they are counted from, when ``since``.
    """
    created = f" AND {dialect.created_since}" if since else ""
    return (
        "SELECT d.id FROM definities d WHERE d.source_type = 'generated'"
        f"{created} AND NOT EXISTS (SELECT 1 FROM generation_logs gl"
        " WHERE gl.definitie_id = d.id AND gl.replay_of IS NULL"
        " AND gl.generation_status = 'success') ORDER BY d.id"
    )


def pending(dialect: Dialect) -> str:
    """Pending rows: how many, how many since before a moment (bound), and the oldest."""
    return (
        "SELECT count(*) AS n,"
        f" coalesce(sum(CASE WHEN gl.logged_at < {dialect.param} THEN 1 ELSE 0 END), 0) AS stale,"
        " min(gl.logged_at) AS oldest FROM generation_logs gl"
        " WHERE gl.generation_status = 'pending'"
    )


# The id of the oldest pending row.
OLDEST_PENDING = (
    "SELECT gl.id FROM generation_logs gl WHERE gl.generation_status = 'pending'"
    " ORDER BY gl.logged_at, gl.id LIMIT 1"
)


def outcomes(dialect: Dialect) -> str:
    """Rows since two weeks ago per period, status, error type and a success's duration.

    Bound: a day ago, a week ago, two weeks ago. The periods: ``day`` (the last 24
    hours), ``week`` (the rest of the last 7 days) and ``before`` (the 7 days before).
    One scan of the timestamp index alone (schema 10). A success is grouped by its
    duration too (one group per period and distinct millisecond: 24,607 for a million
    rows in docs/performance.md), so the percentiles are counted from the groups.
    """
    p = dialect.param
    return (
        f"SELECT CASE WHEN gl.logged_at >= {p} THEN 'day' WHEN gl.logged_at >= {p}"
        " THEN 'week' ELSE 'before' END AS period, gl.generation_status AS status,"
        " gl.error_type AS error_type, CASE WHEN gl.generation_status = 'success'"
        " THEN gl.duration_ms END AS duration_ms, count(*) AS n FROM generation_logs gl"
        f" WHERE gl.logged_at >= {p} GROUP BY 1, 2, 3, 4"
    )


def last_check(dialect: Dialect) -> str:
    """The newest record of a kind (bound) in ``generation_log_checks``."""
    return (
        "SELECT kind, at, ok, events, problems, summary FROM generation_log_checks"
        f" WHERE kind = {dialect.param} ORDER BY id DESC LIMIT 1"
    )


def record_check(dialect: Dialect) -> str:
    """``INSERT`` of a record (kind, at, ok, events, problems, summary)."""
    marks = ", ".join([dialect.param] * 6)
    return (
        "INSERT INTO generation_log_checks (kind, at, ok, events, problems, summary)"
        f" VALUES ({marks})"
    )


ROW_COUNT = "SELECT count(*) AS n FROM generation_logs"


# -- the chain (_chain appends, _verify reads; a snapshot's queries bind nothing) ---------

RETURNING = f" RETURNING {CHAINED}"  # after a write of generation_logs: the rows it wrote
EVENT_HEAD = f"SELECT seq, hash FROM {EVENTS} ORDER BY seq DESC LIMIT 1"
EVENTS_TOP = f"SELECT coalesce(max(seq), 0) FROM {EVENTS}"
# the highest log id of a row or an event: the newest rows deleted still have events
LOG_TOP = (
    "SELECT max(top) FROM (SELECT coalesce(max(id), 0) AS top FROM generation_logs"
    f" UNION ALL SELECT coalesce(max(log_id), 0) FROM {EVENTS}) AS tops"
)


CHAINED_REVIEWS = f"SELECT {REVIEW_COLUMNS} FROM generation_reviews ORDER BY id"
# (review id, seq, kind, definitie, state) of the reviews' events: by review id, newest first
EVENTS_OF_REVIEWS = (
    f"SELECT -log_id, seq, kind, definitie_id, state FROM {EVENTS}"
    " WHERE log_id < 0 ORDER BY log_id DESC, seq DESC"
)


# -- a dossier's reads (in a snapshot: ids in the text, checked to be ints) ----------------

MERKLE_BLOCKS = "SELECT block, root FROM generation_log_merkle"


def keep_merkle(dialect: Dialect) -> str:
    """Keep a block's root (the block, the root), if it is not kept already."""
    return (
        f"INSERT INTO generation_log_merkle (block, root) VALUES ({dialect.param}, {dialect.param})"
        " ON CONFLICT (block) DO NOTHING"
    )


def _ints(values: list[int]) -> str:
    return ", ".join(str(int(v)) for v in values) or "NULL"


def dossier_rows(definitie_id: int) -> str:
    """The chained columns of a definitie's rows, by id."""
    where = f"WHERE definitie_id = {int(definitie_id)} ORDER BY id"
    return f"SELECT {CHAINED} FROM generation_logs {where}"


def dossier_reviews(definitie_id: int) -> str:
    """A definitie's reviews, by id."""
    where = f"WHERE definitie_id = {int(definitie_id)} ORDER BY id"
    return f"SELECT {REVIEW_COLUMNS} FROM generation_reviews {where}"


def events_of(log_ids: list[int]) -> str:
    """Every event of these log ids (reviews' negated), in order."""
    return f"SELECT {EVENT_COLUMNS} FROM {EVENTS} WHERE log_id IN ({_ints(log_ids)}) ORDER BY seq"


def hashes_of(seqs: list[int]) -> str:
    """(seq, hash) of these events."""
    return f"SELECT seq, hash FROM {EVENTS} WHERE seq IN ({_ints(seqs)})"


def hashes_between(first: int, last: int) -> str:
    """The hashes of events ``first`` to ``last``, in order."""
    return f"SELECT hash FROM {EVENTS} WHERE seq BETWEEN {int(first)} AND {int(last)} ORDER BY seq"


def host_definitie(definitie_id: int, columns: Sequence[str]) -> str:
    """These columns (names from the host's table, checked) of one definitie."""
    assert set(columns) <= {"begrip", "definitie", "source_type"}  # noqa: S101
    return f"SELECT {', '.join(columns) or 'id'} FROM definities WHERE id = {int(definitie_id)}"


def insert_event(dialect: Dialect) -> str:
    """``INSERT`` of one event (its columns in ``EVENT_COLUMNS`` order)."""
    return f"INSERT INTO {EVENTS} ({EVENT_COLUMNS}) VALUES ({', '.join([dialect.param] * 8)})"


def last_state(dialect: Dialect) -> str:
    """The state of a row's last event (its id)."""
    return f"SELECT state FROM {EVENTS} WHERE log_id = {dialect.param} ORDER BY seq DESC LIMIT 1"


def event_hash(seq: int) -> str:
    """The hash of the event ``seq``."""
    return f"SELECT hash FROM {EVENTS} WHERE seq = {int(seq)}"


def events_between(first: int, last: int) -> str:
    """The events ``first`` to ``last``, in order."""
    return (
        f"SELECT {EVENT_COLUMNS} FROM {EVENTS}"
        f" WHERE seq BETWEEN {int(first)} AND {int(last)} ORDER BY seq"
    )


def chained_rows_between(first: int, last: int) -> str:
    """The chained columns of the rows with ids ``first`` to ``last``, in id order."""
    return (
        f"SELECT {CHAINED} FROM generation_logs"
        f" WHERE id BETWEEN {int(first)} AND {int(last)} ORDER BY id"
    )


def events_of_rows_between(first: int, last: int) -> str:
    """(log id, seq, kind, definitie, state) of the events of log ids ``first`` to ``last``."""
    return (
        f"SELECT log_id, seq, kind, definitie_id, state FROM {EVENTS}"
        f" WHERE log_id BETWEEN {int(first)} AND {int(last)} ORDER BY log_id, seq"
    )


def last_event_of(log_id: int) -> str:
    """The last event of a row."""
    return (
        f"SELECT {EVENT_COLUMNS} FROM {EVENTS} WHERE log_id = {int(log_id)}"
        " ORDER BY seq DESC LIMIT 1"
    )


def chained_row_of(log_id: int) -> str:
    """A row's chained columns (its id, in the text)."""
    return f"SELECT {CHAINED} FROM generation_logs WHERE id = {int(log_id)}"


def definitie_there(definitie_id: int) -> str:
    """Whether the host's definitie is there."""
    return f"SELECT 1 FROM definities WHERE id = {int(definitie_id)}"
