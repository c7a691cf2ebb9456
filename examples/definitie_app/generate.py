"""The main job: generate a handful of definities, each with its audit row.

    python examples/definitie_app/generate.py [--db data/definities.db | postgresql://...]

With OPENAI_API_KEY set it calls that API (OPENAI_BASE_URL for any compatible
server: Ollama, vLLM, llama.cpp). Without it, a loopback server on 127.0.0.1 plays
the model, so the demo runs offline; there, one request is rate limited once and
retried, and one is rejected by the API (400), so the trail shows both.
"""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import openai
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))

from definities import DefinitionRepository
from generator import UnifiedDefinitionGenerator
from prompts import CANDIDATE_VERSION, TEMPLATE_VERSION, PromptOrchestrator

from audited_openai import AuditedOpenAI, ab, dossier, query
from audited_openai.testing import Fail, LoopbackServer, Reply

BEGRIPPEN = {
    "verdachte": "persoon te wiens aanzien uit feiten of omstandigheden een redelijk vermoeden "
    "van schuld aan een strafbaar feit voortvloeit",
    "getuige": "persoon die ter zake van een strafbaar feit een verklaring aflegt over wat hij "
    "zelf heeft waargenomen of ondervonden",
    "dagvaarding": "schriftelijke oproeping van een verdachte om op een bepaalde tijd voor de "
    "rechter te verschijnen, met de omschrijving van het tenlastegelegde feit",
    "inverzekeringstelling": "vrijheidsbeneming van een verdachte in het belang van het "
    "onderzoek, bevolen door een officier of hulpofficier van justitie",
    "sepot": "beslissing van het openbaar ministerie om een strafbaar feit niet te vervolgen",
    "hoger beroep": "rechtsmiddel waarmee een procespartij een zaak opnieuw aan een hogere "
    "rechter voorlegt",
}
if TYPE_CHECKING:
    from audited_openai import GenerationContext, GenerationLogRepository, Review
    from audited_openai.query import Verification

RETRIED = "dagvaarding"  # offline: rate limited once, then answered
REJECTED = "sepot"  # offline: rejected by the API (400 Bad Request), never saved
EXPERIMENT = "definitie-v2.2"  # each begrip is dealt to 2.1 or 2.2 by its name (ab)
ARMS = {TEMPLATE_VERSION: 0.5, CANDIDATE_VERSION: 0.5}


