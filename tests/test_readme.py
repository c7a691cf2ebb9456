"""The README stays true: its quoted code is the code that runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_quoted_quickstart_is_the_real_file() -> None:
    """Every indented python block in the README is quoted verbatim from quickstart.py."""
    readme = (ROOT / "README.md").read_text()
    quickstart = (ROOT / "examples" / "quickstart.py").read_text()
    blocks = [
        b for b in re.findall(r"```python\n(.*?)```", readme, re.DOTALL) if b.startswith("        ")
    ]
    assert len(blocks) >= 2
    for block in blocks:
        assert block in quickstart


def test_readme_has_the_two_commands() -> None:
    """The install-and-run and install-and-test commands are there, one line each."""
    readme = (ROOT / "README.md").read_text()
    assert "pip install -e '.[signing]' && python examples/definitie_app/generate.py" in readme
    assert "pip install -e '.[dev]' && pytest" in readme
