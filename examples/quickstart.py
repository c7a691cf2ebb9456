"""The generator's flow with an audit trail: build the prompt, generate, save, link.

Run: python examples/quickstart.py [DATABASE]
Uses OPENAI_API_KEY (and OPENAI_BASE_URL) when set; otherwise a loopback server on
127.0.0.1 plays the model, so it runs offline.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from contextlib import ExitStack
from pathlib import Path

from audited_openai import AuditedOpenAI, GenerationLogRepository, audit_context
from audited_openai.testing import LoopbackServer

MODULES = {
    "base": "Je bent een juridisch redacteur. Schrijf een definitie volgens de ASTRA-regels.",
    "context": "Context: strafrecht, Wetboek van Strafvordering.",
    "rules": "Regels: begin niet met een lidwoord; geen cirkeldefinities.",
}


def main(db_path: str) -> None:
    Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        options = {}
        if not os.environ.get("OPENAI_API_KEY"):
            server = stack.enter_context(LoopbackServer())
            options = {"base_url": server.base_url, "api_key": "offline"}
            print(f"No OPENAI_API_KEY: a loopback model server answers at {server.base_url}")

        # 1. Swap one import: AuditedOpenAI is an openai.OpenAI that writes every request ahead.
        client = AuditedOpenAI(db_path, **options)
        definities = sqlite3.connect(db_path)
        definities.execute(
            "CREATE TABLE IF NOT EXISTS definities (id INTEGER PRIMARY KEY, begrip TEXT NOT NULL,"
            " definitie TEXT, source_type TEXT)"
        )

        # 2. Build the prompt from modules.
        begrip = "verdachte"
        prompt = "\n\n".join(MODULES.values()) + f"\n\nBegrip: {begrip}"

        # 3. Generate inside audit_context: the row records the template and its modules.
        with audit_context(
            template_name="unified_definition_v2",
            template_version="2.0",
            modules_used=list(MODULES),
        ) as audit:
            response = client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": prompt}],
                temperature=0.3,
            )

        # 4. Save the definitie, then link the generation log(s) to it.
        with definities:
            cursor = definities.execute(
                "INSERT INTO definities (begrip, definitie, source_type) VALUES (?, ?, 'generated')",
                (begrip, response.choices[0].message.content),
            )
        assert cursor.lastrowid is not None
        audit.link(cursor.lastrowid)

        # 5. The prompt behind the definitie, whenever an auditor asks.
        log = GenerationLogRepository(db_path).get_by_definitie_id(cursor.lastrowid)
        assert log is not None
        assert log.response is not None
        print(f"definitie {cursor.lastrowid} ({begrip}): {response.choices[0].message.content}")
        print(
            f"log {log.id}: {log.status}, {log.response.tokens_total} tokens, "
            f"{log.response.duration_ms} ms, template {log.prompt.template_version}"
        )
        print(f"prompt ({len(log.prompt.full_text)} characters):\n{log.prompt.full_text}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "data/definities.db")
