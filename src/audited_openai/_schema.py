"""The ``generation_logs`` schema: versioned migrations and the host-app objects.

Migrations are named functions of SQL, applied in order on first use. Each runs in
one ``BEGIN IMMEDIATE`` transaction together with its row in the ledger table
``audited_openai_migrations``, so two processes opening a fresh file at once
serialise on the write lock and the second finds the work done.

The views and the erasure trigger depend on the host app's ``definities`` table,
which may be created after the first migration (or live in another file); they are
(re)created by :func:`ensure_host_objects` whenever the table is there.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from audited_openai import _chain
from audited_openai._clock import SQL_NOW, format_ts, utc_now
from audited_openai._errors import SchemaVersionError, StoreError
from audited_openai._rows import EVENTS, FIRST_CHAINED, TABLE_COLUMNS, TEXT_COLUMNS, WHO_COLUMNS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

LEDGER = "audited_openai_migrations"
_CANONICAL = (
    "-".join(["[0-9]" * 4, "[0-9]" * 2, "[0-9]" * 2])
    + "T"
    + ":".join(["[0-9]" * 2] * 3)
    + ".[0-9][0-9][0-9]Z"
)  # a GLOB for YYYY-MM-DDTHH:MM:SS.mmmZ


def _to_utc(expression: str) -> str:
    """SQL turning any SQLite time value into the one UTC format (NULL if it is none)."""
    return f"strftime('%Y-%m-%dT%H:%M:%fZ', {expression})"


# The rows' constraints, the same on both backends (PostgreSQL's table uses them too).
CHECKS = """\
    CHECK (generation_status IN ('pending', 'success', 'failed', 'timeout')),
    CHECK (model_temperature >= 0.0 AND model_temperature <= 2.0),
    CHECK (tokens_prompt >= 0),
    CHECK (tokens_completion >= 0),
    CHECK (tokens_total >= 0),
    CHECK (tokens_cached >= 0),
    CHECK (tokens_reasoning >= 0),
    CHECK (duration_ms >= 0),
    CHECK (ttft_ms >= 0),
    CHECK (attempt >= 1),
    CHECK (stream IN (0, 1)),
    CHECK (http_status BETWEEN 100 AND 599)
"""

# The first indexes, the same on both backends.
INDEXES = """\
CREATE INDEX idx_generation_logs_definitie ON generation_logs(definitie_id);
CREATE INDEX idx_generation_logs_timestamp ON generation_logs(logged_at);
CREATE INDEX idx_generation_logs_model ON generation_logs(model_name);
CREATE INDEX idx_generation_logs_template ON generation_logs(prompt_template_version);
CREATE INDEX idx_generation_logs_status ON generation_logs(generation_status);
CREATE UNIQUE INDEX idx_generation_logs_call ON generation_logs(call_id, attempt);
"""

_V1_GENERATION_LOGS = f"""
-- Audit trail for AI-generated definitions. Stores the complete prompt, the model
-- parameters and the response metadata, for reproducibility and compliance.
-- Deviations from DEF-151 are listed in the README ("Deviations from the spec").
CREATE TABLE generation_logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,

    -- The definitie this generation produced. Nullable and not unique: the pending
    -- row is written before the definitie exists, and a definitie can take several
    -- attempts (spec defect 1). "The log of a definitie" is its latest row.
    -- References definities(id) ON DELETE CASCADE, enforced by triggers that work
    -- whatever the deleting connection's PRAGMA foreign_keys (spec defect 3).
    definitie_id INTEGER,

    -- One logical call (call_id) may take several HTTP attempts (attempt 1..n). The
    -- default lets INSERTs written for the spec's table (no call_id) keep working.
    call_id TEXT NOT NULL DEFAULT (lower(hex(randomblob(16)))),
    attempt INTEGER NOT NULL DEFAULT 1,
    endpoint TEXT NOT NULL DEFAULT 'chat.completions',  -- 'chat.completions', 'responses'

    prompt_template_version VARCHAR(50),
    prompt_template_name VARCHAR(100),
    prompt_modules_used TEXT,              -- JSON array: ["base", "context", ...]

    model_name VARCHAR(100) NOT NULL,
    model_temperature DECIMAL(3,2),
    model_max_tokens INTEGER,
    model_top_p DECIMAL(3,2),
    model_frequency_penalty DECIMAL(3,2),
    model_presence_penalty DECIMAL(3,2),
    stream INTEGER NOT NULL DEFAULT 0,

    tokens_prompt INTEGER,
    tokens_completion INTEGER,
    tokens_total INTEGER,
    tokens_cached INTEGER,
    tokens_reasoning INTEGER,

    duration_ms INTEGER,                   -- monotonic clock, request to completion
    ttft_ms INTEGER,                       -- streams: time to the first content chunk

    response_finish_reason VARCHAR(50),
    response_id VARCHAR(255),
    response_created_at INTEGER,           -- Unix timestamp from the API
    response_model VARCHAR(100),
    system_fingerprint VARCHAR(100),
    http_status INTEGER,

    -- pending: written before the request; success; failed; timeout
    generation_status VARCHAR(20) NOT NULL DEFAULT 'pending',

    error_type VARCHAR(50),                -- the exception class, e.g. 'RateLimitError'

    -- UTC, 'YYYY-MM-DDTHH:MM:SS.mmmZ' (spec defect 6)
    logged_at TIMESTAMP NOT NULL DEFAULT ({SQL_NOW}),
    updated_at TIMESTAMP NOT NULL DEFAULT ({SQL_NOW}),

    -- The large texts come last: reading any column above never has to walk the
    -- overflow pages of a 10 KB prompt.
    prompt_full_text TEXT NOT NULL,        -- the complete prompt (5-15 KB typical)
    request_json TEXT,                     -- the exact request body, no credentials
    response_content TEXT,
    error_message TEXT,
    error_traceback TEXT,
    additional_metadata TEXT,              -- JSON object

