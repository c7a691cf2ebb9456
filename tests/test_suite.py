"""The test suite's own hygiene: what would make a test prove less than it says."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

TESTS = Path(__file__).parent


def test_marks_sit_on_tests_not_on_helpers() -> None:
    """pytest ignores a mark on a function that is not a test (a usefixtures mark on a
    helper once left two tests with the real backoff, and looked as if it did not)."""
    for path in sorted(TESTS.glob("test_*.py")):
        module = importlib.import_module(f"tests.{path.stem}")
        for name, value in vars(module).items():
            if inspect.isfunction(value) and not name.startswith("test_"):
                marks = getattr(value, "pytestmark", [])
                assert not marks, f"{path.name}: {name} is no test but carries {marks}"
