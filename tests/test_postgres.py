"""What only the PostgreSQL store has: URLs and passwords, migrations from several
processes, per-write durability, erasure through a real foreign key, and a server that
goes away in the middle of a run (a private cluster of this test's own, with a password).

The behaviour both stores share is tested against both by the ``target`` fixture.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner

from audited_openai import (
    AuditedOpenAI,
    AuditWriteError,
    GenerationLogRepository,
    InvalidLogError,
    ResponseMetadata,
    SchemaVersionError,
    StoreError,
    _postgres_schema,
    audit_context,
    cli,
    query,
)
from audited_openai._store import redacted
from audited_openai.testing import LoopbackServer
from tests import pg_server
from tests.conftest import (
    execute,
    fresh_postgres,
    host,
    make_context,
    postgres_server,
    rows,
    skip_postgres,
)
from tests.pg_server import Cluster

if TYPE_CHECKING:
    from collections.abc import Iterator

psycopg = pytest.importorskip("psycopg")

MESSAGES = [{"role": "user", "content": "Definieer 'verdachte'."}]
PASSWORD = "geheim-" + os.urandom(6).hex()
BIN = pg_server.binaries()


# -- a private cluster with a password, to stop and start -------------------------------------


@contextlib.contextmanager
def _database(cluster: Cluster) -> Iterator[str]:
    """A fresh database on the private cluster, dropped afterwards."""
    name = "ao_" + os.urandom(6).hex()
    with psycopg.connect(cluster.url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield cluster.url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(cluster.url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A cluster of this module's own, with scram-sha-256 passwords, to stop and start."""
    if BIN is None:
        url, said = pg_server.admin_url()
        skip_postgres(said if url is None else "no PostgreSQL binaries here (a private cluster)")
    with pg_server.throwaway(BIN, PASSWORD) as made:
        yield made


@pytest.fixture
def private_db(cluster: Cluster) -> Iterator[str]:
    """A fresh database on the private cluster; the server is running again afterwards."""
    with _database(cluster) as url:
        yield url
        with contextlib.suppress(subprocess.CalledProcessError):
            cluster.start()  # a test that stopped it


@pytest.fixture
def postgres_db() -> Iterator[str]:
    """A fresh database on the shared local server."""
    with fresh_postgres() as url:
        yield url


# -- the URL and its password ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:pw@h:5/d", "postgresql://u@h:5/d"),
        ("postgresql://u:p%40w@[::1]:5432/d?password=x&sslmode=require", "postgresql://u@[::1]:5432/d?sslmode=require"),
        ("postgresql:///d?host=/run/pg&password=x", "postgresql:///d?host=%2Frun%2Fpg"),
        ("postgresql://h/d", "postgresql://h/d"),
        ("postgres://u@h/d", "postgres://u@h/d"),
    ],
)  # fmt: skip
def test_a_url_is_shown_without_its_password(url: str, shown: str) -> None:
    assert redacted(url) == shown


def test_the_password_is_never_stored_or_shown(
    private_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cluster: Cluster,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Not in the repository's name, the CLI, an error, a spool file or the trail."""
    monkeypatch.setenv("AUDITED_OPENAI_SPOOL_DIR", str(tmp_path))
    repo = GenerationLogRepository(private_db)
    assert PASSWORD not in repo.path
    assert PASSWORD not in repr(vars(repo.store).get("location"))
    result = CliRunner().invoke(cli.main, ["--db", private_db, "path"])
    assert result.stdout.strip() == private_db.replace(f":{PASSWORD}", "")
    with LoopbackServer() as server:
        client = AuditedOpenAI(
            repo, base_url=server.base_url, api_key="test", on_audit_failure="warn"
        )
        client.chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
        repo.flush()  # the last completion is in, before the server goes
        cluster.stop()
        client.chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
        client.close()
    cluster.start()
    said = caplog.text
    assert "spooling" in said
    assert "127.0.0.1" in said
    assert PASSWORD not in said
    (spool,) = tmp_path.glob("*.spool.jsonl")
    assert PASSWORD not in spool.name + spool.read_text()
    assert repo.recover_spool() == 2
    dumped = subprocess.run(
        [str(Path(str(BIN)) / "pg_dump"), private_db], capture_output=True, text=True, check=True
    ).stdout
    assert "generation_logs" in dumped
    assert PASSWORD not in dumped
    repo.close()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda url: url.replace(PASSWORD, "wrong"), "password authentication failed"),
        (lambda url: url.rsplit("/", 1)[0] + "/no_such_db", 'database "no_such_db" does not exist'),
        (lambda url: url.replace(url.split(":")[-1].split("/")[0], "1"), "refused"),
    ],
    ids=["wrong password", "missing database", "refused"],
)
def test_connection_problems_are_one_line_naming_host_and_database(
    cluster: Cluster, change: Any, expected: str
) -> None:
    url = change(cluster.url)
    database = url.rsplit("/", 1)[1]
    with pytest.raises(StoreError) as info:
        GenerationLogRepository(url)
    said = str(info.value)
    assert len(said.splitlines()) == 1
    assert f"127.0.0.1:{url.split(':')[-1].split('/')[0]}, database {database}" in said
    assert expected in said
    assert PASSWORD not in said
    assert "wrong" not in said.replace("password authentication", "")
    result = CliRunner().invoke(cli.main, ["--db", url, "logs"])
    assert result.exit_code == 3
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_without_psycopg_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(StoreError, match=r"pip install 'audited-openai\[postgres\]'"):
        GenerationLogRepository("postgresql://postgres@127.0.0.1/postgres")