{CHECKS});

{INDEXES}CREATE INDEX idx_generation_logs_template_name
    ON generation_logs(prompt_template_name, prompt_template_version, logged_at);

-- Touch updated_at on every update that did not set it itself.
CREATE TRIGGER generation_logs_updated_at
AFTER UPDATE ON generation_logs
FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE generation_logs SET updated_at = {SQL_NOW} WHERE id = NEW.id;
END;
"""


_V2_FULL_TEXT_SEARCH = """
-- Full-text search over prompts and responses (external content: no second copy of
-- the text). A row is indexed when it is completed, so the pending write before each
-- request stays lean; rows still pending are not searchable until they complete or
-- are reconciled.
CREATE VIRTUAL TABLE generation_logs_fts USING fts5(
    prompt_full_text,
    response_content,
    content = 'generation_logs',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER generation_logs_fts_complete
AFTER UPDATE OF generation_status ON generation_logs
FOR EACH ROW WHEN OLD.generation_status = 'pending' AND NEW.generation_status != 'pending'
BEGIN
    INSERT INTO generation_logs_fts (rowid, prompt_full_text, response_content)
    VALUES (NEW.id, NEW.prompt_full_text, NEW.response_content);
END;

CREATE TRIGGER generation_logs_fts_insert
AFTER INSERT ON generation_logs
FOR EACH ROW WHEN NEW.generation_status != 'pending'
BEGIN
    INSERT INTO generation_logs_fts (rowid, prompt_full_text, response_content)
    VALUES (NEW.id, NEW.prompt_full_text, NEW.response_content);
END;

CREATE TRIGGER generation_logs_fts_change
AFTER UPDATE OF prompt_full_text, response_content ON generation_logs
FOR EACH ROW WHEN OLD.generation_status != 'pending' AND NEW.generation_status != 'pending'
    AND (OLD.prompt_full_text IS NOT NEW.prompt_full_text
         OR OLD.response_content IS NOT NEW.response_content)
BEGIN
    INSERT INTO generation_logs_fts (generation_logs_fts, rowid, prompt_full_text, response_content)
    VALUES ('delete', OLD.id, OLD.prompt_full_text, OLD.response_content);
    INSERT INTO generation_logs_fts (rowid, prompt_full_text, response_content)
    VALUES (NEW.id, NEW.prompt_full_text, NEW.response_content);
END;

CREATE TRIGGER generation_logs_fts_delete
AFTER DELETE ON generation_logs
FOR EACH ROW WHEN OLD.generation_status != 'pending'
BEGIN
    INSERT INTO generation_logs_fts (generation_logs_fts, rowid, prompt_full_text, response_content)
    VALUES ('delete', OLD.id, OLD.prompt_full_text, OLD.response_content);
END;

-- Index the rows written before this migration.
INSERT INTO generation_logs_fts (rowid, prompt_full_text, response_content)
SELECT id, prompt_full_text, response_content FROM generation_logs
WHERE generation_status != 'pending';
"""


_V3_QUERY_INDEXES = """
-- Covering indexes for the aggregates of the query side, so that stats over a large
-- trail read index pages only, never the rows with their prompts.
CREATE INDEX idx_generation_logs_usage
    ON generation_logs(generation_status, substr(logged_at, 1, 10), tokens_prompt,
                       tokens_completion, tokens_total, logged_at);
CREATE INDEX idx_generation_logs_failures
    ON generation_logs(prompt_template_name, prompt_template_version, generation_status,
                       model_name, duration_ms, logged_at);
CREATE INDEX idx_generation_logs_durations
    ON generation_logs(generation_status, model_name, prompt_template_name,
                       prompt_template_version, duration_ms, logged_at);
CREATE INDEX idx_generation_logs_expensive
    ON generation_logs(generation_status, tokens_total, logged_at);
"""


_V4_LEANER_WRITES = """
-- The aggregates over successful generations read partial indexes: a pending row (written
-- before its request leaves, while the caller waits) enters none of them, and its
-- completion adds it once instead of moving it. generation_status is listed last only so
-- that the usage index covers its query. Template filters and the duration percentiles
-- use idx_generation_logs_failures, which starts with the same columns.
DROP INDEX idx_generation_logs_usage;
DROP INDEX idx_generation_logs_durations;
DROP INDEX idx_generation_logs_expensive;
DROP INDEX idx_generation_logs_template_name;
CREATE INDEX idx_generation_logs_usage
    ON generation_logs(substr(logged_at, 1, 10), tokens_prompt, tokens_completion,
                       tokens_total, logged_at, generation_status)
    WHERE generation_status = 'success';
CREATE INDEX idx_generation_logs_expensive
    ON generation_logs(tokens_total, logged_at)
    WHERE generation_status = 'success';
"""


_V5_ONE_TIME_FORMAT = f"""
-- SQL written for the spec's own table (its INSERT gives logged_at as Python's
-- isoformat(), its trigger CURRENT_TIMESTAMP) stores other formats: they are rewritten
-- into the one UTC format, so that comparing timestamps as text stays right.
CREATE TRIGGER generation_logs_utc_insert
AFTER INSERT ON generation_logs
FOR EACH ROW WHEN NEW.logged_at NOT GLOB '{_CANONICAL}'
BEGIN
    UPDATE generation_logs SET logged_at = coalesce({_to_utc("NEW.logged_at")}, NEW.logged_at)
    WHERE id = NEW.id;
