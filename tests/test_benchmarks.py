"""The benchmarks still run (quick mode); their figures come from full runs, not tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import fetch

BENCH = Path(__file__).parent.parent / "benchmarks"


def test_overhead_benchmark_runs_quickly() -> None:
    """benchmarks/overhead.py --quick prints every table and finds no error."""
    result = subprocess.run(
        [sys.executable, str(BENCH / "overhead.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for title in (
        "single call over respx",
        "single call over the loopback HTTP server",
        "16 threads at once",
        "200 asyncio tasks at once, a loopback HTTP server answering at once",
        "200 asyncio tasks at once, a loopback model answering after 200 ms",
        "200 asyncio tasks at once, a loopback model streaming 50 chunks",
    ):
        assert title in result.stdout
    for variant in ("bare", "audited", "audited-nochain", "floor"):
        assert result.stdout.count(f"| {variant} |") == 6
    assert "the chain's cost: audited's overhead is" in result.stdout
    rows = [line for line in result.stdout.splitlines() if line.startswith("| audited |")]
    assert rows[2].endswith("| 0 | 0 |"), "16 threads: no error, no lock error"
    for row in rows[3:]:
        assert row.endswith("| 0 |"), "200 tasks, each server: no error"
    cpu = float(rows[0].split("|")[6])
    assert cpu > 0, "the CPU time per call is measured"


def test_the_writer_process_experiment_runs_and_writes_its_rows() -> None:
    """overhead.py's audited-process variant (benchmarks/writer_process.py) measures every
    part without an error, its CPU counting the writer process too."""
    result = subprocess.run(
        [
            sys.executable,
            str(BENCH / "overhead.py"),
            "--quick",
            "--variants",
            "bare,audited-process,floor",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| audited-process |")]
    assert len(rows) == 6
    assert rows[2].endswith("| 0 | 0 |"), "16 threads: no error, no lock error"
    for row in rows[3:]:
        assert row.endswith("| 0 |"), "200 tasks, each server: no error"


def test_breakdown_benchmark_runs_quickly() -> None:
    """benchmarks/breakdown.py times the caller's thread and each statement of the writer."""
    result = subprocess.run(
        [sys.executable, str(BENCH / "breakdown.py"), "--calls", "30"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rows = {line.split("|")[1].strip(): line for line in result.stdout.splitlines() if "|" in line}
    for case in ("bare", "audited, store answering at once", "audited"):
        assert case in rows
    assert "COMMIT" in rows["the trail as it is"]
    assert "INSERT INTO generation_log_events" in rows["the trail as it is"]
    assert "INSERT INTO generation_log_events" not in rows["the floor (overhead.Floor)"]
    totals = {
        case: float(rows[case].split("|")[-2])
        for case in ("the trail as it is", "the floor (overhead.Floor)")
    }
    assert all(total > 0 for total in totals.values())


def test_the_performance_tables_are_those_of_the_recorded_run(tmp_path: Path) -> None:
    """The README's and docs/performance.md's tables are what benchmarks/tables.py makes
    from docs/performance.json, a full run on a named commit; figures that differ from
    the file are found stale, and --check changes nothing."""
    figures_path = BENCH.parent / "docs" / "performance.json"
    figures = json.loads(figures_path.read_text())
    assert figures["run"]["quick"] is False
    assert figures["run"]["commit"]
    assert figures["single"]["audited"]["n"] >= 1000

    def check(path: Path) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, str(BENCH / "tables.py"), "--check", "--figures", str(path)]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)

    assert check(figures_path).returncode == 0, check(figures_path).stdout
    figures["single"]["audited"]["overhead_ms"] += 0.001
    other = tmp_path / "performance.json"
    other.write_text(json.dumps(figures))
    before = [(BENCH.parent / name).read_bytes() for name in ("README.md", "docs/performance.md")]
    result = check(other)
    assert result.returncode == 1
    assert "stale tables in README.md, performance.md" in result.stdout
    after = [(BENCH.parent / name).read_bytes() for name in ("README.md", "docs/performance.md")]
    assert after == before


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


def test_verify_scale_benchmark_runs_on_a_small_trail(tmp_path: Path) -> None:
    """benchmarks/verify_scale.py builds a chained trail and verifies it, in constant memory."""
    result = subprocess.run(
        [
            sys.executable,
            str(BENCH / "verify_scale.py"),
            "--rows",
            "2000",
            "--db",
            str(tmp_path / "v.db"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert '"ok": true, "events": 4000, "rows": 2000' in result.stdout
    assert '"ok": true, "events": 400, "rows": 200' in result.stdout


def test_status_scale_benchmark_runs_on_a_small_trail(target: str) -> None:
    """benchmarks/status_scale.py builds a trail beside the host's definities, on either
    store, and times the report; the definities it names are those a plain query finds."""
    result = subprocess.run(
        [
            sys.executable,
            str(BENCH / "status_scale.py"),
            "--rows",
            "2000",
            "--definities",
            "200",
            "--repeat",
            "1",
            "--db",
            target if "://" in target else str(Path(target).with_name("s.db")),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "trail: 2,000 rows over 365 days, 190 generated definities" in result.stdout
    db = target if "://" in target else Path(target).with_name("s.db")
    missing = fetch(
        db,
        "SELECT count(*) FROM definities d WHERE d.source_type = 'generated' AND d.id NOT IN"
        " (SELECT definitie_id FROM generation_logs WHERE generation_status = 'success'"
        " AND definitie_id IS NOT NULL)",
    )[0][0]
    assert missing >= 1  # definitie 199 has no row at all
    assert f"named {missing} definities without a log" in result.stdout
