"""The audited-openai command line, through click's runner."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audited_openai import GenerationLogRepository, ResponseMetadata, cli
from audited_openai._schema import SCHEMA_VERSION
from tests.conftest import execute, fetch, host, make_context
from tests.test_query import seed

if TYPE_CHECKING:
    from collections.abc import Iterator

COMMANDS = sorted(cli.main.commands)


@pytest.fixture
def seeded_db(target: str) -> str:
    """The six rows of ``seed`` in a store of each backend (a path or a URL)."""
    repo = GenerationLogRepository(target)
    seed(repo)
    repo.close()
    return target


@pytest.fixture
def seeded_file(db_path: Path) -> Path:
    """The six rows of ``seed`` in a SQLite file (for what only files have)."""
    with GenerationLogRepository(db_path) as repo:
        seed(repo)
    return db_path


def opened(db: str | Path) -> GenerationLogRepository:
    """A repository closed at the end of the test."""
    repo = GenerationLogRepository(db)
    OPENED.append(repo)
    return repo


OPENED: list[GenerationLogRepository] = []


@pytest.fixture(autouse=True)
def _close_opened() -> Iterator[None]:
    yield
    while OPENED:
        OPENED.pop().close()


def run(db: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli.main, ["--db", str(db), *args], env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_the_command_list_is_pinned() -> None:
    """Every command the issue names exists, and no other."""
    assert COMMANDS == [
        "check-dossier",
        "checkpoint",
        "compare",
        "copy",
        "diff",
        "dossier",
        "erase",
        "export",
        "hold",
        "holds",
        "keygen",
        "logs",
        "migrate",
        "path",
        "reconcile",
        "release",
        "replay",
        "retain",
        "retention",
        "review",
        "reviews",
        "scrub",
        "show",
        "stats",
        "status",
        "verify",
    ]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    """`audited-openai COMMAND --help` explains the command."""
    result = CliRunner().invoke(cli.main, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output
    assert "Exit codes: 0 done; 1 nothing matched" in " ".join(result.output.split())
    assert cli.main.commands[command].help


def test_logs_plain_and_json(seeded_db: Path) -> None:
    """logs prints a tab-separated table when piped, and pinned JSON with --json."""
    code, out, _ = run(seeded_db, "logs", "-n", "2")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split("\t") == list(cli.SUMMARY)
    assert [line.split("\t")[0] for line in lines[1:]] == ["6", "5"]
    code, out, _ = run(seeded_db, "logs", "--json", "--status", "success", "--model", "gpt-4o")
    assert json.loads(out) == [
        {
            "id": 4,
            "logged_at": "2025-11-11T09:00:00.000Z",
            "generation_status": "success",
            "model_name": "gpt-4o",
            "prompt_template_name": "unified_definition_v2",
            "prompt_template_version": "2.1",
            "definitie_id": None,
            "attempt": 1,
            "tokens_total": 500,
            "duration_ms": 600,
            "error_type": None,
            "cost": "0.00125",  # exact, as a string: 500 prompt tokens at 2.50 USD a million
            "cost_currency": "USD",
            "actor": None,
            "session": None,
        },
        {
            "id": 3,
            "logged_at": "2025-11-11T09:00:00.000Z",
            "generation_status": "success",
            "model_name": "gpt-4o",
            "prompt_template_name": "unified_definition_v2",
            "prompt_template_version": "2.1",
            "definitie_id": 456,
            "attempt": 1,
            "tokens_total": 300,
            "duration_ms": 400,
            "error_type": None,
            "cost": "0.00075",
            "cost_currency": "USD",
            "actor": None,
            "session": None,
        },
    ]


@pytest.mark.parametrize(
    ("options", "ids"),
    [
        (["--since", "2025-11-11"], [6, 5, 4, 3]),
        (["--until", "2025-11-10T12:00:00Z"], [2, 1]),
        (["--since", "100000d"], [6, 5, 4, 3, 2, 1]),
        (["--template-name", "unified_definition_v2", "--template-version", "2.0"], [2, 1]),
        (["--definitie", "456"], [3]),
        (["--search", "getuige"], [3]),
        (["--status", "timeout"], [5]),
        (["--after-id", "3"], [2, 1]),
    ],
)
def test_logs_filters(seeded_db: Path, options: list[str], ids: list[int]) -> None:
    """Every filter option narrows the listing."""
    code, out, _ = run(seeded_db, "logs", "--json", *options)
    assert code == 0
    assert [row["id"] for row in json.loads(out)] == ids


def test_bad_option_values_are_usage_errors(seeded_db: Path) -> None:
    """A value that is not a date, span or status is exit 2 with one line."""
    for args in (
        ["logs", "--since", "gisteren"],
        ["logs", "--status", "done"],
        ["reconcile", "--older-than", "soon"],
        ["logs", "--search", " "],
    ):
        code, _, err = run(seeded_db, *args)
        assert code == 2, args
        assert "Traceback" not in err


def test_show_plain_and_json(seeded_db: Path) -> None:
    """show prints everything including the whole prompt; --json is to_dict()."""
    code, out, _ = run(seeded_db, "show", "3")
    assert code == 0
    assert "\nDefinieer het begrip (template 2.1) Een getuige verklaart" in out
    assert "\n--- response (" in out
    assert re.search(r"\n  tokens +[\d,—]+ prompt \+ [\d,—]+ completion = 300\n", out)
    code, out, _ = run(seeded_db, "show", "3", "--json")
    data = json.loads(out)
    assert data.pop("reviews") == []
    assert data == opened(seeded_db).get(3).to_dict()
    code, out, _ = run(seeded_db, "show", "2")
    assert "\nError\n  type         RateLimitError\n" in out


def _demo(tmp_path: Path) -> Path:
    """The offline demo's database (generate.py: a retried call, a failure, reviews)."""
    db = tmp_path / "definities.db"
    app = Path(__file__).parent.parent / "examples" / "definitie_app" / "generate.py"
    env = {**os.environ, "OPENAI_API_KEY": ""}
    demo = [sys.executable, str(app), "--db", str(db)]
    subprocess.run(demo, env=env, check=True, capture_output=True, timeout=120)
    return db