END;

CREATE TRIGGER generation_logs_utc_update
AFTER UPDATE OF updated_at ON generation_logs
FOR EACH ROW WHEN NEW.updated_at NOT GLOB '{_CANONICAL}'
BEGIN
    UPDATE generation_logs SET updated_at = coalesce({_to_utc("NEW.updated_at")}, NEW.updated_at)
    WHERE id = NEW.id;
END;
"""


_V6_WRITTEN_UPDATED_AT = f"""
-- A completion written in the same millisecond as its pending row keeps the time it was
-- given: updated_at is touched only by updates that change neither it nor the status.
DROP TRIGGER IF EXISTS generation_logs_updated_at;
CREATE TRIGGER generation_logs_updated_at
AFTER UPDATE ON generation_logs
FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
    AND NEW.generation_status IS OLD.generation_status
BEGIN
    UPDATE generation_logs SET updated_at = {SQL_NOW} WHERE id = NEW.id;
END;
"""


_V8_REPLAYS = """
-- A replay (audited-openai replay) is a row of its own kind: replay_of is the id of the
-- row whose request it sent again. The log of a definitie is its latest row that is no
-- replay; one index finds both a definitie's rows and that one.
ALTER TABLE generation_logs ADD COLUMN replay_of INTEGER CHECK (replay_of >= 0);
DROP INDEX idx_generation_logs_definitie;
CREATE INDEX idx_generation_logs_definitie ON generation_logs(definitie_id, replay_of);
DROP VIEW IF EXISTS definities_with_generation;
"""


# Version 9: what `status` reads. (PostgreSQL's: an identity column for the AUTOINCREMENT.)
V9_STATUS = """
-- The definities that have their log (the spec's first success criterion): one probe a
-- definitie in an index of successful rows only, never a row read. A pending row enters
-- it at its completion, once.
CREATE INDEX idx_generation_logs_generated ON generation_logs(definitie_id, replay_of)
    WHERE generation_status = 'success';

-- The results of `verify --record` and the checkpoints of `checkpoint --record`, which
-- `status` shows. A note for operations, not evidence: verify itself is the evidence.
CREATE TABLE generation_log_checks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('verify', 'checkpoint')),
    at TEXT NOT NULL,                     -- UTC, as logged_at
    ok SMALLINT CHECK (ok IN (0, 1)),     -- verify: whether everything held; else NULL
    events BIGINT NOT NULL,               -- the chain's length it covered
    problems BIGINT NOT NULL DEFAULT 0,   -- verify: how many problems it found
    summary TEXT NOT NULL                 -- verify's one line, or the checkpoint's hash
);
"""


# Version 10: status's fortnight read from an index alone (the same on PostgreSQL).
V10_PERIODS = """
-- The timestamp index carries what `status` counts per period (the status, the error
-- type, the duration), so a fortnight of rows is read from it alone, never a row. Its
-- first column is still logged_at: what used it uses it as before.
DROP INDEX idx_generation_logs_timestamp;
CREATE INDEX idx_generation_logs_timestamp
    ON generation_logs(logged_at, generation_status, error_type, duration_ms);
