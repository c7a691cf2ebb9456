"""A retry policy of the app's own, around audited calls, with tenacity.

Run: python examples/retry_policy.py [DATABASE]

The SDK retries failed requests by itself (``max_retries``, 2 by default), and each of
its attempts is a row. An app that wants more (keep trying a rate-limited generation
for a minute, say) wraps the call in tenacity: every attempt of every call is a row,
and the rows of one call share its ``call_id``. Offline, the loopback server refuses
with 429 five times before it answers.
"""

from __future__ import annotations

import sys
from pathlib import Path

import openai
import tenacity

from audited_openai import AuditedOpenAI, audit_context, query
from audited_openai.testing import Fail, LoopbackServer, Reply


@tenacity.retry(
    retry=tenacity.retry_if_exception_type(openai.RateLimitError),
    wait=tenacity.wait_exponential(multiplier=0.01, max=1),
    stop=tenacity.stop_after_delay(60),
    reraise=True,
)
def generate(client: AuditedOpenAI, begrip: str) -> str:
    """One generation; tenacity calls it again while the API says 429."""
    response = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": f"Definieer '{begrip}'."}],
    )
    return response.choices[0].message.content or ""


def main(db_path: str) -> None:
    Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    with LoopbackServer() as server:
        server.script(*[Fail(429, retry_after=0.01)] * 5, Reply("Een getuige is ..."))
        # The SDK retries each call twice (three attempts); tenacity calls again after that.
        client = AuditedOpenAI(db_path, base_url=server.base_url, api_key="offline")
        with audit_context(template_name="retry_demo", template_version="1"):
            print(generate(client, "getuige"))
        print(f"the server received {server.request_count} requests")
    for row in reversed(query.history(db_path, template_name="retry_demo", limit=10)):
        print(f"log {row.id}: call {row.call_id[-8:]} attempt {row.attempt} {row.status}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "data/retry_policy.db")
