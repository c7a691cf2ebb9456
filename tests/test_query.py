"""audited_openai.query: history, aggregates in SQL, export, diffs, replay, hostile filters."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audited_openai import (
    AuditedOpenAI,
    ErrorContext,
    GenerationLogRepository,
    InvalidLogError,
    LogNotFoundError,
    ResponseMetadata,
    audit_context,
    query,
)
from audited_openai._errors import StoreError
from audited_openai.testing import LoopbackServer, Reply
from tests.conftest import make_context

DAY1 = datetime(2025, 11, 10, 9, 0, tzinfo=timezone.utc)
DAY2 = datetime(2025, 11, 11, 9, 0, tzinfo=timezone.utc)


def seed(repo: GenerationLogRepository) -> list[int]:
    """Six rows over two days, two templates, two models and every status."""
    plan = [
        (DAY1, "2.0", "gpt-4", "success", 100, 200, "De verdachte is een persoon"),
        (DAY1, "2.0", "gpt-4", "failed", None, 50, None),
        (DAY2, "2.1", "gpt-4o", "success", 300, 400, "Een getuige verklaart"),
        (DAY2, "2.1", "gpt-4o", "success", 500, 600, "Een rechtshulpverlener adviseert"),
        (DAY2, "2.1", "gpt-4o", "timeout", None, 900, None),
        (DAY2, "2.1", "gpt-4o", "pending", None, None, None),
    ]
    ids = []
    for moment, version, model, status, tokens, duration, content in plan:
        ctx = make_context(logged_at=moment, updated_at=moment)
        ctx.prompt.template_version = version
        ctx.prompt.model_params.name = model
        ctx.prompt.full_text = f"Definieer het begrip (template {version}) {content or ''}"
        log_id = repo.create_pending_log(ctx)
        ids.append(log_id)
        if status == "success":
            ctx.mark_success(
                ResponseMetadata(
                    tokens_total=tokens,
                    tokens_prompt=tokens,
                    tokens_completion=0,
                    duration_ms=duration,
                    content=content,
                )
            )
            repo.update_with_response(log_id, ctx)
        elif status == "failed":
            ctx.mark_failed(ErrorContext("Rate limit", "RateLimitError", duration_ms=duration))
            repo.update_with_error(log_id, ctx)
        elif status == "timeout":
            ctx.mark_timeout(ErrorContext("timed out", "APITimeoutError", duration_ms=duration))
            repo.update_with_error(log_id, ctx)
    repo.link_to_definitie(ids[2], 456)
    return ids


@pytest.fixture
def seeded(repo: GenerationLogRepository) -> tuple[GenerationLogRepository, list[int]]:
    return repo, seed(repo)


def test_history_filters_and_pagination(seeded: tuple[GenerationLogRepository, list[int]]) -> None:
    """Newest first; every filter narrows; after_id continues a listing."""
    repo, ids = seeded

    def ids_of(**kwargs: object) -> list[int | None]:
        return [c.id for c in query.history(repo, **kwargs)]  # type: ignore[arg-type]

    assert ids_of() == ids[::-1]
    assert ids_of(limit=2) == [ids[5], ids[4]]
    assert ids_of(after_id=ids[4], limit=2) == [ids[3], ids[2]]
    assert ids_of(status="success", model="gpt-4o") == [ids[3], ids[2]]
    assert ids_of(template_version="2.0") == [ids[1], ids[0]]
    assert ids_of(template_name="unified_definition_v2", since=DAY2) == ids[2:][::-1]
    assert ids_of(until=DAY1 + timedelta(hours=1)) == [ids[1], ids[0]]
    assert ids_of(definitie_id=456) == [ids[2]]
    assert ids_of(search="getuige") == [ids[2]]
    assert ids_of(search="rechtshulp*") == [ids[3]]
    assert ids_of(search='"een getuige"') == [ids[2]]
    assert ids_of(search="verdachte persoon") == [ids[0]]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"status": "done"}, "unknown status"),
        ({"since": "yesterday"}, "timezone-aware"),
        ({"until": datetime(2025, 1, 1)}, "timezone-aware"),  # noqa: DTZ001 - the bad input
        ({"model": 4}, "model must be text"),
        ({"definitie_id": "1"}, "definitie_id must be an integer"),
        ({"after_id": "9"}, "after_id"),
        ({"search": "   "}, "at least one word"),
        ({"limit": -1}, "limit"),
    ],
)
def test_history_refuses_bad_filters(
    repo: GenerationLogRepository, kwargs: dict[str, object], message: str
) -> None:
    """Meaningless filter values get a clear error."""
    with pytest.raises(InvalidLogError, match=message):
        query.history(repo, **kwargs)  # type: ignore[arg-type]


def test_aggregates(seeded: tuple[GenerationLogRepository, list[int]]) -> None:
    """Token usage by day, most expensive, failure rate and percentiles, from SQL."""
    repo, ids = seeded
    assert query.token_usage_by_day(repo) == [
        {
            "day": "2025-11-11",
            "generations": 2,
            "tokens_prompt": 800,
            "tokens_completion": 0,
            "tokens_total": 800,
            "avg_tokens": 400.0,
            "max_tokens": 500,
            "cost": Decimal("0.002"),  # gpt-4o: 800 prompt tokens at 2.50 USD a million
            "cost_currency": "USD",
            "priced": 2,
        },
        {
            "day": "2025-11-10",
            "generations": 1,
            "tokens_prompt": 100,
            "tokens_completion": 0,
            "tokens_total": 100,
            "avg_tokens": 100.0,
            "max_tokens": 100,
            "cost": Decimal("0.003"),  # gpt-4: 100 prompt tokens at 30.00 USD a million
            "cost_currency": "USD",
            "priced": 1,
        },
    ]
    expensive = query.most_expensive(repo, 2)
    assert [(r["id"], r["cost"], r["cost_currency"]) for r in expensive] == [
        (ids[3], Decimal("0.00125"), "USD"),
        (ids[2], Decimal("0.00075"), "USD"),
    ]
    assert query.failure_rate_by_template(repo) == [
        {
            "template_name": "unified_definition_v2",
            "template_version": "2.0",
            "total": 2,
            "failures": 1,
            "failure_rate": 50.0,
        },
        {
            "template_name": "unified_definition_v2",
            "template_version": "2.1",
            "total": 4,
            "failures": 1,
            "failure_rate": 25.0,
        },
    ]
    assert query.duration_percentiles(repo) == [
        {
            "model": "gpt-4",
            "template_name": "unified_definition_v2",
            "template_version": "2.0",
            "count": 1,
            "p50_ms": 200,
            "p95_ms": 200,
        },
        {
            "model": "gpt-4o",
            "template_name": "unified_definition_v2",
            "template_version": "2.1",
            "count": 2,
            "p50_ms": 400,
            "p95_ms": 600,
        },
    ]
    stats = query.stats(repo)
    assert stats["by_status"] == {"failed": 1, "pending": 1, "success": 3, "timeout": 1}
    assert stats["failure_rate_by_template"] == query.failure_rate_by_template(repo)
    assert stats["duration_percentiles"] == query.duration_percentiles(repo)
    assert stats["token_usage_by_day"] == query.token_usage_by_day(repo)
    assert stats["most_expensive"] == query.most_expensive(repo, 5)
    with pytest.raises(InvalidLogError):
        query.most_expensive(repo, -1)


def test_export_csv_and_jsonl(seeded: tuple[GenerationLogRepository, list[int]]) -> None:
    """Every column of every matching row, oldest first, with progress reported."""
    repo, ids = seeded
    out = io.StringIO()
    seen: list[int] = []
    assert query.export(repo, "csv", out, progress=seen.append, status="success") == 3
    lines = out.getvalue().splitlines()
    assert lines[0].split(",") == list(query.COLUMNS)
    assert len(lines) == 4
    assert seen == [3]
    out = io.StringIO()
    assert query.export(repo, "jsonl", out) == 6
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["id"] for r in records] == ids
    assert set(records[0]) == set(query.COLUMNS)
    with pytest.raises(InvalidLogError, match="format"):
        query.export(repo, "xml", io.StringIO())  # type: ignore[arg-type]


def test_export_pages_through_many_rows(repo: GenerationLogRepository) -> None:
    """Export reads in keyset pages: more rows than one page come out whole, in order."""
    for _ in range(1203):
        repo.create_pending_log(make_context())
    out = io.StringIO()
    progress: list[int] = []
    assert query.export(repo, "jsonl", out, progress=progress.append) == 1203
    assert progress == [500, 1000, 1203], "after each batch, then the total"
    assert [json.loads(line)["id"] for line in out.getvalue().splitlines()] == list(range(1, 1204))


def test_diff_prompts(repo: GenerationLogRepository) -> None:
    """A unified diff of the prompts and every parameter that differs."""
    a = make_context(request_json=json.dumps({"model": "gpt-4", "seed": 1, "messages": []}))
    b = make_context(request_json=json.dumps({"model": "gpt-4o", "seed": 2, "messages": []}))
    a.prompt.full_text = "Regel 1\nRegel 2\n"
    b.prompt.full_text = "Regel 1\nRegel 3\n"
    b.prompt.template_version = "2.1"
    b.prompt.model_params.temperature = Decimal("0.2")
    ida, idb = repo.create_pending_log(a), repo.create_pending_log(b)
    result = query.diff_prompts(repo, ida, idb)
    assert "-Regel 2\n+Regel 3\n" in result.diff
    assert result.parameters == {
        "model_temperature": (0.7, 0.2),
        "prompt_template_version": ("2.0", "2.1"),
        "request.model": ("gpt-4", "gpt-4o"),
        "request.seed": (1, 2),
    }
    with pytest.raises(LogNotFoundError):
        query.diff_prompts(repo, ida, 999)


def test_replay_sends_the_stored_request_again(db_path: Path) -> None:
    """replay sends the exact body again, records replay_of, and compares."""
    with LoopbackServer() as server:
        server.script(Reply("Een getuige is ...", prompt_tokens=10, completion_tokens=5))
        client = AuditedOpenAI(db_path, base_url=server.base_url, api_key="test")
        client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "getuige"}], seed=7
        )
        server.script(Reply("Een getuige is iemand anders", prompt_tokens=10, completion_tokens=8))
        result = query.replay(db_path, 1, client)
        assert server.requests[1].body == server.requests[0].body
        server.script(Reply("x"))
        client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "s"}], stream=True
        )
        assert query.replay(db_path, 3, client).replay_id == 4
        client.close()
    assert result.replay_id == 2
    assert result.same_text is False
    assert result.tokens_delta == 3
    replayed = GenerationLogRepository(db_path).get(2)
    assert (replayed.replay_of, replayed.metadata) == (1, {})
    with pytest.raises(InvalidLogError, match="audited client"):
        query.replay(
            db_path, 1, __import__("openai").OpenAI(api_key="x", http_client=httpx.Client())
        )


def _fingerprint(path: str) -> str:
    """A digest of everything in the database (every table's rows, or SQLite's dump)."""
    if path.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(path) as conn:
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
                )
            ]
            dump = repr(
                [(t, conn.execute(f'SELECT * FROM "{t}" ORDER BY 1').fetchall()) for t in tables]
            )
    else:
        conn = sqlite3.connect(path)
        dump = "\n".join(conn.iterdump())
        conn.close()
    return hashlib.sha256(dump.encode()).hexdigest()


HOSTILE = st.one_of(
    st.text(),
    st.sampled_from(
        [
            "'; DROP TABLE generation_logs; --",
            '" OR 1=1 --',
            "*",
            "NEAR(",
            "a OR",
            "')",
            "\x00",
            "generation_status",
        ]
    ),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=HOSTILE)
def test_hostile_filter_values_change_nothing(
    seeded: tuple[GenerationLogRepository, list[int]], value: str
) -> None:
    """Any text in any filter is a bound value: the database is the same afterwards."""
    repo, _ = seeded
    repo.flush()
    before = _fingerprint(repo.path)
    for name in ("model", "template_name", "template_version", "search"):
        try:
            found = query.history(repo, **{name: value})
        except InvalidLogError:
            continue
        assert all(isinstance(c.id, int) for c in found)
    try:
        query.export(repo, "jsonl", io.StringIO(), model=value)
        query.token_usage_by_day(repo, template_name=value)
    except InvalidLogError:
        pass
    assert _fingerprint(repo.path) == before


def test_export_columns_are_the_table_columns() -> None:
    """query.COLUMNS is the pinned schema, in table order."""
    from tests.test_schema import COLUMNS

    assert tuple(column[0] for column in COLUMNS) == query.COLUMNS


def test_search_with_other_filters(seeded: tuple[GenerationLogRepository, list[int]]) -> None:
    """A search combines with the other filters and with after_id."""
    repo, ids = seeded
    found = query.history(repo, search="template", model="gpt-4o", after_id=ids[3])
    assert [c.id for c in found] == [ids[2]]


def test_a_replay_is_erased_with_its_definitie(db_path: Path) -> None:
    """A replay belongs to the original's definitie: erasing the definitie leaves no
    copy of the prompt anywhere in the file."""
    canary = "CANARY" + os.urandom(6).hex()  # one token for the full-text index
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE definities (id INTEGER PRIMARY KEY, begrip TEXT, source_type TEXT)")
    conn.execute("INSERT INTO definities VALUES (7, 'getuige', 'generated')")
    conn.commit()
    conn.close()
    with (
        LoopbackServer() as server,
        AuditedOpenAI(db_path, base_url=server.base_url, api_key="test") as client,
    ):
        with audit_context(7):
            client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": f"Definieer {canary}"}]
            )
        result = query.replay(db_path, 1, client)
    repo = GenerationLogRepository(db_path)
    assert repo.get(result.replay_id).definitie_id == 7  # type: ignore[arg-type]
    assert query.history(repo, search=canary) != []
    assert repo.erase_definitie(7) == 2
    assert query.history(repo, search=canary) == []
    for path in db_path.parent.iterdir():
        assert canary.encode() not in path.read_bytes(), path


# -- given a path, query reads only, and leaves nothing open -----------------------------------


def _open_things(name: str) -> tuple[int, int]:
    """This process's writer threads of a database, and its SQLite connections' files."""
    import threading

    writers = [t for t in threading.enumerate() if t.name == f"audited_openai-writer {name}"]
    fds = [fd for fd in Path("/proc/self/fd").iterdir() if _points_at(fd, name)]
    return len(writers), len(fds)


def _points_at(fd: Path, name: str) -> bool:
    try:
        return str(fd.readlink()).startswith(name)
    except OSError:
        return False


def test_query_functions_given_a_path_open_nothing_they_leave(db_path: Path) -> None:
    """On a file with the host's definities table (which starts the housekeeping writer
    of a store that may write), query functions given the path open it read-only and
    close it: no writer thread, no connection left, however often they are called."""
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE definities (id INTEGER PRIMARY KEY, begrip TEXT, source_type TEXT)")
    conn.execute("INSERT INTO definities VALUES (456, 'getuige', 'generated')")
    conn.commit()
    conn.close()
    with GenerationLogRepository(db_path) as repo:
        seed(repo)
    name = os.path.realpath(db_path)
    assert _open_things(name) == (0, 0)
    for _ in range(3):
        assert query.count(db_path) == 6
    assert len(query.history(db_path)) == 6
    assert query.stats(db_path)["by_status"]["success"] == 3
    assert len(list(query.iter_rows(db_path))) == 6
    assert query.verify(db_path).ok
    assert query.diff_prompts(db_path, 1, 3).a == 1
    assert _open_things(name) == (0, 0)


def test_query_given_a_foreign_file_refuses_it_untouched(tmp_path: Path) -> None:
    """A file without an audit trail (the app's own) is refused, not given one."""
    app = tmp_path / "definities.db"
    conn = sqlite3.connect(app)
    conn.execute("CREATE TABLE definities (id INTEGER PRIMARY KEY, begrip TEXT, source_type TEXT)")
    conn.commit()
    conn.close()
    before = app.read_bytes()
    for read in (query.count, query.history, query.stats, query.verify):
        with pytest.raises(StoreError, match=f"^no audit trail in {app}$"):
            read(app)
    with pytest.raises(StoreError, match=r"^no database at"):
        query.count(tmp_path / "nothing-here.db")
    assert app.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["definities.db"]


def test_query_given_an_older_trail_says_to_migrate(db_path: Path) -> None:
    """A trail of an older schema is not read as if it were current, nor migrated."""
    with GenerationLogRepository(db_path) as repo:
        seed(repo)
    conn = sqlite3.connect(db_path)
    conn.execute("DELETE FROM audited_openai_migrations WHERE version > 6")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match=r"schema version 6, .* run `audited-openai migrate`"):
        query.count(db_path)