"""


# Version 11: what a call cost, and what `compare` reads (PostgreSQL's: BIGINT, and its
# usage index without the status column SQLite needs to cover its query).
V11_COST = """
-- What a successful call cost, priced when it was completed (audited_openai.prices): in
-- billionths of cost_currency, with the version of the price table used. NULL cost with
-- a price_version: the table had no price for the model or the response gave no usage.
ALTER TABLE generation_logs ADD COLUMN cost_nanos INTEGER CHECK (cost_nanos >= 0);
ALTER TABLE generation_logs ADD COLUMN cost_currency TEXT;
ALTER TABLE generation_logs ADD COLUMN price_version TEXT;

-- `compare` per template version reads this index alone: the outcome, the measures and
-- the attempt of every completed row. A pending row enters it at its completion, once.
CREATE INDEX idx_generation_logs_compare
    ON generation_logs(prompt_template_version, generation_status, duration_ms, tokens_total,
                       cost_nanos, cost_currency, attempt, response_finish_reason,
                       definitie_id, logged_at, replay_of)
    WHERE generation_status != 'pending';

-- Cost per day beside tokens, from the usage index alone.
DROP INDEX idx_generation_logs_usage;
CREATE INDEX idx_generation_logs_usage
    ON generation_logs(substr(logged_at, 1, 10), tokens_prompt, tokens_completion,
                       tokens_total, cost_nanos, cost_currency, logged_at, generation_status)
    WHERE generation_status = 'success';
"""


V12_ACTOR = """
-- Who asked (audit_context(actor=..., session=...)): the person or service, and the
-- working session, as the app names them. Personal data: chained as digests, erased
-- with the row. Listed per actor or session from these indexes (rows that have one).
ALTER TABLE generation_logs ADD COLUMN actor TEXT CHECK (length(actor) BETWEEN 1 AND 256);
ALTER TABLE generation_logs ADD COLUMN session_id TEXT
    CHECK (length(session_id) BETWEEN 1 AND 256);
CREATE INDEX idx_generation_logs_actor ON generation_logs(actor, id) WHERE actor IS NOT NULL;
CREATE INDEX idx_generation_logs_session
    ON generation_logs(session_id, id) WHERE session_id IS NOT NULL;
"""


# Version 13: reviews (see audited_openai._review; PostgreSQL's: BIGINT and an identity).
V13_REVIEWS = """
-- A person's judgement of a generated definitie: who, when, the verdict, a note and
-- (edited) the text as the reviewer changed it. Written once, chained like every write
-- (the event's log_id is the review's id negated), erased with its definitie.
CREATE TABLE generation_reviews (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    definitie_id INTEGER NOT NULL,
    log_id INTEGER NOT NULL,              -- the generation it judged
    reviewer TEXT NOT NULL CHECK (length(reviewer) BETWEEN 1 AND 256),
    verdict TEXT NOT NULL CHECK (verdict IN ('approved', 'rejected', 'edited')),
    note TEXT,
    edited_text TEXT,
    reviewed_at TEXT NOT NULL,            -- UTC, as logged_at
    CHECK ((verdict = 'edited') = (edited_text IS NOT NULL))
);
CREATE INDEX idx_generation_reviews_definitie ON generation_reviews(definitie_id, id);
CREATE INDEX idx_generation_reviews_log ON generation_reviews(log_id, id);
"""


# Version 14: how long the trail is kept, and what is held (see audited_openai._retention).
V14_RETENTION = """
-- The retention policy (audited-openai retention): one row, set by a command. Rows and
-- reviews older than keep_days go when `retain` runs, as an erasure does.
CREATE TABLE generation_log_retention (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    keep_days INTEGER NOT NULL CHECK (keep_days >= 1),
    keep TEXT NOT NULL,                    -- as given: 2y, 18mo, 400d
    forced SMALLINT NOT NULL CHECK (forced IN (0, 1)),  -- under six months, on purpose
    set_at TEXT NOT NULL,                  -- UTC, as logged_at
    set_by TEXT NOT NULL                   -- the command that set it
);

