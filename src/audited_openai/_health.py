"""The trail's health (``query.status``): the spec's success criteria, and what to alert on.

One report from a handful of indexed queries, each through the repository: the
generated definities without a successful generation log, the rows still pending past
the reconcile threshold, failures and durations over the last day and week against the
week before, the store's size and the room left at the current rate, the chain's head
with the last recorded checkpoint and verification, and the schema's version. The
report's ``problems`` are the conditions ``status --check`` exits 6 on.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from audited_openai import _postgres_schema, _schema, _stats
from audited_openai._clock import format_ts, parse_ts, utc_now
from audited_openai._errors import InvalidLogError

if TYPE_CHECKING:
    from audited_openai._repository import GenerationLogRepository

PENDING_AFTER = timedelta(minutes=15)  # as `reconcile --older-than`'s default
DISK_DAYS = 7.0
LISTED = 20  # ids named in a problem's line (the report holds them all)
PERIODS = (
    ("day", "the last 24 hours"),
    ("week", "the last 7 days"),
    ("previous_week", "the 7 days before"),
)
FAILED = ("failed", "timeout")


def report(
    repo: GenerationLogRepository,
    *,
    since: datetime | None = None,
    pending_after: timedelta = PENDING_AFTER,
    disk_days: float = DISK_DAYS,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Everything ``status`` shows, in one dictionary (see the module docstring)."""
    if since is not None and (not isinstance(since, datetime) or since.tzinfo is None):
        raise InvalidLogError("since must be a timezone-aware datetime", "since")
    if not isinstance(pending_after, timedelta) or pending_after <= timedelta(0):
        raise InvalidLogError(f"pending_after must be a positive timedelta, not {pending_after!r}")
    if isinstance(disk_days, bool) or not isinstance(disk_days, (int, float)) or disk_days < 0:
        raise InvalidLogError(f"disk_days must be a number of days, not {disk_days!r}")
    now = now or utc_now()
    found: dict[str, Any] = {
        "store": repo.path,
        "backend": repo.store.dialect.name,
        "at": format_ts(now),
        "definities": _definities(repo, since),
        "pending": {
            **repo.pending_rows(now - pending_after),
            "after_s": pending_after.total_seconds(),
        },
        "periods": _periods(repo, now),
    }
    found["size"] = _size(repo, found["periods"]["week"]["rows"])
    found["chain"] = _chain(repo, now)
    version = repo.store.schema_version()
    supported = (
        _postgres_schema.SCHEMA_VERSION
        if found["backend"] == "postgresql"
        else _schema.SCHEMA_VERSION
    )
    found["schema"] = {"version": version, "supported": supported, "current": version == supported}
    found["problems"] = problems(found, pending_after=pending_after, disk_days=disk_days)
    return found


def _definities(repo: GenerationLogRepository, since: datetime | None) -> dict[str, Any]:
    columns = repo.host_columns()
    if not {"id", "source_type"} <= columns:
        return {"host_table": False, "since": None, "generated": None, "without_log": []}
    if since is not None and "created_at" not in columns:
        raise InvalidLogError(
            "the definities table has no created_at column: --since cannot be applied to it",
            "since",
        )
    generated, missing = repo.generated_definities(since)
    return {
        "host_table": True,
        "since": format_ts(since) if since else None,
        "generated": generated,
        "without_log": missing,
    }


def _periods(repo: GenerationLogRepository, now: datetime) -> dict[str, dict[str, Any]]:
    day, week, fortnight = (
        now - timedelta(days=1),
        now - timedelta(days=7),
        now - timedelta(days=14),
    )
    counted = repo.outcomes(day, week, fortnight)
    # the query's periods are apart (day, the rest of the week, the week before); the
    # report's week holds its day
    parts = {"day": ("day",), "week": ("day", "week"), "previous_week": ("before",)}
    starts = {"day": day, "week": week, "previous_week": fortnight}
    periods: dict[str, dict[str, Any]] = {}
    for name, _words in PERIODS:
        rows = [row for row in counted if row["period"] in parts[name]]
        completed = sum(row["n"] for row in rows if row["status"] != "pending")
        failures = sum(row["n"] for row in rows if row["status"] in FAILED)
        errors: dict[str, int] = {}
        for row in rows:
            if row["status"] in FAILED:
                key = row["error_type"] or "unknown"
                errors[key] = errors.get(key, 0) + row["n"]
        counts = sorted(
            (row["duration_ms"], row["n"]) for row in rows if row["duration_ms"] is not None
        )
        periods[name] = {
            "from": format_ts(starts[name]),
            "rows": sum(row["n"] for row in rows),
            "completed": completed,
            "failures": failures,
            "failure_rate": round(100.0 * failures / completed, 2) if completed else None,
            "top_errors": [
                {"error_type": error, "n": n}
                for error, n in sorted(errors.items(), key=lambda item: (-item[1], item[0]))[:3]
            ],
            "p50_ms": _percentile(counts, 50),
            "p95_ms": _percentile(counts, 95),
            # not recorded per row: the trail keeps the request's duration, not the time
            # from the pending row's commit to the request leaving (docs/performance.md)
            "audit_ms": None,
        }
    return periods


