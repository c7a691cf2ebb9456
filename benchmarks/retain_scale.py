"""How `retain` and the dossier scale: half of a 1,000,000-row chained trail retained out.

    python benchmarks/retain_scale.py                   # 1,000,000 rows (builds once, ~12 GB twice)
    python benchmarks/retain_scale.py --rows 100000     # quick
    python benchmarks/retain_scale.py --db postgresql://postgres@127.0.0.1/retain_scale

The trail is verify_scale.py's (query_scale's rows, 10 KB prompts, a year of 2025, two
chained events each), built once as a pristine copy (SQLite: a file; PostgreSQL: a
template database) and copied for each run, since `retain` removes what it measures.
Into the copy go a definitie with 5 attempts and 2 reviews, written now through the
library (so the policy keeps them), and a policy keeping the newer half of 2025. Then,
each in a child process: `retain` (seconds, peak RSS, what went), `verify` (it must pass
and count the retained rows), and the dossier of that definitie twice (the first keeps
the Merkle tree's block roots, the second uses them) and its check (seconds, bytes).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import verify_scale

HERE = Path(__file__).parent
DEFINITIE = 424_242

CHILD = """
import json, sys, time
from datetime import timedelta
from audited_openai import GenerationLogRepository, dossier, query
from audited_openai._clock import parse_ts, utc_now
target, step, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
t = time.perf_counter()
repo = GenerationLogRepository(target)
if step == "retain":
    found = repo.retain()
elif step == "verify":
    v = repo.verify(workers=1)
    found = {"ok": v.ok, "events": v.events, "rows": v.rows, "retained": v.retained,
             "reviews": v.reviews, "reviews_erased": v.reviews_erased,
             "problems": [p.message for p in v.problems[:5]]}
elif step == "dossier":
    found = dossier.build(repo, int(extra[0]), extra[1], extra[2])
elif step == "check":
    problems, facts = dossier.check(extra[0], extra[1])
    found = {"problems": problems, **facts}
repo.close()
found["seconds"] = round(time.perf_counter() - t, 3)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec
with open("/proc/self/status") as status:
    hwm = next(line for line in status if line.startswith("VmHWM:"))
found["peak_rss_mib"] = round(int(hwm.split()[1]) / 1024, 1)
print(json.dumps(found))
"""


def child(target: str, step: str, *extra: str) -> dict[str, Any]:
    """One step in a process of its own: what it found, its seconds and peak RSS."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, target, step, *extra],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{step} failed: {done.stderr.strip().splitlines()[-1]}")
    return dict(json.loads(done.stdout))


def copy_of(pristine: Path | str, rows: int) -> str:
    """A fresh copy of the pristine trail to retain from."""
    if isinstance(pristine, str):
        import psycopg

        base, name = pristine.rsplit("/", 1)
        work = f"{name}_work"
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{work}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{work}" TEMPLATE "{name}"')
        return f"{base}/{work}"
    work = pristine.with_name(f"retain_scale_{rows}_work.db")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{work}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(pristine, work)
    return str(work)


def seed(target: str, key: Path) -> int:
    """The dossier's definitie (5 attempts, 2 reviews) and a policy keeping half of 2025."""
    from audited_openai import GenerationLogRepository, dossier
    from audited_openai._clock import utc_now

    sys.path.insert(0, str(HERE.parent))
    from tests.conftest import make_context  # a realistic pending row

    with GenerationLogRepository(target) as repo:
        for attempt in range(5):  # prompts of the generator's size (~10 KB)
            ctx = make_context(definitie_id=DEFINITIE, attempt=attempt + 1)
            ctx.prompt.full_text = (ctx.prompt.full_text + "\n") * 150
            repo.insert_log(ctx)
        repo.record_review(DEFINITIE, "rejected", reviewer="jurist-7", note="te ruim")
        repo.record_review(DEFINITIE, "approved", reviewer="jurist-8")
        middle = repo.store.fetch_tuples(
            "SELECT logged_at FROM generation_logs ORDER BY logged_at LIMIT 1 OFFSET "
            + str(repo.row_count() // 2),
            [],
        )[0][0]
        from audited_openai._clock import parse_ts

        days = (utc_now() - parse_ts(middle)).days + 1
        repo.set_retention(f"{days}d")
        if not key.exists():
            dossier.generate_keys(key)
        return days


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", default=None, help="a postgresql:// URL (the pristine one)")
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    data = HERE / ".data"
    data.mkdir(parents=True, exist_ok=True)
    pristine: Path | str = args.db or data / f"retain_scale_{args.rows}.db"
    if isinstance(pristine, str):
        import psycopg

        base, name = pristine.rsplit("/", 1)
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                conn.execute(f'CREATE DATABASE "{name}"')
    started = time.perf_counter()
    verify_scale.prepare(pristine, args.rows, args.rebuild)
    print(f"build: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    target = copy_of(pristine, args.rows)
    key = data / "retain_scale_signing.pem"
    days = seed(target, key)
    print(f"trail: {args.rows:,} rows + 5 of definitie {DEFINITIE}, policy {days}d ({target})")
    print(f"retain: {json.dumps(child(target, 'retain'))}", flush=True)
    print(f"verify: {json.dumps(child(target, 'verify'))}", flush=True)
    out = data / "retain_scale_dossier.zip"
    for run in ("first", "again"):
        made = child(target, "dossier", str(DEFINITIE), str(out), str(key))
        print(f"dossier ({run}): {json.dumps(made)}", flush=True)
    print(f"check: {json.dumps(child(target, 'check', str(out), f'{key}.pub'))}", flush=True)


if __name__ == "__main__":
    main()