-- Legal holds: a held definitie's rows and reviews are kept whatever the policy says.
CREATE TABLE generation_log_holds (
    definitie_id INTEGER PRIMARY KEY,
    reason TEXT NOT NULL CHECK (length(reason) BETWEEN 1 AND 1000),
    held_at TEXT NOT NULL,
    held_by TEXT NOT NULL
);

-- `retain` takes the oldest reviews first.
CREATE INDEX idx_generation_reviews_time ON generation_reviews(reviewed_at);
"""


# Version 15: the kept roots of the chain's Merkle tree (see audited_openai._merkle).
V15_MERKLE = """
-- The root over each full aligned block of 4096 events, kept once a dossier computed it:
-- the events never change, so neither does a root (a changed event is verify's to find).
CREATE TABLE generation_log_merkle (
    block INTEGER PRIMARY KEY,            -- events block*4096+1 to (block+1)*4096
    root TEXT NOT NULL                    -- hex
);
"""


# Version 7: the tamper-evident chain's events (PostgreSQL's: BIGINT for INTEGER).
EVENTS_TABLE = f"""
-- The tamper-evident chain (see audited_openai._chain): one hashed event per write.
CREATE TABLE {EVENTS} (
    seq INTEGER PRIMARY KEY,      -- 1, 2, 3, ... in the order the writes committed
    log_id INTEGER NOT NULL,      -- the row written (no foreign key: erased rows go)
    definitie_id INTEGER,
    kind TEXT NOT NULL,           -- adopt, insert, complete, link, reconcile, erase
    at TEXT NOT NULL,
    note TEXT,                    -- the command that adopted, reconciled or erased
    state TEXT,                   -- the row after the write, texts as digests (NULL: erased)
    hash TEXT NOT NULL            -- sha256(hash before + this event)
);
CREATE INDEX idx_{EVENTS}_log ON {EVENTS}(log_id, seq);
"""


def _mark_replays(conn: sqlite3.Connection) -> None:
    """Replays recorded before schema 8 said so in their metadata: marked, and chained.

    Only rows that hold against their last event: one changed behind the library's back
    stays as it is, for ``verify`` to report.
    """
    from audited_openai._sql import SQLITE, mark_replay  # noqa: PLC0415 - as in _adopt_into_chain

    chain, sql = _chain.Chain(SQLITE, columns=SCHEMA_8_CHAINED), mark_replay(SQLITE)
    for log_id, original in replays_in_metadata(conn.execute(REPLAYS_IN_METADATA).fetchall()):
        if chain.as_chained(conn, log_id):
            chain.written(conn, sql, (original, log_id), "migrate", MARKED_AS_REPLAY)
    chain.seal(conn)


SCHEMA_8_CHAINED = (*FIRST_CHAINED, "replay_of")  # the chained columns when replays came
REPLAYS_IN_METADATA = (
    "SELECT id, additional_metadata FROM generation_logs "
    "WHERE additional_metadata LIKE '%\"replay_of\"%' ORDER BY id"
)
MARKED_AS_REPLAY = "replay_of taken from additional_metadata (schema 8)"


def replays_in_metadata(rows: Iterable[Sequence[Any]]) -> Iterator[tuple[int, int]]:
    """(log id, the original's id) of rows whose metadata says they are a replay."""
    for log_id, metadata in rows:
        try:
            original = json.loads(metadata).get("replay_of")
        except (ValueError, AttributeError):
            continue
        if isinstance(original, int) and not isinstance(original, bool) and original >= 0:
            yield int(log_id), original


def _adopt_into_chain(conn: sqlite3.Connection) -> None:
    """Chain the rows already there (an adopted or older trail) as ``adopt`` events."""
    from audited_openai._sql import SQLITE  # noqa: PLC0415 - _sql imports this module's peers

    rows = conn.execute(f"SELECT {', '.join(FIRST_CHAINED)} FROM generation_logs ORDER BY id")
    _chain.Chain(SQLITE).adopt(conn, rows)


@dataclass(frozen=True)
class Migration:
    """One step of the schema: a version, a name and its SQL."""

    version: int
    name: str
    sql: str
    then: Callable[[Any], None] | None = None  # Python after the SQL


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "create_generation_logs", _V1_GENERATION_LOGS),
    Migration(2, "full_text_search", _V2_FULL_TEXT_SEARCH),
    Migration(3, "query_indexes", _V3_QUERY_INDEXES),
    Migration(4, "leaner_writes", _V4_LEANER_WRITES),
    Migration(5, "one_time_format", _V5_ONE_TIME_FORMAT),
    Migration(6, "written_updated_at", _V6_WRITTEN_UPDATED_AT),
    Migration(7, "audit_chain", EVENTS_TABLE, _adopt_into_chain),
    Migration(8, "replays", _V8_REPLAYS, _mark_replays),
    Migration(9, "status", V9_STATUS),
    Migration(10, "status_periods", V10_PERIODS),
    Migration(11, "cost", V11_COST),
    Migration(12, "actor", V12_ACTOR),
    Migration(13, "reviews", V13_REVIEWS),
    Migration(14, "retention", V14_RETENTION),
    Migration(15, "merkle", V15_MERKLE),
)
SCHEMA_VERSION = MIGRATIONS[-1].version

