"""Retention: a policy per store, ``retain`` applying it as erasure does, legal holds.

Both backends: a policy under six months is refused unless forced; ``retain`` removes
the rows and reviews older than the policy in batches, a ``retain`` event each, so
``verify`` passes and counts them; a definitie on hold keeps everything (and cannot be
erased until released); in SQLite the text of what went is in neither file.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from audited_openai import GenerationLogRepository, InvalidLogError, _repository, _retention, cli
from audited_openai._clock import utc_now
from tests.conftest import fetch, make_context

if TYPE_CHECKING:
    from pathlib import Path

OLD = timedelta(days=800)  # older than a policy of two years


def trail(repo: GenerationLogRepository, monkeypatch: pytest.MonkeyPatch, canary: str) -> None:
    """Old rows of definities 1 to 3 (each reviewed) and one without; new ones of 1 and 4."""
    old = utc_now() - OLD
    for definitie_id in (1, 2, 3, None):
        ctx = make_context(definitie_id=definitie_id, logged_at=old)
        ctx.prompt.full_text += f" {canary}-{definitie_id}"
        repo.insert_log(ctx)
    with monkeypatch.context() as patched:
        patched.setattr(_repository, "utc_now", lambda: old + timedelta(hours=1))
        for definitie_id in (1, 2, 3):
            repo.record_review(definitie_id, "approved", reviewer=f"j{definitie_id}-{canary}")
    for definitie_id in (1, 4):
        repo.insert_log(make_context(definitie_id=definitie_id))
    repo.record_review(4, "rejected", reviewer="jurist-7")


def test_a_policy_is_stored_shown_and_cleared(repo: GenerationLogRepository) -> None:
    assert repo.retention() is None
    made = repo.set_retention("2y")
    assert (made.keep, made.keep_days, made.forced) == ("2y", 730, False)
    assert repo.retention() == made
    assert repo.set_retention("18mo").keep_days == 548
    assert repo.clear_retention() is True
    assert repo.retention() is None
    assert repo.clear_retention() is False


@pytest.mark.parametrize(
    ("keep", "message"),
    [
        ("3mo", "under six months, the least the EU AI Act asks"),
        ("182d", "182 days"),
        ("2x", "keep must be a span like 400d"),
        ("0d", "1 day to 100 years"),
        ("101y", "1 day to 100 years"),
        (730, "keep must be a span"),
    ],
)
def test_a_policy_that_cannot_be_is_refused_and_nothing_changes(
    repo: GenerationLogRepository, keep: object, message: str
) -> None:
    repo.set_retention("2y")
    with pytest.raises(InvalidLogError, match=message):
        repo.set_retention(keep)  # type: ignore[arg-type]
    assert repo.retention().keep == "2y"  # type: ignore[union-attr]


def test_a_short_policy_is_allowed_when_forced(repo: GenerationLogRepository) -> None:
    assert repo.set_retention("183d").forced is False  # six months is enough
    made = repo.set_retention("30d", force=True)
    assert (made.keep_days, made.forced) == (30, True)


def test_retain_removes_what_is_older_except_what_is_held(
    repo: GenerationLogRepository, target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    trail(repo, monkeypatch, "c")
    with pytest.raises(InvalidLogError, match="no retention policy"):
        repo.retain()
    repo.set_retention("2y")
    repo.hold(2, "bezwaarzaak 2026-118")
    before = fetch(target, "SELECT count(*) FROM generation_log_events")
    dry = repo.retain(dry_run=True)
    assert (dry["rows"], dry["reviews"], dry["held"]) == (3, 2, 1)
    assert fetch(target, "SELECT count(*) FROM generation_log_events") == before
    monkeypatch.setattr(_retention, "BATCH", 2)  # several transactions
    done = repo.retain()
    assert (done["rows"], done["reviews"], done["held"], done["dry_run"]) == (3, 2, 1, False)
    left = fetch(target, "SELECT definitie_id FROM generation_logs ORDER BY id")
    assert left == [(2,), (1,), (4,)]  # the held one, and the new ones
    assert [r.definitie_id for r in repo.reviews(definitie_id=2)] == [2]
    assert repo.reviews(definitie_id=1) == []
    assert repo.reviews(definitie_id=3) == []
    notes = {
        row[0]
        for row in fetch(target, "SELECT note FROM generation_log_events WHERE kind = 'retain'")
    }
    assert len(notes) == 1
    assert next(iter(notes)).startswith("retain, before ")
    found = repo.verify()
    assert found.ok, found.problems
    assert (found.retained, found.reviews_erased, found.rows, found.reviews) == (3, 2, 3, 2)
    assert any("removed by the retention policy" in note for note in found.notes())
    assert repo.retain()["rows"] == 0  # again: nothing more


def test_a_held_definitie_cannot_be_erased_until_released(repo: GenerationLogRepository) -> None:
    repo.insert_log(make_context(definitie_id=5))
    made = repo.hold(5, "  WOB-verzoek 12 ")
    assert (made.definitie_id, made.reason) == (5, "WOB-verzoek 12")
    assert repo.hold(5, "WOB-verzoek 13").reason == "WOB-verzoek 13"  # again: the new reason
    assert [h.definitie_id for h in repo.holds()] == [5]
    with pytest.raises(
        InvalidLogError, match=r"definitie 5 is under a legal hold \(WOB-verzoek 13\)"
    ):
        repo.erase_definitie(5)
    repo.release(5)
    with pytest.raises(InvalidLogError, match="definitie 5 is not on hold"):
        repo.release(5)
    with pytest.raises(InvalidLogError, match="a hold needs its reason"):
        repo.hold(5, " ")
    assert repo.erase_definitie(5) == 1
    assert repo.holds() == []


def test_retained_text_is_in_neither_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite: what retain removed is gone from the file and its WAL, index included."""
    db = tmp_path / "audit.db"
    canary = uuid.uuid4().hex
    with GenerationLogRepository(db) as repo:
        trail(repo, monkeypatch, canary)
        repo.flush()
        files = b"".join(p.read_bytes() for p in tmp_path.iterdir())
        assert f"{canary}-1".encode() in files
        repo.set_retention("2y")
        repo.hold(2, "bezwaarzaak")
        repo.retain()
    files = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    for gone in (f"{canary}-1", f"{canary}-3", f"{canary}-None", f"j1-{canary}", f"j3-{canary}"):
        assert gone.encode() not in files, gone
    assert f"{canary}-2".encode() in files, "the held one stays"
    assert f"j2-{canary}".encode() in files


