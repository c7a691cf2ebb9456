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


def test_quickstart_runs_offline(tmp_path: Path) -> None:
    """The quickstart generates, saves and links a definitie, and prints its prompt."""
    db = tmp_path / "definities.db"
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py"), str(db)],
        capture_output=True,
        text=True,
        env=_offline_env(),
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "loopback model server" in result.stdout
    assert "log 1: success" in result.stdout
    assert "template 2.0" in result.stdout


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.py")), ids=lambda p: p.name)
def test_every_example_compiles(path: Path) -> None:
    """No example is left broken."""
    compile(path.read_text(), str(path), "exec")


def test_retry_policy_example_audits_every_attempt(tmp_path: Path) -> None:
    """tenacity around audited calls: the SDK's retries and the app's are all rows."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "retry_policy.py"), str(tmp_path / "r.db")],
        capture_output=True,
        text=True,
        env=_offline_env(),
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "the server received 6 requests" in result.stdout
    lines = [line for line in result.stdout.splitlines() if line.startswith("log ")]
    assert [line.split()[-1] for line in lines] == ["failed"] * 5 + ["success"]
    assert [line.split()[-2] for line in lines] == ["1", "2", "3", "1", "2", "3"]
    assert len({line.split()[3] for line in lines}) == 2, "two calls, three attempts each"
