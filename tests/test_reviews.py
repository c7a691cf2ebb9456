"""Reviews: who approved, rejected or edited a generated definitie, chained and erasable.

Both backends: recorded through the repository, the handle and the CLI; refused with
one line when they cannot mean anything (nothing written); chained so that a verdict
changed, a review deleted or one slipped in by plain SQL is caught by ``verify``, with
the reviewer and the texts as digests only; filtered in ``query`` and ``logs``; gone
with their definitie, whether the library erases it or the host app deletes it.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from typing import TYPE_CHECKING, Any

import pytest
import respx
from click.testing import CliRunner

from audited_openai import (
    AuditedOpenAI,
    GenerationLogRepository,
    InvalidLogError,
    _verify,
    audit_context,
    cli,
    query,
)
from tests.conftest import audited_client, execute, fetch, make_context

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

MESSAGES = [{"role": "user", "content": "Definieer 'verdachte'."}]


@pytest.fixture
def audited(target: str, router: respx.MockRouter) -> Iterator[AuditedOpenAI]:
    """An audited client over respx on each backend."""
    yield from audited_client(target, router)


def generate(repo: GenerationLogRepository, definitie_id: int, times: int = 1) -> list[int]:
    """``times`` completed logs of a definitie; their ids."""
    ids = []
    for _ in range(times):
        ctx = make_context(definitie_id=definitie_id)
        ids.append(repo.create_pending_log(ctx))
    repo.flush()
    return ids


def test_a_review_is_recorded_chained_and_listed(repo: GenerationLogRepository) -> None:
    (first, latest) = generate(repo, 4, times=2)
    approved = repo.record_review(4, "approved", reviewer="jurist-7", note="helder")
    assert (approved.definitie_id, approved.log_id, approved.verdict) == (4, latest, "approved")
    edited = repo.record_review(
        4, "edited", reviewer="jurist-8", edited_text="Een verdachte is ...", log_id=first
    )
    assert (edited.log_id, edited.edited_text, edited.note) == (first, "Een verdachte is ...", None)
    assert [r.id for r in repo.reviews(definitie_id=4)] == [approved.id, edited.id]
    assert repo.reviews(log_id=first) == [edited]
    assert repo.reviews(definitie_id=99) == []
    found = repo.verify()
    assert found.ok, found.problems
    assert found.reviews == 2
    assert "2 reviews" in found.summary()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"verdict": "okay", "reviewer": "j"}, "verdict must be one of approved"),
        ({"verdict": "approved", "reviewer": ""}, "reviewer must be 1 to 256"),
        ({"verdict": "approved", "reviewer": None}, "needs its reviewer"),
        ({"verdict": "edited", "reviewer": "j"}, "needs the edited text"),
        ({"verdict": "approved", "reviewer": "j", "edited_text": "x"}, "only it has one"),
        ({"verdict": "rejected", "reviewer": "j", "note": "  "}, "note must be text"),
        ({"verdict": "rejected", "reviewer": "j", "log_id": "1"}, "log id must be an integer"),
        ({"verdict": "approved", "reviewer": "j", "log_id": 2}, "no generation log 2"),
        ({"verdict": "approved", "reviewer": "j", "definitie_id": 5}, "definitie 5 has no"),
    ],
)
def test_a_review_that_cannot_mean_anything_is_refused(
    repo: GenerationLogRepository, kwargs: dict[str, Any], message: str
) -> None:
    generate(repo, 4)
    generate(repo, 6)  # log 2: another definitie's
    kwargs = dict(kwargs)  # the parameters are shared by both backends
    definitie_id = kwargs.pop("definitie_id", 4)
    with pytest.raises(InvalidLogError, match=message):
        repo.record_review(definitie_id, **kwargs)
    assert repo.reviews(definitie_id=4) == []
    assert repo.chain_head()[0] == 2  # nothing chained either


def test_the_handle_reviews_what_was_generated_inside_it(
    audited: AuditedOpenAI, target: str
) -> None:
    with audit_context(template_name="unified_definition_v2") as audit:
        with pytest.raises(InvalidLogError, match="nothing was generated"):
            audit.review("approved", reviewer="jurist-7")
        audited.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
        with pytest.raises(InvalidLogError, match="not linked to a definitie yet"):
            audit.review("approved", reviewer="jurist-7")
        audit.link(12)
        made = audit.review("rejected", reviewer="jurist-7", note="te ruim")
    assert (made.definitie_id, made.log_id, made.verdict) == (12, audit.last_log_id, "rejected")
    assert query.verify(target).ok


def test_a_verdict_changed_by_sql_is_caught_and_events_hold_no_names(
    repo: GenerationLogRepository, target: str
) -> None:
    generate(repo, 4)
    repo.record_review(4, "approved", reviewer="jurist-zeven", note="akkoord, zie memo")
    states = [row[0] for row in fetch(target, "SELECT state FROM generation_log_events")]
    assert not any("jurist-zeven" in s or "memo" in s for s in states), "digests only"
    execute(target, "UPDATE generation_reviews SET verdict = 'rejected'")
    found = query.verify(target)
    assert [(p.kind, p.message) for p in found.problems] == [
        ("review_changed", "review 1 no longer matches event 2 (review)")
    ]
    execute(target, "UPDATE generation_reviews SET verdict = 'approved'")
    assert query.verify(target).ok
    execute(target, "UPDATE generation_reviews SET reviewer = 'jurist-acht'")
    assert [p.kind for p in query.verify(target).problems] == ["review_changed"]


def test_a_review_deleted_or_slipped_in_by_sql_is_caught(
    repo: GenerationLogRepository, target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    generate(repo, 4)
    for verdict in ("approved", "rejected", "approved"):
        repo.record_review(4, verdict, reviewer="jurist-7")
    execute(target, "DELETE FROM generation_reviews WHERE id = 2")
    execute(
        target,
        "INSERT INTO generation_reviews (definitie_id, log_id, reviewer, verdict, reviewed_at)"
        " VALUES (4, 1, 'niemand', 'approved', '2026-12-01T00:00:00.000Z')",
    )
    found = query.verify(target)
    assert sorted(p.kind for p in found.problems) == ["review_deleted", "review_inserted"]
    assert found.reviews == 3
    monkeypatch.setattr(_verify, "PARALLEL_FROM", 1)  # shared out to worker processes
    shared = query.verify(target, workers=2)
    assert [p.message for p in shared.problems] == [p.message for p in found.problems]


def test_reviews_go_with_their_definitie_when_it_is_erased(
    repo: GenerationLogRepository, target: str
) -> None:
    generate(repo, 4)
    generate(repo, 5)
    repo.record_review(4, "edited", reviewer="jurist-7", edited_text="nieuwe tekst")
    repo.record_review(5, "approved", reviewer="jurist-7")
    assert repo.erase_definitie(4) == 1
    assert repo.reviews(definitie_id=4) == []
    assert [r.definitie_id for r in repo.reviews(definitie_id=5)] == [5]
    kinds = [row[0] for row in fetch(target, "SELECT kind FROM generation_log_events ORDER BY seq")]
    assert kinds[-2:] == ["erase", "erase"]  # the row's and the review's
    found = query.verify(target)
    assert found.ok, found.problems
    assert (found.erased, found.reviews_erased, found.reviews) == (1, 1, 1)


def test_a_host_delete_of_the_definitie_takes_its_reviews(
    repo: GenerationLogRepository, target: str, app_db: Callable[..., Any]
) -> None:
    host = app_db((4, "verdachte"), (5, "getuige"))
    repo.refresh_host_objects()
    generate(repo, 4)
    generate(repo, 5)
    repo.record_review(4, "approved", reviewer="jurist-7")
    repo.record_review(5, "approved", reviewer="jurist-7")
    host.execute("DELETE FROM definities WHERE id = 4")
    if not target.startswith("postgresql://"):
        host.commit()
    assert fetch(target, "SELECT definitie_id FROM generation_reviews") == [(5,)]
    found = query.verify(target)
    assert found.ok, found.problems
    assert (found.reviews, found.reviews_erased) == (1, 1)


def test_a_host_delete_leaves_no_review_text_in_the_file(tmp_path: Path) -> None:
    """SQLite: the host's DELETE blanks the reviewer, the note and the edit in place."""
    db = tmp_path / "definities.db"
    host = sqlite3.connect(db)
    host.execute("CREATE TABLE definities (id INTEGER PRIMARY KEY, begrip TEXT, source_type TEXT)")
    host.execute("INSERT INTO definities VALUES (1, 'verdachte', 'generated')")
    host.commit()
    canary = uuid.uuid4().hex
    with GenerationLogRepository(db) as repo:
        generate(repo, 1)
        repo.record_review(
            1, "edited", reviewer=f"j-{canary}", note=f"n-{canary}", edited_text=f"t-{canary}"
        )
        assert canary.encode() in b"".join(p.read_bytes() for p in tmp_path.iterdir())
        host.execute("PRAGMA secure_delete = OFF")  # as a host's SQLite may be built
        host.execute("DELETE FROM definities WHERE id = 1")
        host.commit()
        assert repo.finish_erasures() == [1]
    host.close()
    assert canary.encode() not in b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert query.verify(db).ok