# -- a replay is a replay: never the generation of a definitie --------------------------------


def _generated_and_replayed(target: str) -> tuple[int, int]:
    """Definitie 5, generated by a call (its log), then that call replayed: (log, replay)."""
    from tests.conftest import host

    host(target, (5, "getuige")).close()
    with (
        LoopbackServer() as server,
        AuditedOpenAI(target, base_url=server.base_url, api_key="test") as client,
    ):
        server.script(Reply("Een getuige verklaart", completion_tokens=5))
        with audit_context(5, template_version="2.0"):
            client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "getuige"}]
            )
        server.script(Reply("Iets heel anders, en veel langer", completion_tokens=500))
        result = query.replay(target, 1, client)
    assert result.replay_id is not None
    return 1, result.replay_id


def _made_by(target: str, definitie_id: int) -> int | None:
    """The generation_log_id the spec's view gives a definitie."""
    from tests.conftest import fetch

    sql = "SELECT generation_log_id FROM definities_with_generation WHERE id = ?"
    return fetch(target, sql, (definitie_id,))[0][0]  # type: ignore[no-any-return]


def test_a_replay_never_becomes_the_log_of_its_definitie(target: str) -> None:
    """After a replay, "which prompt made definitie 5" keeps its answer: the log of the
    definitie, the spec's view and most_expensive point at the generation; the replay
    is listed with the definitie's rows, marked as what it is."""
    made, replay = _generated_and_replayed(target)
    with GenerationLogRepository(target) as repo:
        log = repo.get_by_definitie_id(5)
        assert log is not None
        assert (log.id, log.replay_of) == (made, None)
        assert [(r.id, r.replay_of) for r in repo.get_all_for_definitie(5)] == [
            (made, None),
            (replay, made),
        ]
        assert [r["id"] for r in query.most_expensive(repo)] == [made]
        assert [r.id for r in query.history(repo, replays=True)] == [replay]
        assert [r.id for r in query.history(repo, replays=False)] == [made]
    assert _made_by(target, 5) == made
    assert query.verify(target).ok