def test_show_reads_as_a_record_and_full_as_stored(tmp_path: Path) -> None:
    """On the demo: sections without Python reprs, the prompt wrapped to the width with
    words whole, the request JSON folded; --full prints prompt and request as stored."""
    db = _demo(tmp_path)
    log = opened(db).get(1)
    code, out, _ = run(db, "show", "1", env={"COLUMNS": "80"})
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"Log 1 · success · definitie {log.definitie_id} · attempt 1"
    assert {"Request", "Response", "Reviews"} <= set(lines)
    assert "None" not in out
    assert "False" not in out
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    assert len(out) < len(log.prompt.full_text) + 4_000, "the request is not printed twice"
    shown = out[out.index("--- prompt (") : out.index("--- response (")]
    assert shown.split()[9:] == log.prompt.full_text.split(), "every word, in order, whole"
    assert "more characters)" in out[out.index("--- request_json (") :]
    code, out, _ = run(db, "show", "1", "--full", env={"COLUMNS": "80"})
    assert f"{log.prompt.full_text.rstrip()}\n" in out
    assert out.rstrip("\n").endswith(log.request_json)


def _in_a_terminal(db: Path, *args: str, columns: int = 80) -> list[str]:
    """The command's lines as an 80-column terminal shows them (a pseudo-terminal)."""
    import pty

    parent, child = pty.openpty()
    env = {**os.environ, "COLUMNS": str(columns), "LINES": "50", "TERM": "xterm"}
    with subprocess.Popen(
        [sys.executable, "-m", "audited_openai", "--db", str(db), *args],
        stdin=child,
        stdout=child,
        stderr=child,
        env=env,
        close_fds=True,
    ) as process:
        os.close(child)
        chunks = []
        while True:
            try:
                chunk = os.read(parent, 65536)
            except OSError:  # the command closed its end
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(60) == 0
    os.close(parent)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode())
    return text.replace("\r\n", "\n").rstrip("\n").splitlines()


def test_unknown_ids_exit_1(seeded_db: Path) -> None:
    """Nothing matched the id: exit 1 and one line."""
    for args in (
        ["show", "99"],
        ["diff", "1", "99"],
        ["erase", "--definitie", "12345", "--yes"],
        ["replay", "99"],
    ):
        code, _out, err = run(seeded_db, *args)
        assert code == 1, args
        assert err.startswith("error: ")
        assert len(err.strip().splitlines()) == 1


def test_diff_plain_and_json(seeded_db: Path) -> None:
    """diff shows the unified diff and the parameters that differ."""
    code, out, _ = run(seeded_db, "diff", "1", "3")
    assert code == 0
    assert "--- log 1" in out
    assert "prompt_template_version\t2.0\t2.1" in out
    code, out, _ = run(seeded_db, "diff", "1", "3", "--json")
    data = json.loads(out)
    assert data["parameters"]["prompt_template_version"] == ["2.0", "2.1"]
    code, out, _ = run(seeded_db, "diff", "1", "1")
    assert "identical" in out


def test_export_both_formats(seeded_db: Path, tmp_path: Path) -> None:
    """export writes CSV or JSONL (0600), with the filters applied."""
    target = tmp_path / "out.csv"
    code, _, err = run(
        seeded_db, "export", "--format", "csv", "-o", str(target), "--status", "success"
    )
    assert code == 0
    assert "exported 3 rows" in err
    assert len(target.read_text().splitlines()) == 4
    assert target.stat().st_mode & 0o777 == 0o600
    target = tmp_path / "out.jsonl"
    code, _, _ = run(
        seeded_db,
        "export",
        "--format",
        "jsonl",
        "-o",
        str(target),
        "--since",
        "2025-11-11",
        "--until",
        "2025-12-01",
        "--model",
        "gpt-4o",
        "--template-name",
        "unified_definition_v2",
        "--template-version",
        "2.1",
        "--definitie",
        "456",
        "--search",
        "getuige",
    )
    assert [json.loads(line)["id"] for line in target.read_text().splitlines()] == [3]


