"""The dossier of one definitie: its record, checkable anywhere, with no database.

:func:`build` writes a zip holding every row of the definitie (all attempts and
replays, every stored column but ``updated_at``), its reviews, the chain's events of
those rows and reviews, an inclusion proof for each event in a Merkle tree over the
whole chain (``_merkle``), the chain's head as a checkpoint signed with Ed25519 (with
the tree's root), and a summary in Dutch (``samenvatting.md``). :func:`check` verifies
it against the signer's public key alone: each event's hash recomputed, each event in
the signed tree, each row and review as its last event says, the summary as the rows
say. It holds after other definities were erased or retained out (their events stay
in the chain, as digests). What it cannot show without the trail: that no later event
of these rows is missing from it; ``verify`` on the database shows that.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from audited_openai import _checkpoint, _merkle, _review, _rows, _sql
from audited_openai._chain import GENESIS, link_hash, named, review_state, state
from audited_openai._checkpoint import generate_keys
from audited_openai._clock import format_ts, parse_ts, utc_now
from audited_openai._errors import InvalidLogError, StoreError

if TYPE_CHECKING:
    import os

    from audited_openai._chain import Snapshot
    from audited_openai._repository import GenerationLogRepository

FORMAT = "audited-openai-dossier/1"
MANIFEST, CHECKPOINT, SUMMARY = "dossier.json", "checkpoint.json", "samenvatting.md"
ZONE = ZoneInfo("Europe/Amsterdam")
EVENT_FIELDS = ("seq", "log_id", "definitie_id", "kind", "at", "note", "state", "hash")


# -- building ------------------------------------------------------------------------------


def build(
    repo: GenerationLogRepository,
    definitie_id: int,
    output: str | os.PathLike[str],
    key: str | os.PathLike[str],
) -> dict[str, Any]:
    """Write the dossier of ``definitie_id`` to ``output`` (a zip), signed with ``key``.

    Returns what it holds: ``rows``, ``reviews``, ``events``, the chain's length
    (``trail_events``) and the zip's ``bytes``.
    """
    if _rows.validate_definitie_id(definitie_id) is None:
        raise InvalidLogError("definitie_id is required", "definitie_id")
    _checkpoint.key_of(key, "private")  # a bad key is refused before anything is read
    store = repo.store
    with store.snapshot() as snapshot:
        manifest, tree = _gather(snapshot, definitie_id, repo.host_columns())
        root = tree.root()
    if tree.computed:  # the roots of full blocks, kept for the next dossier
        kept = [(block, root.hex()) for block, root in sorted(tree.computed.items())]
        store.execute_many(_sql.keep_merkle(store.dialect), kept, "keep the Merkle roots")
    manifest["checkpoint"] = _checkpoint.make_checkpoint(
        store.location,
        tree.size,
        manifest.pop("head"),
        key,
        extra={"merkle_root": root.hex(), "definitie_id": definitie_id},
    )
    manifest["built_at"] = format_ts(utc_now())
    data = _zipped(manifest)
    Path(output).write_bytes(data)
    return {
        "definitie_id": definitie_id,
        "rows": len(manifest["rows"]),
        "reviews": len(manifest["reviews"]),
        "events": len(manifest["events"]),
        "trail_events": tree.size,
        "bytes": len(data),
        "output": str(output),
    }


def _gather(
    snapshot: Snapshot, definitie_id: int, host: frozenset[str]
) -> tuple[dict[str, Any], _merkle.Tree]:
    rows = [
        dict(zip(_rows.CHAINED, r, strict=True))
        for r in snapshot.rows(_sql.dossier_rows(definitie_id))
    ]
    if not rows:
        raise InvalidLogError(
            f"no logs for definitie {definitie_id}: nothing to put in a dossier", "definitie_id"
        )
    reviews = [
        dict(zip(_review.COLUMNS, r, strict=True))
        for r in snapshot.rows(_sql.dossier_reviews(definitie_id))
    ]
    ids = [r["id"] for r in rows] + [-r["id"] for r in reviews]
    events = [dict(zip(EVENT_FIELDS, e, strict=True)) for e in snapshot.rows(_sql.events_of(ids))]
    befores = {int(s): h for s, h in snapshot.rows(_sql.hashes_of([e["seq"] - 1 for e in events]))}
    head = next(snapshot.rows(_sql.EVENT_HEAD), None)
    if head is None:
        raise StoreError("the chain has no events: nothing can be proven")
    blocks = {int(b): bytes.fromhex(r) for b, r in snapshot.rows(_sql.MERKLE_BLOCKS)}

    def leaves(lo: int, hi: int) -> list[bytes]:
        found = [h for (h,) in snapshot.rows(_sql.hashes_between(lo + 1, hi))]
        if len(found) != hi - lo:
            raise StoreError(
                f"events {lo + 1} to {hi} are not all there: run verify (the chain is broken)"
            )
        return [_merkle.leaf(h) for h in found]

    tree = _merkle.Tree(int(head[0]), leaves, blocks)
    for event in events:
        event["prev"] = GENESIS if event["seq"] == 1 else befores.get(event["seq"] - 1)
        event["proof"] = [p.hex() for p in tree.proof(event["seq"] - 1)]
    definitie = None
    if snapshot.has_definities:
        columns = [c for c in ("begrip", "definitie", "source_type") if c in host]
        found = next(snapshot.rows(_sql.host_definitie(definitie_id, columns)), None)
        definitie = None if found is None else dict(zip(columns, found, strict=True))
    manifest = {
        "format": FORMAT,
        "definitie_id": definitie_id,
        "definitie": definitie,
        "rows": rows,
        "reviews": reviews,
        "events": events,
        "head": str(head[1]),
    }
    return manifest, tree


def _zipped(manifest: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1, default=str))
        archive.writestr(CHECKPOINT, json.dumps(manifest["checkpoint"], indent=2))
        archive.writestr(SUMMARY, summary(manifest))
    return buffer.getvalue()


# -- the summary, in Dutch (check re-renders it: a changed word shows) -------------------------

# The words of format 1, on purpose apart from the views' labels (streamlit's): a view may
# change its words, a dossier already handed over must still check.
STATUS = {
    "success": "geslaagd",
    "failed": "mislukt",
    "timeout": "time-out",
    "pending": "in behandeling",
}
VERDICT = {"approved": "goedgekeurd", "rejected": "afgewezen", "edited": "bewerkt"}


def _when(stamp: str | None) -> str:
    if not stamp:
        return "—"
    return parse_ts(stamp).astimezone(ZONE).strftime("%d-%m-%Y %H:%M:%S %Z")


def _fence(text: str) -> str:
    ticks = "`" * max(3, max((len(r) for r in text.split("\n") if set(r) == {"`"}), default=0) + 1)
    return f"{ticks}text\n{text}\n{ticks}"


def summary(manifest: dict[str, Any]) -> str:
    """The dossier's summary, in Dutch Markdown, from its manifest alone."""
    definitie_id, checkpoint = manifest["definitie_id"], manifest["checkpoint"]
    host = manifest.get("definitie") or {}
    lines = [f"# Dossier van definitie {definitie_id}", ""]
    if host.get("begrip"):
        lines.append(f"**Begrip:** {host['begrip']}  ")
    if host.get("definitie"):
        lines.append(f"**Definitie (zoals de app haar bewaart):** {host['definitie']}  ")
    if host:
        lines += [
            (
                "_Begrip en definitie komen uit de tabel `definities` van de app;"
                " de keten dekt ze niet._"
            ),
            "",
        ]
    lines += [
        (
            f"Opgesteld op {_when(manifest['built_at'])} uit {checkpoint['trail']}: "
            f"{len(manifest['rows'])} generatie(s), {len(manifest['reviews'])} beoordeling(en), "
            f"{len(manifest['events'])} gebeurtenissen in een keten van {checkpoint['events']}."
        ),
        (
            "Controleren, zonder database: `audited-openai check-dossier <dit bestand> "
            "--public-key <publieke sleutel>`."
        ),
        "",
        "## Generaties",
    ]
    for row in manifest["rows"]:
        lines += _row_lines(row)
    lines += ["", "## Beoordelingen", *_review_lines(manifest["reviews"])]
    lines += [
        "",
        "## Keten",
        (
            f"Kop: gebeurtenis {checkpoint['events']}, hash `{checkpoint['hash']}`; Merkle-wortel "
            f"`{checkpoint['merkle_root']}`; ondertekend op {_when(checkpoint['at'])}."
        ),
        "",
    ]
    return "\n".join(lines)