def test_retained_text_is_gone_from_the_tables(
    repo: GenerationLogRepository, target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = uuid.uuid4().hex
    trail(repo, monkeypatch, canary)
    repo.set_retention("2y")
    repo.retain()
    assert fetch(
        target,
        "SELECT count(*) FROM generation_logs WHERE prompt_full_text LIKE ?",
        (f"%{canary}%",),
    ) == [(0,)]
    assert fetch(
        target, "SELECT count(*) FROM generation_reviews WHERE reviewer LIKE ?", (f"%{canary}%",)
    ) == [(0,)]
    assert fetch(
        target, "SELECT count(*) FROM generation_log_events WHERE state LIKE ?", (f"%{canary}%",)
    ) == [(0,)]


def test_the_commands_set_apply_hold_and_release(
    repo: GenerationLogRepository, target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    trail(repo, monkeypatch, "c")
    repo.flush()
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(cli.main, ["--db", target, *args])
        return result.exit_code, result.output.strip()

    assert run("retention") == (
        0,
        "no retention policy: every row is kept (set one with --keep 2y)",
    )
    code, said = run("retention", "--keep", "3mo")
    assert code == 2
    assert said.startswith("error: keeping logs 3mo (92 days) is under six months")
    assert "\n" not in said
    code, said = run("retention", "--keep", "2y")
    assert code == 0
    assert said.startswith("rows and reviews are kept 2y (730 days); set ")
    assert json.loads(run("retention", "--json")[1])["keep_days"] == 730
    assert run("hold", "--definitie", "2", "--reason", "bezwaarzaak") == (
        0,
        "definitie 2 is on hold: bezwaarzaak",
    )
    assert run("holds")[1].startswith("definitie 2: bezwaarzaak (since ")
    code, said = run("retain", "--dry-run")
    assert code == 0
    assert said.startswith("would remove 3 rows and 2 reviews logged before ")
    assert said.endswith("(kept 2y); 1 older row kept by a legal hold")
    assert run("erase", "--definitie", "2", "--yes")[0] == 2
    code, said = run("retain", "--json")
    assert (json.loads(said)["rows"], json.loads(said)["reviews"]) == (3, 2)
    assert run("release", "--definitie", "2") == (0, "definitie 2 is no longer on hold")
    assert run("release", "--definitie", "2") == (2, "error: definitie 2 is not on hold")
    assert run("retention", "--clear") == (0, "retention policy removed: every row is kept")
    assert run("retention", "--keep", "2y", "--clear")[0] == 2
    assert run("verify")[0] == 0