def test_stats_plain_and_json(seeded_db: Path) -> None:
    """stats shows every section; --json is query.stats()."""
    code, out, _ = run(seeded_db, "stats")
    assert code == 0
    for title in (
        "generations by status",
        "tokens and cost per day",
        "failure rate by template",
        "duration percentiles",
        "most expensive",
    ):
        assert title in out
    assert "\t0.002 USD\t2\n" in out  # 2025-11-11: two gpt-4o rows of 500 and 300 tokens
    assert "\t0.003 USD\n" in out  # the most expensive include the gpt-4 row's cost
    code, out, _ = run(seeded_db, "stats", "--json", "--since", "2025-11-11")
    data = json.loads(out)
    assert data["by_status"] == {"pending": 1, "success": 2, "timeout": 1}
    assert [(d["cost"], d["cost_currency"]) for d in data["token_usage_by_day"]] == [
        ("0.002", "USD")
    ]


def test_reconcile_and_erase(seeded_db: Path) -> None:
    """reconcile times out old pending rows; erase removes a definitie's logs."""
    code, out, _ = run(seeded_db, "reconcile", "--older-than", "15m")
    assert (code, out.strip()) == (0, "reconciled 1 stale pending row")
    assert opened(seeded_db).get(6).status == "timeout"
    code, out, _ = run(seeded_db, "erase", "--definitie", "456", "--yes")
    assert (code, out.strip()) == (0, "erased 1 log of definitie 456")


def test_replay_needs_a_key_and_sends_through_the_loopback(seeded_db: Path) -> None:
    """replay refuses without OPENAI_API_KEY, and compares when it can send."""
    from audited_openai.testing import LoopbackServer

    code, _, err = run(seeded_db, "replay", "3", env={"OPENAI_API_KEY": ""})
    assert code == 2
    assert "OPENAI_API_KEY" in err
    execute(
        seeded_db,
        "UPDATE generation_logs SET request_json = ? WHERE id = 3",
        (json.dumps({"model": "m", "messages": [{"role": "user", "content": "getuige"}]}),),
    )
    with LoopbackServer() as server:
        env = {"OPENAI_API_KEY": "test", "OPENAI_BASE_URL": server.base_url}
        code, out, _ = run(seeded_db, "replay", "3", "--json", env=env)
        assert code == 0
        data = json.loads(out)
        assert data["original_id"] == 3
        assert data["replay_id"] == 7
        assert data["same_text"] is False
        code, out, _ = run(seeded_db, "replay", "3", env=env)
        assert out.startswith("original: log 3; replay: log 8\nsame text: no\ntokens: ")
        assert "--- original response ---\nEen getuige verklaart\n" in out
        assert "--- replayed response ---\nAntwoord op: getuige\n" in out


def test_migrate_and_path(tmp_path: Path) -> None:
    """migrate creates the database; path prints it."""
    db = tmp_path / "new.db"
    code, out, _ = run(db, "migrate")
    assert (code, out.strip()) == (0, f"{db}: schema version {SCHEMA_VERSION}")
    code, out, _ = run(db, "path")
    assert out.strip() == str(db.resolve())


def test_database_problems_are_one_line(tmp_path: Path) -> None:
    """Missing, corrupt, newer-version and locked databases: exit 3, one line, no traceback."""
    missing = tmp_path / "missing.db"
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"this is not a database" * 100)
    newer = tmp_path / "newer.db"
    GenerationLogRepository(newer).get_prompt_history()
    conn = sqlite3.connect(newer)
    conn.execute("INSERT INTO audited_openai_migrations VALUES (999, 'future', 'x')")
    conn.commit()
    conn.close()
    for db, expected in (
        (missing, "no database"),
        (corrupt, "not a database"),
        (newer, "upgrade audited_openai"),
    ):
        code, _, err = run(db, "logs")
        assert code == 3, db
        assert expected in err
        assert len(err.strip().splitlines()) == 1
        assert "Traceback" not in err