def _review_lines(reviews: list[dict[str, Any]]) -> list[str]:
    """Each review a list item, an edited text fenced below it."""
    lines = [] if reviews else ["Nog niet beoordeeld."]
    for review in reviews:
        note = f": {review['note']}" if review["note"] else ""
        lines.append(
            f"- {_when(review['reviewed_at'])}: **{VERDICT[review['verdict']]}** door "
            f"{review['reviewer']} (beoordeling {review['id']}, log {review['log_id']}){note}"
        )
        if review["edited_text"] is not None:
            lines += ["", "  Bewerkte tekst:", "", _fence(review["edited_text"]), ""]
    return lines


def _comma(value: float | None) -> str | None:
    return None if value is None else str(value).replace(".", ",")


def _modules(stored: str | None) -> str | None:
    try:
        return ", ".join(json.loads(stored)) if stored else None
    except (ValueError, TypeError):
        return stored


def _tokens(row: dict[str, Any]) -> str | None:
    if row["tokens_total"] is None:
        return None
    prompt, answer = row["tokens_prompt"], row["tokens_completion"]
    return f"{prompt} prompt + {answer} antwoord = {row['tokens_total']}"


def _row_lines(row: dict[str, Any]) -> list[str]:
    replay = f" · herhaling van log {row['replay_of']}" if row.get("replay_of") else ""
    cost = (
        f"{row['cost_nanos'] / _rows.NANOS:.6f} {row['cost_currency']}"
        if row.get("cost_nanos") is not None
        else "onbekend"
    )
    facts = [
        ("Aangevraagd door", row.get("actor")),
        ("Sessie", row.get("session_id")),
        ("Model", row["model_name"]),
        ("Temperatuur", _comma(row["model_temperature"])),
        ("Max. tokens", row["model_max_tokens"]),
        (
            "Template",
            f"{row['prompt_template_name'] or '—'} {row['prompt_template_version'] or ''}".strip(),
        ),
        ("Modules", _modules(row["prompt_modules_used"])),
        ("Tokens", _tokens(row)),
        ("Duur", f"{row['duration_ms']} ms" if row["duration_ms"] is not None else None),
        ("Kosten", cost),
        ("Eindreden", row["response_finish_reason"]),
        ("Antwoord-id", row["response_id"]),
        ("Fout", f"{row['error_type']}: {row['error_message']}" if row["error_type"] else None),
    ]
    lines = [
        "",
        (
            f"### Log {row['id']} · {STATUS[row['generation_status']]} · "
            f"poging {row['attempt']} · {_when(row['logged_at'])}{replay}"
        ),
        "",
    ]
    lines += [f"- {name}: {value}" for name, value in facts if value is not None]
    lines += ["", "**Prompt**", "", _fence(row["prompt_full_text"])]
    if row["response_content"] is not None:
        lines += ["", "**Antwoord**", "", _fence(row["response_content"])]
    if row["request_json"] is not None:
        lines += [
            "",
            "**Verzoek (request JSON, zoals verstuurd)**",
            "",
            _fence(row["request_json"]),
        ]
    return lines


