"""The whole schema of generation_logs, pinned in one place, and its migrations."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

from audited_openai import GenerationLogRepository, SchemaVersionError, _schema

# name, declared type, NOT NULL, default
COLUMNS = [
    ("id", "INTEGER", 0, None),
    ("definitie_id", "INTEGER", 0, None),
    ("call_id", "TEXT", 1, "lower(hex(randomblob(16)))"),
    ("attempt", "INTEGER", 1, "1"),
    ("endpoint", "TEXT", 1, "'chat.completions'"),
    ("prompt_template_version", "VARCHAR(50)", 0, None),
    ("prompt_template_name", "VARCHAR(100)", 0, None),
    ("prompt_modules_used", "TEXT", 0, None),
    ("model_name", "VARCHAR(100)", 1, None),
    ("model_temperature", "DECIMAL(3,2)", 0, None),
    ("model_max_tokens", "INTEGER", 0, None),
    ("model_top_p", "DECIMAL(3,2)", 0, None),
    ("model_frequency_penalty", "DECIMAL(3,2)", 0, None),
    ("model_presence_penalty", "DECIMAL(3,2)", 0, None),
    ("stream", "INTEGER", 1, "0"),
    ("tokens_prompt", "INTEGER", 0, None),
    ("tokens_completion", "INTEGER", 0, None),
    ("tokens_total", "INTEGER", 0, None),
    ("tokens_cached", "INTEGER", 0, None),
    ("tokens_reasoning", "INTEGER", 0, None),
    ("duration_ms", "INTEGER", 0, None),
    ("ttft_ms", "INTEGER", 0, None),
    ("response_finish_reason", "VARCHAR(50)", 0, None),
    ("response_id", "VARCHAR(255)", 0, None),
    ("response_created_at", "INTEGER", 0, None),
    ("response_model", "VARCHAR(100)", 0, None),
    ("system_fingerprint", "VARCHAR(100)", 0, None),
    ("http_status", "INTEGER", 0, None),
    ("generation_status", "VARCHAR(20)", 1, "'pending'"),
    ("error_type", "VARCHAR(50)", 0, None),
    ("logged_at", "TIMESTAMP", 1, "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"),
    ("updated_at", "TIMESTAMP", 1, "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"),
    ("prompt_full_text", "TEXT", 1, None),
    ("request_json", "TEXT", 0, None),
    ("response_content", "TEXT", 0, None),
    ("error_message", "TEXT", 0, None),
    ("error_traceback", "TEXT", 0, None),
    ("additional_metadata", "TEXT", 0, None),
    ("replay_of", "INTEGER", 0, None),
    ("cost_nanos", "INTEGER", 0, None),  # schema 11: billionths of cost_currency
    ("cost_currency", "TEXT", 0, None),
    ("price_version", "TEXT", 0, None),
    ("actor", "TEXT", 0, None),  # schema 12: who asked, in which working session
    ("session_id", "TEXT", 0, None),
]

# index name -> (unique, columns)
INDEXES = {
    "idx_generation_logs_actor": (0, ["actor", "id"]),  # schema 12: rows with an actor
    "idx_generation_logs_session": (0, ["session_id", "id"]),
    "idx_generation_logs_call": (1, ["call_id", "attempt"]),
    "idx_generation_logs_definitie": (0, ["definitie_id", "replay_of"]),
    "idx_generation_logs_generated": (0, ["definitie_id", "replay_of"]),  # successful rows
    "idx_generation_logs_model": (0, ["model_name"]),
    "idx_generation_logs_status": (0, ["generation_status"]),
    "idx_generation_logs_template": (0, ["prompt_template_version"]),
    "idx_generation_logs_timestamp": (  # widened by schema 10 for status's periods
        0,
        ["logged_at", "generation_status", "error_type", "duration_ms"],
    ),
    "idx_generation_logs_usage": (
        0,
        [
            None,
            "tokens_prompt",
            "tokens_completion",
            "tokens_total",
            "cost_nanos",  # schema 11: cost per day beside tokens
            "cost_currency",
            "logged_at",
            "generation_status",
        ],
    ),
    "idx_generation_logs_compare": (  # schema 11: compare per template version
        0,
        [
            "prompt_template_version",
            "generation_status",
            "duration_ms",
            "tokens_total",
            "cost_nanos",
            "cost_currency",
            "attempt",
            "response_finish_reason",
            "definitie_id",
            "logged_at",
            "replay_of",
        ],
    ),
    "idx_generation_logs_failures": (
        0,
        [
            "prompt_template_name",
            "prompt_template_version",
            "generation_status",
            "model_name",
            "duration_ms",
            "logged_at",
        ],
    ),
    "idx_generation_logs_expensive": (0, ["tokens_total", "logged_at"]),
}

TRIGGERS_ALWAYS = {
    "generation_logs_updated_at",
    "generation_logs_utc_insert",
    "generation_logs_utc_update",
    "generation_logs_fts_complete",
    "generation_logs_fts_insert",
    "generation_logs_fts_change",
    "generation_logs_fts_delete",
}
TABLES = {
    "audited_openai_migrations",
    "generation_logs",
    "generation_logs_fts",
    "generation_log_checks",
    "generation_log_events",
    "generation_reviews",  # schema 13
    "generation_log_retention",  # schema 14
    "generation_log_holds",
    "generation_log_merkle",  # schema 15
    "sqlite_sequence",
}
HOST_TRIGGERS = {
    "generation_logs_erase_with_definitie",
    "generation_reviews_erase_with_definitie",
    "generation_logs_definitie_exists_insert",
    "generation_logs_definitie_exists_update",
}
VIEWS = {"definities_with_generation", "failed_generations"}

# Rows the CHECK constraints must refuse: column -> bad value.
CHECK_VIOLATIONS = [
    ("generation_status", "done"),
    ("model_temperature", 2.5),
    ("model_temperature", -0.1),
    ("tokens_prompt", -1),
    ("tokens_completion", -1),
    ("tokens_total", -1),
    ("tokens_cached", -1),
    ("tokens_reasoning", -1),
    ("duration_ms", -1),
    ("ttft_ms", -1),
    ("attempt", 0),
    ("stream", 2),
    ("http_status", 99),
    ("http_status", 600),
]

DEFINITIES_DDL = (
    "CREATE TABLE definities (id INTEGER PRIMARY KEY, begrip TEXT NOT NULL, "
    "definitie TEXT, source_type TEXT)"
)


def _objects(conn: sqlite3.Connection, kind: str) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = ?", (kind,))
    return {row[0] for row in rows}


def _insert_minimal(conn: sqlite3.Connection, **extra: object) -> None:
    values = {"call_id": os.urandom(8).hex(), "prompt_full_text": "p", "model_name": "m"}
    values.update(extra)
    columns = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    conn.execute(
        f"INSERT INTO generation_logs ({columns}) VALUES ({marks})", tuple(values.values())
    )


@pytest.fixture
def repo(sqlite_repo: GenerationLogRepository) -> GenerationLogRepository:
    """These tests are about SQLite's schema and writer: only the SQLite store."""
    return sqlite_repo