def _percentile(counts: list[tuple[int, int]], percent: int) -> int | None:
    """The nearest-rank percentile of durations given as (milliseconds, how many), sorted."""
    found = _stats.percentile(counts, percent)
    return None if found is None else int(found)


def _size(repo: GenerationLogRepository, week_rows: int) -> dict[str, Any]:
    sizes = repo.sizes()
    rows = repo.row_count()
    per_day = week_rows / 7
    stored = (sizes["database"] or 0) + (sizes["wal"] or 0)
    per_row = stored / rows if rows and sizes["database"] is not None else None
    days_left = None
    if sizes["free"] is not None and per_row is not None and per_day > 0:
        days_left = round(sizes["free"] / (per_day * per_row), 1)
    return {
        "database_bytes": sizes["database"],
        "wal_bytes": sizes["wal"],
        "table_bytes": sizes["table"],
        "free_bytes": sizes["free"],
        "rows": rows,
        "rows_per_day": round(per_day, 1),
        "days_left": days_left,
    }


def _chain(repo: GenerationLogRepository, now: datetime) -> dict[str, Any]:
    events, head = repo.chain_head()
    checks: dict[str, Any] = {"events": events, "head": head}
    for kind in ("checkpoint", "verify"):
        record = repo.last_check(kind)
        if record is not None:
            record = {
                "at": record["at"],
                "age_s": round((now - parse_ts(record["at"])).total_seconds(), 1),
                "events": int(record["events"]),
                "ok": None if record["ok"] is None else bool(record["ok"]),
                "problems": int(record["problems"]),
                "summary": record["summary"],
            }
        checks[f"last_{kind}"] = record
    return checks


def problems(
    found: dict[str, Any], *, pending_after: timedelta, disk_days: float
) -> list[dict[str, str]]:
    """The conditions to alert on: each a ``kind`` and a one-line ``message``.

    ``without_log`` (generated definities without a successful log), ``stale_pending``
    (rows pending past ``pending_after``), ``verify_failed`` (the last recorded
    verification), ``disk`` (the volume full within ``disk_days``).
    """
    said: list[dict[str, str]] = []

    def add(kind: str, message: str) -> None:
        said.append({"kind": kind, "message": message})

    missing = found["definities"]["without_log"]
    if missing:
        ids = ", ".join(str(i) for i in missing[:LISTED])
        more = ", ..." if len(missing) > LISTED else ""
        since = found["definities"]["since"]
        since = f" since {since}" if since else ""
        add(
            "without_log",
            f"{_count(len(missing), 'generated definitie')} without a successful "
            f"generation log{since}: {ids}{more}",
        )
    pending = found["pending"]
    if pending["stale"]:
        add(
            "stale_pending",
            f"{_count(pending['stale'], 'row')} pending for more than {_span(pending_after)} "
            f"(the oldest: log {pending['oldest_id']}, since {pending['oldest']}): a process "
            "died before completing it; `audited-openai reconcile` settles such rows",
        )
    verified = found["chain"]["last_verify"]
    if verified is not None and verified["ok"] is False:
        add(
            "verify_failed",
            f"the last recorded verify ({verified['at']}) failed: {verified['summary']}",
        )
    size = found["size"]
    if size["days_left"] is not None and size["days_left"] < disk_days:
        add(
            "disk",
            f"the volume of {found['store']} has room for {size['days_left']} days at "
            f"{size['rows_per_day']} rows a day ({size['free_bytes']} bytes free)",
        )
    return said


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _span(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