# The definities columns the views and triggers need.
HOST_COLUMNS = frozenset({"id", "begrip", "source_type"})

_HOST_OBJECTS = """
-- Definities with the generation that made them (the log of a definitie is its latest
-- row that is no replay).
CREATE VIEW IF NOT EXISTS definities_with_generation AS
SELECT
    d.*,
    gl.id AS generation_log_id,
    gl.prompt_template_version,
    gl.model_name,
    gl.tokens_total,
    gl.duration_ms,
    gl.generation_status,
    gl.logged_at AS generated_at
FROM definities d
LEFT JOIN generation_logs gl
    ON gl.id = (
        SELECT max(g2.id) FROM generation_logs g2
        WHERE g2.definitie_id = d.id AND g2.replay_of IS NULL
    )
WHERE d.source_type = 'generated';

-- Failed generations, linked to a definitie or not (most failures never get one).
CREATE VIEW IF NOT EXISTS failed_generations AS
SELECT
    gl.id,
    gl.definitie_id,
    d.begrip,
    gl.error_message,
    gl.error_type,
    gl.logged_at,
    gl.prompt_full_text
FROM generation_logs gl
LEFT JOIN definities d ON gl.definitie_id = d.id
WHERE gl.generation_status = 'failed';

-- Erasures done by the host's own connection, for the library to finish (see below).
CREATE TABLE IF NOT EXISTS generation_log_erasures (
    definitie_id INTEGER NOT NULL,
    requested_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- ON DELETE CASCADE that works whatever the deleting connection's foreign_keys, and
-- that leaves no text behind in the table: each text is first overwritten in place
-- with as many spaces (same size, so SQLite rewrites the row where it is, overflow
-- pages included, and the full-text index drops the old words), then the row is
-- deleted. What the host's connection cannot do (merge the full-text index, truncate
-- the WAL) is requested in generation_log_erasures and done by the library.
DROP TRIGGER IF EXISTS generation_logs_erase_with_definitie;
CREATE TRIGGER generation_logs_erase_with_definitie
AFTER DELETE ON definities
FOR EACH ROW
BEGIN
    INSERT INTO generation_log_erasures (definitie_id)
    SELECT OLD.id WHERE EXISTS (SELECT 1 FROM generation_logs WHERE definitie_id = OLD.id);
    UPDATE generation_logs SET {blank_texts} WHERE definitie_id = OLD.id;
    DELETE FROM generation_logs WHERE definitie_id = OLD.id;
END;

-- The reviews of a definitie go with it, their texts first blanked in place as above.
CREATE TRIGGER IF NOT EXISTS generation_reviews_erase_with_definitie
AFTER DELETE ON definities
FOR EACH ROW
BEGIN
    UPDATE generation_reviews SET {blank_reviews} WHERE definitie_id = OLD.id;
    DELETE FROM generation_reviews WHERE definitie_id = OLD.id;
END;

-- REFERENCES definities(id): a log can only be linked to a definitie that exists.
CREATE TRIGGER IF NOT EXISTS generation_logs_definitie_exists_insert
BEFORE INSERT ON generation_logs
FOR EACH ROW WHEN NEW.definitie_id IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM definities WHERE id = NEW.definitie_id)
BEGIN
    SELECT RAISE(ABORT, 'definitie_id refers to no row of definities');
END;

CREATE TRIGGER IF NOT EXISTS generation_logs_definitie_exists_update
BEFORE UPDATE OF definitie_id ON generation_logs
FOR EACH ROW WHEN NEW.definitie_id IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM definities WHERE id = NEW.definitie_id)
BEGIN
    SELECT RAISE(ABORT, 'definitie_id refers to no row of definities');
END;
"""

