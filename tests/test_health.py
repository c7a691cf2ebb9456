"""The trail's health: ``query.status`` and ``audited-openai status [--check]``, both backends."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from audited_openai import ErrorContext, GenerationLogRepository, ResponseMetadata, query
from audited_openai._clock import utc_now
from audited_openai._errors import InvalidLogError
from tests.conftest import execute, fetch, host, make_context
from tests.test_cli import run

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

NOW = utc_now()


def log(
    repo: GenerationLogRepository,
    status: str,
    *,
    ago: timedelta = timedelta(minutes=1),
    duration: int | None = 100,
    error_type: str = "RateLimitError",
    definitie: int | None = None,
    replay_of: int | None = None,
) -> int:
    """One row logged ``ago`` before now, in ``status``."""
    moment: datetime = NOW - ago
    ctx = make_context(
        logged_at=moment, updated_at=moment, definitie_id=definitie, replay_of=replay_of
    )
    if status == "success":
        ctx.mark_success(ResponseMetadata(tokens_total=10, duration_ms=duration, content="d"))
    elif status in ("failed", "timeout"):
        ctx.mark_failed(ErrorContext("no", error_type, duration_ms=duration))
        ctx.status = status
    return repo.insert_log(ctx)


def add_definitie(target: str, definitie_id: int, source_type: str) -> None:
    """A definitie of the host's table, generated or written by hand."""
    execute(
        target,
        "INSERT INTO definities (id, begrip, definitie, source_type) VALUES (?, ?, 'd', ?)",
        (definitie_id, f"begrip {definitie_id}", source_type),
    )


@pytest.fixture
def app(target: str, app_db: Callable[..., Any]) -> GenerationLogRepository:
    """A store beside the host's definities: 1 and 2 generated, 3 written by hand."""
    app_db((1, "verdachte"), (2, "getuige"))
    add_definitie(target, 3, "imported")
    repository = GenerationLogRepository(target)  # the host's views and triggers too
    yield repository  # type: ignore[misc]
    repository.close()


def test_a_generated_definitie_without_a_log_is_named_a_hand_written_one_is_not(
    app: GenerationLogRepository, target: str
) -> None:
    """Definitie 1 has its log; 2 has only a failure and a replay that succeeded; 3 was
    written by hand: only 2 is named, and --check says so and exits 6."""
    log(app, "failed", definitie=1)
    first = log(app, "success", definitie=1)
    log(app, "failed", definitie=2)
    log(app, "success", definitie=2, replay_of=first)
    found = query.status(app)
    assert found["definities"] == {
        "host_table": True,
        "since": None,
        "generated": 2,
        "without_log": [2],
    }
    assert [p["kind"] for p in found["problems"]] == ["without_log"]
    code, out, err = run(target, "status", "--check")
    assert (code, err) == (6, "")
    assert out == ("problem: 1 generated definitie without a successful generation log: 2\n")
    log(app, "success", definitie=2)
    assert query.status(app)["problems"] == []
    assert run(target, "status", "--check") == (0, "", "")


def test_a_stale_pending_row_is_named_and_check_exits_6(
    repo: GenerationLogRepository, target: str
) -> None:
    """A row pending for an hour is stale at the default 15 minutes, not at 2 hours; one
    pending for a second is in flight, not a problem."""
    stale = log(repo, "pending", ago=timedelta(hours=1))
    log(repo, "pending", ago=timedelta(seconds=1))
    log(repo, "success")
    found = query.status(repo)
    assert found["definities"]["host_table"] is False  # no definities table: not checked
    pending = found["pending"]
    assert (pending["n"], pending["stale"], pending["oldest_id"]) == (2, 1, stale)
    assert found["problems"][0]["kind"] == "stale_pending"
    assert f"log {stale}" in found["problems"][0]["message"]
    code, out, _ = run(target, "status", "--check")
    assert code == 6
    assert out.startswith(f"problem: 1 row pending for more than 15m (the oldest: log {stale}, ")
    assert run(target, "status", "--check", "--pending-after", "2h")[0] == 0
    assert query.status(repo, pending_after=timedelta(hours=2))["problems"] == []


