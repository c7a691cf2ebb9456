"""Who asked, and in which working session: ``actor`` and ``session`` on every row.

Both backends: bound by ``audit_context`` (nested, inherited, the client's ``actor=``
as the default), redacted like the prompt, chained as digests (a change by SQL is
caught by ``verify``; the events never hold the name), filtered in ``query`` and the
CLI, exported, and erased with their definitie.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sqlite3
import uuid
from typing import TYPE_CHECKING

import httpx
import pytest
import respx
from click.testing import CliRunner

from audited_openai import (
    AsyncAuditedOpenAI,
    AuditedOpenAI,
    GenerationLogRepository,
    InvalidLogError,
    audit_context,
    cli,
    query,
)
from audited_openai.redact import dutch_pii
from tests.conftest import (
    API_KEY,
    BASE_URL,
    audited_client,
    chat_body,
    execute,
    host_connection,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

MESSAGES = [{"role": "user", "content": "Definieer 'verdachte'."}]


@pytest.fixture
def audited(target: str, router: respx.MockRouter) -> Iterator[AuditedOpenAI]:
    """An audited client over respx on each backend, with an app-wide actor."""
    yield from audited_client(target, router, actor="definitie-app")


def call(client: AuditedOpenAI) -> None:
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]


def test_each_row_says_who_asked_and_in_which_session(audited: AuditedOpenAI, target: str) -> None:
    """The client's actor by default; audit_context overrides it and nests."""
    call(audited)
    with audit_context(actor="medewerker-042", session="sessie-7"):
        call(audited)
        with audit_context(12):  # inherits both
            call(audited)
        with audit_context(actor="medewerker-043"):  # keeps the session
            call(audited)
    audited.audit_store.flush()
    found = [(log.actor, log.session) for log in query.history(target)][::-1]
    assert found == [
        ("definitie-app", None),
        ("medewerker-042", "sessie-7"),
        ("medewerker-042", "sessie-7"),
        ("medewerker-043", "sessie-7"),
    ]
    assert query.verify(target).ok


def test_the_copy_keeps_or_changes_the_actor(audited: AuditedOpenAI, target: str) -> None:
    call(audited.with_options(timeout=5))
    call(audited.copy(actor="batch-job"))
    audited.audit_store.flush()
    assert [log.actor for log in query.history(target)] == ["batch-job", "definitie-app"]


def test_an_async_call_in_a_task_keeps_its_context(target: str, router: respx.MockRouter) -> None:
    router.post("/chat/completions").respond(200, json=chat_body())

    async def main() -> None:
        async with AsyncAuditedOpenAI(
            target, api_key=API_KEY, base_url=BASE_URL, http_client=httpx.AsyncClient()
        ) as client:

            async def one(who: str) -> None:
                async with audit_context(actor=who, session="s"):
                    await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]

            await asyncio.gather(one("a"), one("b"))
            client.audit_store.flush()

    asyncio.run(main())
    assert sorted(log.actor for log in query.history(target)) == ["a", "b"]


def test_who_is_redacted_like_the_prompt(target: str, router: respx.MockRouter) -> None:
    router.post("/chat/completions").respond(200, json=chat_body())
    with (
        AuditedOpenAI(
            target,
            api_key=API_KEY,
            base_url=BASE_URL,
            http_client=httpx.Client(),
            redact=dutch_pii,
        ) as client,
        audit_context(actor="jurist@rechtspraak.nl", session="06-12345678"),
    ):
        call(client)
        client.audit_store.flush()
    (log,) = query.history(target)
    assert (log.actor, log.session) == ("[EMAIL]", "[TELEFOON]")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "actor must be 1 to 256 printable characters"),
        ("   ", "actor must be 1 to 256 printable characters"),
        ("a\nb", "actor must be 1 to 256 printable characters"),
        ("x" * 257, "actor must be 1 to 256 printable characters"),
        (42, "actor must be text, not int 42"),
    ],
)
def test_a_bad_actor_is_refused_where_it_is_given(value: object, message: str, target: str) -> None:
    with pytest.raises(InvalidLogError, match=message):
        audit_context(actor=value)  # type: ignore[arg-type]
    with pytest.raises(InvalidLogError, match=message):
        AuditedOpenAI(target, api_key=API_KEY, actor=value)  # type: ignore[arg-type]
    with pytest.raises(InvalidLogError, match="session must be"):
        audit_context(session="" if isinstance(value, str) else value)  # type: ignore[arg-type]


