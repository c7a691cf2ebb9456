"""A worker for the crash test: audited calls in a loop until it is killed.

Each prompt carries a unique token and its mode; the loopback server answers by
mode: plain (quick), hang (until the client times out), stream (slow chunks).
"""

from __future__ import annotations

import itertools
import os
import sys

from audited_openai import AuditedOpenAI

MODES = ("plain", "hang", "stream", "plain")
PAD = " Wetboek van Strafvordering." * 300


def prompt_for(token: str, mode: str) -> str:
    """The full prompt of one call: what its row must hold, whatever happens."""
    return f"{token} {mode}{PAD}"


def main(db: str, base_url: str, worker: str) -> None:
    client = AuditedOpenAI(db, base_url=base_url, api_key="crash-test", max_retries=0, timeout=0.5)
    print("ready", flush=True)
    for n in itertools.count():
        mode = MODES[n % len(MODES)]
        token = f"CALL-{worker}-{os.getpid()}-{n}"
        messages = [{"role": "user", "content": prompt_for(token, mode)}]
        try:
            if mode == "stream":
                for _ in client.chat.completions.create(model="m", messages=messages, stream=True):  # type: ignore[arg-type]
                    pass
            else:
                client.chat.completions.create(model="m", messages=messages)  # type: ignore[arg-type]
        except Exception:  # noqa: S112 - timeouts are expected; the row tells
            continue


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
