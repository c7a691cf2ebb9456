"""Every example under examples/ runs, offline, against the loopback server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent.parent / "examples"


def _offline_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.pop("AUDITED_OPENAI_DB", None)
    return env


def _run(script: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """An example run as a program, offline; it must end well."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True,
        text=True,
        env=_offline_env(),
        cwd=cwd,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


def test_quickstart_runs_offline(tmp_path: Path) -> None:
    """The README's quickstart, run as it stands in a fresh directory: it generates,
    saves and links a definitie, and prints the prompt behind it."""
    result = _run("quickstart.py", cwd=tmp_path)
    assert "log 1: success" in result.stdout
    assert "tokens, 2.0" in result.stdout
    assert "Begrip: verdachte" in result.stdout
    from audited_openai import GenerationLogRepository

    log = GenerationLogRepository(tmp_path / "definities.db").get_by_definitie_id(1)
    assert log is not None
    assert log.status == "success"
    assert log.prompt.modules_used == ["base", "context", "rules"]


# Every file under examples/, and the test that runs it (module::function).
RUN_BY = {
    "quickstart.py": "test_examples::test_quickstart_runs_offline",
    "retry_policy.py": "test_examples::test_retry_policy_example_audits_every_attempt",
    "typed_usage.py": "test_examples::test_the_other_scripts_run_offline",
    "definitie_app/app.py": "test_streamlit::test_the_app_generates_and_links",
    "definitie_app/generate.py": "test_definitie_app::test_the_demo_runs_offline",
    "definitie_app/seed.py": "test_examples::test_the_other_scripts_run_offline",
    "definitie_app/generator.py": "test_definitie_app::test_generator_saves_links_and_reports",
    "definitie_app/definities.py": "test_definitie_app::test_deleting_a_definitie_erases_its_logs",
    "definitie_app/prompts.py": "test_definitie_app::test_generator_saves_links_and_reports",
}


def test_every_example_is_run_by_a_test() -> None:
    """An example no test runs can break unseen: each one names the test that runs it."""
    import importlib

    found = sorted(str(p.relative_to(EXAMPLES)) for p in EXAMPLES.rglob("*.py"))
    assert found == sorted(RUN_BY)
    for where in RUN_BY.values():
        module, test = where.split("::")
        assert callable(getattr(importlib.import_module(f"tests.{module}"), test)), where


@pytest.mark.parametrize(
    "script",
    [["typed_usage.py"], ["definitie_app/seed.py", "--db", "{db}"]],
    ids=lambda script: script[0],
)
def test_the_other_scripts_run_offline(tmp_path: Path, script: list[str]) -> None:
    """The scripts no other test runs as a program: they run offline, and end well."""
    db = tmp_path / "demo.db"
    _run(script[0], *(a.format(db=db) for a in script[1:]))
    if "--db" in script:
        from audited_openai import query

        assert query.count(db) > 0
        assert query.verify(db).ok


def test_retry_policy_example_audits_every_attempt(tmp_path: Path) -> None:
    """tenacity around audited calls: the SDK's retries and the app's are all rows."""
    result = _run("retry_policy.py", str(tmp_path / "r.db"))
    assert "the server received 6 requests" in result.stdout
    lines = [line for line in result.stdout.splitlines() if line.startswith("log ")]
    assert [line.split()[-1] for line in lines] == ["failed"] * 5 + ["success"]
    assert [line.split()[-2] for line in lines] == ["1", "2", "3", "1", "2", "3"]
    assert len({line.split()[3] for line in lines}) == 2, "two calls, three attempts each"
