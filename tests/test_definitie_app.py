"""The definitie generator end to end, against the loopback server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from audited_openai import AuditedOpenAI, GenerationLogRepository
from audited_openai.testing import LoopbackServer, Reply
from tests.conftest import host_connection, rows

APP = Path(__file__).parent.parent / "examples" / "definitie_app"


@pytest.fixture
def app_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(APP))


def test_generator_saves_links_and_reports(tmp_path: Path, app_modules: None) -> None:
    """generate_definition returns the spec's fields; the log is linked to the definitie."""
    from definities import DefinitionRepository
    from generator import UnifiedDefinitionGenerator
    from prompts import PromptOrchestrator

    db = tmp_path / "definities.db"
    with LoopbackServer(default=Reply("persoon die iets verklaart", completion_tokens=6)) as server:
        client = AuditedOpenAI(db, base_url=server.base_url, api_key="test")
        definitions = DefinitionRepository(db)
        generator = UnifiedDefinitionGenerator(client, PromptOrchestrator(), definitions)
        result = generator.generate_definition({"begrip": "getuige"})
        assert server.request_count == 1
        client.close()
    assert result.definitie == "persoon die iets verklaart"
    assert result.definitie_id == 1
    log = GenerationLogRepository(db).get_by_definitie_id(1)
    assert log is not None
    assert log.id == result.generation_log_id
    assert result.tokens_used == log.response.tokens_total  # type: ignore[union-attr]
    assert result.duration_ms == log.response.duration_ms  # type: ignore[union-attr]
    assert log.prompt.modules_used == [
        "base",
        "context",
        "related",
        "examples",
        "rules",
        "validation",
    ]
    assert log.prompt.template_version == "2.1"
    assert 8_000 < len(log.prompt.full_text.encode()) < 12_000
    assert log.metadata == {"begrip": "getuige"}


def test_the_demo_runs_offline(tmp_path: Path, target: str) -> None:
    """The main job: six definities, one retried, one rejected; views show the rows.

    Against its default file, and against a PostgreSQL database (``--db URL``).
    """
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("OPENAI_")}
    on_server = target.startswith("postgresql://")
    result = subprocess.run(
        [sys.executable, str(APP / "generate.py"), *(["--db", target] if on_server else [])],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "loopback model server" in result.stdout
    assert "1 of 6 definities failed" in result.stdout
    said = " ".join(result.stdout.split())
    assert "Tamper evidence: verified: 23 events, 7 rows, 3 reviews" in said
    for verdict in ("approved by jurist-demo", "rejected by jurist-demo", "edited by jurist-demo"):
        assert verdict in said
    assert "Dossier of definitie 3: data/dossier-definitie-3.zip holds offline" in said
    # the A/B test of 2.1 and 2.2: getuige is dealt to 2.1, the other five to 2.2
    assert "A/B test definitie-v2.2 (2.1: 1 call and 2.2: 5 calls):" in said
    assert "no difference shown in the failure rate per call at this sample size" in said
    assert "compare --experiment definitie-v2.2 2.1 2.2" in said
    db: str | Path = target if on_server else tmp_path / "data" / "definities.db"
    assert f"audited-openai --db {'' if on_server else 'data/definities.db'}" in result.stdout
    if not on_server:
        assert Path(db).stat().st_mode & 0o777 == 0o600, "the trail's file is 0600, as documented"
    found = rows(db)
    assert [r["generation_status"] for r in found] == [
        "success",
        "success",
        "failed",
        "success",
        "success",
        "failed",
        "success",
    ]
    assert [r["error_type"] for r in found if r["error_type"]] == [
        "RateLimitError",
        "BadRequestError",
    ]
    assert found[2]["call_id"] == found[3]["call_id"]
    assert [r["attempt"] for r in found[2:4]] == [1, 2]
    conn = host_connection(db)
    generated = conn.execute(
        "SELECT begrip, generation_log_id, generation_status FROM definities_with_generation ORDER BY id"
    ).fetchall()
    assert generated == [
        ("verdachte", 1, "success"),
        ("getuige", 2, "success"),
        ("dagvaarding", 4, "success"),
        ("inverzekeringstelling", 5, "success"),
        ("hoger beroep", 7, "success"),
    ]
    assert conn.execute("SELECT id, error_type FROM failed_generations").fetchall() == [
        (3, "RateLimitError"),
        (6, "BadRequestError"),
    ]
    conn.close()


def test_deleting_a_definitie_erases_its_logs(target: str, app_modules: None) -> None:
    """The app deletes a definitie on its own connection; its logs go too."""
    from definities import DefinitionRepository
    from generator import UnifiedDefinitionGenerator
    from prompts import PromptOrchestrator

    db = target
    with LoopbackServer() as server:
        client = AuditedOpenAI(db, base_url=server.base_url, api_key="test")
        definitions = DefinitionRepository(db)
        generator = UnifiedDefinitionGenerator(client, PromptOrchestrator(), definitions)
        first = generator.generate_definition({"begrip": "sepot"})
        generator.generate_definition({"begrip": "vonnis"})
        client.close()
    definitions.delete(first.definitie_id)  # type: ignore[arg-type]
    assert [r["definitie_id"] for r in rows(db)] == [2]
    assert [d.begrip for d in definitions.all()] == ["vonnis"]
    definitions.close()
    client.audit_store.close()
