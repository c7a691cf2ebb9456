"""The README stays true: its quickstart is the file that runs, its links land."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_the_quickstart_is_the_real_file() -> None:
    """The README's one python block is examples/quickstart.py, whole and unindented,
    so it pastes and runs as it stands (test_examples runs the file)."""
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.DOTALL)
    assert blocks == [(ROOT / "examples" / "quickstart.py").read_text()]


def test_readme_has_the_two_commands() -> None:
    """The install-and-run and install-and-test commands are there, one line each."""
    readme = (ROOT / "README.md").read_text()
    assert "pip install -e '.[signing]' && python examples/definitie_app/generate.py" in readme
    assert "pip install -e '.[dev]' && pytest" in readme


def test_readme_is_short_and_its_links_land() -> None:
    """At most 250 lines; the rest is in docs/. Every relative link names a file that is
    there, and every anchor a heading of that file."""
    readme = (ROOT / "README.md").read_text()
    assert readme.count("\n") <= 250
    links = re.findall(r"\]\(([^)#]+)(?:#([^)]+))?\)", readme)
    assert len(links) >= 15
    for target, anchor in links:
        path = ROOT / target
        assert path.is_file(), target
        if anchor:
            headings = re.findall(r"^#+ (.*)$", path.read_text(), re.MULTILINE)
            slugs = {re.sub(r"[^\w\- ]", "", h.lower()).strip().replace(" ", "-") for h in headings}
            assert anchor in slugs, f"{target}#{anchor}"


def test_design_notes_line_counts_and_met_targets_hold() -> None:
    """docs/design.md's module table gives each module's lines as they are, and the
    targets it calls met hold: no function over 50 lines, each backend's module at
    most 300."""
    src = ROOT / "src" / "audited_openai"
    design = (ROOT / "docs" / "design.md").read_text()
    counts = {f.stem: len(f.read_text().splitlines()) for f in src.glob("*.py")}
    table = design[design.index("## The modules") : design.index("(Lines per module")]
    stated = {m[0]: int(m[1]) for m in re.findall(r"\b(_?[a-z_]+)\s*\((\d+)\)", table)}
    stated = {name: n for name, n in stated.items() if name in counts}
    assert len(stated) >= 30, "the table names the modules"
    assert stated == {name: counts[name] for name in stated}
    total = re.search(r"\| `src/` under 8,589 lines \| ([\d,]+) ", design)
    assert total is not None
    assert int(total[1].replace(",", "")) == sum(counts.values())
    assert counts["_sqlite"] <= 300
    assert counts["_postgres"] <= 300
    long = [
        f"{f.name}:{node.name} ({node.end_lineno - node.lineno + 1})"
        for f in src.glob("*.py")
        for node in ast.walk(ast.parse(f.read_text()))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > 50
    ]
    assert long == []