def test_columns_are_pinned(sqlite_repo: GenerationLogRepository, db_path: Path) -> None:
    """Every column with its type, nullability and default is exactly as pinned."""
    sqlite_repo.get_prompt_history()
    conn = sqlite3.connect(db_path)
    found = [(r[1], r[2], r[3], r[4]) for r in conn.execute("PRAGMA table_info(generation_logs)")]
    assert found == COLUMNS


def test_indexes_are_pinned(sqlite_repo: GenerationLogRepository, db_path: Path) -> None:
    """Every index, its uniqueness and its columns are exactly as pinned."""
    sqlite_repo.get_prompt_history()
    conn = sqlite3.connect(db_path)
    found = {}
    for row in conn.execute("PRAGMA index_list(generation_logs)"):
        if row[1].startswith("sqlite_autoindex"):
            continue
        columns = [r[2] for r in conn.execute(f"PRAGMA index_info({row[1]})")]
        found[row[1]] = (row[2], columns)
    assert found == INDEXES


def test_triggers_and_views_without_definities(
    repo: GenerationLogRepository, db_path: Path
) -> None:
    """Without a definities table: the table's own triggers, the search index, no view."""
    repo.get_prompt_history()
    conn = sqlite3.connect(db_path)
    assert _objects(conn, "trigger") == TRIGGERS_ALWAYS
    fts_shadow = {t for t in _objects(conn, "table") if t.startswith("generation_logs_fts_")}
    assert _objects(conn, "table") - fts_shadow == TABLES
    assert _objects(conn, "view") == set()


