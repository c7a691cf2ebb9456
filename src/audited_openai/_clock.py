"""Timestamps: one UTC text format everywhere, and a monotonic clock for durations.

Every timestamp is stored as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (UTC, milliseconds), the
format SQLite's ``strftime('%Y-%m-%dT%H:%M:%fZ')`` produces, so values written by
Python and by SQL triggers compare correctly as text (spec defect 6).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

SQL_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"


def utc_now() -> datetime:
    """Return the current UTC time, timezone-aware, truncated to milliseconds."""
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def format_ts(value: datetime) -> str:
    """Format an aware datetime as the stored UTC text; naive values are refused."""
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("naive datetime: pass a timezone-aware value (UTC)")
    if offset:
        value = value.astimezone(timezone.utc)
    # isoformat is several times faster than strftime; years before 1000 keep 4 digits
    return value.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def parse_ts(text: str) -> datetime:
    """Parse a stored timestamp back into an aware UTC datetime (naive text is UTC)."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (
        value.replace(tzinfo=timezone.utc)
        if value.tzinfo is None
        else value.astimezone(timezone.utc)
    )


def monotonic_ms() -> float:
    """Return a monotonic clock reading in milliseconds, for durations (spec defect 8)."""
    return time.perf_counter() * 1000.0
