"""Reviews: a person's judgement of a generated definitie, a record of its own.

A review (``generation_reviews``, schema 13) says who judged which generation of a
definitie, when, and how: ``approved``, ``rejected`` or ``edited`` (then with the
edited text), with a note. It is written once and never changed: a later judgement
is a new review. Like every write it appends an event to the one chain, so a verdict
changed by plain SQL is caught by ``verify``; the event's ``log_id`` is the review's id
negated (``-id``), which keeps reviews apart from the rows of ``generation_logs``
without a column the chain's hashes would have to cover. Its state holds the
reviewer, the note and the edited text as digests, as a row's holds its texts; the
review goes with its definitie when that is erased.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from audited_openai._clock import parse_ts
from audited_openai._errors import InvalidLogError
from audited_openai._rows import validate_definitie_id, validate_log_id, validate_who

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

Verdict = Literal["approved", "rejected", "edited"]
VERDICTS: tuple[Verdict, ...] = ("approved", "rejected", "edited")
TABLE = "generation_reviews"
COLUMNS = (
    "id",
    "definitie_id",
    "log_id",
    "reviewer",
    "verdict",
    "note",
    "edited_text",
    "reviewed_at",
)
DIGESTED = frozenset(("reviewer", "note", "edited_text"))  # personal or free text
NOTE_LIMIT = 10_000  # characters of a note
TEXT_LIMIT = 1_000_000  # characters of an edited text


@dataclass(frozen=True)
class Review:
    """One review of a generated definitie (see the module docstring)."""

    id: int
    definitie_id: int
    log_id: int  # the generation it judged
    reviewer: str
    verdict: Verdict
    note: str | None
    edited_text: str | None
    reviewed_at: datetime

    def as_dict(self) -> dict[str, Any]:
        """For JSON: the columns, the time as stored."""
        return {
            name: getattr(self, name).isoformat().replace("+00:00", "Z")
            if name == "reviewed_at"
            else getattr(self, name)
            for name in COLUMNS
        }


def row_to_review(row: Mapping[str, Any]) -> Review:
    """A stored review as a :class:`Review`."""
    return Review(
        id=int(row["id"]),
        definitie_id=int(row["definitie_id"]),
        log_id=int(row["log_id"]),
        reviewer=row["reviewer"],
        verdict=row["verdict"],
        note=row["note"],
        edited_text=row["edited_text"],
        reviewed_at=parse_ts(row["reviewed_at"]),
    )


def review_row(
    definitie_id: object,
    verdict: object,
    *,
    reviewer: object,
    note: object = None,
    edited_text: object = None,
    log_id: object = None,
) -> dict[str, Any]:
    """The columns of a new review (without its id and time), or InvalidLogError."""
    if validate_definitie_id(definitie_id) is None:
        raise InvalidLogError("a review needs the definitie it judges", "definitie_id")
    if verdict not in VERDICTS:
        raise InvalidLogError(
            f"verdict must be one of {', '.join(VERDICTS)}, not {verdict!r}", "verdict"
        )
    if reviewer is None:
        raise InvalidLogError("a review needs its reviewer", "reviewer")
    validate_who(reviewer, "reviewer")
    texts = (("note", note, NOTE_LIMIT), ("edited_text", edited_text, TEXT_LIMIT))
    for name, value, limit in texts:
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise InvalidLogError(f"{name} must be text that is not blank, not {value!r}", name)
        if isinstance(value, str) and (len(value) > limit or "\x00" in value):
            raise InvalidLogError(f"{name} must be at most {limit:,} characters, no NUL", name)
    if (verdict == "edited") != (edited_text is not None):
        raise InvalidLogError(
            "an 'edited' verdict needs the edited text, and only it has one", "edited_text"
        )
    if log_id is not None:
        validate_log_id(log_id)
    return {
        "definitie_id": definitie_id,
        "log_id": log_id,
        "reviewer": reviewer,
        "verdict": verdict,
        "note": note,
        "edited_text": edited_text,
    }
