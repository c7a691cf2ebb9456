"""The README's quickstart: one definitie generated, saved, linked and explained."""

import os
import sqlite3

from audited_openai import AuditedOpenAI, GenerationLogRepository, audit_context
from audited_openai.testing import LoopbackServer

DB = "definities.db"
MODULES = {
    "base": "Je bent een juridisch redacteur. Schrijf een definitie volgens de ASTRA-regels.",
    "context": "Context: strafrecht, Wetboek van Strafvordering.",
    "rules": "Regels: begin niet met een lidwoord; geen cirkeldefinities.",
}

# Without OPENAI_API_KEY a loopback server on 127.0.0.1 plays the model.
options = {}
if not os.environ.get("OPENAI_API_KEY"):
    server = LoopbackServer().start()
    options = {"base_url": server.base_url, "api_key": "offline"}

# 1. Swap one import: AuditedOpenAI is an openai.OpenAI that writes every request ahead.
client = AuditedOpenAI(DB, **options)

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
definities = sqlite3.connect(DB)
with definities:
    definities.execute(
        "CREATE TABLE IF NOT EXISTS definities (id INTEGER PRIMARY KEY, begrip TEXT, definitie TEXT)"
    )
    saved = definities.execute(
        "INSERT INTO definities (begrip, definitie) VALUES (?, ?)",
        (begrip, response.choices[0].message.content),
    ).lastrowid
audit.link(saved)

# 5. The prompt behind the definitie, whenever an auditor asks.
log = GenerationLogRepository(DB).get_by_definitie_id(saved)
print(f"definitie {saved}: {response.choices[0].message.content}")
print(
    f"log {log.id}: {log.status}, {log.response.tokens_total} tokens, {log.prompt.template_version}"
)
print(log.prompt.full_text)
