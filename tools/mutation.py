"""Mutation testing of the functions that carry the promise, and its score per promise.

    python tools/mutation.py run       # mutmut on those functions (about an hour), then:
    python tools/mutation.py run _writer.Writer.flush '_observe.*'   # only these
    python tools/mutation.py report    # the score next to each promise (docs/reliability.md)
    python tools/mutation.py report --survivors   # survivors not listed as equivalent

``run`` calls ``mutmut run --max-children 2`` (or ``--children N``) with a pattern per
function below (the rest of their modules is not mutated) and stops a mutant whose tests
hang: its process tree used under 0.3 s of CPU in 30 s (mutmut's own timeout never fired
here). A hang counts as killed: it would stop CI too. ``report`` reads mutmut's results
(``mutants/**/*.meta``) and the reviewed equivalent mutants
(``tools/equivalent_mutants.txt``: a name, and why no test can tell it from the code).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict, deque
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT = ROOT / "tools" / "equivalent_mutants.txt"

# The promise, and the functions (module.Class.function patterns) that carry it.
PROMISES: list[tuple[str, list[str]]] = [
    (
        "No request reaches the model without a committed row (the pending row, durable)",
        [
            "_recorder.Recorder.open",
            "_recorder.Recorder.open_async",
            "_recorder.Recorder._write_pending",
            "_recorder.Recorder._opened",
            "_recorder.Recorder._context",
            "_recorder.Recorder.__init__",
            "_store.Rows.insert",
            "_sqlite_connect.Link._connection",
            "_sqlite_connect.Link.begin",
            "_store.Writes.commit",
        ],
    ),
    (
        "No row is lost (the writer, its transactions, failures kept apart, the spool)",
        [
            "_writer.*",
            "_store.Rows.submit",
            "_store.Rows._mapped",
            "_store.Writes.run",
            "_sqlite_connect.Link.after",
            "_sqlite_connect.Link.failed",
            "_sqlite_connect.Link.close",
            "_sqlite_connect.transaction",
            "_sqlite_connect._rollback",
            "_sqlite_connect._write_error",
            "_recorder.Recorder._complete",
            "_recorder.Recorder._completed",
            "_recorder.Recorder._spool",
            "_recorder.Recorder.never_sent",
            "_recorder.Recorder._inserted",
            "_recorder.Recorder._redact",
        ],
    ),
    (
        "No row stays pending unless its process died (completed once, however it ends)",
        [
            "_recorder.Attempt.*",
            "_recorder.Recorder.succeed",
            "_recorder.Recorder.fail",
            "_recorder.Recorder.fail_with",
            "_recorder.Recorder._cancelled",
            "_observe.*",
            "_store.Rows.complete",
            "_store.Rows.link",
            "_store.Rows.reconcile",
        ],
    ),
    (
        "Erasure leaves the text in neither file (GDPR)",
        [
            "_sqlite_connect.erase",
            "_sqlite.SQLiteStore.finish_erasures",
            "_sqlite_connect.finish_erasures",
            "_sqlite_connect.Link.idle",
            "_sqlite.SQLiteStore.scrub",
        ],
    ),
    (
        "The row holds what was sent and what arrived (the prompt, parameters, usage, text)",
        ["_capture.*"],
    ),
    (
        "No one can change the trail unseen (the chain: each write an event; verify)",
        ["_chain.*", "_verify.*", "_checkpoint.*"],
    ),
]

# mutmut's exit codes: a test failed (1), pytest crashed (3), a timeout (36, 24, -24, 152,
# 255), killed (-9: by the watchdog of docs/reliability.md, a hang), a segfault (-11), caught
# by the type checker (37). Survived: the tests passed (0) or none reached it (5, 33).
KILLED = {1, 3, 24, -24, 36, 37, 152, 255, -9, -11}
SURVIVED = {0, 5, 33}


def function_of(name: str) -> str:
    """``audited_openai._recorder.xǁRecorderǁopen__mutmut_3`` -> ``_recorder.Recorder.open``."""
    module, _, rest = name.removeprefix("audited_openai.").partition(".")
    rest = re.sub(r"__mutmut_\d+$", "", rest)
    if rest.startswith("xǁ"):  # a method: xǁClassǁname
        return f"{module}.{'.'.join(rest[2:].split('ǁ'))}"
    return f"{module}.{rest[2:]}"  # a module-level function: x_name


def mutmut_pattern(function: str) -> str:
    """``_recorder.Recorder.open`` -> ``audited_openai._recorder.xǁRecorderǁopen__mutmut_*``."""
    module, _, name = function.partition(".")
    if name == "*":
        return f"audited_openai.{module}.*"
    if "." in name:
        cls, _, method = name.partition(".")
        if method == "*":
            return f"audited_openai.{module}.xǁ{cls}ǁ*"
        return f"audited_openai.{module}.xǁ{cls}ǁ{method}__mutmut_*"
    return f"audited_openai.{module}.x_{name}__mutmut_*"


def _tree_cpu(pid: int, children: dict[int, list[int]]) -> float:
    """CPU seconds used by a process and its descendants (waited-for ones included)."""
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError):
            pass
        stack.extend(children.get(current, []))
    return total


def _stop_hangs(done: threading.Event) -> None:
    """Kill a mutant whose tests hang (no CPU for 30 s), until ``done``."""
    seen: dict[int, deque[tuple[float, float]]] = defaultdict(deque)
    while not done.wait(5):
        listing = subprocess.run(
            ["ps", "-eo", "pid=,ppid=,etimes=,args="], capture_output=True, text=True, check=False
        ).stdout
        children: dict[int, list[int]] = defaultdict(list)
        mutants: dict[int, int] = {}
        for line in listing.splitlines():
            pid, ppid, age, args = line.split(None, 3)
            children[int(ppid)].append(int(pid))
            if args.startswith("mutmut: "):
                mutants[int(pid)] = int(age)
        now = time.monotonic()
        for pid, age in mutants.items():
            history = seen[pid]
            history.append((now, _tree_cpu(pid, children)))
            while now - history[0][0] > 30:
                history.popleft()
            idle = now - history[0][0] >= 25 and history[-1][1] - history[0][1] < 0.3
            if age > 45 and idle:
                os.kill(pid, signal.SIGKILL)
        for pid in set(seen) - set(mutants):
            del seen[pid]


def run(functions: list[str], children: int = 2) -> int:
    """``mutmut run`` on ``functions`` (default: those of every promise), stopping hung
    mutants; ``children`` mutants at a time."""
    functions = functions or [f for _, chosen in PROMISES for f in chosen]
    patterns = [mutmut_pattern(f) for f in functions]
    mutmut = Path(sys.executable).with_name("mutmut")
    done = threading.Event()
    threading.Thread(target=_stop_hangs, args=(done,), daemon=True).start()
    try:
        return subprocess.run(
            [mutmut, "run", "--max-children", str(children), *patterns],
            cwd=ROOT,
            check=False,
        ).returncode
    finally:
        done.set()


def load() -> dict[str, int | None]:
    results: dict[str, int | None] = {}
    for meta in sorted((ROOT / "mutants").glob("src/**/*.py.meta")):
        results.update(json.loads(meta.read_text())["exit_code_by_key"])
    return results


def equivalents() -> tuple[dict[str, str], set[str]]:
    """The equivalent mutants with why, and those killed by hand in a fresh process."""
    found: dict[str, str] = {}
    by_hand: set[str] = set()
    for line in EQUIVALENT.read_text(encoding="utf-8").splitlines():
        name, _, why = line.partition("#")
        name = name.strip()
        if name.startswith("killed-by-hand "):
            by_hand.add(name.split()[1])
        elif name:
            found[name] = why.strip()
    return found, by_hand


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["run", "report"])
    parser.add_argument("functions", nargs="*", help="run: only these (module.Class.function)")
    parser.add_argument("--survivors", action="store_true", help="list survivors not excused")
    parser.add_argument("--children", type=int, default=2, help="run: mutants at a time")
    args = parser.parse_args()
    if args.command == "run":
        return run(args.functions, args.children)
    return report(survivors=args.survivors)


def report(*, survivors: bool) -> int:
    """Print the score per promise (Markdown); with ``survivors``, those not excused."""
    results = load()
    excused, by_hand = equivalents()
    if not results:
        print("no mutmut results: run `mutmut run` first", file=sys.stderr)
        return 2
    stale = sorted((set(excused) | by_hand) - set(results))
    if stale:
        print(f"listed as equivalent but not in the results: {', '.join(stale)}", file=sys.stderr)
    print("| promise | mutants | killed | equivalent | survived | score |")
    print("|---|---:|---:|---:|---:|---:|")
    all_k = all_e = all_s = 0
    left: list[str] = []
    seen: set[str] = set()
    for promise, patterns in PROMISES:
        k = e = s = 0
        for name, code in sorted(results.items()):
            func = function_of(name)
            if not any(fnmatch.fnmatch(func, p) for p in patterns) or code is None:
                continue
            seen.add(name)
            if code in KILLED or (code in SURVIVED and name in by_hand):
                k += 1
            elif name in excused:
                e += 1
            elif code in SURVIVED:
                s += 1
                left.append(name)
        score = k / (k + s) if k + s else 1.0
        print(f"| {promise} | {k + e + s} | {k} | {e} | {s} | {score:.0%} |")
        all_k, all_e, all_s = all_k + k, all_e + e, all_s + s
    score = all_k / (all_k + all_s) if all_k + all_s else 1.0
    print(f"| **all** | {all_k + all_e + all_s} | {all_k} | {all_e} | {all_s} | **{score:.1%}** |")
    unmapped = sorted(n for n, c in results.items() if c is not None and n not in seen)
    if unmapped:
        print(f"\n{len(unmapped)} results outside every promise (not counted)", file=sys.stderr)
    if survivors:
        print("\n".join(["", *left]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
