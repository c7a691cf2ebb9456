"""How long the trail is kept: the policy, legal holds, and what ``retain`` removes.

A store has at most one policy (``generation_log_retention``): rows and reviews older
than it go when ``retain`` runs, exactly as an erasure takes them (the text gone from
the files, a ``retain`` event for each keeping its digests, so ``verify`` still passes
and counts them), except those of a definitie under a legal hold
(``generation_log_holds``). GDPR's storage limitation (Art. 5(1)(e)) asks that logs go
once their purpose is served; the EU AI Act asks a deployer to keep them at least six
months (Art. 26(6)), so a shorter policy is refused unless forced.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from audited_openai._clock import parse_ts
from audited_openai._errors import InvalidLogError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

MIN_DAYS = 183  # six months, rounded up: the AI Act's least for a deployer (Art. 26(6))
MAX_DAYS = 100 * 366
BATCH = 5_000  # rows (and reviews) deleted per transaction
REASON_LIMIT = 1_000
_KEEP = re.compile(r"^\s*(\d{1,6})\s*(d|w|mo|y)\s*$")
_DAYS_PER = {"d": 1.0, "w": 7.0, "mo": 365 / 12, "y": 365.0}


def parse_keep(text: object) -> int:
    """Days of a span like ``400d``, ``60w``, ``18mo`` or ``2y`` (a month: 1/12 year)."""
    found = _KEEP.match(text) if isinstance(text, str) else None
    if found is None:
        raise InvalidLogError(
            f"keep must be a span like 400d, 60w, 18mo or 2y, not {text!r}", "keep"
        )
    days = math.ceil(int(found.group(1)) * _DAYS_PER[found.group(2)])
    if not 1 <= days <= MAX_DAYS:
        raise InvalidLogError(f"keep must be 1 day to 100 years, not {text!r}", "keep")
    return days


def too_short(days: int, keep: str) -> InvalidLogError:
    """The error of a policy under six months that was not forced."""
    return InvalidLogError(
        f"keeping logs {keep} ({days} days) is under six months, the least the EU AI Act "
        "asks of a deployer (Art. 26(6)): force it if another rule says so",
        "keep",
    )


def checked_reason(reason: object) -> str:
    """A hold's reason: a line of text, up to ``REASON_LIMIT`` characters."""
    if not isinstance(reason, str) or not reason.strip() or len(reason) > REASON_LIMIT:
        raise InvalidLogError(
            f"a hold needs its reason: 1 to {REASON_LIMIT} characters, not {reason!r}", "reason"
        )
    return reason.strip()


@dataclass(frozen=True)
class Policy:
    """The retention policy of a store."""

    keep_days: int
    keep: str  # as given
    forced: bool  # under six months, on purpose
    set_at: datetime
    set_by: str  # the command that set it

    @classmethod
    def of(cls, row: Sequence[Any]) -> Policy:
        """From ``_sql.POLICY``'s row."""
        return cls(int(row[0]), row[1], bool(row[2]), parse_ts(row[3]), row[4])


@dataclass(frozen=True)
class Hold:
    """A legal hold on a definitie: its rows and reviews are never retained out."""

    definitie_id: int
    reason: str
    held_at: datetime
    held_by: str  # the command that held it

    @classmethod
    def of(cls, row: Sequence[Any]) -> Hold:
        """From ``_sql.HOLDS``'s row."""
        return cls(int(row[0]), row[1], parse_ts(row[2]), row[3])
