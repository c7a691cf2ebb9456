"""The Streamlit views and the example app, through Streamlit's AppTest and Chromium.

Most tests read one seeded trail per backend (``examples/definitie_app/seed.py``: the
offline demo plus a retried call linked the spec's way, a timeout, a connection
error and a hand-written definitie whose regeneration failed).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest

pytest.importorskip("streamlit", reason="the streamlit extra is not installed")
from streamlit.testing.v1 import AppTest

from audited_openai import AuditedOpenAI, GenerationLogRepository, audit_context, query
from audited_openai.streamlit import local_time, nl_money, nl_number, nl_percent
from audited_openai.testing import Fail, LoopbackServer
from tests.conftest import BACKENDS, execute, fresh_postgres

if TYPE_CHECKING:
    from collections.abc import Iterator

APP = Path(__file__).parent.parent / "examples" / "definitie_app"
ARTIFACTS = Path(__file__).parent / "artifacts"
AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def _seed(db: str) -> dict[str, int]:
    sys.path.insert(0, str(APP))
    try:
        from seed import seed
    finally:
        sys.path.remove(str(APP))
    return seed(db)


@pytest.fixture(scope="module", params=BACKENDS)
def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, int]]]:
    """One seeded trail per backend, shared by the tests that only read it."""
    if request.param == "sqlite":
        db = str(tmp_path_factory.mktemp("seeded") / "definities.db")
        yield db, _seed(db)
        return
    with fresh_postgres() as url:
        yield url, _seed(url)


@pytest.fixture
def own(target: str) -> dict[str, int]:
    """A seeded trail of this test's own (it changes the trail)."""
    return _seed(target)


# -- formats ---------------------------------------------------------------------------------


def test_numbers_percentages_and_times_in_dutch() -> None:
    """nl-NL: a dot between thousands, a decimal comma, '%' after a space; times with
    the zone named."""
    assert nl_number(14000) == "14.000"
    assert nl_number(1234567.891, 2) == "1.234.567,89"
    assert nl_number(None) == "—"
    assert nl_number(52, 0, "ms") == "52 ms"
    assert nl_percent(38.4615) == "38,5 %"
    # money: cents from 1 up; below, three significant digits (a call is a fraction of a cent)
    assert nl_money(Decimal("1234.5"), "EUR") == "€ 1.234,50"
    assert nl_money(Decimal("0.000356"), "USD") == "US$ 0,000356"
    assert nl_money(0.0075, "USD") == "US$ 0,0075"
    assert nl_money(0.03, "CHF") == "CHF 0,03"
    assert (nl_money(0, "EUR"), nl_money(None, "EUR")) == ("€ 0,00", "—")
    moment = datetime(2026, 11, 30, 5, 31, 2, tzinfo=timezone.utc)
    assert local_time(moment, AMSTERDAM) == "30-11-2026 06:31:02 CET"
    assert local_time(datetime(2026, 7, 1, 12, tzinfo=timezone.utc), AMSTERDAM).endswith(
        "14:00:00 CEST"
    )
    assert local_time(None) == "—"


# -- Generatie Details -------------------------------------------------------------------------


def _run(page: Any, *args: object, params: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_function(page, args=args)
    for key, value in (params or {}).items():
        at.query_params[key] = value
    at.run(timeout=30)
    assert not at.exception, [e.value for e in at.exception]
    return at


def _details_page(db: str, definitie_id: int) -> None:
    from zoneinfo import ZoneInfo

    from audited_openai import GenerationLogRepository
    from audited_openai.streamlit import show_generation_details

    show_generation_details(
        GenerationLogRepository(db), definitie_id, expanded=True, zone=ZoneInfo("Europe/Amsterdam")
    )


def _details(db: str, definitie_id: int, *check: str) -> AppTest:
    at = _run(_details_page, db, definitie_id)
    for label in check:
        next(box for box in at.checkbox if box.label == label).check().run(timeout=30)
    return at


def _fields(at: AppTest) -> dict[str, str]:
    table = next(t.value for t in at.table if "veld" in t.value.columns)
    return dict(zip(table["veld"], table["waarde"], strict=True))


def test_generation_details_show_the_spec_metrics_in_dutch(
    seeded: tuple[str, dict[str, int]],
) -> None:
    """Model, temperature, tokens, duration and template version; Dutch labels and
    numbers; the prompt hidden until asked for, then wrapped."""
    db, _ids = seeded
    at = _details(db, 1)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Model"] == "gpt-4o-mini"
    assert metrics["Temperatuur"] == "0,3"
    assert metrics["Max. tokens"] == "300"
    assert metrics["Templateversie"] == "2.1"
    assert metrics["Eindreden"] == "stop"
    assert metrics["Generatietijd"].endswith(" ms")
    total, prompt, completion = (
        int(metrics[name].replace(".", ""))
        for name in ("Tokens gebruikt", "Prompttokens", "Antwoordtokens")
    )
    assert total == prompt + completion > 1000
    assert "." in metrics["Tokens gebruikt"], "thousands with a dot (nl-NL)"
    assert not any(label in metrics for label in ("Temperature", "Prompt Tokens"))
    assert "geslaagd" in at.caption[0].value
    assert " CET" in at.caption[0].value
    assert not at.code, "the prompt is hidden until asked for"
    at = _details(db, 1, "Toon Volledige Prompt")
    assert at.code[0].value.startswith("# DEFINITIE GENERATIE")
    assert at.code[0].proto.wrap_lines, "the prompt wraps in its box"


def test_details_show_every_stored_field(seeded: tuple[str, dict[str, int]]) -> None:
    """Finish reason, response id, max_tokens, HTTP status, call_id and the rest."""
    db, _ids = seeded
    log = GenerationLogRepository(db).get_by_definitie_id(1)
    assert log is not None
    assert log.response is not None
    fields = _fields(_details(db, 1, "Toon alle velden"))
    assert fields["Eindreden (finish_reason)"] == "stop"
    assert fields["Antwoord-id (response_id)"] == log.response.response_id
    assert fields["Max. tokens (max_tokens)"] == "300"
    assert fields["HTTP-status"] == "200"
    assert fields["Aanroep (call_id)"] == log.call_id
    assert fields["Status"] == "geslaagd"
    assert fields["Gelogd"] == local_time(log.logged_at, AMSTERDAM)
    assert fields["Definitie"] == "1"


def test_a_definitie_without_a_log_says_so(tmp_path: Path) -> None:
    """A definitie no generation is linked to gets the spec's clear message."""
    from audited_openai.streamlit import NO_LOG_MESSAGE

    db = str(tmp_path / "leeg.db")
    GenerationLogRepository(db).close()
    assert _details(db, 3).info[0].value == NO_LOG_MESSAGE


def test_a_hand_written_definitie_is_not_shown_as_the_failed_generation_s(
    seeded: tuple[str, dict[str, int]],
) -> None:
    """Its regeneration failed: the details say no generation produced the text."""
    db, ids = seeded
    at = _details(db, ids["hand_written"])
    assert at.warning[0].value.startswith("Geen geslaagde generatie voor deze definitie")
    assert "(mislukt)" in at.warning[0].value
    assert at.error[0].value.startswith("BadRequestError")


def test_a_later_failed_regeneration_is_named_not_shown_as_the_source(target: str) -> None:
    """A definitie generated once, regenerated without success: the details are those
    of the generation that made it, and the failed one is named above them."""
    ids = _seed(target)
    del ids
    with LoopbackServer() as server:
        server.script(Fail(400, "te lang"))
        client = AuditedOpenAI(target, base_url=server.base_url, api_key="t", max_retries=0)
        with audit_context(1), pytest.raises(Exception, match="te lang"):
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "opnieuw"}]
            )
        client.close()
    logs = GenerationLogRepository(target).get_all_for_definitie(1)
    produced, failed = logs[0], logs[-1]
    at = _details(target, 1)
    assert at.warning[0].value == (
        f"Een latere generatie voor deze definitie is mislukt (log {failed.id} (mislukt)); "
        f"de definitie komt uit log {produced.id}, hieronder."
    )
    assert f"Log {produced.id} · geslaagd" in at.caption[0].value
    assert not at.error