def test_the_details_of_a_definitie_show_the_generation_not_its_replay(tmp_path: Path) -> None:
    from tests.test_streamlit import _details

    target = str(tmp_path / "audit.db")
    made, _ = _generated_and_replayed(target)
    at = _details(target, 5)
    assert at.caption[0].value.startswith(f"Log {made} · geslaagd")
    assert not at.warning


def test_replays_recorded_before_schema_8_are_marked_when_migrated(
    target: str, unpriced: None
) -> None:
    """A trail of schema 7, where a replay said so only in its metadata, migrates: the
    replay is marked (the change chained), and the log of the definitie is right again.
    A replay claim written behind the library's back is not laundered into the chain."""
    from tests.conftest import as_schema, execute, fetch, host

    host(target, (5, "getuige")).close()
    with (
        LoopbackServer() as server,
        AuditedOpenAI(target, base_url=server.base_url, api_key="test") as client,
    ):
        for metadata in ({}, {"replay_of": 1}, {}):  # a generation, its old-style replay, one more
            with audit_context(5, metadata=metadata):
                client.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "getuige"}]
                )
    forged = {"replay_of": 1, "written": "behind the library's back"}
    execute(
        target,
        "UPDATE generation_logs SET additional_metadata = ? WHERE id = 3",
        (json.dumps(forged),),
    )
    as_schema(target, 7)
    with GenerationLogRepository(target) as repo:
        assert [(r.id, r.replay_of) for r in repo.get_all_for_definitie(5)] == [
            (1, None),
            (2, 1),
            (3, None),
        ]
        log = repo.get_by_definitie_id(5)
        assert log is not None
        assert log.id == 3
    assert _made_by(target, 5) == 3
    verified = query.verify(target)
    assert [(p.kind, p.log_id) for p in verified.problems] == [("row_changed", 3)]
    assert "additional_metadata" in verified.problems[0].message
    events = "SELECT kind, note FROM generation_log_events WHERE log_id = 2 ORDER BY seq"
    assert fetch(target, events)[-1] == (
        "migrate",
        "replay_of taken from additional_metadata (schema 8)",
    )