# -- checking ----------------------------------------------------------------------------------


def check(
    path: str | os.PathLike[str], public_key: str | os.PathLike[str]
) -> tuple[list[str], dict[str, Any]]:
    """Check a dossier with no database: (problems, one line each; what it holds)."""
    _checkpoint.key_of(public_key, "public")  # a bad key is a usage error, not a problem
    try:
        with zipfile.ZipFile(path) as archive:
            manifest = json.loads(archive.read(MANIFEST))
            apart = json.loads(archive.read(CHECKPOINT))
            written = archive.read(SUMMARY).decode("utf-8")
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        return [f"not a dossier: {exc}"], {}
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return [f"not an {FORMAT} dossier"], {}
    try:
        return _problems(manifest, apart, written, public_key), _facts(manifest)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a field missing or wrong
        return [f"the dossier is malformed: {type(exc).__name__}: {exc}"], {}


def _facts(manifest: dict[str, Any]) -> dict[str, Any]:
    checkpoint = manifest["checkpoint"]
    return {
        "definitie_id": manifest["definitie_id"],
        "rows": len(manifest["rows"]),
        "reviews": len(manifest["reviews"]),
        "events": len(manifest["events"]),
        "trail_events": checkpoint["events"],
        "signed_at": checkpoint["at"],
    }