def test_a_clean_trail_exits_0_and_prints_json_when_piped(
    app: GenerationLogRepository, target: str
) -> None:
    """Every generated definitie has its log: --check prints nothing and exits 0; piped,
    status prints the report as JSON; at a terminal, a screen that says no problems."""
    log(app, "success", definitie=1)
    log(app, "success", definitie=2)
    assert run(target, "status", "--check") == (0, "", "")
    code, out, _ = run(target, "status")
    assert code == 0
    report = json.loads(out)
    assert report["problems"] == []
    assert report["schema"]["current"] is True
    assert report["backend"] == ("postgresql" if "://" in target else "sqlite")


def test_failures_and_durations_over_the_day_the_week_and_the_week_before(
    repo: GenerationLogRepository,
) -> None:
    """Each period counts its completed attempts; the week holds its day; durations are
    nearest-rank percentiles of the successes; error types ranked by count."""
    hours, days = timedelta(hours=2), timedelta(days=3)
    log(repo, "success", ago=hours, duration=100)
    log(repo, "success", ago=hours, duration=200)
    log(repo, "failed", ago=hours, error_type="RateLimitError")
    log(repo, "pending", ago=timedelta(seconds=1))  # in flight: no outcome yet
    log(repo, "success", ago=days, duration=300)
    log(repo, "timeout", ago=days, error_type="APITimeoutError")
    log(repo, "timeout", ago=days, error_type="APITimeoutError")
    log(repo, "failed", ago=timedelta(days=10), error_type="RateLimitError")
    log(repo, "success", ago=timedelta(days=10), duration=50)
    log(repo, "success", ago=timedelta(days=20), duration=9999)  # outside every period
    periods = query.status(repo)["periods"]
    day, week, before = periods["day"], periods["week"], periods["previous_week"]
    assert (day["rows"], day["completed"], day["failures"], day["failure_rate"]) == (
        4,
        3,
        1,
        33.33,
    )
    assert (day["p50_ms"], day["p95_ms"]) == (100, 200)
    assert (week["completed"], week["failures"], week["failure_rate"]) == (6, 3, 50.0)
    assert (week["p50_ms"], week["p95_ms"]) == (200, 300)
    assert week["top_errors"] == [
        {"error_type": "APITimeoutError", "n": 2},
        {"error_type": "RateLimitError", "n": 1},
    ]
    assert (before["completed"], before["failures"], before["p50_ms"]) == (2, 1, 50)
    assert before["top_errors"] == [{"error_type": "RateLimitError", "n": 1}]
    assert day["audit_ms"] is None  # not recorded per row
    assert week["rows"] == 7  # the pending row too
    assert query.status(repo)["size"]["rows_per_day"] == 1.0


def test_percentiles_count_repeated_durations_and_successes_only(
    repo: GenerationLogRepository,
) -> None:
    """Many rows share a millisecond: the nearest rank counts each of them; a failure's
    duration is not a success's."""
    for _ in range(18):
        log(repo, "success", duration=10)
    log(repo, "success", duration=500)
    log(repo, "success", duration=700)
    log(repo, "failed", duration=90_000)
    log(repo, "success", duration=None)  # not timed
    day = query.status(repo)["periods"]["day"]
    assert (day["p50_ms"], day["p95_ms"]) == (10, 500)  # ranks 10 and 19 of 20
    assert day["completed"] == 22


