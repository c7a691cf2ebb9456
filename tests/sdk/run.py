"""Run openai-python's own client tests bare and with the audited clients; compare.

    python tests/sdk/run.py

It takes the source distribution of the installed ``openai`` (the tests of exactly
that release), runs ``tests/test_client.py``, ``tests/lib/chat`` and
``tests/lib/responses`` twice in a virtualenv of their own (``.sdk-tests/``): once as
they are, once with ``openai.OpenAI`` / ``openai.AsyncOpenAI`` swapped for the audited
clients (``audited_swap.py``). It fails unless every test ends the same way in both
runs, the audited run wrote rows, and no row is left ``pending``.

Tests the SDK itself cannot pass here fail the same way in both runs (its inline
snapshots keep their data outside the source distribution), so they are listed, not
counted against the audit.
"""

from __future__ import annotations

import importlib.metadata
import os
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".sdk-tests"
SELECTED = ["tests/test_client.py", "tests/lib/chat", "tests/lib/responses"]
DEPENDENCIES = [
    "pytest>=9",
    "pytest-asyncio>=1.4",
    "pytest-xdist>=3.6",
    "inline-snapshot>=0.28",
    "rich>=13",
]


def run(*command: str | Path) -> None:
    """Run a setup command quietly; show what it said if it fails."""
    done = subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, check=False
    )
    if done.returncode:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"failed: {' '.join(map(str, command))}")


def sources(version: str) -> Path:
    """The SDK's source distribution of ``version``, unpacked once."""
    target = CACHE / f"openai-{version}"
    if not (target / "tests").is_dir():
        with tempfile.TemporaryDirectory() as download:
            run(
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--no-binary",
                ":all:",
                f"openai=={version}",
                "-d",
                download,
            )
            (archive,) = Path(download).glob("openai-*.tar.gz")
            with tarfile.open(archive) as tar:
                tar.extractall(CACHE, filter="data")
    return target


def environment(version: str) -> Path:
    """A virtualenv with this project, that openai (and its extras) and the tests' needs."""
    venv = CACHE / "venv"
    python = venv / "bin" / "python"
    marker = venv / f"ready-{version}"
    if not marker.exists():
        run(sys.executable, "-m", "venv", venv)
        run(python, "-m", "pip", "install", "-q", "--upgrade", "pip")
        run(
            python,
            "-m",
            "pip",
            "install",
            "-q",
            "-e",
            ROOT,
            f"openai[aiohttp,realtime]=={version}",
            *DEPENDENCIES,
        )
        marker.touch()
    return python


def outcomes(report: Path) -> dict[str, str]:
    """Each test's outcome in a JUnit report: passed, failed, error or skipped."""
    found: dict[str, str] = {}
    for case in ET.parse(report).getroot().iter("testcase"):  # noqa: S314 - our own report
        name = f"{case.get('classname')}::{case.get('name')}"
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        found[name] = {"failure": "failed"}.get(kinds[0], kinds[0]) if kinds else "passed"
    return found


def main() -> int:
    version = importlib.metadata.version("openai")
    tests = sources(version)
    python = environment(version)
    results: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory() as work:
        db = Path(work) / "sdk-tests.db"
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent), "AUDITED_OPENAI_DB": str(db)}
        env.pop("OPENAI_API_KEY", None)
        for mode in ("bare", "audited"):
            report = Path(work) / f"{mode}.xml"
            swap = ["-p", "audited_swap"] if mode == "audited" else []
            subprocess.run(
                [
                    str(python),
                    "-m",
                    "pytest",
                    *SELECTED,
                    *swap,
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    "-n",
                    "2",
                    "--durations=0",
                    f"--junitxml={report}",
                    "-o",
                    "addopts=",
                ],
                cwd=tests,
                env=env,
                check=False,
                stdout=subprocess.DEVNULL,
            )
            results[mode] = outcomes(report)
        conn = sqlite3.connect(db)
        written, pending = conn.execute(
            "SELECT count(*), coalesce(sum(generation_status = 'pending'), 0) FROM generation_logs"
        ).fetchone()
        conn.close()
    bare, audited = results["bare"], results["audited"]
    different = sorted(n for n in bare.keys() | audited.keys() if bare.get(n) != audited.get(n))
    counts = {
        o: sum(v == o for v in audited.values()) for o in ("passed", "failed", "error", "skipped")
    }
    print(f"openai {version}: {len(bare)} tests of {', '.join(SELECTED)}")
    print("audited: " + ", ".join(f"{n} {o}" for o, n in counts.items()))
    for name in sorted(n for n, o in bare.items() if o in ("failed", "error")):
        print(f"  fails bare as well: {name}")
    for name in different:
        print(f"DIFFERENT {name}: bare {bare.get(name)}, audited {audited.get(name)}")
    print(f"rows written by the audited run: {written}, left pending: {pending}")
    ok = not different and written > 0 and pending == 0 and len(bare) > 1000
    print("same outcome for every test, no row pending" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