def _problems(
    manifest: dict[str, Any], apart: Any, written: str, public_key: str | os.PathLike[str]
) -> list[str]:
    problems: list[str] = []
    checkpoint = manifest["checkpoint"]
    if not checkpoint.get("signature"):
        problems.append("the checkpoint is not signed")
    elif not _checkpoint.signature_holds(checkpoint, public_key):
        problems.append(
            "the checkpoint's signature does not hold (changed, or signed by another key)"
        )
    if apart != checkpoint:
        problems.append(f"{CHECKPOINT} differs from the dossier's checkpoint")
    if checkpoint.get("definitie_id") != manifest["definitie_id"]:
        problems.append("the checkpoint was signed for another definitie")
    root, size = bytes.fromhex(checkpoint["merkle_root"]), int(checkpoint["events"])
    last: dict[int, dict[str, Any]] = {}
    for event in manifest["events"]:
        problems += _event_problems(event, root, size)
        last[int(event["log_id"])] = event
    for row in manifest["rows"]:
        problems += _item_problems(
            "log", row["id"], state([row[c] for c in _rows.CHAINED]), last.get(row["id"])
        )
        if row["definitie_id"] != manifest["definitie_id"]:
            problems.append(f"log {row['id']} is not of definitie {manifest['definitie_id']}")
    for review in manifest["reviews"]:
        stated = review_state([review[c] for c in _review.COLUMNS])
        problems += _item_problems("review", review["id"], stated, last.get(-review["id"]))
    if written != summary(manifest):
        problems.append(f"{SUMMARY} does not say what the rows and reviews say (it was changed)")
    return problems


def _event_problems(event: dict[str, Any], root: bytes, size: int) -> list[str]:
    fields = tuple(event[f] for f in EVENT_FIELDS[:7])
    said = f"event {event['seq']} ({event['kind']})"
    if event["prev"] is None or link_hash(event["prev"], fields) != event["hash"]:
        return [f"{said} does not match its hash: changed"]
    proof = [bytes.fromhex(p) for p in event["proof"]]
    found = _merkle.root_from_proof(int(event["seq"]) - 1, size, _merkle.leaf(event["hash"]), proof)
    if found != root:
        return [f"{said} is not in the signed chain of {size} events"]
    return []


def _item_problems(what: str, item_id: int, now: str, event: dict[str, Any] | None) -> list[str]:
    if event is None:
        return [f"{what} {item_id} has no event in the dossier"]
    if event["kind"] in ("erase", "retain"):
        gone = {"erase": "erased", "retain": "retained out"}[event["kind"]]
        return [f"{what} {item_id} was {gone} (event {event['seq']}) but is in the dossier"]
    if now == event["state"]:
        return []
    if what == "log":
        before, after = named(json.loads(event["state"])), named(json.loads(now))
        changed = [c for c in _rows.CHAINED if before.get(c) != after.get(c)]
        return [
            (
                f"log {item_id}: {', '.join(changed) or 'its content'} no longer match"
                f" event {event['seq']}"
            )
        ]
    return [f"review {item_id} no longer matches event {event['seq']}"]


__all__ = ["FORMAT", "build", "check", "generate_keys", "summary"]