# -- migrations --------------------------------------------------------------------------


OPEN_AFTER = """
import sys, time
from pathlib import Path
from audited_openai import GenerationLogRepository
print("ready", flush=True)
while not Path(sys.argv[2]).exists():
    time.sleep(0.001)
with GenerationLogRepository(sys.argv[1]) as repo:
    print(repo.store.schema_version())
"""


def test_processes_migrating_at_once_all_succeed(postgres_db: str, tmp_path: Path) -> None:
    """Six processes open a fresh database at the same moment: one migrates, all work."""
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_AFTER, postgres_db, str(go)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    for proc in procs:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
    go.touch()  # all at once
    versions = [int(proc.communicate(timeout=60)[0]) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    with psycopg.connect(postgres_db) as conn:
        ledger = conn.execute("SELECT version FROM audited_openai_migrations").fetchall()
    assert sorted(ledger) == [
        (5,),
        (6,),
        (7,),
        (8,),
        (9,),
        (10,),
        (11,),
        (12,),
        (13,),
        (14,),
        (15,),
    ]
    assert set(versions) == {_postgres_schema.SCHEMA_VERSION}


def test_a_newer_schema_is_refused(postgres_db: str) -> None:
    GenerationLogRepository(postgres_db).close()
    execute(postgres_db, "INSERT INTO audited_openai_migrations VALUES (99, 'future', 'x')")
    for read_only in (False, True):
        with pytest.raises(SchemaVersionError, match="upgrade audited_openai"):
            GenerationLogRepository(postgres_db, read_only=read_only)
    result = CliRunner().invoke(cli.main, ["--db", postgres_db, "logs"])
    assert result.exit_code == 3
    assert "upgrade audited_openai" in result.stderr


# -- durability ------------------------------------------------------------------------------


# Each INSERT and UPDATE of generation_logs notes the synchronous_commit of its own
# transaction: what the real writes committed with, not what a test job saw.
NOTE_LEVELS = """
CREATE TABLE seen_levels (seq SERIAL PRIMARY KEY, op TEXT, status TEXT, level TEXT);
CREATE FUNCTION note_level() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO seen_levels (op, status, level)
    VALUES (TG_OP, NEW.generation_status, current_setting('synchronous_commit'));
    RETURN NEW;
END $$;
CREATE TRIGGER note_level BEFORE INSERT OR UPDATE ON generation_logs
    FOR EACH ROW EXECUTE FUNCTION note_level();
"""


@pytest.mark.parametrize(("durability", "completion"), [("balanced", "off"), ("full", "on")])
def test_each_write_commits_with_its_own_synchronous_commit(
    postgres_db: str, durability: Any, completion: str
) -> None:
    """A real call's pending row commits with synchronous_commit=on before the request
    leaves; its completion and a link with off under "balanced", on under "full"."""
    GenerationLogRepository(postgres_db).close()
    execute(postgres_db, NOTE_LEVELS)
    with (
        GenerationLogRepository(postgres_db, durability=durability) as repo,
        LoopbackServer() as server,
        AuditedOpenAI(repo, base_url=server.base_url, api_key="test") as client,
        audit_context() as audit,
    ):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        repo.flush()
        host(postgres_db, (9, "getuige")).close()
        audit.link(9)
    with psycopg.connect(postgres_db) as conn:
        seen = conn.execute("SELECT op, status, level FROM seen_levels ORDER BY seq").fetchall()
    assert seen == [
        ("INSERT", "pending", "on"),
        ("UPDATE", "success", completion),
        ("UPDATE", "success", completion),
    ]


def test_a_pending_row_survives_a_server_crash(private_db: str, cluster: Cluster) -> None:
    """Committed, then the server dies without a checkpoint: the row is there after."""
    with GenerationLogRepository(private_db) as repo:
        log_id = repo.create_pending_log(make_context())
        cluster.stop("immediate")
        cluster.start()
        assert repo.get(log_id).status == "pending"


# -- the server goes away mid-run ---------------------------------------------------------------


def test_raise_mode_sends_nothing_while_the_server_is_down(
    private_db: str, cluster: Cluster
) -> None:
    """Calls while it is down raise AuditWriteError and send nothing; then it reconnects."""
    repo = GenerationLogRepository(private_db)
    with LoopbackServer() as server:
        client = AuditedOpenAI(repo, base_url=server.base_url, api_key="test", max_retries=0)
        client.chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
        repo.flush()  # the last completion is in, before the server goes
        cluster.stop()
        for _ in range(2):
            with pytest.raises(AuditWriteError, match=r"127\.0\.0\.1") as info:
                client.chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
            assert info.value.__cause__ is not None
        assert server.request_count == 1
        cluster.start()
        client.chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
        assert server.request_count == 2
        client.close()
    found = rows(private_db)
    assert [r["generation_status"] for r in found] == ["success", "success"]
    repo.close()


def test_warn_mode_spools_while_the_server_is_down_and_recovers_once(
    private_db: str,
    cluster: Cluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("AUDITED_OPENAI_SPOOL_DIR", str(tmp_path))
    repo = GenerationLogRepository(private_db)
    with LoopbackServer() as server:
        client = AuditedOpenAI(
            repo, base_url=server.base_url, api_key="test", on_audit_failure="warn"
        )
        client.chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
        repo.flush()  # the last completion is in, before the server goes
        cluster.stop()
        for _ in range(3):
            client.chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
        assert "spooling" in caplog.text
        assert server.request_count == 4
        cluster.start()
        client.chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
        client.close()
    assert len(rows(private_db)) == 2
    assert repo.recover_spool() == 6  # three pending rows, three completions
    assert repo.recover_spool() == 0
    found = rows(private_db)
    assert len(found) == 5
    assert {r["generation_status"] for r in found} == {"success"}
    assert len({r["call_id"] for r in found}) == 5
    repo.close()


# -- erasure -------------------------------------------------------------------------------


def test_deleting_a_definitie_cascades_and_pg_dump_shows_no_trace(postgres_db: str) -> None:
    """The host's DELETE goes through the foreign key; erase --definitie does the same."""
    app = host(postgres_db, (1, "verdachte"), (2, "getuige"), (3, "getuige"))
    canaries = {}
    with GenerationLogRepository(postgres_db) as repo:
        for definitie in (1, 2, 3):
            canaries[definitie] = "CANARY-" + os.urandom(8).hex()
            ctx = make_context(definitie_id=definitie)
            ctx.prompt.full_text = f"prompt met {canaries[definitie]}"
            log_id = repo.create_pending_log(ctx)
            ctx.mark_success(ResponseMetadata(content=f"antwoord {canaries[definitie]}"))
            repo.update_with_response(log_id, ctx)
        assert [c.id for c in query.history(repo, search=canaries[1])] == [1]
        app.execute("DELETE FROM definities WHERE id = 1")
        assert repo.get_all_for_definitie(1) == []
        assert query.history(repo, search=canaries[1]) == []
        result = CliRunner().invoke(
            cli.main, ["--db", postgres_db, "erase", "--definitie", "2", "--yes"]
        )
        assert result.exit_code == 0, result.output
        assert repo.get_all_for_definitie(2) == []
        result = CliRunner().invoke(cli.main, ["--db", postgres_db, "scrub"])
        assert result.exit_code == 0, result.output
    app.close()
    dumped = subprocess.run(
        ["pg_dump", postgres_db], capture_output=True, text=True, check=True
    ).stdout
    assert canaries[1] not in dumped
    assert canaries[2] not in dumped
    assert canaries[3] in dumped, "the other definitie's logs are untouched"


# -- moving a trail --------------------------------------------------------------------------


def test_copy_a_file_to_the_server_twice(db_path: Path, postgres_db: str) -> None:
    """copy moves every row; run again it adds nothing, and completes what was pending."""
    from tests.test_query import seed

    with GenerationLogRepository(db_path) as source:
        ids = seed(source)
        pending = source.get(ids[5])
    result = CliRunner().invoke(cli.main, ["copy", "--from", str(db_path), "--to", postgres_db])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("copied 6 rows, completed 0, 0 already there")
    assert _comparable(rows(postgres_db)) == _comparable(rows(db_path))
    with GenerationLogRepository(db_path) as source:
        pending.mark_success(ResponseMetadata(content="later"))
        source.update_with_response(ids[5], pending)
    result = CliRunner().invoke(cli.main, ["copy", "--from", str(db_path), "--to", postgres_db])
    assert result.stdout.startswith("copied 0 rows, completed 1, 5 already there")
    assert _comparable(rows(postgres_db)) == _comparable(rows(db_path))
    back = db_path.with_name("back.db")
    done = query.copy(postgres_db, back)
    assert (done.inserted, done.failed) == (6, [])
    assert _comparable(rows(back)) == _comparable(rows(db_path))


def _comparable(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows without their ids, in call order, with the model's numbers as floats."""

    def plain(column: str, value: Any) -> Any:
        if column.startswith("model_") and isinstance(value, (int, float)):
            return float(value)
        return value

    return sorted(
        ({k: plain(k, v) for k, v in row.items() if k != "id"} for row in found),
        key=lambda row: (row["logged_at"], row["call_id"]),
    )


def test_a_restart_between_calls_goes_unnoticed(private_db: str, cluster: Cluster) -> None:
    """The connection the server dropped is replaced before anything is written on it."""
    repo = GenerationLogRepository(private_db)
    with LoopbackServer() as server:
        client = AuditedOpenAI(repo, base_url=server.base_url, api_key="test")
        client.chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
        repo.flush()
        cluster.stop()
        cluster.start()
        client.chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
        assert len(query.history(repo)) == 2
        cluster.stop()
        cluster.start()
        assert len(query.history(repo)) == 2, "reads reconnect too"
        client.close()
    assert [r["generation_status"] for r in rows(private_db)] == ["success", "success"]
    repo.close()


def test_unclosed_repositories_share_one_pool(postgres_db: str) -> None:
    """Twenty repositories opened and dropped (a page rerun each): connections stay few."""

    def connections() -> int:
        with psycopg.connect(postgres_server()) as admin:
            row = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s",
                (postgres_db.rsplit("/", 1)[1],),
            ).fetchone()
        return int(row[0]) if row else 0

    kept = GenerationLogRepository(postgres_db)
    for _ in range(20):
        query.history(GenerationLogRepository(postgres_db, read_only=True), limit=1)
    assert connections() <= 4
    kept.close()


# -- the writer and the store's own errors ---------------------------------------------------


def test_a_refused_row_fails_alone_in_its_batch(postgres_db: str) -> None:
    """One row the server refuses fails its caller; the others of its batch commit."""
    from tests.test_writer import _hold

    with GenerationLogRepository(postgres_db) as repo:
        execute(
            postgres_db,
            "ALTER TABLE generation_logs ADD CONSTRAINT nee CHECK (model_name <> 'nee')",
        )
        gate, _ = _hold(repo)
        good = repo.submit_pending_log(make_context())
        bad_context = make_context()
        bad_context.prompt.model_params.name = "nee"
        bad = repo.submit_pending_log(bad_context)
        also_good = repo.submit_pending_log(make_context())
        gate.set()
        assert good.result(5) < also_good.result(5)
        with pytest.raises(InvalidLogError, match="nee"):
            bad.result(5)
        assert len(rows(postgres_db)) == 2


def test_store_errors_are_the_librarys_own(postgres_db: str) -> None:
    """Bad options, writes to a read-only store, failing SQL and closed stores."""
    with pytest.raises(ValueError, match="durability"):
        GenerationLogRepository(postgres_db, durability="fast")  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="no audit trail"):
        GenerationLogRepository(postgres_db, read_only=True)
    writer = GenerationLogRepository(postgres_db)
    reader = GenerationLogRepository(postgres_db, read_only=True)
    with pytest.raises(AuditWriteError, match="read-only"):
        reader.create_pending_log(make_context())
    with pytest.raises(StoreError, match="cannot read from PostgreSQL"):
        reader.store.fetch("SELECT * FROM no_such_table")
    failing = writer.store.submit(
        lambda conn: conn.execute("SELECT * FROM no_such_table"), durable=True, what="read"
    )
    with pytest.raises(AuditWriteError, match="cannot read in PostgreSQL"):
        failing.result(5)
    second = GenerationLogRepository(postgres_db)
    writer.close()  # the pool stays for the other store of the database
    assert second.get_prompt_history() == []
    second.close()
    with pytest.raises(StoreError, match="is closed"):
        second.store.fetch("SELECT 1")
    reader.close()
    assert writer.finish_erasures() == []


def test_copy_reports_rows_the_target_refuses(db_path: Path, postgres_db: str) -> None:
    """A row the target refuses (a definitie it does not have) is named; exit 3."""
    host(postgres_db, (1, "verdachte")).close()
    with GenerationLogRepository(db_path) as source:
        source.create_pending_log(make_context(definitie_id=1))
        source.create_pending_log(make_context(definitie_id=2))
    result = CliRunner().invoke(cli.main, ["copy", "--from", str(db_path), "--to", postgres_db])
    assert result.exit_code == 3
    assert "copied 1 row, completed 0, 0 already there" in result.stdout
    assert "1 row could not be copied: log 2 (call" in result.stderr


def test_copy_shows_progress_on_a_terminal(
    db_path: Path, postgres_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_query import seed

    with GenerationLogRepository(db_path) as source:
        seed(source)
    real_console = cli.Console
    monkeypatch.setattr(
        cli, "Console", lambda **kw: real_console(force_terminal=True, width=100, **kw)
    )
    result = CliRunner().invoke(cli.main, ["copy", "--from", str(db_path), "--to", postgres_db])
    assert result.exit_code == 0
    assert "6/6" in result.stderr


def test_the_database_url_from_the_environment(
    postgres_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AUDITED_OPENAI_DB=postgresql://... serves the clients and the CLI alike."""
    monkeypatch.setenv("AUDITED_OPENAI_DB", postgres_db)
    with LoopbackServer() as server:
        client = AuditedOpenAI(base_url=server.base_url, api_key="test")
        client.chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
        assert client.audit_store.path == postgres_db
        client.audit_store.close()
        client.close()
    result = CliRunner().invoke(cli.main, ["logs", "--json"])
    assert result.exit_code == 0, result.output
    assert [row["generation_status"] for row in json.loads(result.stdout)] == ["success"]


def test_a_search_beyond_the_newest_rows_goes_through_the_index(postgres_db: str) -> None:
    """A word only in old rows is found (through the GIN index), a word in every row at
    once among the newest; both newest first, with filters."""
    from dataclasses import replace

    from audited_openai import _sql

    with GenerationLogRepository(postgres_db) as repo:
        repo.store.dialect = replace(_sql.POSTGRES, search_window=3)  # type: ignore[misc]
        ids = []
        for n in range(10):
            ctx = make_context()
            ctx.prompt.full_text = f"verdachte {'zeldzaam' if n < 2 else 'gewoon'} {n}"
            ids.append(repo.create_pending_log(ctx))
            ctx.mark_success(ResponseMetadata(content="ok"))
            repo.update_with_response(ids[-1], ctx)
        assert [c.id for c in query.history(repo, search="zeldzaam")] == [ids[1], ids[0]]
        assert [c.id for c in query.history(repo, search="verdachte", limit=2)] == ids[:-3:-1]
        assert [c.id for c in query.history(repo, search="zeldzaam", after_id=ids[1])] == [ids[0]]
        assert query.history(repo, search="zeldzaam", status="failed") == []


def test_a_foreign_generation_logs_table_is_a_clear_error(postgres_db: str) -> None:
    """A table of that name that this library did not make: one line, nothing changed."""
    execute(postgres_db, "CREATE TABLE generation_logs (id INTEGER)")
    with pytest.raises(StoreError, match=r"cannot migrate PostgreSQL at .*already exists"):
        GenerationLogRepository(postgres_db)
    with psycopg.connect(postgres_db) as conn:
        assert conn.execute("SELECT to_regclass('audited_openai_migrations')").fetchone() == (None,)