# Every text column that can hold what the caller or the model wrote, and who asked.
ERASED_TEXTS = ("prompt_modules_used", *TEXT_COLUMNS, *WHO_COLUMNS)
_HOST_OBJECTS = _HOST_OBJECTS.replace(
    "{blank_texts}",
    ", ".join(
        f"{column} = replace(hex(zeroblob(length(CAST({column} AS BLOB)))), '00', ' ')"
        if column not in WHO_COLUMNS  # NULL stays NULL: an actor is never empty
        else f"{column} = CASE WHEN {column} IS NULL THEN NULL"
        f" ELSE replace(hex(zeroblob(length(CAST({column} AS BLOB)))), '00', ' ') END"
        for column in ERASED_TEXTS
    ),
)
_HOST_OBJECTS = _HOST_OBJECTS.replace(
    "{blank_reviews}",
    ", ".join(
        f"{column} = CASE WHEN {column} IS NULL THEN NULL"
        f" ELSE replace(hex(zeroblob(length(CAST({column} AS BLOB)))), '00', ' ') END"
        for column in ("reviewer", "note", "edited_text")
    ),
)
# Merging the full-text index drops the terms of deleted rows (a deletion only marks them).
MERGE_FTS = "INSERT INTO generation_logs_fts (generation_logs_fts) VALUES ('optimize')"

HOST_OBJECT_NAMES = (
    "generation_log_erasures",
    "definities_with_generation",
    "failed_generations",
    "generation_logs_erase_with_definitie",
    "generation_reviews_erase_with_definitie",
    "generation_logs_definitie_exists_insert",
    "generation_logs_definitie_exists_update",
)


@dataclass(frozen=True)
class Ledger:
    """How a database keeps the ledger of migrations: what differs between them."""

    exists: str  # one row if the ledger table exists (its name bound)
    begin: tuple[str, ...]  # a migration's transaction: begun, holding the migrations' lock
    param: str  # the placeholder


SQLITE_LEDGER = Ledger(
    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", ("BEGIN IMMEDIATE",), "?"
)


def current_version(conn: Any, ledger: Ledger = SQLITE_LEDGER) -> int:
    """Return the highest migration recorded in the ledger (0 for a fresh database)."""
    if not conn.execute(ledger.exists, (LEDGER,)).fetchone():
        return 0
    row = conn.execute(f"SELECT coalesce(max(version), 0) FROM {LEDGER}").fetchone()
    return int(row[0])