def offline_script(server: LoopbackServer) -> None:
    """Queue one outcome per request, in the order the demo sends them."""
    for begrip, text in BEGRIPPEN.items():
        if begrip == RETRIED:
            server.script(Fail(429, "Rate limit reached for gpt-4o-mini", retry_after=0.05))
        if begrip == REJECTED:
            server.script(Fail(400, "Invalid request: max_tokens is too small for this prompt"))
            continue
        server.script(Reply(text, latency=0.05, completion_tokens=len(text) // 4))


def main() -> int:
    parser = argparse.ArgumentParser(description="Generate definities with an audit trail.")
    parser.add_argument("--db", default="data/definities.db", help="definities and their logs")
    parser.add_argument("--model", default=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"))
    args = parser.parse_args()
    console = Console()
    with ExitStack() as stack:
        options: dict[str, object] = {}
        if os.environ.get("OPENAI_API_KEY"):
            where = os.environ.get("OPENAI_BASE_URL", "the OpenAI API")
            console.print(f"Using {where} (OPENAI_API_KEY is set), model {args.model}.")
        else:
            server = stack.enter_context(LoopbackServer())
            offline_script(server)
            options = {"base_url": server.base_url, "api_key": "offline-demo"}
            console.print(
                "No OPENAI_API_KEY: a loopback model server on 127.0.0.1 answers instead "
                f"({server.base_url}). Nothing leaves this machine."
            )
        # The audit store first: it creates the file (0600, as audit trails should be).
        if "://" not in args.db:
            Path(args.db).parent.mkdir(parents=True, exist_ok=True)
        # who asks: this script (an app names the signed-in employee in audit_context)
        client = AuditedOpenAI(args.db, actor="definitie-demo", **options)  # type: ignore[arg-type]
        shown = client.audit_store.path  # a URL without its password
        definitions = DefinitionRepository(args.db)
        stack.callback(definitions.close)
        generator = UnifiedDefinitionGenerator(
            client, PromptOrchestrator(), definitions, model=args.model
        )
        failures, made = 0, []
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("generating definities", total=len(BEGRIPPEN))
            for begrip in BEGRIPPEN:
                progress.update(task, description=f"generating '{begrip}'")
                try:
                    with ab.experiment(EXPERIMENT, begrip, ARMS) as version:
                        result = generator.generate_definition(
                            {"begrip": begrip, "template_version": version}
                        )
                    made.append(result.definitie_id)
                    console.print(
                        f"[green]✓[/] {begrip}: definitie {result.definitie_id}, "
                        f"log {result.generation_log_id}, {result.tokens_used} tokens, "
                        f"{result.duration_ms} ms"
                    )
                except openai.APIError as exc:
                    failures += 1
                    console.print(f"[red]✗[/] {begrip}: {type(exc).__name__}: {exc}")
                progress.advance(task)
        reviews = review(client.audit_store, made)
        rows = query.history(client.audit_store, limit=len(BEGRIPPEN) + 5)
        beside = Path(args.db).parent if "://" not in args.db else Path("data")
        proof = evidence(client.audit_store, reviews[-1].definitie_id if reviews else None, beside)
        verified = query.verify(client.audit_store, record=True)
        health = query.status(client.audit_store)
        compared = query.compare(client.audit_store, *ARMS, experiment=EXPERIMENT)
        client.audit_store.close()
    report(console, shown, rows, failures)
    for done in reviews:
        console.print(
            f"Review of definitie {done.definitie_id}: {done.verdict} by {done.reviewer}"
            + (f" ({done.note})" if done.note else "")
        )
    verdicts(console, shown, verified, health, compared)
    console.print(proof)
    return 0


def review(repo: GenerationLogRepository, definities: list[int]) -> list[Review]:
    """A jurist judges the first three definities: one approved, one rejected, one edited."""
    judged = (
        ("approved", None, None),
        ("rejected", "te ruim: omvat ook getuigen", None),
        ("edited", "formulering aangescherpt", "aangepaste tekst door de jurist"),
    )
    return [
        repo.record_review(
            definitie_id, verdict, reviewer="jurist-demo", note=note, edited_text=edited
        )
        for definitie_id, (verdict, note, edited) in zip(definities, judged, strict=False)
    ]


def evidence(repo: GenerationLogRepository, definitie_id: int | None, folder: Path) -> str:
    """The dossier of a reviewed definitie, signed with a demo key, then checked offline."""
    if definitie_id is None:
        return "No definitie was reviewed: no dossier."
    try:
        import cryptography  # noqa: F401, PLC0415 - signing is an extra
    except ImportError:
        return "Dossier skipped: signing needs pip install 'audited-openai[signing]'."
    key = folder / "demo-signing.pem"  # an app keeps its key away from the database
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True)
        dossier.generate_keys(key)
    output = folder / f"dossier-definitie-{definitie_id}.zip"
    dossier.build(repo, definitie_id, output, key)
    problems, facts = dossier.check(output, f"{key}.pub")
    said = (
        "; ".join(problems)
        if problems
        else (
            f"holds offline ({facts['rows']} rows, {facts['reviews']} review, "
            f"{facts['events']} events in a chain of {facts['trail_events']})"
        )
    )
    return (
        f"Dossier of definitie {definitie_id}: {output} {said} "
        f"(audited-openai check-dossier {output} --public-key {key}.pub)"
    )


def report(console: Console, shown: str, rows: list[GenerationContext], failures: int) -> None:
    """The rows written, and where to read one in full."""
    table = Table(title=f"generation_logs in {shown}")
    for column in ("id", "status", "attempt", "definitie", "tokens", "ms", "error"):
        table.add_column(column)
    for row in reversed(rows):
        table.add_row(
            str(row.id),
            row.status,
            str(row.attempt),
            str(row.definitie_id or ""),
            str(row.response.tokens_total if row.response else ""),
            str((row.response or row.error).duration_ms if (row.response or row.error) else ""),  # type: ignore[union-attr]
            row.error.error_type if row.error else "",
        )
    console.print(table)
    newest = rows[0].id if rows else 1
    console.print(f"The prompt behind a row: audited-openai --db {shown} show {newest}")
    console.print(f"{failures} of {len(BEGRIPPEN)} definities failed; every attempt has its row.")


def verdicts(
    console: Console,
    shown: str,
    verified: Verification,
    health: dict[str, Any],
    compared: dict[str, Any],
) -> None:
    """What verify, status and compare say about the trail just written."""
    console.print(f"Tamper evidence: {verified.summary()} (audited-openai --db {shown} verify)")
    without_log = health["definities"]["without_log"]
    console.print(
        f"Status: {health['definities']['generated']} generated definities, "
        f"{len(without_log)} without a log, {health['pending']['stale']} rows pending too long; "
        + (
            "; ".join(problem["message"] for problem in health["problems"])
            if health["problems"]
            else "no problems"
        )
        + f" (audited-openai --db {shown} status --check)"
    )
    calls = " and ".join(
        f"{v['variant']}: {v['calls']} call{'' if v['calls'] == 1 else 's'}"
        for v in compared["variants"]
    )
    console.print(f"A/B test {EXPERIMENT} ({calls}):")
    for difference in compared["differences"]:
        console.print(f"  {difference['verdict']}")
    versions = " ".join(ARMS)
    console.print(f"(audited-openai --db {shown} compare --experiment {EXPERIMENT} {versions})")


if __name__ == "__main__":
    sys.exit(main())