def test_a_changed_actor_is_caught_and_the_events_hold_no_name(
    audited: AuditedOpenAI, target: str
) -> None:
    with audit_context(actor="medewerker-042", session="sessie-7"):
        call(audited)
    audited.audit_store.flush()
    conn = host_connection(target)
    try:
        states = [str(row[0]) for row in conn.execute("SELECT state FROM generation_log_events")]
    finally:
        conn.close()
    assert states
    assert not any("medewerker-042" in s or "sessie-7" in s for s in states), "digests only"
    assert query.verify(target).ok
    execute(target, "UPDATE generation_logs SET actor = 'medewerker-999'")
    found = query.verify(target)
    assert not found.ok
    assert any("actor" in problem.message for problem in found.problems)


def test_logs_filter_and_export_by_actor_and_session(audited: AuditedOpenAI, target: str) -> None:
    for actor, session in (("a", "s1"), ("b", "s1"), ("a", "s2")):
        with audit_context(actor=actor, session=session):
            call(audited)
    audited.audit_store.flush()
    assert [log.id for log in query.history(target, actor="a")] == [3, 1]
    assert [log.id for log in query.history(target, session="s1")] == [2, 1]
    assert query.count(target, actor="a", session="s2") == 1
    runner = CliRunner()
    result = runner.invoke(cli.main, ["--db", target, "logs", "--json", "--actor", "b"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)
    assert (row["id"], row["actor"], row["session"]) == (2, "b", "s1")
    result = runner.invoke(
        cli.main, ["--db", target, "export", "--format", "csv", "-o", "-", "--session", "s2"]
    )
    assert result.exit_code == 0, result.output
    (exported,) = list(csv.DictReader(io.StringIO(result.stdout)))
    assert (exported["actor"], exported["session_id"]) == ("a", "s2")
    with pytest.raises(InvalidLogError, match="actor must be text"):
        query.history(target, actor=7)  # type: ignore[arg-type]


def test_who_asked_goes_with_the_definitie_when_it_is_erased(
    audited: AuditedOpenAI, target: str
) -> None:
    with audit_context(5, actor="medewerker-042"):
        call(audited)
    audited.audit_store.flush()
    with GenerationLogRepository(target) as repo:
        assert repo.erase_definitie(5) == 1
    assert query.history(target, actor="medewerker-042") == []
    assert query.verify(target).ok


def test_a_host_delete_leaves_no_actor_in_the_file(
    tmp_path: Path, router: respx.MockRouter
) -> None:
    """SQLite: the host app's own DELETE of a definitie blanks who asked in place too."""
    router.post("/chat/completions").respond(200, json=chat_body())
    db = tmp_path / "definities.db"
    host = sqlite3.connect(db)
    host.execute("CREATE TABLE definities (id INTEGER PRIMARY KEY, begrip TEXT, source_type TEXT)")
    host.execute("INSERT INTO definities VALUES (1, 'verdachte', 'generated')")
    host.commit()
    canary = "medewerker-" + uuid.uuid4().hex
    with AuditedOpenAI(
        db, api_key=API_KEY, base_url=BASE_URL, http_client=httpx.Client()
    ) as client:
        with audit_context(1, actor=canary, session=f"{canary}-sessie"):
            call(client)
        client.audit_store.flush()
        assert canary.encode() in b"".join(p.read_bytes() for p in tmp_path.iterdir())
        host.execute("PRAGMA secure_delete = OFF")  # as a host's SQLite may be built
        host.execute("DELETE FROM definities WHERE id = 1")
        host.commit()
        assert client.audit_store.finish_erasures() == [1]
    host.close()
    assert canary.encode() not in b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert query.verify(db).ok
