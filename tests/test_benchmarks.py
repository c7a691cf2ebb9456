"""The benchmarks still run (quick mode); their figures come from full runs, not tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parent.parent / "benchmarks"


def test_overhead_benchmark_runs_quickly() -> None:
    """benchmarks/overhead.py --quick prints every table row and finds no lock error."""
    result = subprocess.run(
        [sys.executable, str(BENCH / "overhead.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for path in ("sync, respx", "async, respx", "sync, loopback HTTP", "async, loopback HTTP"):
        assert f"| {path} |" in result.stdout
    assert "16 threads x 5 calls (respx)" in result.stdout
    assert "16 threads x 5 calls (loopback HTTP server in its own process)" in result.stdout
    for label in (
        "respx, reply at once",
        "respx, reply at once, store that only answers from a thread",
        "respx, reply after one loop turn",
        "loopback HTTP server in its own process",
    ):
        assert f"({label})" in result.stdout
    assert result.stdout.count("errors: 0") == 6  # 16 threads two ways, 200 tasks four ways
    assert "the floor's raw writes from the same 16 threads" in result.stdout


def test_query_scale_benchmark_runs_on_a_small_trail(tmp_path: Path) -> None:
    """benchmarks/query_scale.py builds and measures a small database."""
    result = subprocess.run(
        [
            sys.executable,
            str(BENCH / "query_scale.py"),
            "--rows",
            "2000",
            "--repeat",
            "1",
            "--db",
            str(tmp_path / "q.db"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "database: 2,000 rows" in result.stdout
    assert "stats (every aggregate)" in result.stdout
    assert "peak RSS" in result.stdout