def test_history_and_logs_find_what_is_not_yet_reviewed(
    repo: GenerationLogRepository, target: str, tmp_path: Path
) -> None:
    generate(repo, 4)
    generate(repo, 5)
    repo.create_pending_log(make_context())  # no definitie: neither reviewed nor not
    repo.flush()
    repo.record_review(4, "approved", reviewer="jurist-7")
    assert [log.id for log in query.history(target, reviewed=True)] == [1]
    assert [log.id for log in query.history(target, reviewed=False)] == [2]
    assert query.count(target, reviewed=False) == 1
    with pytest.raises(InvalidLogError, match="reviewed must be True or False"):
        query.history(target, reviewed="no")  # type: ignore[arg-type]
    runner = CliRunner()
    result = runner.invoke(cli.main, ["--db", target, "logs", "--json", "--unreviewed"])
    assert result.exit_code == 0, result.output
    assert [row["id"] for row in json.loads(result.stdout)] == [2]
    edited = tmp_path / "edited.txt"
    edited.write_text("Een getuige is ...", encoding="utf-8")
    args = ["--db", target, "review", "--definitie", "5", "--verdict", "edited"]
    result = runner.invoke(cli.main, [*args, "--reviewer", "jurist-8", "--edited-file", edited])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("recorded review 2 of definitie 5: ")
    assert "edited by jurist-8 (review 2, log 2)" in result.stdout
    result = runner.invoke(cli.main, ["--db", target, "reviews", "--definitie", "5", "--json"])
    assert json.loads(result.stdout)[0]["edited_text"] == "Een getuige is ..."
    result = runner.invoke(cli.main, ["--db", target, "show", "2"])
    assert "\nReviews\n  " in result.stdout
    assert "edited by jurist-8" in result.stdout
    result = runner.invoke(cli.main, ["--db", target, "logs", "--json", "--unreviewed"])
    assert json.loads(result.stdout) == []


@pytest.mark.parametrize(
    ("args", "code", "said"),
    [
        (["--verdict", "edited", "--reviewer", "j"], 2, "needs the edited text"),
        (["--verdict", "approved", "--reviewer", "j", "--log", "9"], 2, "no generation log 9"),
        (["--verdict", "okay", "--reviewer", "j"], 2, "'okay' is not one of"),
    ],
)
def test_the_review_command_refuses_with_one_line(
    repo: GenerationLogRepository, target: str, args: list[str], code: int, said: str
) -> None:
    generate(repo, 4)
    result = CliRunner().invoke(cli.main, ["--db", target, "review", "--definitie", "4", *args])
    assert result.exit_code == code
    assert said in result.output
    assert repo.reviews(definitie_id=4) == []
    missing = CliRunner().invoke(cli.main, ["--db", target, "reviews", "--definitie", "4"])
    assert (missing.exit_code, missing.output.strip()) == (1, "error: no reviews of definitie 4")
