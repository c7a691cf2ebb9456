"""A trail to look at in the views, offline: every outcome an auditor meets.

    python examples/definitie_app/seed.py --db data/demo.db
    DEFINITIE_DB=data/demo.db streamlit run examples/definitie_app/app.py

On top of generate.py's offline demo (six begrippen: one rate limited and retried, one
rejected with a 400; all with template 2.1 here, without the demo's A/B test), a
loopback server plays the model for:
- a call answered after a server error, linked the spec's way (``link_to_definitie``
  with the generation's log id: its last attempt only, the failed one stays without
  a definitie);
- a timed-out generation and a connection error (no definitie);
- a hand-written definitie whose regeneration was rejected.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import openai

sys.path.insert(0, str(Path(__file__).parent))


from definities import DefinitionRepository
from generate import BEGRIPPEN, offline_script
from generator import UnifiedDefinitionGenerator
from prompts import PromptOrchestrator

from audited_openai import AuditedOpenAI, audit_context
from audited_openai.testing import Fail, LoopbackServer, Reply

SPEC_STYLE = ("bewijsmiddel", "middel dat de rechter mag gebruiken om tot een oordeel te komen")
HAND_WRITTEN = ("beslag", "handmatig vastgelegde definitie: het onder zich nemen van voorwerpen")


def seed(db: str) -> dict[str, int]:
    """Write the trail into ``db`` (a SQLite path or a PostgreSQL URL); ids of note."""
    if "://" not in db:
        Path(db).parent.mkdir(parents=True, exist_ok=True)
    definitions = DefinitionRepository(db)
    prompts = PromptOrchestrator()
    with LoopbackServer() as server:
        client = AuditedOpenAI(db, base_url=server.base_url, api_key="offline-demo")
        generator = UnifiedDefinitionGenerator(client, prompts, definitions)
        offline_script(server)
        for begrip in BEGRIPPEN:
            with contextlib.suppress(openai.APIError):  # the rejected one: its row tells
                generator.generate_definition({"begrip": begrip})

        # the spec's app: generate, save, then link the generation's log id only
        begrip, text = SPEC_STYLE
        server.script(Fail(500, "The server had an error while processing your request"))
        server.script(Reply(text, latency=0.02))
        built = prompts.build_prompt({"begrip": begrip})
        with audit_context(
            template_name=built.template_name,
            template_version=built.template_version,
            modules_used=built.modules_used,
        ) as audit:
            client.with_options(max_retries=2).chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": built.complete_prompt}],
                temperature=0.3,
                max_tokens=400,  # raised after the 400 "max_tokens is too small"
            )
        spec_definitie = definitions.save_definitie({"begrip": begrip, "definitie": text})
        assert audit.last_log_id is not None
        client.audit_store.link_to_definitie(audit.last_log_id, spec_definitie)
        retried_failure = audit.log_ids[0]

        server.script(Reply("te laat", latency=1.0))  # answered after the client gave up
        try:
            generator.client = client.with_options(timeout=0.2, max_retries=0)  # type: ignore[assignment]
            generator.generate_definition({"begrip": "voorlopige hechtenis"})
        except openai.APITimeoutError:
            pass
        finally:
            generator.client = client
        offline = AuditedOpenAI(db, base_url="http://127.0.0.1:9/v1", api_key="x", max_retries=0)
        with contextlib.suppress(openai.APIConnectionError):
            UnifiedDefinitionGenerator(offline, prompts, definitions).generate_definition(
                {"begrip": "schorsing"}
            )
        offline.close()

        begrip, text = HAND_WRITTEN
        hand = definitions.save_definitie(
            {"begrip": begrip, "definitie": text, "source_type": "handmatig"}
        )
        server.script(Fail(400, "Invalid request: max_tokens is too small for this prompt"))
        with audit_context(hand), contextlib.suppress(openai.BadRequestError):
            generator.generate_definition({"begrip": begrip})
        client.audit_store.close()
        client.close()
    definitions.close()
    return {
        "spec_definitie": spec_definitie,
        "retried_failure": retried_failure,
        "hand_written": hand,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="Seed a demo trail for the Streamlit views.")
    parser.add_argument("--db", default="data/demo.db", help="SQLite file or postgresql:// URL")
    args = parser.parse_args()
    ids = seed(args.db)
    print(
        f"seeded {args.db}: definitie {ids['spec_definitie']} was generated after a failed "
        f"attempt (log {ids['retried_failure']}, no definitie); definitie "
        f"{ids['hand_written']} is hand-written, its regeneration failed"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
