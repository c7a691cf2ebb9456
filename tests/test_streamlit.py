"""The Streamlit views and the example app, through Streamlit's AppTest."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

pytest.importorskip("streamlit", reason="the streamlit extra is not installed")
from streamlit.testing.v1 import AppTest

from audited_openai import AuditedOpenAI, GenerationLogRepository
from audited_openai.testing import Fail, LoopbackServer, Reply

if TYPE_CHECKING:
    from collections.abc import Iterator

APP = Path(__file__).parent.parent / "examples" / "definitie_app"
ARTIFACTS = Path(__file__).parent / "artifacts"


@pytest.fixture
def trail(target: str) -> Iterator[str]:
    """A store (each backend) with two generated definities, one failure and one legacy
    definitie."""
    sys.path.insert(0, str(APP))
    try:
        from definities import DefinitionRepository
        from generator import UnifiedDefinitionGenerator
        from prompts import PromptOrchestrator
    finally:
        sys.path.remove(str(APP))
    db = target
    definitions = DefinitionRepository(db)
    with LoopbackServer() as server:
        server.script(
            Reply("persoon tegen wie een redelijk vermoeden bestaat"),
            Fail(400, "te lang"),
            Reply("persoon die verklaart"),
        )
        client = AuditedOpenAI(db, base_url=server.base_url, api_key="test", max_retries=0)
        gen = UnifiedDefinitionGenerator(client, PromptOrchestrator(), definitions)
        gen.generate_definition({"begrip": "verdachte"})
        with pytest.raises(Exception, match="te lang"):
            gen.generate_definition({"begrip": "sepot"})
        gen.generate_definition({"begrip": "getuige"})
    definitions.save_definitie({"begrip": "legacy", "definitie": "oud", "source_type": "imported"})
    client.audit_store.close()
    client.close()
    yield db
    definitions.close()


def _details(db: str, definitie_id: int, show_prompt: bool = False) -> AppTest:
    def page(db: str, definitie_id: int, show_prompt: bool) -> None:
        from audited_openai import GenerationLogRepository
        from audited_openai.streamlit import show_generation_details

        show_generation_details(GenerationLogRepository(db), definitie_id, expanded=True)

    at = AppTest.from_function(page, args=(db, definitie_id, show_prompt))
    at.run(timeout=30)
    if show_prompt and at.checkbox:
        at.checkbox[0].check().run(timeout=30)
    return at


def test_generation_details_show_the_spec_metrics(trail: str) -> None:
    """The expander shows model, temperature, tokens, duration and template version."""
    at = _details(str(trail), 1)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Model"] == "gpt-4o-mini"
    assert metrics["Temperature"] == "0.3"
    assert metrics["Template Versie"] == "2.1"
    assert metrics["Generatietijd"].endswith("ms")
    assert int(metrics["Tokens Gebruikt"]) == int(metrics["Prompt Tokens"]) + int(
        metrics["Completion Tokens"]
    )
    assert not at.code, "the prompt is hidden until asked for"
    at = _details(str(trail), 1, show_prompt=True)
    assert at.code[0].value.startswith("# DEFINITIE GENERATIE")


def test_the_details_say_whether_the_chain_holds(
    trail: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A status line on the tamper-evident chain: verified up to the last event; a row
    changed behind the library's back is named; a long chain is checked on request."""
    from audited_openai import streamlit as views
    from tests.conftest import execute

    at = _details(str(trail), 1)
    assert [s.value for s in at.success] == ["Keten geverifieerd tot gebeurtenis 8"]
    execute(trail, "UPDATE generation_logs SET tokens_total = 1 WHERE definitie_id = 1")
    at = _details(str(trail), 1)
    assert not at.success
    assert "tokens_total no longer match" in at.error[0].value
    views._VERIFIED.clear()  # the whole chain's result is kept for a minute
    at = _details(str(trail), 2)  # this row holds; the chain as a whole does not
    assert "Keten niet in orde: 1 probleem" in at.error[0].value
    monkeypatch.setattr(views, "FULL_CHECK_EVENTS", 5)
    at = _details(str(trail), 2)
    assert "klopt met zijn laatste gebeurtenis (van 8)" in at.caption[-1].value
    assert at.button[0].label == "Controleer de hele keten"


def test_a_definitie_without_a_log_says_so(trail: str) -> None:
    """A legacy definitie gets the spec's clear message."""
    from audited_openai.streamlit import NO_LOG_MESSAGE

    at = _details(str(trail), 3)
    assert at.info[0].value == NO_LOG_MESSAGE


def test_token_dashboard(trail: str) -> None:
    """The dashboard shows every section, with the recent failure and its error."""

    def page(db: str) -> None:
        from audited_openai import GenerationLogRepository
        from audited_openai.streamlit import token_dashboard

        token_dashboard(GenerationLogRepository(db))

    at = AppTest.from_function(page, args=(str(trail),))
    at.run(timeout=30)
    assert [s.value for s in at.subheader] == [
        "Tokens per dag",
        "Foutpercentage per template",
        "Duurste generaties",
        "Recente fouten",
    ]
    failures = at.dataframe[-1].value
    assert list(failures["fout"]) == ["BadRequestError"]


def test_the_app_generates_and_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The creation tab generates through the audited client and links the log."""
    db = tmp_path / "app.db"
    monkeypatch.setenv("DEFINITIE_DB", str(db))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    at = AppTest.from_file(str(APP / "app.py"))
    at.run(timeout=60)
    at.text_input(key="begrip").input("getuige")
    at.button(key="generate").click()
    at.run(timeout=60)
    assert at.success[0].value.startswith("Definitie gegenereerd in")
    assert at.info[0].value.startswith("Tokens gebruikt:")
    log = GenerationLogRepository(db).get_by_definitie_id(1)
    assert log is not None
    assert log.status == "success"


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
except ImportError:  # pragma: no cover - the ui extra is not installed
    sync_playwright = None  # type: ignore[assignment]


@pytest.mark.skipif(
    CHROMIUM is None or sync_playwright is None,
    reason="needs Chromium and Playwright (.ci/run installs Debian's chromium and the ui extra)",
)
def test_screenshot_of_the_detail_view(trail: str) -> None:
    """The running app, opened in headless Chromium, shows a definitie's Generatie Details."""
    port = _free_port()
    env = {**os.environ, "DEFINITIE_DB": str(trail), "OPENAI_API_KEY": ""}
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
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/_stcore/health", timeout=2
                ) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "detail_view.png"
        shot.unlink(missing_ok=True)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1200, "height": 1100})
            page.goto(f"http://127.0.0.1:{port}/?definitie=1")
            page.get_by_text("Generatie Details").wait_for(timeout=60_000)
            page.get_by_text("Toon Volledige Prompt").click()
            page.get_by_text("DEFINITIE GENERATIE").first.wait_for(timeout=30_000)
            assert page.get_by_text("Tokens Gebruikt").is_visible()
            assert page.get_by_text("gpt-4o-mini").first.is_visible()
            page.screenshot(path=str(shot), full_page=False)
            browser.close()
        assert shot.stat().st_size > 20_000, "a rendered page, not a blank one"
    finally:
        server.terminate()
        server.wait(10)