def test_locked_database_is_one_line(seeded_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write lock held past the busy timeout gives one line and exit 3."""
    monkeypatch.setattr(cli, "CLI_BUSY_TIMEOUT_MS", 100)
    holder = sqlite3.connect(seeded_file, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        code, _, err = run(seeded_file, "reconcile")
    finally:
        holder.execute("ROLLBACK")
    assert code == 3
    assert "locked" in err


def test_python_dash_m_and_the_console_script(seeded_db: Path) -> None:
    """`python -m audited_openai` runs the same command line."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "audited_openai",
            "--db",
            str(seeded_db),
            "logs",
            "--json",
            "-n",
            "1",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["id"] == 6


def test_span_and_moment_parsing() -> None:
    """Spans and moments parse as documented."""
    assert cli.parse_span("15m").total_seconds() == 900
    assert cli.parse_span(" 2 h ").total_seconds() == 7200
    assert cli.parse_moment("2025-11-11").isoformat() == "2025-11-11T00:00:00+00:00"
    assert cli.parse_moment("2025-11-11T10:00:00+01:00").utcoffset() is not None


def test_tables_and_progress_on_a_terminal(
    seeded_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a terminal, lists are rich tables and export shows a progress bar."""
    from rich.console import Console

    monkeypatch.setattr(cli, "_console", lambda: Console(force_terminal=True, width=250))
    code, out, _ = run(seeded_db, "logs")
    assert code == 0
    assert "───" in out
    assert "RateLimitError" in out
    assert "1,2" not in out  # one line a row, not folded
    real_console = cli.Console
    monkeypatch.setattr(cli, "Console", lambda **kw: real_console(force_terminal=True, **kw))
    code, _, err = run(seeded_db, "export", "--format", "jsonl", "-o", str(tmp_path / "x.jsonl"))
    assert code == 0
    assert "exporting" in err


def test_database_from_the_environment(seeded_db: Path) -> None:
    """Without --db, AUDITED_OPENAI_DB names the database."""
    result = CliRunner().invoke(
        cli.main, ["logs", "--json", "-n", "1"], env={"AUDITED_OPENAI_DB": str(seeded_db)}
    )
    assert result.exit_code == 0
    assert json.loads(result.stdout)[0]["id"] == 6


def test_scrub(seeded_db: Path) -> None:
    """scrub rewrites the file and reports it."""
    code, out, _ = run(seeded_db, "scrub")
    assert (code, out.strip()) == (0, f"scrubbed {seeded_db}")
    with GenerationLogRepository(seeded_db) as repo:
        assert len(repo.get_prompt_history()) == 6


@pytest.mark.parametrize(
    "command",
    ["show {}", "diff 1 {}", "replay {}", "erase --definitie {} --yes", "logs --definitie {}"],
)
def test_an_id_no_store_can_hold_is_bad_usage(seeded_file: Path, command: str) -> None:
    """An id past 2**63 - 1 (found by the random-argument test) is one line, exit 2,
    not an OverflowError reported as a bug."""
    huge = str(2**63)
    code, _, err = run(seeded_file, *command.format(huge).split())
    assert code == 2
    assert err.strip().endswith(f"{huge} is out of range (at most {2**63 - 1})")


@pytest.mark.parametrize("command", ["checkpoint -o {}", "export --format csv -o {}"])
@pytest.mark.parametrize("output", ["", "{dir}", "{dir}/nee/uit.csv"])
def test_an_output_that_is_no_file_is_bad_usage(
    seeded_file: Path, tmp_path: Path, command: str, output: str
) -> None:
    """-o '' or a directory or a missing directory (found by the random-argument test):
    exit 2 naming -o, and nothing written anywhere."""
    folder = tmp_path / "uitvoer"
    folder.mkdir()
    code, out, err = run(seeded_file, *command.split()[:-1], output.format(dir=folder))
    assert code == 2, err
    assert "'-o'" in err
    assert out == ""
    assert list(folder.iterdir()) == []


def test_scrub_removes_the_bytes_of_rows_deleted_with_plain_sql(db_path: Path) -> None:
    """A row deleted by another program (plain SQL, no secure_delete) leaves its text in
    free pages and in the full-text index; after scrub no byte of it is in the files."""
    canary = "zq" + os.urandom(8).hex()  # one lowercase token, as the index stores it
    with GenerationLogRepository(db_path) as repo:
        ctx = make_context()
        ctx.prompt.full_text = f"prompt met {canary} erin " * 50
        log_id = repo.create_pending_log(ctx)
        ctx.mark_success(ResponseMetadata(content=f"antwoord {canary}"))
        repo.update_with_response(log_id, ctx)
        repo.create_pending_log(make_context())
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA secure_delete = OFF")
    conn.execute("DELETE FROM generation_logs WHERE id = ?", (log_id,))
    conn.commit()
    conn.close()

    def leftovers() -> list[str]:
        return [
            path.name
            for path in db_path.parent.iterdir()
            if path.name.startswith(db_path.name) and canary[2:].encode() in path.read_bytes()
        ]

    assert leftovers(), "the deleted text is still on disk before scrub"
    code, out, _ = run(db_path, "scrub")
    assert (code, out.strip()) == (0, f"scrubbed {db_path}")
    assert leftovers() == []
    with GenerationLogRepository(db_path) as repo:
        assert [log.id for log in repo.get_prompt_history()] == [log_id + 1]


# -- what a new user ran into (issue 16) ------------------------------------------------------


def _bytes_of(db: Path) -> dict[str, bytes]:
    """The database and its WAL, byte for byte (not -shm: SQLite's shared memory, which
    every reader of a WAL database updates)."""
    return {
        p.name: p.read_bytes()
        for p in db.parent.iterdir()
        if p.name.startswith(db.name) and not p.name.endswith("-shm")
    }


@pytest.mark.parametrize(
    "command", ["logs", "show 1", "diff 1 2", "stats", "export --format csv -o -"]
)
def test_reading_commands_never_write(tmp_path: Path, command: str) -> None:
    """An app's own SQLite file without audit tables: 'no audit trail', exit 3, and the
    file (and its neighbours) byte for byte as before."""
    app = tmp_path / "app.db"
    conn = sqlite3.connect(app)
    conn.execute("CREATE TABLE klanten (id INTEGER PRIMARY KEY, naam TEXT)")
    conn.execute("INSERT INTO klanten (naam) VALUES ('Jansen')")
    conn.commit()
    conn.close()
    before = _bytes_of(app)
    code, _, err = run(app, *command.split())
    assert code == 3
    assert err.strip() == f"error: no audit trail in {app}"
    assert _bytes_of(app) == before


def _objects_of(target: str | Path) -> Any:
    """What a database holds: its files byte for byte (SQLite), or its tables, views,
    functions and triggers (PostgreSQL)."""
    if not str(target).startswith("postgresql://"):
        return _bytes_of(Path(target))
    return sorted(
        map(
            tuple,
            fetch(
                target,
                "SELECT 'relation', relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
                " UNION ALL SELECT 'function', proname FROM pg_proc"
                " WHERE pronamespace = 'public'::regnamespace"
                " UNION ALL SELECT 'trigger', tgname FROM pg_trigger WHERE NOT tgisinternal",
            ),
        )
    )


@pytest.mark.parametrize(
    "command",
    [
        "erase --definitie 1 --dry-run",
        "erase --definitie 1 --yes",
        "reconcile",
        "scrub",
        "replay 1",
    ],
)
def test_commands_that_change_rows_refuse_a_database_without_a_trail(
    target: str, command: str
) -> None:
    """The app's own database, holding only definities: a command that would change rows
    says 'no audit trail', exit 3, and leaves it as it was: no table, view or trigger
    of ours (not even on the host's table), not one byte (SQLite)."""
    host(target, (1, "verdachte")).close()
    if not target.startswith("postgresql://"):
        execute(target, "PRAGMA wal_checkpoint(TRUNCATE)")
    before = _objects_of(target)
    code, _, err = run(target, *command.split(), env={"OPENAI_API_KEY": "sk-x"})  # type: ignore[arg-type]
    assert (code, err.strip()) == (3, f"error: no audit trail in {target}")
    assert _objects_of(target) == before
    assert run(target, "migrate")[0] == 0  # the one command that creates a trail
    assert _objects_of(target) != before


def test_reading_commands_leave_a_trail_untouched(seeded_file: Path) -> None:
    """On a database with a trail, reading commands change no byte of it either."""
    opened(seeded_file).store.checkpoint()
    before = _bytes_of(seeded_file)
    for args in (["logs"], ["show", "3"], ["stats"], ["diff", "1", "3"]):
        assert run(seeded_file, *args)[0] == 0
    assert _bytes_of(seeded_file) == before


def test_a_read_only_file_system_can_be_read(seeded_file: Path, tmp_path: Path) -> None:
    """logs and export work on a database on a read-only mount (no -shm can be made)."""
    opened(seeded_file).store.checkpoint()
    mount = tmp_path / "ro"
    mount.mkdir()
    (mount / "audit.db").write_bytes(seeded_file.read_bytes())
    mounted = subprocess.run(["mount", "--bind", str(mount), str(mount)], check=False)
    if mounted.returncode:
        pytest.skip("cannot make a read-only mount here (needs root)")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(mount)], check=True)
        code, out, err = run(mount / "audit.db", "logs", "--json")
        assert code == 0, err
        assert [row["id"] for row in json.loads(out)] == [6, 5, 4, 3, 2, 1]
        code, out, _ = run(mount / "audit.db", "export", "--format", "jsonl", "-o", "-")
        assert code == 0
        assert len(out.splitlines()) == 6
    finally:
        subprocess.run(["umount", "--lazy", str(mount)], check=True)


def test_until_a_date_takes_the_whole_day(seeded_db: Path) -> None:
    """--until 2025-11-10 includes rows logged during that day."""
    code, out, _ = run(seeded_db, "logs", "--json", "--until", "2025-11-10")
    assert code == 0
    assert [row["id"] for row in json.loads(out)] == [2, 1]
    code, out, _ = run(
        seeded_db, "logs", "--json", "--since", "2025-11-10", "--until", "2025-11-10"
    )
    assert code == 0
    assert [row["id"] for row in json.loads(out)] == [2, 1]


@pytest.mark.parametrize(
    "args",
    [
        ["logs", "--since", "99999999d"],
        ["logs", "--since", "99999999999w"],
        ["reconcile", "--older-than", "0s"],
        ["reconcile", "--older-than", "999999999w"],
    ],
)
def test_spans_too_long_or_empty_are_usage_errors(seeded_db: Path, args: list[str]) -> None:
    """No OverflowError, no Python repr: one line, exit 2."""
    code, _, err = run(seeded_db, *args)
    assert code == 2
    assert "Traceback" not in err
    assert "datetime.timedelta" not in err


def test_a_malformed_json_cell_is_shown_not_fatal(seeded_db: Path) -> None:
    """A row another program wrote with broken JSON still lists and shows."""
    execute(
        seeded_db,
        "UPDATE generation_logs SET prompt_modules_used = '[oops', "
        "additional_metadata = '{kapot' WHERE id = 3",
    )
    code, out, _ = run(seeded_db, "show", "3", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["prompt"]["modules_used"] == ["[oops"]
    assert data["metadata"] == {"unreadable": "{kapot"}
    assert run(seeded_db, "logs")[0] == 0


def test_export_to_standard_output(
    seeded_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """-o - writes to stdout; no file named '-' appears."""
    monkeypatch.chdir(tmp_path)
    code, out, err = run(seeded_db, "export", "--format", "jsonl", "-o", "-")
    assert code == 0
    assert [json.loads(line)["id"] for line in out.splitlines()] == [1, 2, 3, 4, 5, 6]
    assert "exported 6 rows to -" in err
    assert not (tmp_path / "-").exists()


def test_an_interrupted_export_leaves_no_file(
    seeded_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C halfway: exit 130, and neither the file nor a partial one is left."""
    from audited_openai import query

    def interrupted(*args: object, **kwargs: object) -> int:
        out = args[2]
        out.write("id,half a row")  # type: ignore[attr-defined]
        raise KeyboardInterrupt

    monkeypatch.setattr(query, "export", interrupted)
    code, _, err = run(seeded_db, "export", "--format", "csv", "-o", str(tmp_path / "out.csv"))
    assert (code, err.strip()) == (130, "error: interrupted")
    assert [p.name for p in tmp_path.iterdir() if "out.csv" in p.name] == []


def test_db_after_the_command(seeded_file: Path, tmp_path: Path) -> None:
    """--db works after the subcommand too, and wins over the one before it."""
    result = CliRunner().invoke(
        cli.main, ["--db", str(tmp_path / "other.db"), "logs", "--db", str(seeded_file), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 6
    result = CliRunner().invoke(cli.main, ["path", "--db", str(seeded_file)])
    assert result.stdout.strip() == str(seeded_file.resolve())


def test_a_listing_fits_an_80_column_terminal(
    seeded_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On an 80-column terminal each row of logs is one line, with short headers."""
    from rich.console import Console

    monkeypatch.setattr(cli, "_console", lambda: Console(force_terminal=True, width=80))
    code, out, _ = run(seeded_db, "logs")
    assert code == 0
    out = re.sub(r"\x1b\[[0-9;]*m", "", out)  # the terminal's colours
    lines = out.rstrip("\n").splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert len(lines) == 2 + 6 + 1  # the header and its rule, a line a row, what is left out
    assert [line.split()[0] for line in lines[2:-1]] == ["6", "5", "4", "3", "2", "1"]
    assert lines[-1] == "(not shown in 80 columns: tokens, ms, cost; --json has all)"
    assert "generation_status" not in out
    assert "RateLimitError" in out


def _words(text: str) -> set[str]:
    """Words as a table shows them: a time's parts, a value's, punctuation apart."""
    return set(re.sub(r"(?<=\d)T(?=\d)|[,;:()\t]", " ", text).split())


@pytest.mark.parametrize("command", ["logs", "stats"])
def test_on_the_demo_logs_and_stats_fit_80_columns(tmp_path: Path, command: str) -> None:
    """COLUMNS=80 in a terminal, on the demo's database: no line over 80 characters and
    every word whole (a cut one ends in an ellipsis), what did not fit said."""
    db = _demo(tmp_path)
    lines = _in_a_terminal(db, command)
    assert len(lines) > 3
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    piped = run(db, command)[1]  # every column, every value whole
    headers = " ".join([*cli.HEADERS.values(), *(header for _, header in cli.SHORT)])
    vocabulary = _words(f"{piped} {STATS_WORDS} {headers}")
    for line in lines:
        broken = [w for w in _words(line) - vocabulary if not w.endswith("…") and w.strip("─")]
        assert not broken, (broken, line)


STATS_WORDS = (
    "generations by status every attempt tokens and cost per day successful generations"
    " of the priced ones failure rate by template failed or timed out all attempts duration"
    " percentiles ms most expensive not shown in columns --json has all count p50_ms p95_ms"
    " id total priced status USD % 60 80 120"
)


@pytest.mark.parametrize("width", [60, 80, 120])
def test_stats_fit_the_terminal_without_breaking_a_word(
    seeded_db: Path, monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    """Every table of stats: a line a row within the width, cells cut with an ellipsis,
    headers whole, and a line naming the columns that did not fit."""
    from rich.console import Console

    monkeypatch.setattr(cli, "_console", lambda: Console(force_terminal=True, width=width))
    code, out, _ = run(seeded_db, "stats")
    assert code == 0
    out = re.sub(r"\x1b\[[0-9;]*m", "", out)
    lines = out.rstrip("\n").splitlines()
    assert all(len(line) <= width for line in lines), max(lines, key=len)
    # every word shown is whole (a value, a header, a title's or the footer's word) or cut
    # with an ellipsis: a word broken over two lines would be neither
    data = json.loads(run(seeded_db, "stats", "--json")[1])
    values = [str(v) for row in data["by_status"].items() for v in row]
    values += [str(v) for key in data if key != "by_status" for r in data[key] for v in r.values()]
    values += [f"{r['failure_rate']:.2f}" for r in data["failure_rate_by_template"]]

    def words(text: str) -> set[str]:
        return set(re.sub(r"[,;:()]", " ", text).split())

    vocabulary = words(" ".join([*values, *cli.HEADERS.values(), *cli.HEADERS, STATS_WORDS]))
    for line in lines:
        if not line.startswith("─"):
            broken = [w for w in words(line) - vocabulary if not w.endswith("…")]
            assert not broken, (broken, line)
    if width == 60:  # the widest tables do not fit: said, not wrapped
        assert any(line.startswith("(not shown in 60 columns: ") for line in lines)


def test_export_progress_counts_rows(
    seeded_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a terminal, export's progress says how many rows of how many."""
    real_console = cli.Console
    monkeypatch.setattr(
        cli, "Console", lambda **kw: real_console(force_terminal=True, width=100, **kw)
    )
    code, _, err = run(
        seeded_db, "export", "--format", "csv", "-o", str(tmp_path / "x.csv"), "--status", "success"
    )
    assert code == 0
    assert "3/3" in err


def test_diff_keeps_lines_apart(db_path: Path) -> None:
    """Two single-message prompts without a final newline: the diff is line by line."""
    repo = GenerationLogRepository(db_path)
    for text in ("Definieer verdachte", "Definieer getuige"):
        ctx = make_context()
        ctx.prompt.full_text = text
        repo.create_pending_log(ctx)
    code, out, _ = run(db_path, "diff", "1", "2")
    assert code == 0
    assert "-Definieer verdachte\n+Definieer getuige\n" in out


def test_erase_asks_and_can_dry_run(seeded_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """erase: --dry-run erases nothing; without --yes it asks at a terminal and refuses
    elsewhere; a 'no' leaves everything."""
    code, out, _ = run(seeded_db, "erase", "--definitie", "456", "--dry-run")
    assert (code, out.strip()) == (0, "would erase 1 log of definitie 456 (ids 3)")
    code, _, err = run(seeded_db, "erase", "--definitie", "456")
    assert code == 2
    assert "--yes" in err
    monkeypatch.setattr(cli, "_interactive", lambda: True)
    result = CliRunner().invoke(
        cli.main, ["--db", str(seeded_db), "erase", "--definitie", "456"], input="n\n"
    )
    assert result.exit_code == 0
    assert result.stdout.endswith("nothing erased\n")
    assert opened(seeded_db).get_by_definitie_id(456) is not None
    result = CliRunner().invoke(
        cli.main, ["--db", str(seeded_db), "erase", "--definitie", "456"], input="y\n"
    )
    assert result.exit_code == 0
    assert opened(seeded_db).get_by_definitie_id(456) is None


def test_failure_rates_say_they_are_percentages(seeded_db: Path) -> None:
    """stats prints failure rates with a % and says every attempt counts."""
    code, out, _ = run(seeded_db, "stats")
    assert code == 0
    assert "50.00 %" in out
    assert "of all attempts" in out


WORDS = [
    *COMMANDS,
    *("--db", "--json", "-n", "--after-id", "--since", "--until", "--status", "--model"),
    *("--template-name", "--template-version", "--definitie", "--search", "--format", "-o"),
    *("--older-than", "--dry-run", "--yes", "--help", "csv", "jsonl", "-", "out.csv"),
    *(
        "1",
        "3",
        "0",
        "-1",
        "99999999999999999999",
        "7d",
        "0s",
        "99999999d",
        "999999999w",
        "2025-11-10",
    ),
    *("success", "failed", '"a phrase', "getuige*", "\x00", "é", "NaN", "1e999", "x.db"),
]


# Numbers past what any store holds, and databases no store can be: not the user's bug.
HUGE = [str(2**63), str(2**64), "9" * 30, "-" + "9" * 30]
BAD_DBS = [
    "",
    " ",
    "/",
    "/dev/null",
    "sqlite:///x.db",
    "mysql://u:pw@h/d",
    "redis://127.0.0.1:6379",
    "postgresql://u@127.0.0.1:abc/d",
    "postgresql://u@127.0.0.1:99999/d",
    "postgresql://u@127.0.0.1:0/d",
    "postgresql://u@127.0.0.1:1/d",  # nothing listens there
]


def _one_line_and_no_bug(result: Any, args: list[str]) -> None:
    """A known exit code, never a traceback, and an error in one line on stderr."""
    assert result.exit_code in (0, 1, 2, 3), (args, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), args
    assert "Traceback (most recent call last)" not in result.output, args
    if result.exit_code:
        said = result.stderr.strip().splitlines()
        assert len(said) == 1, (args, said)
        assert said[0].startswith("error: "), (args, said)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.one_of(st.sampled_from(WORDS + HUGE), st.text(max_size=10)), max_size=7),
    st.sampled_from([None, *BAD_DBS]),
)
def test_no_input_prints_a_traceback(
    seeded_db: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    db: str | None,
) -> None:
    """Random arguments to every command, on the trail or on a database that cannot be
    one: a known exit code, never a traceback, every error one line."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        cli.main, ["--db", str(seeded_db) if db is None else db, *args], env={"OPENAI_API_KEY": ""}
    )
    _one_line_and_no_bug(result, args)


@pytest.mark.parametrize(
    "args",
    [
        ["check-dossier", "\x00"],
        ["check-dossier", "d.zip", "--public-key", "a\x00b"],
        ["keygen", "-o", "\x00"],
        ["verify", "--checkpoint", "\x00"],
        ["dossier", "--definitie", "1", "-o", "\x00", "--key", "k.pem"],
    ],
)
def test_a_path_with_a_nul_byte_is_a_usage_error(
    seeded_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    """Found by the property test above: os.stat raises on a NUL byte; it is exit 2."""
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    result = CliRunner().invoke(cli.main, ["--db", str(seeded_db), *args])
    _one_line_and_no_bug(result, args)
    assert result.exit_code == 2
    assert "a path cannot hold a NUL byte" in result.stderr
    assert list(here.iterdir()) == []


@pytest.mark.parametrize("db", BAD_DBS)
@pytest.mark.parametrize("command", ["logs", "reconcile", "migrate", "verify"])
def test_a_database_no_store_can_be_is_one_line(
    command: str, db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty name, a directory, a device, another database's URL, a port that is no
    port: exit 2 (bad usage) or 3 (cannot be used), in one line, nothing created."""
    monkeypatch.chdir(tmp_path)  # a relative name that slipped through lands here
    result = CliRunner().invoke(cli.main, ["--db", db, command])
    _one_line_and_no_bug(result, [db, command])
    assert result.exit_code in (2, 3), result.output
    assert "pw@" not in result.output  # no password shown
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("huge", HUGE)
@pytest.mark.parametrize(
    "command",
    [
        *("logs -n {}", "logs --after-id {}", "logs --definitie {}", "show {}", "diff 1 {}"),
        *("replay {}", "erase --definitie {} --dry-run", "export --format csv -o - --definitie {}"),
    ],
)
def test_numbers_past_64_bits_are_bad_usage(seeded_db: str, command: str, huge: str) -> None:
    """On both backends (found by the random-argument test: OverflowError from SQLite,
    'bigint out of range' from PostgreSQL)."""
    result = CliRunner().invoke(
        cli.main, ["--db", seeded_db, *command.format(huge).split()], env={"OPENAI_API_KEY": "x"}
    )
    _one_line_and_no_bug(result, [command, huge])
    assert result.exit_code == 2, result.output
    assert "out of range" in result.stderr or "is not" in result.stderr, result.stderr


def test_usage_errors_are_one_line_and_negative_ids_are_ids(seeded_file: Path) -> None:
    """click's own usage errors (unknown option or command, a bad value) in one line with
    where to look; show -1 looks for log -1 instead of an option -1."""
    for args, said in (
        (["logs", "--bogus"], "error: No such option '--bogus' (see 'main logs --help')"),
        (["nosuch"], "error: No such command 'nosuch' (see 'main --help')"),
        (["show", "-1"], "error: no generation log with id -1"),
        (["diff", "1", "-2"], "error: no generation log with id -2"),
    ):
        result = CliRunner().invoke(cli.main, ["--db", str(seeded_file), *args])
        assert result.stderr.strip() == said
        assert result.exit_code == (1 if "id -" in said else 2)


def test_erase_and_scrub_say_what_they_do_while_they_work(
    seeded_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a terminal, the long commands show a status line while they run."""
    real_console = cli.Console
    monkeypatch.setattr(cli, "Console", lambda **kw: real_console(force_terminal=True, **kw))
    code, _, err = run(seeded_db, "erase", "--definitie", "456", "--yes")
    assert code == 0
    assert "erasing 1 log of definitie 456" in err
    code, _, err = run(seeded_db, "scrub")
    assert code == 0
    assert "rewrites the whole file" in " ".join(err.split())