def test_the_details_say_whether_the_chain_holds(
    own: dict[str, int], target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A status line on the tamper-evident chain: verified up to the last event; a row
    changed behind the library's back is named; a long chain is checked on request."""
    from audited_openai import query
    from audited_openai import streamlit as views

    events = query.verify(target).events
    views._VERIFIED.clear()
    at = _details(target, 1)
    assert [s.value for s in at.success] == [f"Keten geverifieerd tot gebeurtenis {events}"]
    execute(target, "UPDATE generation_logs SET tokens_total = 1 WHERE definitie_id = 1")
    at = _details(target, 1)
    assert not at.success
    assert "tokens_total no longer match" in at.error[0].value
    views._VERIFIED.clear()  # the whole chain's result is kept for a minute
    at = _details(target, 2)  # this row holds; the chain as a whole does not
    assert "Keten niet in orde: 1 probleem" in at.error[0].value
    monkeypatch.setattr(views, "FULL_CHECK_EVENTS", 5)
    at = _details(target, 2)
    assert "klopt met zijn laatste gebeurtenis (van" in at.caption[-1].value
    assert "Controleer de hele keten" in [b.label for b in at.button]


# -- the Logboek -------------------------------------------------------------------------------


def _logboek_page(db: str, page_size: int) -> None:
    from zoneinfo import ZoneInfo

    from audited_openai import GenerationLogRepository
    from audited_openai.streamlit import logboek

    logboek(GenerationLogRepository(db), page_size=page_size, zone=ZoneInfo("Europe/Amsterdam"))


def _logboek(db: str, page_size: int = 25, **params: str) -> AppTest:
    return _run(_logboek_page, db, page_size, params=params)


def _listed(at: AppTest) -> list[int]:
    return [int(i) for i in at.dataframe[0].value["log"]]


def test_logboek_lists_every_row_newest_first_and_pages(
    seeded: tuple[str, dict[str, int]],
) -> None:
    """All rows, newest first, five a page: 'Ouder' and 'Nieuwer' walk the pages."""
    db, _ids = seeded
    total = query.count(db)
    at = _logboek(db, 5)
    assert _listed(at) == list(range(total, total - 5, -1))
    assert at.caption[0].value == (
        f"{total} rijen; rij 1 tot en met 5, nieuwste eerst. Klik op een rij om haar te openen."
    )
    at.button(key="logboek-next").click().run(timeout=30)
    assert _listed(at) == list(range(total - 5, total - 10, -1))
    at.button(key="logboek-next").click().run(timeout=30)
    assert _listed(at) == list(range(total - 10, 0, -1))
    assert at.button(key="logboek-next").disabled
    at.button(key="logboek-back").click().run(timeout=30)
    assert _listed(at)[0] == total - 5
    table = at.dataframe[0].value
    assert at.dataframe[0].proto.selection_mode, "rows can be clicked"
    assert set(table.columns) >= {"tijd", "status", "definitie", "poging", "melding"}
    assert "geen" in list(table["definitie"]), "rows without a definitie are listed"


def test_logboek_filters_as_the_cli_does(seeded: tuple[str, dict[str, int]]) -> None:
    """Status, definitie, template, search; a bad definitie id is one clear line."""
    db, ids = seeded
    at = _logboek(db)
    at.selectbox(key="logboek-status").select("mislukt").run(timeout=30)
    failed = [log.id for log in GenerationLogRepository(db).get_prompt_history(status="failed")]
    assert sorted(_listed(at)) == sorted(failed)
    assert set(at.dataframe[0].value["status"]) == {"mislukt"}
    assert at.query_params["status"] == "failed", "the URL carries the filter"
    at.selectbox(key="logboek-status").select("alle")
    at.text_input(key="logboek-definitie").input(str(ids["spec_definitie"])).run(timeout=30)
    assert _listed(at) == [ids["retried_failure"] + 1]
    at.text_input(key="logboek-definitie").input("")
    at.text_input(key="logboek-search").input("rechter").run(timeout=30)
    assert len(_listed(at)) >= 2
    at.text_input(key="logboek-search").input("")
    at.text_input(key="logboek-template").input("bestaat-niet").run(timeout=30)
    assert [i.value for i in at.info] == ["Geen rijen bij deze filters."]
    at.text_input(key="logboek-definitie").input("abc").run(timeout=30)
    assert at.error[0].value == "Definitie-id 'abc' is geen geheel getal."
    assert not at.dataframe


def test_views_of_an_empty_trail_and_a_search_that_cannot_be(tmp_path: Path) -> None:
    """No rows: each view says so; a search without words is one clear line."""
    db = str(tmp_path / "leeg.db")
    GenerationLogRepository(db).close()
    at = _logboek(db)
    assert [i.value for i in at.info] == ["Geen rijen bij deze filters."]
    at.text_input(key="logboek-search").input("*").run(timeout=30)
    assert (
        at.error[0].value
        == "Deze filters gaan niet: zoek op minstens één woord (leestekens alleen vinden niets)."
    )
    at = _run(_dashboard_page, db)
    assert [i.value for i in at.info] == ["Geen geslaagde generaties in de laatste 30 dagen."]
    assert [s.value for s in at.success] == ["Geen fouten."]


def test_logboek_filters_by_dates(own: dict[str, int], target: str) -> None:
    """A period in local days: rows moved to another day fall out of today's listing."""
    execute(
        target,
        "UPDATE generation_logs SET logged_at = ? WHERE id <= 3",
        ("2026-01-05T10:00:00.000Z",),
    )
    at = _logboek(target)
    today = datetime.now(AMSTERDAM).date()
    at.text_input(key="logboek-since").input(f"{today:%d-%m-%Y}")
    at.text_input(key="logboek-until").input(f"{today:%d-%m-%Y}").run(timeout=30)
    assert min(_listed(at)) == 4
    at.text_input(key="logboek-since").input("05-01-2026")
    at.text_input(key="logboek-until").input("05-01-2026").run(timeout=30)
    assert sorted(_listed(at)) == [1, 2, 3]
    assert (at.query_params["van"], at.query_params["tot"]) == ("05-01-2026", "05-01-2026")
    at.text_input(key="logboek-until").input("31-02-2026").run(timeout=30)
    assert at.error[0].value.startswith("'31-02-2026' is geen datum: schrijf dd-mm-jjjj")
    assert not at.dataframe


def test_a_failed_row_without_definitie_opens_whole(seeded: tuple[str, dict[str, int]]) -> None:
    """?log=ID: every column, the prompt wrapped, request JSON, error and traceback,
    'geen definitie', and the other attempt of its call beside it."""
    db, ids = seeded
    failed = ids["retried_failure"]
    at = _logboek(db, log=str(failed))
    assert at.subheader[0].value == f"Log {failed} · mislukt"
    assert at.info[0].value.startswith("Geen definitie")
    assert at.error[0].value.startswith("InternalServerError")
    fields = _fields(at)
    assert fields["HTTP-status"] == "500"
    assert fields["Definitie"] == "geen definitie"
    assert fields["Fouttype"] == "InternalServerError"
    codes = {code.language: code for code in at.code}
    assert codes["markdown"].value.startswith("# DEFINITIE GENERATIE")
    assert all(code.proto.wrap_lines for code in at.code)
    assert json.loads(codes["json"].value)["max_tokens"] == 400
    assert "Traceback" in codes["python"].value
    assert any("Pogingen van deze aanroep** (2," in m.value for m in at.markdown)
    assert [b.label for b in at.button if b.label.startswith("Open log")] == [
        f"Open log {failed + 1}"
    ]
    assert at.selectbox(key=f"logboek-open-{_key(at)}-None-{failed}").value == failed


def _key(at: AppTest) -> str:
    return str(at.session_state["logboek-filter-key"])


def test_deep_links_follow_what_is_shown(seeded: tuple[str, dict[str, int]]) -> None:
    """Opening another attempt, a row from the list, or the definitie changes the URL."""
    db, ids = seeded
    failed = ids["retried_failure"]
    at = _logboek(db, log=str(failed))
    at.button(key=f"audited-attempt-{failed + 1}").click().run(timeout=30)
    assert at.query_params["log"] == str(failed + 1)
    assert at.subheader[0].value == f"Log {failed + 1} · geslaagd"
    at.button(key=f"audited-def-{failed + 1}").click().run(timeout=30)
    assert dict(at.query_params) == {"definitie": str(ids["spec_definitie"])}
    at = _logboek(db)
    at.selectbox(key=f"logboek-open-{_key(at)}-None-None").select(3).run(timeout=30)
    assert at.query_params["log"] == "3"
    assert at.subheader[0].value == "Log 3 · mislukt"


def test_unknown_or_bad_log_ids_say_so(seeded: tuple[str, dict[str, int]]) -> None:
    """A stale link names the id that is not there; nothing else is opened in its place."""
    db, _ids = seeded
    at = _logboek(db, log="999")
    assert [w.value for w in at.warning] == ["Log 999 bestaat niet (of is gewist)."]
    assert not at.subheader
    at = _logboek(db, log="99999999999999999999")  # more than any store can hold
    assert [w.value for w in at.warning] == [
        "Log 99999999999999999999 bestaat niet (of is gewist)."
    ]
    at = _logboek(db, log="abc")
    assert [w.value for w in at.warning] == [
        "'abc' in de link is geen log-id (een positief geheel getal)."
    ]
    assert not at.subheader


def test_a_row_diffs_against_another(seeded: tuple[str, dict[str, int]]) -> None:
    """The diff of two prompts, and the parameters that differ; an unknown id says so."""
    db, ids = seeded
    at = _logboek(db, log="1")
    at.number_input(key="audited-diff-1").set_value(2).run(timeout=30)
    diff = next(code for code in at.code if code.language == "diff")
    lines = diff.value.splitlines()
    assert lines[:2] == ["--- log 1", "+++ log 2"]
    assert any(line.startswith("-") and "verdachte" in line for line in lines[2:])
    assert any(line.startswith("+") and "getuige" in line for line in lines[2:])
    other = ids["retried_failure"]  # the spec-style call, with max_tokens raised
    at.number_input(key="audited-diff-1").set_value(other).run(timeout=30)
    params = at.table[-1].value
    assert params.to_dict("records") == [  # the column in Dutch, and the request's own key
        {"Parameter": name, "log 1": "300", f"log {other}": "400"}
        for name in ("Max. tokens", "request.max_tokens")
    ]
    assert at.query_params["diff"] == str(other)  # a reload diffs the same pair
    at.number_input(key="audited-diff-1").set_value(999).run(timeout=30)
    assert "Log 999 bestaat niet." in [w.value for w in at.warning]


# -- the dashboard -----------------------------------------------------------------------------


def _dashboard_page(db: str) -> None:
    from zoneinfo import ZoneInfo

    from audited_openai import GenerationLogRepository
    from audited_openai.streamlit import token_dashboard

    token_dashboard(GenerationLogRepository(db), zone=ZoneInfo("Europe/Amsterdam"))


def _chart(at: AppTest) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The chart's Vega-Lite spec and its data (sent beside it as Arrow)."""
    import pyarrow as pa

    chart = at.get("vega_lite_chart")[0]  # the tokens; the cost beside them
    values = pa.ipc.open_stream(chart.proto.data.data).read_all().to_pylist()
    return json.loads(chart.proto.spec), values


def test_dashboard_days_in_dutch_with_empty_days(own: dict[str, int], target: str) -> None:
    """Every day of the period is a bar labelled with its Dutch name ("20 nov"), in
    order, the days between filled with 0, labels level, numbers with a dot between
    thousands, and it says only successes count."""
    execute(
        target,
        "UPDATE generation_logs SET logged_at = ? WHERE id <= 2",
        ("2026-11-20T10:00:00.000Z",),
    )
    execute(
        target,
        "UPDATE generation_logs SET logged_at = ? WHERE id = 4",
        ("2026-11-23T10:00:00.000Z",),
    )
    at = _run(_dashboard_page, target)
    spec, values = _chart(at)
    x, y = spec["encoding"]["x"], spec["encoding"]["y"]
    assert x["type"] == "ordinal"
    assert x["axis"]["labelAngle"] == 0
    assert "regexp(',', 'g'), '.'" in y["axis"]["labelExpr"]
    days = [v["dag"] for v in values]
    assert days[:4] == ["20 nov", "21 nov", "22 nov", "23 nov"]
    assert x["sort"] == days, "the days in calendar order, not alphabetical"
    assert len(days) == len(set(days)), "no day twice"
    assert [v["datum"] for v in values[:2]] == ["20 nov 2026", "21 nov 2026"]
    assert [v["tokens"] for v in values[1:3]] == [0, 0]
    assert values[0]["tokens"] > 0
    assert values[3]["tokens"] > 0
    assert all("." in v["label"] for v in values if v["tokens"] >= 1000)
    assert "Alleen geslaagde generaties" in at.caption[0].value
    assert "Europe/Amsterdam" in at.caption[0].value


def test_dashboard_shows_a_week_even_with_one_day(own: dict[str, int], target: str) -> None:
    """One day of data is one bar among seven, not a bar that fills the plot."""
    _, values = _chart(_run(_dashboard_page, target))
    assert len(values) >= 7
    assert sum(1 for v in values if v["tokens"]) == 1
    assert values[-1]["tokens"] > 0, "today last"


def test_dashboard_tables_in_dutch(seeded: tuple[str, dict[str, int]]) -> None:
    """Dutch column names, '%' with a decimal comma, retried attempts explained, and
    the recent failures with every attempt (with and without definitie)."""
    db, ids = seeded
    at = _run(_dashboard_page, db)
    assert [s.value for s in at.subheader] == [
        "Tokens per dag",
        "Kosten per dag",
        "Foutpercentage per template",
        "Duurste generaties",
        "Recente fouten",
    ]
    assert not at.dataframe, "static tables that wrap to the column, no sideways scrolling"
    rates = at.table[0].value
    assert list(rates.columns) == ["template", "versie", "pogingen", "mislukt", "foutpercentage"]
    total = query.count(db)
    failures = total - query.count(db, status="success")
    expected = nl_percent(100 * failures / total)
    assert list(rates["foutpercentage"]) == [expected]
    assert "," in expected
    assert expected.endswith(" %")
    assert "Elke geslaagde generatie heeft een prijs." in at.caption[1].value
    assert "opnieuw werd geprobeerd" in at.caption[2].value
    expensive = at.table[1].value
    assert "failure_rate" not in expensive.columns
    assert "tokens" in expensive.columns
    assert all(cost.startswith("US$ 0,") for cost in expensive["kosten"])
    _, cost = _charts(at)[1]
    assert sum(v["kosten"] for v in cost) == pytest.approx(
        float(sum(d["cost"] for d in query.token_usage_by_day(db)))
    )
    assert all(v["label"].startswith("US$ ") for v in cost)
    recent = at.table[2].value
    assert ids["retried_failure"] in [int(i) for i in recent["log"]]
    assert set(recent["status"]) <= {"mislukt", "time-out"}


# -- the example app ---------------------------------------------------------------------------


def _app(db: str, monkeypatch: pytest.MonkeyPatch, **params: str) -> AppTest:
    monkeypatch.setenv("DEFINITIE_DB", db)
    monkeypatch.setenv("OFFLINE_LATENCY_S", "0")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    at = AppTest.from_file(str(APP / "app.py"))
    for key, value in params.items():
        at.query_params[key] = value
    at.run(timeout=60)
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_app_generates_and_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The creation view generates through the audited client and links the log; the
    offline answer is marked as such (not the prompt echoed) and shown as plain text."""
    db = str(tmp_path / "app.db")
    at = _app(db, monkeypatch)
    at.text_input(key="begrip").input("getuige")
    at.button(key="generate").click().run(timeout=60)
    assert at.success[0].value.startswith("Definitie gegenereerd in")
    assert at.info[0].value.startswith("Tokens gebruikt:")
    assert "offline voorbeeld" in at.markdown[0].value
    assert "DEFINITIE GENERATIE" not in at.markdown[0].value
    log = GenerationLogRepository(db).get_by_definitie_id(1)
    assert log is not None
    assert log.status == "success"
    assert log.actor == "medewerker-001", "who asked: the employee number typed"
    assert log.session is not None
    assert log.session.startswith("sessie-")
    at.text_input(key="begrip").input("*vet* [link](x)")
    at.text_input(key="actor").input("medewerker-042")
    at.button(key="generate").click().run(timeout=60)
    assert r"\*vet\* \[link\]\(x\)" in at.markdown[0].value, "markdown is escaped"
    second = GenerationLogRepository(db).get_by_definitie_id(2)
    assert second is not None
    assert (second.actor, second.session) == ("medewerker-042", log.session), "one session"
    at.text_input(key="actor").input("  ")
    at.button(key="generate").click().run(timeout=60)
    assert [w.value for w in at.warning] == [
        "Vul uw medewerkernummer in: elke generatie zegt wie erom vroeg."
    ]


def test_the_app_says_what_is_missing_or_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty begrip says so and sends nothing; a failed generation names its log."""
    db = str(tmp_path / "app.db")
    at = _app(db, monkeypatch)
    at.button(key="generate").click().run(timeout=60)
    assert [w.value for w in at.warning] == ["Vul eerst een begrip in."]
    assert not Path(db).exists() or query.count(db) == 0  # nothing sent, nothing written
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens
    at = AppTest.from_file(str(APP / "app.py"))
    at.run(timeout=60)
    at.text_input(key="begrip").input("getuige")
    at.button(key="generate").click().run(timeout=60)
    failed = sorted(log.id for log in GenerationLogRepository(db).get_prompt_history())
    assert len(failed) == 3, "the SDK's two retries"
    assert at.error[0].value == (
        "Generatie mislukt (APIConnectionError); de poging(en) staan in het logboek: "
        f"log {', '.join(map(str, failed))}."
    )


def test_unknown_definitie_links_say_so(
    seeded: tuple[str, dict[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """?definitie=999 and ?definitie=abc warn and open nothing in their place."""
    db, _ids = seeded
    at = _app(db, monkeypatch, definitie="999")
    assert [w.value for w in at.warning] == ["Definitie 999 bestaat niet (meer)."]
    assert at.selectbox[0].value is None
    assert not at.expander
    at = _app(db, monkeypatch, definitie="abc")
    assert [w.value for w in at.warning] == ["'abc' in de link is geen definitie-id."]
    assert not at.expander


def test_choosing_a_definitie_puts_it_in_the_url(
    seeded: tuple[str, dict[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The URL follows the definitie shown, so a reload shows the same one."""
    db, _ids = seeded
    at = _app(db, monkeypatch, definitie="1")
    at.selectbox(key="definitie-1").select(2).run(timeout=60)
    assert dict(at.query_params) == {"definitie": "2"}
    assert at.markdown[0].value.startswith("### getuige")
    at.button(key="audited-open-2").click().run(timeout=60)
    assert dict(at.query_params) == {"log": "2"}
    assert at.radio(key="view").value == "Logboek"
    assert at.subheader[0].value == "Log 2 · geslaagd"
    at.radio(key="view").set_value("Tokengebruik").run(timeout=60)
    assert dict(at.query_params) == {"view": "Tokengebruik"}
    assert at.subheader[0].value == "Tokens per dag"


def test_the_app_lets_a_reviewer_judge_and_offers_the_dossier(
    own: dict[str, int], target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Definities: "Beoordelen" records the review by the reviewer named; with a signing
    key the dossier is offered."""
    from audited_openai import dossier

    key = tmp_path / "signing.pem"
    dossier.generate_keys(key)
    monkeypatch.setenv("DEFINITIE_SIGNING_KEY", str(key))
    definitie = str(own["spec_definitie"])
    at = _app(target, monkeypatch, definitie=definitie)
    assert any(e.label == "Beoordelen" for e in at.expander)
    at.text_input(key="reviewer").input("jurist-12")
    at.radio[1].set_value("afgewezen")  # the first radio is the view
    next(b for b in at.button if b.label == "Beoordeling vastleggen").click().run(timeout=60)
    assert at.success[0].value.startswith("Beoordeling 1 vastgelegd: afgewezen door jurist-12")
    (made,) = GenerationLogRepository(target).reviews(definitie_id=int(definitie))
    assert (made.reviewer, made.verdict) == ("jurist-12", "rejected")
    at.button(key=f"audited-dossier-{definitie}").click().run(timeout=60)
    assert at.get("download_button")


# -- in a real browser -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - the dev extra is not installed
    sync_playwright = None  # type: ignore[assignment]


@contextlib.contextmanager
def _served_app(db: str) -> Iterator[str]:
    """The example app under ``streamlit run`` on a free port; its base URL."""
    port = _free_port()
    env = {**os.environ, "DEFINITIE_DB": db, "OPENAI_API_KEY": "", "TZ": "Europe/Amsterdam"}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(APP / "app.py"),
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--browser.gatherUsageStats",
            "false",
            "--client.toolbarMode",
            "viewer",  # as its users see it: no developer menu, no Deploy button
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.3)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


def _shot(page: Any, name: str, last: str) -> None:
    """A full-page screenshot once the view's last element is there and the script has
    finished (Streamlit scrolls inside its main block, so the window is made as tall as
    that block first)."""
    page.get_by_text(last).first.wait_for()
    page.locator("[data-testid=stStatusWidget]").wait_for(state="detached")
    height = page.evaluate("document.querySelector('[data-testid=stMain]').scrollHeight")
    page.set_viewport_size({"width": 1280, "height": max(900, int(height))})
    page.wait_for_timeout(300)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def _choose(page: Any, box: str, option: str) -> None:
    """Pick an option of a Streamlit selectbox (a click on the box may only focus it)."""
    combobox = page.get_by_role("combobox", name=box)
    combobox.scroll_into_view_if_needed()
    for _ in range(5):
        combobox.click()
        try:
            page.get_by_role("option", name=option).click(timeout=3_000)
        except Exception:
            page.keyboard.press("Escape")
        else:
            return
    raise AssertionError(f"no option {option!r} in {box!r}")


@pytest.mark.skipif(
    CHROMIUM is None or sync_playwright is None,
    reason="needs Chromium and Playwright (.ci/run installs Debian's chromium and the dev extra)",
)
def test_an_auditor_clicks_from_a_failed_row_to_its_definitie(tmp_path: Path) -> None:
    """In Chromium: Logboek -> a failed row without definitie -> its other attempt ->
    the definitie that attempt made. A full-page screenshot of each view goes to
    tests/artifacts/."""
    db = str(tmp_path / "definities.db")
    ids = _seed(db)
    failed, definitie = ids["retried_failure"], ids["spec_definitie"]
    ARTIFACTS.mkdir(exist_ok=True)
    shots = ["logboek", "failed_row", "other_attempt", "definitie"]
    for name in shots:
        (ARTIFACTS / f"{name}.png").unlink(missing_ok=True)
    with _served_app(db) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        # an auditor in the Netherlands: the views show the browser's time zone
        context = browser.new_context(
            timezone_id="Europe/Amsterdam", viewport={"width": 1280, "height": 900}
        )
        page = context.new_page()
        page.set_default_timeout(60_000)

        def shot(name: str, last: str) -> None:
            _shot(page, name, last)

        page.goto(url)
        page.get_by_text("Logboek", exact=True).click()
        page.get_by_text("nieuwste eerst").first.wait_for()
        assert "view=Logboek" in page.url
        shot("logboek", "Open een rij")

        _choose(page, "Open een rij", f"log {failed} · mislukt")
        page.get_by_role("heading", name=f"Log {failed} · mislukt").wait_for()
        assert page.url.endswith(f"?log={failed}")
        fields = page.locator("[data-testid=stTable]").last.inner_text()
        assert " CET" in fields, "local time, the zone named"
        assert page.get_by_text("Geen definitie: deze poging").first.is_visible()
        page.get_by_text("Pogingen van deze aanroep").first.wait_for()
        shot("failed_row", "Vergelijk met een andere log")

        page.get_by_role("button", name=f"Open log {failed + 1}").click()
        page.get_by_role("heading", name=f"Log {failed + 1} · geslaagd").wait_for()
        assert page.url.endswith(f"?log={failed + 1}")
        shot("other_attempt", "Vergelijk met een andere log")

        page.get_by_role("button", name=f"Open definitie {definitie}").click()
        page.get_by_text("Generatie Details").first.wait_for()
        assert page.url.endswith(f"?definitie={definitie}")
        assert page.get_by_role("heading", name="bewijsmiddel").first.is_visible()
        page.get_by_text("Keten geverifieerd tot gebeurtenis").first.wait_for()
        shot("definitie", "Open in het logboek")
        browser.close()
    for name in shots:
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 20_000, f"{name}: a rendered page"


# Words and forms the views once showed in English or unevenly (issue 32): none may appear.
NOT_DUTCH = re.compile(
    r"\b(empty|Endpoint|Stream|Metadata|generated|Select|Choose an option|Date range|"
    r"No results|Template Versie|rijen; rij 0|1 rijen|dd-mm-yyyy)\b|\b\d+ms\b"
)
DUTCH_DAY = re.compile(r"^\d{1,2} (jan|feb|mrt|apr|mei|jun|jul|aug|sep|okt|nov|dec)$")


def _more_rows(db: str, count: int) -> None:
    """Successful calls through the audited client, enough for a second page."""
    with (
        LoopbackServer() as server,
        AuditedOpenAI(db, base_url=server.base_url, api_key="test") as client,
    ):
        for n in range(count):
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": f"begrip {n}"}]
            )


def _labels(page: Any) -> str:
    """What the page says in its own words: the main block's text and its placeholders,
    without code blocks (stored prompts, JSON and tracebacks are data, not labels)."""
    return str(
        page.evaluate(
            """() => {
                const main = document.querySelector('[data-testid=stMain]').cloneNode(true);
                main.querySelectorAll('pre, code').forEach(e => e.remove());
                const held = Array.from(document.querySelectorAll('[placeholder]'))
                    .map(e => e.getAttribute('placeholder'));
                return main.innerText + '\\n' + held.join('\\n');
            }"""
        )
    )


def _in_dutch(page: Any, where: str) -> None:
    page.locator("[data-testid=stStatusWidget]").wait_for(state="detached")
    found = NOT_DUTCH.search(_labels(page))
    assert found is None, f"{where}: {found.group(0)!r} on the page" if found else ""


def _on_first_screen(page: Any, locator: Any) -> None:
    box = locator.bounding_box()
    assert box is not None, "shown"
    assert box["y"] >= 0, f"at y={box['y']:.0f}"
    assert box["y"] + box["height"] <= 900, f"at y={box['y']:.0f}"


@pytest.mark.skipif(
    CHROMIUM is None or sync_playwright is None,
    reason="needs Chromium and Playwright (.ci/run installs Debian's chromium and the dev extra)",
)
def test_a_dutch_auditor_sees_every_view_and_link_in_dutch(tmp_path: Path) -> None:
    """In Chromium set to nl-NL and Europe/Amsterdam: every view and every kind of deep
    link, as a person sees them. The token chart's days are Dutch dates; a linked row's
    heading and every warning are on the first screen; no English word of the list;
    a reload keeps the filters and the page; a click on a row opens it. Screenshots go
    to tests/artifacts/ (the README's pictures in docs/img/ are copied from them)."""
    db = str(tmp_path / "definities.db")
    ids = _seed(db)
    _more_rows(db, 30)
    failed, definitie = ids["retried_failure"], ids["spec_definitie"]
    ARTIFACTS.mkdir(exist_ok=True)
    shots = ["tokengebruik", "log_link", "status"]
    for name in shots:
        (ARTIFACTS / f"{name}.png").unlink(missing_ok=True)
    with _served_app(db) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        context = browser.new_context(
            locale="nl-NL", timezone_id="Europe/Amsterdam", viewport={"width": 1280, "height": 900}
        )
        page = context.new_page()
        page.set_default_timeout(60_000)

        # every view, named in the URL
        for view, shown in (
            ("Genereer", "Genereer Definitie"),
            ("Definities", "Weergave"),  # a definitie to choose (the placeholder is checked below)
            ("Logboek", "nieuwste eerst"),
            ("Vergelijk", "Vergelijk twee varianten"),
            ("Status", "Status van het audit trail"),
        ):
            page.goto(f"{url}/?view={view}")
            page.get_by_text(shown).first.wait_for()
            _in_dutch(page, view)
        _shot(page, "status", "Status van het audit trail")

        # the token chart: one bar per day, each named by its Dutch date
        page.goto(f"{url}/?view=Tokengebruik")
        chart = page.locator("[data-testid=stVegaLiteChart]").first
        chart.wait_for()
        axis = chart.locator("[aria-roledescription=axis]").first
        axis.locator("text").first.wait_for()
        days = axis.locator(".role-axis-label text").all_text_contents()
        assert len(days) >= 7, days
        assert all(DUTCH_DAY.match(day) for day in days), days
        assert len(set(days)) == len(days), "no day twice"
        _in_dutch(page, "Tokengebruik")
        _shot(page, "tokengebruik", "Recente fouten")

        # ?log=N: the row's heading on the first screen, above the listing
        page.goto(f"{url}/?log={failed}")
        heading = page.get_by_role("heading", name=f"Log {failed} · mislukt")
        heading.wait_for()
        _on_first_screen(page, heading)
        listing = page.locator("[data-testid=stDataFrame]").first
        listing.wait_for()
        assert heading.bounding_box()["y"] < listing.bounding_box()["y"]
        page.get_by_text("Leesbaar opmaken").first.wait_for(
            state="attached"
        )  # in the JSON expander
        _in_dutch(page, "?log=N")
        _shot(page, "log_link", "Vergelijk met een andere log")

        # a link that does not land says so on the first screen, above everything else
        for link, warning in (
            ("?log=999999", "Log 999999 bestaat niet"),
            ("?log=abc", "'abc' in de link is geen log-id"),
            ("?definitie=abc", "'abc' in de link is geen definitie-id"),
            ("?view=Foo", "Onbekende weergave 'Foo'"),
        ):
            page.goto(f"{url}/{link}")
            shown = page.get_by_text(warning).first
            shown.wait_for()
            _on_first_screen(page, shown)
            _in_dutch(page, link)
        assert page.get_by_role("button", name="Genereer Definitie").is_visible()

        # ?definitie=N opens its Generatie Details
        page.goto(f"{url}/?definitie={definitie}")
        page.get_by_text("Generatie Details").first.wait_for()
        page.get_by_text("Keten geverifieerd tot gebeurtenis").first.wait_for()
        _in_dutch(page, "?definitie=N")

        # an explicit view wins over a row in the link
        page.goto(f"{url}/?view=Tokengebruik&log=5")
        page.get_by_role("heading", name="Tokens per dag").wait_for()
        assert page.get_by_role("heading", name="Log 5").count() == 0

        # filters and page survive a reload; a click on a row opens it, keeping both
        page.goto(f"{url}/?view=Logboek")
        page.get_by_text("Filters").first.click()
        _choose(page, "Status", "geslaagd")
        page.wait_for_url(re.compile(r"status=success"))
        page.get_by_role("button", name="Ouder →").click()
        page.wait_for_url(re.compile(r"na=\d+"))
        second = re.compile(r"^\d+ rijen; rij 26 tot en met \d+, nieuwste eerst")
        caption = page.get_by_text(second).inner_text()
        before = page.url
        page.reload()
        assert page.get_by_text(second).inner_text() == caption, "the same rows, the same page"
        assert page.url == before
        status = page.get_by_role("combobox", name="Status", include_hidden=True)
        assert status.input_value() == "geslaagd"
        page.locator("[data-testid=stStatusWidget]").wait_for(state="detached")
        box = page.locator("[data-testid=stDataFrame]").first.bounding_box()
        page.mouse.click(box["x"] + 150, box["y"] + 35 + 17)  # a cell of the first row
        page.wait_for_url(re.compile(r"log=\d+"))
        opened = int(re.search(r"log=(\d+)", page.url).group(1))
        successes = [log.id for log in query.history(db, status="success", limit=100)]
        assert opened == successes[25], "the row clicked: page two's first"
        assert "status=success" in page.url
        assert "na=" in page.url
        heading = page.get_by_role("heading", name=f"Log {opened} · geslaagd")
        heading.wait_for()
        _on_first_screen(page, heading)
        browser.close()
    for name in shots:
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 20_000, f"{name}: a rendered page"


@pytest.mark.skipif(
    CHROMIUM is None or sync_playwright is None,
    reason="needs Chromium and Playwright (.ci/run installs Debian's chromium and the dev extra)",
)
def test_generating_shows_a_spinner_then_the_definitie_as_text(tmp_path: Path) -> None:
    """In Chromium: an empty begrip is refused; while the (offline) model answers a
    spinner names the begrip; the definitie is shown as written."""
    db = str(tmp_path / "definities.db")
    with _served_app(db) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page()
        page.set_default_timeout(60_000)
        page.goto(url)
        page.get_by_role("button", name="Genereer Definitie").click()
        page.get_by_text("Vul eerst een begrip in.").first.wait_for()
        page.get_by_label("Begrip").fill("getuige")
        page.get_by_label("Begrip").press("Enter")
        page.get_by_role("button", name="Genereer Definitie").click()
        page.get_by_text("Definitie van 'getuige' wordt gegenereerd").first.wait_for()
        page.get_by_text("Definitie gegenereerd in").first.wait_for()
        page.get_by_text(
            "offline voorbeeld, niet door een model"
        ).first.wait_for()  # rendered after
        browser.close()
    assert GenerationLogRepository(db).get_by_definitie_id(1) is not None


# -- Status ------------------------------------------------------------------------------------


def _status_page(db: str) -> None:
    from zoneinfo import ZoneInfo

    from audited_openai import GenerationLogRepository
    from audited_openai.streamlit import status_panel

    status_panel(GenerationLogRepository(db), zone=ZoneInfo("Europe/Amsterdam"))


def test_the_status_panel_shows_the_numbers_of_status_in_dutch(
    own: dict[str, int], target: str
) -> None:
    """The panel's figures are query.status's, in nl-NL; each problem is one Dutch error
    (a generated definitie without a log, a row pending for an hour)."""
    from datetime import timedelta

    from tests.test_health import add_definitie, log

    add_definitie(target, 900, "generated")
    with GenerationLogRepository(target) as repo:
        stale = log(repo, "pending", ago=timedelta(hours=1))
        found = query.status(repo)
    at = _run(_status_page, target)
    metrics = {metric.label: metric.value for metric in at.metric}
    week = found["periods"]["week"]
    assert metrics["Definities zonder log"] == nl_number(len(found["definities"]["without_log"]))
    assert 900 in found["definities"]["without_log"]
    assert metrics["Rijen te lang in behandeling"] == "1"
    assert metrics["Foutpercentage (7 dagen)"] == nl_percent(week["failure_rate"])
    assert metrics["Duur p95 (7 dagen)"] == nl_number(week["p95_ms"], 0, "ms")
    assert metrics["Rijen per dag"] == nl_number(found["size"]["rows_per_day"], 1)
    assert metrics["Laatste verificatie"] == "niet vastgelegd"
    errors = [error.value for error in at.error]
    assert len(errors) == len(found["problems"]) == 2
    assert errors[0].startswith(
        f"{nl_number(len(found['definities']['without_log']))} gegenereerde definitie"
    )
    assert "zonder geslaagde generatielog" in errors[0]
    assert errors[1].startswith(
        f"1 rij langer dan 15 minuten in behandeling (de oudste: log {stale}"
    )
    table = at.table[-1].value
    assert list(table["periode"]) == ["Laatste 24 uur", "Laatste 7 dagen", "De 7 dagen daarvoor"]
    assert list(table["pogingen"])[1] == nl_number(week["completed"])


def test_the_app_has_a_status_view(
    own: dict[str, int], target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """?view=Status opens the panel; a clean trail says so."""
    at = _app(target, monkeypatch, view="Status")
    assert at.subheader[0].value == "Status van het audit trail"
    assert [s.value for s in at.success] == ["Geen problemen gevonden."]


# -- two variants compared ---------------------------------------------------------------------


def _vergelijk_page(db: str) -> None:
    from zoneinfo import ZoneInfo

    from audited_openai import GenerationLogRepository
    from audited_openai.streamlit import vergelijk

    vergelijk(GenerationLogRepository(db), zone=ZoneInfo("Europe/Amsterdam"))


def _charts(at: AppTest) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    import pyarrow as pa

    return [
        (json.loads(c.proto.spec), pa.ipc.open_stream(c.proto.data.data).read_all().to_pylist())
        for c in at.get("vega_lite_chart")
    ]


def test_vergelijk_shows_the_table_the_verdicts_and_the_charts_in_dutch(target: str) -> None:
    """test_compare's trail: 2.0 slower and failing a first attempt twice; 2.1 faster.
    The newest two versions are preselected; a third version is not compared."""
    from tests.test_compare import write

    with GenerationLogRepository(target) as repo:
        write(repo, "1.0", [100])
        write(repo, "2.0", [500, 600, None, 700, None, 800], tokens=2000)
        write(repo, "2.1", [100, 110, 120, 130, 140, 150])
    at = _run(_vergelijk_page, target)
    assert at.subheader[0].value == "Vergelijk twee varianten"
    assert (at.selectbox(key="vergelijk-a").value, at.selectbox(key="vergelijk-b").value) == (
        "2.0",
        "2.1",
    )
    table = at.table[0].value
    assert list(table.columns) == ["", "2.0", "2.1"]
    figures = dict(zip(table[""], table["2.0"], strict=True))
    assert figures["Pogingen"] == "8"
    assert figures["Foutpercentage per poging (95 %-interval)"] == "25,0 % (7,1 tot 59,1 %)"
    assert figures["Duur, mediaan"] == "700 ms"
    assert figures["Kosten, totaal"] == "US$ 0,03"  # 6 x 2,000 tokens at 2.50 a million
    verdicts = at.markdown[1].value
    assert "- 2.1 is sneller: mediaan 700 ms tegen 120 ms (p = 0,00" in verdicts
    assert "- Geen verschil aangetoond in het foutpercentage per poging bij deze" in verdicts
    assert "- De kosten van 2.1 zijn lager: mediaan US$ 0,005 tegen US$ 0,0025" in verdicts
    rates, latency, cost = _charts(at)
    assert {(v["variant"], v["maat"], v["label"]) for v in rates[1]} >= {
        ("2.0", "per poging", "25,0 % (7,1 tot 59,1 %)"),
        ("2.1", "per aanroep", "0,0 % (0,0 tot 39,0 %)"),
    }
    assert latency[0]["encoding"]["x"]["title"] == "Duur (ms)"
    assert sum(v["aantal"] for v in latency[1] if v["variant"] == "2.0") == 6
    assert cost[0]["encoding"]["x"]["title"] == "Kosten (USD)"
    at.selectbox(key="vergelijk-b").set_value("2.0").run(timeout=30)
    assert [w.value for w in at.warning] == ["Kies twee verschillende varianten."]


def test_vergelijk_shows_approval_and_edit_rates_once_reviewed(target: str) -> None:
    from tests.test_compare import write

    with GenerationLogRepository(target) as repo:
        write(repo, "2.0", [100] * 4)
        write(repo, "2.1", [100] * 4, first_definitie=11)
        for definitie_id, verdict in ((1, "approved"), (2, "edited"), (11, "approved")):
            text = "nieuw" if verdict == "edited" else None
            repo.record_review(definitie_id, verdict, reviewer="jurist-7", edited_text=text)
    at = _run(_vergelijk_page, target)
    table = at.table[0].value
    figures = {row: (a, b) for row, a, b in zip(table[""], table["2.0"], table["2.1"], strict=True)}
    assert figures["Beoordeelde definities"] == ("2", "1")
    assert figures["Goedgekeurd (95 %-interval)"][0].startswith("50,0 % (")
    assert figures["Bewerkt (95 %-interval)"][1].startswith("0,0 % (")
    assert "in het percentage goedgekeurd bij deze steekproefomvang" in at.markdown[1].value


def test_vergelijk_with_one_variant_says_there_is_nothing_to_compare(target: str) -> None:
    from tests.test_compare import write

    with GenerationLogRepository(target) as repo:
        write(repo, "2.0", [500])
    at = _run(_vergelijk_page, target)
    assert [i.value for i in at.info] == ["Er is nog maar 1 templateversie: niets te vergelijken."]


@pytest.mark.skipif(
    CHROMIUM is None or sync_playwright is None,
    reason="needs Chromium and Playwright (.ci/run installs Debian's chromium and the dev extra)",
)
def test_the_app_compares_the_demos_two_template_versions(tmp_path: Path) -> None:
    """In Chromium, ?view=Vergelijk after the offline demo: 2.1 against 2.2 (its A/B test),
    verdicts and charts in Dutch; a full-page screenshot goes to tests/artifacts/
    (the README's docs/img/vergelijk.png)."""
    db = str(tmp_path / "definities.db")
    env = {**os.environ, "OPENAI_API_KEY": ""}
    demo = [sys.executable, str(APP / "generate.py"), "--db", db]
    subprocess.run(demo, env=env, check=True, capture_output=True, timeout=120)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "vergelijk.png").unlink(missing_ok=True)
    with _served_app(db) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        context = browser.new_context(
            timezone_id="Europe/Amsterdam", viewport={"width": 1280, "height": 900}
        )
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(f"{url}/?view=Vergelijk")
        page.get_by_role("heading", name="Vergelijk twee varianten").wait_for()
        page.get_by_text("Geen verschil aangetoond in de duur").first.wait_for()
        charts = page.locator("[data-testid=stVegaLiteChart]")
        charts.nth(2).wait_for()  # the failure rates, the durations, the costs
        assert charts.count() == 3
        text = page.locator("[data-testid=stMain]").inner_text()
        assert "Foutpercentage per poging (95 %-interval)" in text
        assert "US$ 0," in text
        _shot(page, "vergelijk", "Geen verschil aangetoond in de kosten")
        browser.close()
    assert (ARTIFACTS / "vergelijk.png").stat().st_size > 20_000, "a rendered page"


# -- reviews ----------------------------------------------------------------------------------


def _review_page(db: str, definitie_id: int, reviewer: str | None, text: str) -> None:
    from zoneinfo import ZoneInfo

    from audited_openai import GenerationLogRepository
    from audited_openai.streamlit import beoordeel, show_generation_details

    repo = GenerationLogRepository(db)
    beoordeel(repo, definitie_id, reviewer=reviewer, text=text)
    show_generation_details(repo, definitie_id, expanded=True, zone=ZoneInfo("Europe/Amsterdam"))


def test_a_reviewer_approves_rejects_and_edits_and_the_details_show_it(
    own: dict[str, int], target: str
) -> None:
    """The form records each verdict; the details list them in Dutch, edits beside."""
    definitie = own["spec_definitie"]
    at = _run(_review_page, target, definitie, "jurist-7", "De oude tekst.")
    assert [c.value for c in at.caption if "beoordeeld" in c.value] == [
        f"Definitie {definitie} is nog niet beoordeeld."
    ]
    at.radio[0].set_value("bewerkt")
    at.button[0].click().run(timeout=30)  # the text unchanged: refused, nothing written
    assert "de tekst is niet veranderd" in at.error[0].value
    assert GenerationLogRepository(target).reviews(definitie_id=definitie) == []
    at.radio[0].set_value("bewerkt")
    at.text_area[1].input("De nieuwe tekst.")
    at.text_area[0].input("scherper geformuleerd")
    at.button[0].click().run(timeout=30)
    assert at.success[0].value.startswith("Beoordeling 1 vastgelegd: bewerkt door jurist-7")
    at.radio[0].set_value("afgewezen")
    at.button[0].click().run(timeout=30)
    table = next(t.value for t in at.table if "oordeel" in t.value.columns)
    assert list(table["oordeel"]) == ["bewerkt", "afgewezen"]
    assert list(table["beoordelaar"]) == ["jurist-7", "jurist-7"]
    assert list(table["toelichting"]) == ["scherper geformuleerd", "—"]
    assert any(e.label.startswith("Bewerkte tekst (jurist-7, ") for e in at.expander)
    assert query.verify(target).ok


def test_the_form_asks_who_reviews_when_the_app_does_not_say(
    own: dict[str, int], target: str
) -> None:
    at = _run(_review_page, target, own["spec_definitie"], None, "tekst")
    at.button[0].click().run(timeout=30)  # nobody named: refused in one line
    assert at.error[0].value == "Vul in wie beoordeelt: elke beoordeling zegt door wie."
    at.text_input[0].input("jurist-9")
    at.radio[0].set_value("goedgekeurd")
    at.button[0].click().run(timeout=30)
    (made,) = GenerationLogRepository(target).reviews(definitie_id=own["spec_definitie"])
    assert (made.reviewer, made.verdict) == ("jurist-9", "approved")


def test_logboek_shows_the_verdict_and_finds_what_is_not_yet_reviewed(
    own: dict[str, int], target: str
) -> None:
    repo = GenerationLogRepository(target)
    repo.record_review(own["spec_definitie"], "rejected", reviewer="jurist-7")
    at = _logboek(target)
    table = at.dataframe[0].value
    verdicts = dict(zip(table["definitie"], table["beoordeling"], strict=True))
    assert verdicts[str(own["spec_definitie"])] == "afgewezen"
    at.selectbox(key="logboek-reviewed").select("nog niet beoordeeld").run(timeout=30)
    listed = at.dataframe[0].value
    assert str(own["spec_definitie"]) not in set(listed["definitie"])
    assert "geen" not in set(listed["definitie"]), "a row without a definitie is not a review's"
    assert _listed(at) == [log.id for log in query.history(target, reviewed=False)]


def test_the_status_panel_shows_the_retention_and_the_holds(
    own: dict[str, int], target: str
) -> None:
    at = _run(_status_page, target)
    assert any(c.value.startswith("Bewaartermijn: geen (alles blijft bewaard") for c in at.caption)
    repo = GenerationLogRepository(target)
    repo.set_retention("2y")
    repo.hold(own["spec_definitie"], "bezwaarzaak 2026-118")
    at = _run(_status_page, target)
    captions = [c.value for c in at.caption]
    assert any(c.startswith("Bewaartermijn: 2y (730 dagen), ingesteld ") for c in captions)
    assert (
        f"Juridische blokkade (blijft bewaard): definitie {own['spec_definitie']} "
        "(bezwaarzaak 2026-118)"
    ) in captions


def _dossier_page(db: str, definitie_id: int, key: str) -> None:
    from audited_openai import GenerationLogRepository
    from audited_openai.streamlit import dossier_button

    dossier_button(GenerationLogRepository(db), definitie_id, key)


def test_the_dossier_button_offers_a_dossier_that_holds(
    own: dict[str, int], target: str, tmp_path: Path
) -> None:
    from audited_openai import dossier

    key = tmp_path / "signing.pem"
    public = dossier.generate_keys(key)
    at = _run(_dossier_page, target, own["spec_definitie"], str(key))
    at.button[0].click().run(timeout=30)
    assert not at.exception
    (offered,) = at.get("download_button")
    assert "Download dossier (1 generatie, 0 beoordelingen, " in offered.proto.label
    assert any("check-dossier" in c.value for c in at.caption)
    built = tmp_path / "built.zip"
    dossier.build(GenerationLogRepository(target), own["spec_definitie"], built, key)
    assert dossier.check(built, public)[0] == []
    at = _run(_dossier_page, target, 999_999, str(key))
    at.button[0].click().run(timeout=30)
    assert at.error[0].value.startswith("Geen dossier: no logs for definitie 999999")