def test_a_copied_replay_points_at_its_original_in_the_copy(tmp_path: Path) -> None:
    """Ids are the target's own: replay_of follows the original to its new id."""
    source = str(tmp_path / "source.db")
    made, replay = _generated_and_replayed(source)
    target = tmp_path / "target.db"
    with GenerationLogRepository(target) as repo:
        repo.create_pending_log(make_context())  # the target's ids are one further on
    assert query.copy(source, target).inserted == 2
    with GenerationLogRepository(target) as repo:
        copied = repo.get_all_for_definitie(5)
    assert [(r.id, r.replay_of) for r in copied] == [(made + 1, None), (replay + 1, made + 1)]


def test_usage_by_day_in_the_viewers_zone(repo: GenerationLogRepository) -> None:
    """Days in the zone asked for: 23:30 UTC on 10 November is the 11th in Amsterdam
    (UTC+1), 22:50 UTC is still the 10th; the sums, averages and maxima are the day's."""
    from zoneinfo import ZoneInfo

    for moment, tokens in (
        (datetime(2025, 11, 10, 22, 50, tzinfo=timezone.utc), 100),
        (datetime(2025, 11, 10, 23, 30, tzinfo=timezone.utc), 300),
        (datetime(2025, 11, 11, 9, 0, tzinfo=timezone.utc), 500),
    ):
        ctx = make_context(logged_at=moment, updated_at=moment)
        ctx.prompt.model_params.name = "gpt-4o"
        log_id = repo.create_pending_log(ctx)
        ctx.mark_success(
            ResponseMetadata(tokens_total=tokens, tokens_prompt=tokens, tokens_completion=0)
        )
        repo.update_with_response(log_id, ctx)
    utc = query.token_usage_by_day(repo)
    assert [(d["day"], d["generations"], d["tokens_total"]) for d in utc] == [
        ("2025-11-11", 1, 500),
        ("2025-11-10", 2, 400),
    ]
    assert query.token_usage_by_day(repo, zone=timezone.utc) == utc
    amsterdam = query.token_usage_by_day(repo, zone=ZoneInfo("Europe/Amsterdam"))
    assert [
        (d["day"], d["generations"], d["tokens_total"], d["avg_tokens"], d["max_tokens"])
        for d in amsterdam
    ] == [("2025-11-11", 2, 800, 400.0, 500), ("2025-11-10", 1, 100, 100.0, 100)]
    assert set(amsterdam[0]) == set(utc[0])
    assert amsterdam[0]["cost_currency"] == utc[0]["cost_currency"]
    assert amsterdam[0]["priced"] == 2
    assert amsterdam[0]["cost"] == Decimal("0.002")  # 800 prompt tokens at 2.50 USD a million
    assert sum(d["cost"] for d in amsterdam) == sum(d["cost"] for d in utc)