def run_migrations(
    conn: Any,
    migrations: Sequence[Migration],
    ledger: Ledger,
    step: Callable[[Any, Migration], str],
    *,
    path: str | None = None,
) -> list[int]:
    """Apply every missing migration, each in its own transaction with its ledger row.

    ``step(conn, migration)`` runs it and returns the name the ledger records. Under the
    lock the ledger is read again, so two processes migrating at once take turns and the
    second finds the work done. ``conn`` is in autocommit mode. Returns the versions
    applied; a database written by a newer library raises :class:`SchemaVersionError`.
    """
    supported = migrations[-1].version
    found = current_version(conn, ledger)
    if found > supported:
        raise SchemaVersionError(found=found, supported=supported, path=path)
    applied: list[int] = []
    for migration in migrations:
        if migration.version <= found:
            continue
        for statement in ledger.begin:
            conn.execute(statement)
        try:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {LEDGER} ("
                "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            done = f"SELECT 1 FROM {LEDGER} WHERE version = {ledger.param}"
            if conn.execute(done, (migration.version,)).fetchone():  # another process did it
                conn.execute("COMMIT")
                continue
            name = step(conn, migration)
            marks = ", ".join([ledger.param] * 3)
            conn.execute(
                f"INSERT INTO {LEDGER} (version, name, applied_at) VALUES ({marks})",
                (migration.version, name, format_ts(utc_now())),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(migration.version)
    return applied


def migrate(conn: sqlite3.Connection, *, path: str | None = None) -> list[int]:
    """Apply every missing SQLite migration (see :func:`run_migrations`)."""
    return run_migrations(conn, MIGRATIONS, SQLITE_LEDGER, _sqlite_step, path=path)


def _sqlite_step(conn: sqlite3.Connection, migration: Migration) -> str:
    if migration.version == 1 and _holds_the_specs_table(conn):
        _adopt(conn)
        return ADOPTED
    for statement in _statements(migration.sql):
        conn.execute(statement)
    if migration.then is not None:
        migration.then(conn)
    return migration.name


ADOPTED = "adopt_def151_table"  # the ledger's name of migration 1 when it adopted a table


def _holds_the_specs_table(conn: sqlite3.Connection) -> bool:
    """Tell whether ``generation_logs`` exists as the spec's migration made it (no call_id)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(generation_logs)")}
    return bool(columns) and "call_id" not in columns


def _adopt(conn: sqlite3.Connection) -> None:
    """Migration 1 for a database where the spec's own migration already ran.

    The table is rebuilt in place (SQLite cannot change a constraint otherwise): every
    row keeps its id and values; ``definitie_id NOT NULL UNIQUE`` becomes nullable and
    not unique (spec defect 1), the added columns take their defaults (each row a call
    of one attempt), timestamps are rewritten into the one UTC format; the spec's
    indexes, trigger and views are replaced by this library's.
    """
    old = [row[1] for row in conn.execute("PRAGMA table_info(generation_logs)")]
    for kind, name in conn.execute(
        "SELECT type, name FROM sqlite_master WHERE tbl_name = 'generation_logs' "
        "AND type IN ('index', 'trigger') AND name NOT LIKE 'sqlite_%'"
    ).fetchall():
        conn.execute(f"DROP {kind.upper()} {name}")
    for view in ("definities_with_generation", "failed_generations"):
        conn.execute(f"DROP VIEW IF EXISTS {view}")
    conn.execute("ALTER TABLE generation_logs RENAME TO generation_logs_def151")
    for statement in _statements(_V1_GENERATION_LOGS):
        conn.execute(statement)
    kept = [c for c in TABLE_COLUMNS if c in old and c not in ("logged_at", "updated_at")]
    stamps = {c: f"coalesce({_to_utc(c)}, {c})" for c in ("logged_at", "updated_at") if c in old}
    conn.execute(
        f"INSERT INTO generation_logs ({', '.join([*kept, *stamps])}) "
        f"SELECT {', '.join([*kept, *stamps.values()])} FROM generation_logs_def151 ORDER BY id"
    )
    conn.execute("DROP TABLE generation_logs_def151")


def check(conn: sqlite3.Connection, *, path: str, current: bool = False) -> None:
    """The audit trail is there and this version can use it (``current``: as it is)."""
    if _holds_the_specs_table(conn):
        raise StoreError(
            f"{path} holds the spec's generation_logs table: run `audited-openai migrate` "
            "once to adopt it in place",
            path=path,
        )
    tables = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'generation_logs'"
    ).fetchone()
    if not tables:
        raise StoreError(f"no audit trail in {path}", path=path)
    usable_version(current_version(conn), SCHEMA_VERSION, path=path, current=current)


def usable_version(found: int, supported: int, *, path: str, current: bool) -> None:
    """Refuse a trail of a newer schema, and of an older one where it must be read as it is."""
    if found > supported:
        raise SchemaVersionError(found=found, supported=supported, path=path)
    if current and found < supported:
        raise StoreError(
            f"{path} has schema version {found}, this audited_openai reads {supported}: run "
            "`audited-openai migrate` once to bring it up to date",
            path=path,
        )


def has_host_table(conn: sqlite3.Connection) -> bool:
    """Tell whether a ``definities`` table with the columns the views need exists."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(definities)")}
    return columns >= HOST_COLUMNS


def host_objects_missing(conn: sqlite3.Connection) -> bool:
    """Tell whether some view or trigger that depends on ``definities`` is missing."""
    placeholders = ", ".join("?" for _ in HOST_OBJECT_NAMES)
    row = conn.execute(
        f"SELECT count(*) FROM sqlite_master WHERE name IN ({placeholders})",
        HOST_OBJECT_NAMES,
    ).fetchone()
    return int(row[0]) < len(HOST_OBJECT_NAMES)


def ensure_host_objects(conn: sqlite3.Connection) -> bool:
    """Create the views and triggers over ``definities`` when the table is there.

    Returns whether they exist afterwards. Idempotent; ``conn`` in autocommit mode.
    """
    if not has_host_table(conn):
        return False
    if not host_objects_missing(conn):
        return True
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in _statements(_HOST_OBJECTS):
            conn.execute(statement)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return True


def _statements(script: str) -> list[str]:
    """Split a script into complete statements (triggers hold inner semicolons)."""
    statements: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                statements.append(current.strip())
            current = ""
    return statements