def test_the_last_recorded_verify_and_checkpoint_are_shown_and_a_failed_one_is_a_problem(
    repo: GenerationLogRepository, target: str
) -> None:
    """verify --record and checkpoint --record note what they found; status shows it, and
    a verification that failed is a problem until one holds again."""
    chain = query.status(repo)["chain"]
    assert (chain["last_verify"], chain["last_checkpoint"]) == (None, None)
    log_id = log(repo, "success")
    repo.flush()
    assert run(target, "checkpoint", "--record", "-o", "-")[0] == 0
    assert run(target, "verify", "--record")[0] == 0
    chain = query.status(repo)["chain"]
    assert chain["last_verify"]["ok"] is True
    assert chain["last_verify"]["summary"].startswith("verified: 1 events, 1 rows")
    assert chain["last_checkpoint"]["events"] == chain["events"] == 1
    assert chain["last_checkpoint"]["summary"] == chain["head"]
    assert 0 <= chain["last_verify"]["age_s"] < 60
    execute(
        target, "UPDATE generation_logs SET prompt_full_text = 'changed' WHERE id = ?", (log_id,)
    )
    assert run(target, "verify", "--record")[0] == 5
    found = query.status(repo)
    assert found["chain"]["last_verify"]["ok"] is False
    assert [p["kind"] for p in found["problems"]] == ["verify_failed"]
    code, out, _ = run(target, "status", "--check")
    assert code == 6
    assert "problem: the last recorded verify" in out
    assert "NOT verified: 1 problem(s)" in out


def test_verify_without_record_writes_nothing(repo: GenerationLogRepository, target: str) -> None:
    """A plain verify and checkpoint stay read-only: nothing is recorded."""
    log(repo, "success")
    repo.flush()
    assert run(target, "verify")[0] == 0
    assert run(target, "checkpoint", "-o", "-")[0] == 0
    assert query.status(repo)["chain"]["last_verify"] is None
    assert query.status(repo)["chain"]["last_checkpoint"] is None


def test_size_and_the_room_left(repo: GenerationLogRepository, target: str) -> None:
    """SQLite: the file's and WAL's bytes and the days of room at the week's rate, a
    problem under --disk-days; PostgreSQL: the database's and the trail's bytes."""
    for _ in range(7):
        log(repo, "success")
    size = query.status(repo)["size"]
    assert size["rows"] == 7
    assert size["rows_per_day"] == 1.0
    if "://" in target:
        assert size["database_bytes"] > size["table_bytes"] > 0
        assert (size["wal_bytes"], size["free_bytes"], size["days_left"]) == (None, None, None)
        return
    assert size["database_bytes"] == Path(target).stat().st_size
    assert size["wal_bytes"] == Path(target + "-wal").stat().st_size
    per_row = (size["database_bytes"] + size["wal_bytes"]) / 7
    assert size["days_left"] == round(size["free_bytes"] / per_row, 1)
    found = query.status(repo, disk_days=size["days_left"] * 2)
    assert [p["kind"] for p in found["problems"]] == ["disk"]
    code, out, _ = run(target, "status", "--check", "--disk-days", str(size["days_left"] * 2))
    assert code == 6
    assert "has room for" in out


def test_since_counts_definities_created_from_then(tmp_path: Path) -> None:
    """With the host's created_at (the example app's table), --since leaves older
    definities out; a table without it refuses --since in one line."""
    db = tmp_path / "app.db"
    conn = host(db, (1, "oud"), (2, "nieuw"))
    conn.execute("ALTER TABLE definities ADD COLUMN created_at TEXT")
    conn.execute("UPDATE definities SET created_at = '2020-01-01 10:00:00' WHERE id = 1")
    conn.execute("UPDATE definities SET created_at = '2026-11-30T10:00:00.000Z' WHERE id = 2")
    conn.close()
    with GenerationLogRepository(db) as repo:
        assert query.status(repo)["definities"]["without_log"] == [1, 2]
        since = query.status(repo, since=NOW.replace(year=2025))["definities"]
        assert (since["generated"], since["without_log"]) == (1, [2])
    code, out, _ = run(db, "status", "--check", "--since", "2025-01-01")
    assert (code, out) == (
        6,
        "problem: 1 generated definitie without a successful generation log since 2025-01-01T00:00:00.000Z: 2\n",
    )
    other = tmp_path / "plain.db"
    host(other, (1, "x")).close()
    GenerationLogRepository(other).close()
    code, out, err = run(other, "status", "--since", "7d")
    assert (code, out) == (2, "")
    assert err == (
        "error: the definities table has no created_at column: --since cannot be applied to it\n"
    )