def test_views_and_triggers_with_definities_created_first(db_path: Path) -> None:
    """A definities table that exists before the first open gets the views and triggers."""
    conn = sqlite3.connect(db_path)
    conn.execute(DEFINITIES_DDL)
    conn.commit()
    GenerationLogRepository(db_path).get_prompt_history()
    assert _objects(conn, "trigger") == TRIGGERS_ALWAYS | HOST_TRIGGERS
    assert _objects(conn, "view") == VIEWS


def test_views_appear_when_definities_is_created_later(db_path: Path) -> None:
    """A definities table created after the first migration is found on the next open."""
    GenerationLogRepository(db_path).get_prompt_history()
    conn = sqlite3.connect(db_path)
    conn.execute(DEFINITIES_DDL)
    conn.commit()
    assert _objects(conn, "view") == set()
    GenerationLogRepository(db_path).get_prompt_history()
    assert _objects(conn, "view") == VIEWS


def test_refresh_host_objects_in_a_running_process(
    repo: GenerationLogRepository, db_path: Path
) -> None:
    """An open repository can re-check for definities without reopening."""
    assert repo.refresh_host_objects() is False
    conn = sqlite3.connect(db_path)
    conn.execute(DEFINITIES_DDL)
    conn.commit()
    assert repo.refresh_host_objects() is True
    assert repo.refresh_host_objects() is True
    assert _objects(conn, "view") == VIEWS


def test_definities_without_the_spec_columns_gets_no_views(db_path: Path) -> None:
    """A definities table lacking begrip/source_type is left alone."""
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE definities (id INTEGER PRIMARY KEY)")
    conn.commit()
    GenerationLogRepository(db_path).get_prompt_history()
    assert _objects(conn, "view") == set()


@pytest.mark.parametrize(("column", "value"), CHECK_VIOLATIONS)
def test_check_constraints_refuse_bad_rows(
    repo: GenerationLogRepository, db_path: Path, column: str, value: object
) -> None:
    """The CHECK constraints are the second line of defence behind validation."""
    repo.get_prompt_history()
    conn = sqlite3.connect(db_path)
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        _insert_minimal(conn, **{column: value})


def test_call_and_attempt_are_unique(sqlite_repo: GenerationLogRepository, db_path: Path) -> None:
    """Two rows cannot claim the same attempt of the same call."""
    sqlite_repo.get_prompt_history()
    conn = sqlite3.connect(db_path)
    _insert_minimal(conn, call_id="c", attempt=1)
    _insert_minimal(conn, call_id="c", attempt=2)
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        _insert_minimal(conn, call_id="c", attempt=1)


def test_updated_at_trigger_touches_rows_updated_without_it(
    repo: GenerationLogRepository, db_path: Path
) -> None:
    """An UPDATE that does not set updated_at gets it set to now, in the one format."""
    repo.get_prompt_history()
    conn = sqlite3.connect(db_path)
    _insert_minimal(conn, updated_at="2000-01-01T00:00:00.000Z")
    conn.execute("UPDATE generation_logs SET response_id = 'x'")
    (stamp,) = conn.execute("SELECT updated_at FROM generation_logs").fetchone()
    assert stamp > "2020"
    assert len(stamp) == len("2026-01-01T00:00:00.000Z")
    assert stamp.endswith("Z")


def test_ledger_records_each_migration_once(
    sqlite_repo: GenerationLogRepository, db_path: Path
) -> None:
    """The ledger has one row per migration; reopening applies nothing."""
    sqlite_repo.get_prompt_history()
    conn = sqlite3.connect(db_path, isolation_level=None)
    rows = conn.execute("SELECT version, name FROM audited_openai_migrations").fetchall()
    assert rows == [(m.version, m.name) for m in _schema.MIGRATIONS]
    assert _schema.migrate(conn) == []


