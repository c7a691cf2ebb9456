"""The WHERE clause of the query side: an allowlist of filters, every value bound."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from audited_openai._clock import format_ts
from audited_openai._errors import InvalidLogError
from audited_openai._models import STATUSES
from audited_openai._rows import validate_definitie_id

# filter name -> SQL condition; the only SQL a filter can contribute.
CONDITIONS = {
    "since": "gl.logged_at >= ?",
    "until": "gl.logged_at <= ?",
    "status": "gl.generation_status = ?",
    "model": "gl.model_name = ?",
    "template_name": "gl.prompt_template_name = ?",
    "template_version": "gl.prompt_template_version = ?",
    "definitie_id": "gl.definitie_id = ?",
    "search": "gl.id IN (SELECT rowid FROM generation_logs_fts WHERE generation_logs_fts MATCH ?)",
    "after_id": "gl.id < ?",
}


@dataclass(frozen=True)
class Filters:
    """The filters of the query side, validated when made."""

    since: datetime | None = None
    until: datetime | None = None
    status: str | None = None
    model: str | None = None
    template_name: str | None = None
    template_version: str | None = None
    definitie_id: int | None = None
    search: str | None = None
    after_id: int | None = None

    def __post_init__(self) -> None:
        """Refuse values that cannot mean anything, with a clear error."""
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
                raise InvalidLogError(f"{name} must be a timezone-aware datetime", name)
        if self.status is not None and self.status not in STATUSES:
            raise InvalidLogError(
                f"unknown status {self.status!r}; expected one of {', '.join(STATUSES)}", "status"
            )
        for name in ("model", "template_name", "template_version", "search"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise InvalidLogError(f"{name} must be text, not {value!r}", name)
        validate_definitie_id(self.definitie_id)
        if self.after_id is not None and (
            isinstance(self.after_id, bool) or not isinstance(self.after_id, int)
        ):
            raise InvalidLogError(f"after_id must be an integer, not {self.after_id!r}", "after_id")

    def values(self) -> dict[str, Any]:
        """The filters that are set, with values ready to bind."""
        found: dict[str, Any] = {}
        for name in CONDITIONS:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, datetime):
                value = format_ts(value)
            if name == "search":
                value = fts_query(value)
            found[name] = value
        return found


def fts_query(text: str) -> str:
    """Turn free text into an FTS5 query: each word quoted, so no input is syntax.

    ``"a phrase"`` stays a phrase and ``word*`` a prefix; everything else is matched
    as plain words that must all occur.
    """
    terms: list[str] = []
    text = text.replace("\x00", " ")  # FTS5 strings end at NUL
    for index, part in enumerate(text.split('"')):
        if index % 2 == 1:
            if part.strip():
                terms.append('"' + part.replace('"', "") + '"')
            continue
        for word in part.split():
            prefix = word.endswith("*")
            core = word.rstrip("*").replace('"', "")
            if core:
                terms.append(f'"{core}"' + ("*" if prefix else ""))
    if not terms:
        raise InvalidLogError("search needs at least one word", "search")
    return " ".join(terms)


def build_listing(filters: Filters) -> tuple[str, list[Any]]:
    """Return ``FROM ... WHERE ... ORDER BY`` for a newest-first listing, and its parameters.

    With a search, the full-text index drives the query in rowid order, so a listing
    with a limit stops as soon as it has enough matches.
    """
    if filters.search is None:
        where, params = build_where(filters)
        return f"FROM generation_logs gl {where} ORDER BY gl.id DESC", params
    rest = replace(filters, search=None)
    where, params = build_where(rest, extra="generation_logs_fts MATCH ?")
    listing = (
        "FROM generation_logs_fts JOIN generation_logs gl ON gl.id = generation_logs_fts.rowid "
        f"{where} ORDER BY generation_logs_fts.rowid DESC"
    )
    return listing, [*params, fts_query(filters.search)]


def build_where(filters: Filters, *, extra: str | None = None) -> tuple[str, list[Any]]:
    """Return ``WHERE ...`` (or "") and its bound parameters."""
    values = filters.values()
    conditions = [CONDITIONS[name] for name in values]
    if extra:
        conditions.append(extra)
    if not conditions:
        return "", []
    return "WHERE " + " AND ".join(conditions), list(values.values())