def test_bad_thresholds_are_refused(repo: GenerationLogRepository, db_path: Path) -> None:
    """A threshold that means nothing is a clear error that changes nothing."""
    with pytest.raises(InvalidLogError, match="pending_after must be a positive timedelta"):
        query.status(repo, pending_after=timedelta(0))
    with pytest.raises(InvalidLogError, match="disk_days must be a number of days"):
        query.status(repo, disk_days=-1)
    with pytest.raises(InvalidLogError, match="since must be a timezone-aware datetime"):
        query.status(repo, since=NOW.replace(tzinfo=None))
    GenerationLogRepository(db_path).close()
    code, _, err = run(db_path, "status", "--pending-after", "0m")
    assert code == 2
    assert err.startswith("error: ")
    assert len(err.splitlines()) == 1
    assert run(db_path, "status", "--disk-days", "-1")[0] == 2


def test_the_screen_for_a_person(
    app: GenerationLogRepository, target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At a terminal: the store, the definities, pending rows, the periods, size, chain
    and every problem, each line within 80 columns."""
    from audited_openai import cli

    log(app, "success", definitie=1)
    log(app, "failed", definitie=2, error_type="RateLimitError")
    monkeypatch.setattr(cli.Console, "is_terminal", property(lambda _self: True))
    code, out, _ = run(target, "status")
    assert code == 0
    lines = out.splitlines()
    assert lines[1] == "definities: 2 generated, 1 without a successful generation log"
    assert any(line.startswith("last 24 hours") and "RateLimitError (1)" in line for line in lines)
    assert "last verify: none recorded (--record)" in lines
    assert lines[-1] == "problem: 1 generated definitie without a successful generation log: 2"
    assert max(len(line) for line in lines[1:-1]) <= 80


def test_a_trail_of_schema_8_is_migrated_then_read(target: str, unpriced: None) -> None:
    """A trail an older audited_openai left (schema 8) is refused read-only with the
    command to run; opened for writing it gets the table and index status reads, and
    its chain still holds."""
    from tests.conftest import as_schema

    with GenerationLogRepository(target) as repo:
        log(repo, "success")
    as_schema(target, 8)
    code, _, err = run(target, "status")
    assert code == 3
    assert "schema version 8" in err
    assert "run `audited-openai migrate`" in err
    GenerationLogRepository(target).close()
    assert query.status(target)["schema"] == {"version": 15, "supported": 15, "current": True}
    assert query.verify(target, record=True).ok
    assert query.status(target)["chain"]["last_verify"]["ok"] is True


def test_a_trail_of_schema_9_gets_the_wide_timestamp_index_and_keeps_its_counts(
    target: str, unpriced: None
) -> None:
    """Schema 10 rebuilds the timestamp index with what the periods count; the report
    over the same rows is the same before and after, and the chain still holds."""
    from tests.conftest import as_schema

    with GenerationLogRepository(target) as repo:
        for duration in (100, 200, 300):
            log(repo, "success", duration=duration)
        log(repo, "failed", error_type="APITimeoutError")
    as_schema(target, 9)
    assert _timestamp_index(target) == ["logged_at"]
    GenerationLogRepository(target).close()
    assert _timestamp_index(target) == [
        "logged_at",
        "generation_status",
        "error_type",
        "duration_ms",
    ]
    day = query.status(target)["periods"]["day"]
    assert (day["completed"], day["failures"], day["p50_ms"], day["p95_ms"]) == (4, 1, 200, 300)
    assert query.verify(target).ok


def _timestamp_index(target: str) -> list[str]:
    """The columns of idx_generation_logs_timestamp, in order."""
    if "://" in target:
        (definition,) = fetch(
            target,
            "SELECT indexdef FROM pg_indexes WHERE indexname = ?",
            ("idx_generation_logs_timestamp",),
        )[0]
        return [c.strip() for c in definition.split("(", 1)[1].rstrip(")").split(",")]
    found = fetch(target, "SELECT name FROM pragma_index_info('idx_generation_logs_timestamp')")
    return [row[0] for row in found]
