"""A worker for the concurrency test: many audited calls at once, from threads or tasks.

Prints the number of calls that raised and exits 0; any "database is locked" shows
up there.
"""

from __future__ import annotations

import asyncio
import sys
import threading

from openai import Timeout

from audited_openai import AsyncAuditedOpenAI, AuditedOpenAI

# The SDK's 5 s connect timeout trips on a saturated two-core machine (the PostgreSQL
# campaign: ten client processes, the mock server, and the server computing two tsvectors
# of every completed 10 KB row); the model server is a mock, so the campaign waits longer.
TIMEOUT = Timeout(600, connect=60)
MESSAGES = [{"role": "user", "content": "Definieer 'getuige'. " + "Regels. " * 1200}]


def run_threads(db: str, base_url: str, threads: int, calls: int) -> int:
    client = AuditedOpenAI(db, base_url=base_url, api_key="load", max_retries=0, timeout=TIMEOUT)
    errors = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal errors
        for _ in range(calls):
            try:
                client.chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
            except Exception as exc:
                print(f"error (thread): {exc!r} from {exc.__cause__!r}", file=sys.stderr)
                with lock:
                    errors += 1

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return errors


async def run_tasks(db: str, base_url: str, tasks: int, calls: int) -> int:
    errors = 0
    async with AsyncAuditedOpenAI(
        db, base_url=base_url, api_key="load", max_retries=0, timeout=TIMEOUT
    ) as client:

        async def work() -> None:
            nonlocal errors
            for _ in range(calls):
                try:
                    await client.chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
                except Exception as exc:
                    print(f"error (task): {exc!r} from {exc.__cause__!r}", file=sys.stderr)
                    errors += 1

        await asyncio.gather(*(work() for _ in range(tasks)))
    return errors


if __name__ == "__main__":
    db, base_url, mode, width, calls = sys.argv[1:6]
    if mode == "threads":
        print(run_threads(db, base_url, int(width), int(calls)))
    else:
        print(asyncio.run(run_tasks(db, base_url, int(width), int(calls))))