def test_failed_migration_rolls_back_with_its_ledger_row(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A migration that fails leaves neither its objects nor its ledger row."""
    broken = (_schema.Migration(1, "broken", "CREATE TABLE t (x);\nSELECT * FROM nowhere;"),)
    monkeypatch.setattr(_schema, "MIGRATIONS", broken)
    conn = sqlite3.connect(db_path, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError, match="nowhere"):
        _schema.migrate(conn)
    assert _objects(conn, "table") == set()
    assert _schema.current_version(conn) == 0


def test_newer_database_is_refused(sqlite_repo: GenerationLogRepository, db_path: Path) -> None:
    """A database written by a newer library gives a clear error, not a corrupt write."""
    sqlite_repo.get_prompt_history()
    conn = sqlite3.connect(db_path)
    conn.execute(
        "INSERT INTO audited_openai_migrations VALUES (?, 'future', '2099-01-01T00:00:00.000Z')",
        (_schema.SCHEMA_VERSION + 1,),
    )
    conn.commit()
    with pytest.raises(SchemaVersionError, match="upgrade audited_openai") as info:
        GenerationLogRepository(db_path).get_prompt_history()
    assert info.value.found == _schema.SCHEMA_VERSION + 1


def _open_and_write(path: str, barrier: multiprocessing.synchronize.Barrier) -> None:
    from audited_openai import GenerationLogRepository
    from tests.conftest import make_context

    barrier.wait()
    GenerationLogRepository(path).create_pending_log(make_context())


def test_two_processes_migrate_a_fresh_file_at_once(db_path: Path) -> None:
    """Two processes opening the same fresh file at the same moment both succeed."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(4)
    procs = [ctx.Process(target=_open_and_write, args=(str(db_path), barrier)) for _ in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    assert [proc.exitcode for proc in procs] == [0, 0, 0, 0]
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT count(*) FROM generation_logs").fetchone() == (4,)
    assert conn.execute("SELECT count(*) FROM audited_openai_migrations").fetchone() == (
        len(_schema.MIGRATIONS),
    )


def test_file_mode_is_0600_under_a_permissive_umask(db_path: Path) -> None:
    """The database and its WAL are readable by the owner only, whatever the umask."""
    old = os.umask(0o022)
    try:
        repo = GenerationLogRepository(db_path)
        from tests.conftest import make_context

        repo.create_pending_log(make_context())
    finally:
        os.umask(old)
    assert db_path.stat().st_mode & 0o777 == 0o600
    wal = db_path.with_name(db_path.name + "-wal")
    assert wal.stat().st_mode & 0o777 == 0o600


def test_connection_pragmas(sqlite_repo: GenerationLogRepository) -> None:
    """Connections use WAL, a busy timeout and foreign keys."""
    with sqlite_repo.store.reading() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30_000
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def _search(conn: sqlite3.Connection, term: str) -> list[int]:
    rows = conn.execute(
        "SELECT rowid FROM generation_logs_fts WHERE generation_logs_fts MATCH ? ORDER BY rowid",
        (term,),
    )
    return [r[0] for r in rows]


def test_full_text_index_follows_completion_update_and_delete(
    repo: GenerationLogRepository, db_path: Path
) -> None:
    """Rows are searchable once completed; changes and deletions keep the index in step."""
    from audited_openai import ResponseMetadata
    from tests.conftest import make_context

    ctx = make_context()
    ctx.prompt.full_text = "Definieer het begrip rechtshulpverlener"
    log_id = repo.create_pending_log(ctx)
    conn = sqlite3.connect(db_path)
    assert _search(conn, "rechtshulpverlener") == []
    ctx.mark_success(ResponseMetadata(content="Een advocaat of jurist"))
    repo.update_with_response(log_id, ctx)
    assert _search(conn, "rechtshulpverlener") == [log_id]
    assert _search(conn, "advocaat") == [log_id]
    ctx.response = ResponseMetadata(content="Een notaris")
    repo.complete(log_id, ctx)
    assert _search(conn, "advocaat") == []
    assert _search(conn, "notaris") == [log_id]
    conn.execute("DELETE FROM generation_logs")
    conn.commit()
    assert _search(conn, "notaris") == []


def test_migration_2_indexes_existing_rows(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Upgrading a version-1 database indexes the completed rows it already holds, and
    chains them (migration 7) as adopted."""
    from audited_openai import ResponseMetadata, _chain, _rows, _sql, query
    from tests.conftest import make_context

    monkeypatch.setattr(_schema, "MIGRATIONS", _schema.MIGRATIONS[:1])
    monkeypatch.setattr(_schema, "SCHEMA_VERSION", 1)
    monkeypatch.setattr(_chain.Chain, "append", lambda *_args, **_kwargs: None)  # no chain yet
    monkeypatch.setattr(_sql, "RETURNING", " RETURNING " + ", ".join(_rows.FIRST_CHAINED))
    monkeypatch.setattr(GenerationLogRepository, "_priced", lambda _repo, _ctx: {})  # no cost yet
    old = GenerationLogRepository(db_path)
    done = make_context()
    done.prompt.full_text = "verjaringstermijn"
    done_id = old.create_pending_log(done)
    done.mark_success(ResponseMetadata(content="x"))
    old.update_with_response(done_id, done)
    pending = make_context()
    pending.prompt.full_text = "verjaringstermijn"
    old.create_pending_log(pending)
    old.close()
    monkeypatch.undo()
    GenerationLogRepository(db_path).get_prompt_history()
    conn = sqlite3.connect(db_path)
    assert _search(conn, "verjaringstermijn") == [done_id]
    assert conn.execute("SELECT max(version) FROM audited_openai_migrations").fetchone() == (
        _schema.SCHEMA_VERSION,
    )
    verified = query.verify(db_path)
    assert verified.ok, verified.problems
    assert (verified.adopted, verified.events, verified.rows) == (2, 2, 2)


# -- a database where the spec's own migration ran ------------------------------------------

SPEC_DIR = Path(__file__).resolve().parents[1] / "docs" / "spec"  # the spec, kept with the code
SHARED_SPEC = Path(__file__).resolve().parents[2] / "shared" / "spec"  # where it came from
SPEC_SQL = Path(__file__).parent / "data" / "def151_migration.sql"
# The spec's repository statements, verbatim (create_pending_log, update_with_response,
# update_with_error, link_to_definitie); its INSERT gives no definitie_id.
SPEC_INSERT = """
            INSERT INTO generation_logs (
                prompt_full_text,
                prompt_template_version,
                prompt_template_name,
                prompt_modules_used,
                model_name,
                model_temperature,
                model_max_tokens,
                model_top_p,
                model_frequency_penalty,
                model_presence_penalty,
                generation_status,
                logged_at
            ) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)
        """
SPEC_SUCCESS = """
            UPDATE generation_logs SET
                tokens_prompt = ?,
                tokens_completion = ?,
                tokens_total = ?,
                duration_ms = ?,
                response_finish_reason = ?,
                response_id = ?,
                response_created_at = ?,
                generation_status = 'success',
                updated_at = ?
            WHERE id = ?
        """
SPEC_LINK = """
            UPDATE generation_logs
            SET definitie_id = ?
            WHERE id = ?
        """


def test_the_spec_sql_here_is_the_specs() -> None:
    """tests/data/def151_migration.sql is the spec's migration, verbatim; the spec in
    docs/spec is the one its authors keep, wherever that copy is beside the checkout."""
    spec = SPEC_DIR / "DEF-151-generation-prompt-storage.md"
    block = spec.read_text().split("```sql\n", 1)[1].split("```", 1)[0]
    assert block == SPEC_SQL.read_text()
    for kept in SHARED_SPEC.glob("*.md"):
        assert (SPEC_DIR / kept.name).read_text() == kept.read_text(), kept.name


def _spec_database(db_path: Path) -> sqlite3.Connection:
    """The app's definities and the spec's migration (without COMMENT ON, which SQLite
    refuses: spec defect 2), with rows as the deployment wrote them."""
    conn = sqlite3.connect(db_path)
    conn.execute(DEFINITIES_DDL)
    conn.executemany(
        "INSERT INTO definities (id, begrip, source_type) VALUES (?, ?, 'generated')",
        [(1, "verdachte"), (2, "getuige"), (3, "dagvaarding")],
    )
    script = SPEC_SQL.read_text().split("-- COMMENTS", 1)[0]
    conn.executescript(script.rsplit("-- =", 1)[0])
    for definitie, stamp in ((1, "2025-11-12T09:30:00.123456"), (3, "2025-11-13 10:00:00")):
        conn.execute(
            "INSERT INTO generation_logs (definitie_id, prompt_full_text, model_name, "
            "model_temperature, generation_status, logged_at, tokens_total) "
            "VALUES (?, ?, 'gpt-4', 0.7, 'success', ?, 1200)",
            (definitie, f"prompt van definitie {definitie}", stamp),
        )
    conn.commit()
    return conn


def test_a_database_made_by_the_specs_migration_is_adopted(db_path: Path) -> None:
    """Opening it migrates the spec's table in place: every row and id kept, the
    constraint relaxed, the new columns added, the spec's own statements still work."""
    host = _spec_database(db_path)
    before = host.execute(
        "SELECT id, definitie_id, prompt_full_text FROM generation_logs"
    ).fetchall()
    repo = GenerationLogRepository(db_path)
    after = host.execute(
        "SELECT id, definitie_id, prompt_full_text FROM generation_logs"
    ).fetchall()
    assert after == before
    (name,) = host.execute(f"SELECT name FROM {_schema.LEDGER} WHERE version = 1").fetchone()
    assert name == "adopt_def151_table"
    first = repo.get(before[0][0])
    assert first.definitie_id == 1
    assert first.logged_at == datetime(2025, 11, 12, 9, 30, 0, 123000, tzinfo=timezone.utc)
    assert first.attempt == 1
    assert len(first.call_id) == 32
    assert repo.get(before[1][0]).logged_at == datetime(2025, 11, 13, 10, tzinfo=timezone.utc)
    assert [c.id for c in repo.get_prompt_history()] == [before[1][0], before[0][0]]
    assert {row[1] for row in host.execute("PRAGMA table_info(generation_logs)")} >= {
        "call_id",
        "request_json",
        "response_content",
    }
    assert repo.get_by_definitie_id(1) is not None
    assert repo.get_prompt_history(limit=10) != []
    assert host.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    # The spec's own statements, unchanged: a pending row without definitie_id, its
    # success, a second attempt for the same definitie.
    for _ in range(2):
        cursor = host.execute(
            SPEC_INSERT,
            (
                "nieuwe prompt",
                "2.0",
                "unified",
                '["base"]',
                "gpt-4",
                0.7,
                300,
                1.0,
                0.0,
                0.0,
                "2025-11-20T08:00:00.500000",
            ),
        )
        host.execute(
            SPEC_SUCCESS,
            (
                10,
                20,
                30,
                1500,
                "stop",
                "chatcmpl-x",
                1731335025,
                "2025-11-20T08:00:02.000000",
                cursor.lastrowid,
            ),
        )
        host.execute(SPEC_LINK, (2, cursor.lastrowid))
        host.commit()
    linked = repo.get_all_for_definitie(2)
    assert len(linked) == 2
    assert all(log.status == "success" and log.response is not None for log in linked)
    assert linked[0].logged_at == datetime(2025, 11, 20, 8, 0, 0, 500000, tzinfo=timezone.utc)
    assert host.execute(
        "SELECT count(*) FROM generation_logs WHERE logged_at NOT LIKE '____-__-__T__:__:__.___Z' "
        "OR updated_at NOT LIKE '____-__-__T__:__:__.___Z'"
    ).fetchone() == (0,)


def test_an_adopted_database_gets_the_librarys_views_and_erasure(db_path: Path) -> None:
    """The spec's views (an inner join for failed generations) give way to this library's;
    deleting a definitie erases its logs."""
    host = _spec_database(db_path)
    host.execute(
        "INSERT INTO generation_logs (definitie_id, prompt_full_text, model_name, "
        "generation_status) VALUES (2, 'p', 'gpt-4', 'failed')"
    )
    host.commit()
    GenerationLogRepository(db_path)
    (sql,) = host.execute(
        "SELECT sql FROM sqlite_master WHERE name = 'failed_generations'"
    ).fetchone()
    assert "LEFT JOIN" in sql
    host.execute("DELETE FROM definities WHERE id = 1")
    host.commit()
    assert host.execute(
        "SELECT count(*) FROM generation_logs WHERE definitie_id = 1"
    ).fetchone() == (0,)
