"""Reading the audit trail: history, aggregates, export, prompt diffs and replay.

Every function takes ``db`` (a path or a :class:`GenerationLogRepository`). Filter
values are always bound parameters and column names come from fixed lists, so no
filter value can change the SQL. Every aggregate is computed by the database.
"""

from __future__ import annotations

import contextlib
import csv
import difflib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta, tzinfo
from typing import TYPE_CHECKING, Any, Literal

from audited_openai._repository import (
    COLUMNS,
    Filters,
    GenerationLogRepository,
    InvalidLogError,
    LogNotFoundError,
    Problem,
    Verification,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from concurrent.futures import Future
    from datetime import datetime
    from typing import IO

    from audited_openai._repository import GenerationContext

__all__ = [
    "COLUMNS",
    "Comparison",
    "Copied",
    "Problem",
    "PromptDiff",
    "Verification",
    "checkpoint",
    "copy",
    "count",
    "duration_percentiles",
    "export",
    "export_otlp",
    "failure_rate_by_template",
    "history",
    "most_expensive",
    "replay",
    "stats",
    "status",
    "token_usage_by_day",
    "verify",
    "verify_log",
]


@contextlib.contextmanager
def _writing(
    db: str | os.PathLike[str] | GenerationLogRepository, *, create: bool = True
) -> Iterator[GenerationLogRepository]:
    """``db`` itself, or a repository over that path, closed afterwards.

    The path's database is created if need be, unless not ``create``.
    """
    if isinstance(db, GenerationLogRepository):
        yield db
        return
    repo = GenerationLogRepository(db, create=create)
    try:
        yield repo
    finally:
        repo.close()


@contextlib.contextmanager
def reading(
    db: str | os.PathLike[str] | GenerationLogRepository,
) -> Iterator[GenerationLogRepository]:
    """``db`` itself, or a read-only repository over that path, closed afterwards.

    A path is never written to, not even migrated: one that holds no audit trail (or
    an older one) is refused with :class:`StoreError`.
    """
    if isinstance(db, GenerationLogRepository):
        yield db
        return
    repo = GenerationLogRepository(db, read_only=True)
    try:
        yield repo
    finally:
        repo.close()


def history(
    db: str | os.PathLike[str] | GenerationLogRepository,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    status: str | None = None,
    model: str | None = None,
    template_name: str | None = None,
    template_version: str | None = None,
    definitie_id: int | None = None,
    endpoint: str | None = None,
    call_id: str | None = None,
    search: str | None = None,
    after_id: int | None = None,
    replays: bool | None = None,
    actor: str | None = None,
    session: str | None = None,
    reviewed: bool | None = None,
    limit: int = 100,
) -> list[GenerationContext]:
    """Return logs newest first (by id), filtered; ``after_id`` continues a listing.

    ``since`` and ``until`` are aware datetimes; ``search`` takes words that must all
    occur, ``"a phrase"`` or ``prefix*``, over the prompt and the response of
    completed rows; ``replays``: only replays (True), none (False), or both (None);
    ``actor`` and ``session``: who asked and in which session (``audit_context``);
    ``reviewed``: only rows of a definitie that has a review (True), that has none yet
    (False), or all (None).
    """
    filters = Filters(
        since=since,
        until=until,
        status=status,
        model=model,
        template_name=template_name,
        template_version=template_version,
        definitie_id=definitie_id,
        endpoint=endpoint,
        call_id=call_id,
        search=search,
        after_id=after_id,
        replays=replays,
        actor=actor,
        session=session,
        reviewed=reviewed,
    )
    with reading(db) as repo:
        return repo.history(filters, limit)


def token_usage_by_day(
    db: str | os.PathLike[str] | GenerationLogRepository,
    *,
    zone: tzinfo | None = None,
    **filters: Any,
) -> list[dict[str, Any]]:
    """Tokens of successful generations per day, newest day first (spec Appendix B).

    UTC days, or those of ``zone`` (the rows are then counted per ten minutes and
    folded, so give a ``since``).
    """
    with reading(db) as repo:
        return repo.usage_by_day(zone=zone, **filters)


def most_expensive(
    db: str | os.PathLike[str] | GenerationLogRepository, n: int = 10, **filters: Any
) -> list[dict[str, Any]]:
    """The ``n`` successful generations that used the most tokens (spec Appendix B)."""
    with reading(db) as repo:
        return repo.most_expensive(n, **filters)


def failure_rate_by_template(
    db: str | os.PathLike[str] | GenerationLogRepository, **filters: Any
) -> list[dict[str, Any]]:
    """Attempts, failures (failed or timeout) and the failure rate per template version."""
    with reading(db) as repo:
        census = repo.census(**filters)
    return _failure_rates(census)


def duration_percentiles(
    db: str | os.PathLike[str] | GenerationLogRepository, **filters: Any
) -> list[dict[str, Any]]:
    """p50 and p95 of ``duration_ms`` (nearest rank) per model and template version.

    The store counts each group, then each percentile is one index seek
    (``ORDER BY duration_ms LIMIT 1 OFFSET rank - 1``): no group is sorted.
    """
    with reading(db) as repo:
        return _percentiles(repo, filters, repo.census(**filters))


def _failure_rates(census: list[dict[str, Any]]) -> list[dict[str, Any]]:
    templates: dict[tuple[Any, Any], list[int]] = {}
    for row in census:
        counts = templates.setdefault((row["template_name"], row["template_version"]), [0, 0])
        counts[0] += row["n"]
        counts[1] += row["n"] if row["status"] in ("failed", "timeout") else 0
    return [
        {
            "template_name": name,
            "template_version": version,
            "total": total,
            "failures": failures,
            "failure_rate": round(100.0 * failures / total, 2),
        }
        for (name, version), (total, failures) in sorted(
            templates.items(), key=lambda item: tuple(map(_sortable, item[0]))
        )
    ]


def _percentiles(
    repo: GenerationLogRepository, filters: dict[str, Any], census: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    timed: dict[tuple[Any, Any, Any], int] = {}
    for row in census:
        if row["status"] == "success" and row["timed"]:
            key = (row["model"], row["template_name"], row["template_version"])
            timed[key] = timed.get(key, 0) + row["timed"]
    groups = [
        {"model": m, "template_name": n, "template_version": v, "count": c}
        for (m, n, v), c in sorted(timed.items(), key=lambda item: tuple(map(_sortable, item[0])))
    ]

    def fill(group: dict[str, Any]) -> None:
        key = (group["model"], group["template_name"], group["template_version"])
        for percent in (50, 95):
            rank = -(-percent * group["count"] // 100)  # nearest rank: ceil(p * n)
            group[f"p{percent}_ms"] = repo.duration_at_rank(key, rank, **filters)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(fill, groups))
    return groups


def stats(db: str | os.PathLike[str] | GenerationLogRepository, **filters: Any) -> dict[str, Any]:
    """Everything the ``stats`` command shows, in one dictionary.

    Two scans run side by side, each on a connection of its own: a census counting
    rows per template, status and model, and the token usage per day. Status counts,
    failure rates and the group sizes of the percentiles are sums of the census's few
    dozen rows; each percentile is then one index seek.
    """
    Filters(**filters)  # a bad filter is refused before anything runs
    with reading(db) as repo:
        return _stats(repo, filters)


def _stats(repo: GenerationLogRepository, filters: dict[str, Any]) -> dict[str, Any]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        census_future = pool.submit(repo.census, **filters)
        usage_future = pool.submit(repo.usage_by_day, **filters)
        expensive = repo.most_expensive(5, **filters)
        census, usage = census_future.result(), usage_future.result()
    by_status: dict[str, int] = {}
    for row in census:
        by_status[row["status"]] = by_status.get(row["status"], 0) + row["n"]
    return {
        "by_status": dict(sorted(by_status.items())),
        "token_usage_by_day": usage,
        "failure_rate_by_template": _failure_rates(census),
        "duration_percentiles": _percentiles(repo, filters, census),
        "most_expensive": expensive,
    }


def _sortable(value: Any) -> tuple[int, Any]:
    """Order as SQL does: NULL first."""
    return (0, "") if value is None else (1, value)


def count(db: str | os.PathLike[str] | GenerationLogRepository, **filters: Any) -> int:
    """How many logs match the filters (those of :func:`history`, ``after_id`` aside)."""
    with reading(db) as repo:
        return repo.count(**filters)


def iter_rows(
    db: str | os.PathLike[str] | GenerationLogRepository, batch: int = 500, **filters: Any
) -> Iterator[tuple[Any, ...]]:
    """Yield every matching row (``COLUMNS`` order), oldest first, a batch at a time.

    Keyset pagination: no long-lived read transaction, constant memory.
    """
    with reading(db) as repo:
        yield from repo.iter_rows(batch, **filters)


def export(
    db: str | os.PathLike[str] | GenerationLogRepository,
    fmt: Literal["csv", "jsonl"],
    out: IO[str],
    *,
    progress: Callable[[int], None] | None = None,
    **filters: Any,
) -> int:
    """Write the matching rows to ``out`` as CSV (with a header) or JSON lines.

    Streams: memory stays constant whatever the number of rows. Returns the count;
    ``progress(n)`` is called after each batch with the rows written so far.
    """
    if fmt not in ("csv", "jsonl"):
        raise InvalidLogError(f"format must be 'csv' or 'jsonl', not {fmt!r}", "format")
    writer = csv.writer(out) if fmt == "csv" else None
    if writer is not None:
        writer.writerow(COLUMNS)
    count = 0
    for row in iter_rows(db, **filters):
        if writer is not None:
            writer.writerow(row)
        else:
            out.write(json.dumps(dict(zip(COLUMNS, row, strict=True)), ensure_ascii=False) + "\n")
        count += 1
        if progress is not None and count % 500 == 0:
            progress(count)
    if progress is not None:
        progress(count)
    return count


@dataclass(frozen=True)
class Copied:
    """What :func:`copy` did.

    Rows inserted, pending rows completed, rows already there, and the errors of rows
    the target refused.
    """

    inserted: int
    completed: int
    present: int
    failed: list[str]


def copy(
    source: str | os.PathLike[str] | GenerationLogRepository,
    target: str | os.PathLike[str] | GenerationLogRepository,
    *,
    progress: Callable[[int], None] | None = None,
) -> Copied:
    """Copy every row of ``source`` into ``target``; again, only what changed.

    A row is known by ``(call_id, attempt)``: missing, it is inserted; pending in the
    target and complete in the source, it is completed; otherwise left alone. Each page
    of 500 rows is committed before the next is read, so memory stays constant and an
    interrupted copy is simply run again.
    """
    with reading(source) as src, _writing(target) as dst:
        return _copy(src, dst, progress)


def _copy(
    src: GenerationLogRepository,
    dst: GenerationLogRepository,
    progress: Callable[[int], None] | None,
) -> Copied:
    tally = {"inserted": 0, "completed": 0, "present": 0}
    failed: list[str] = []
    page: list[GenerationContext] = []
    seen = 0
    for log in src.iter_logs():
        page.append(log)
        seen += 1
        if len(page) == 500:  # noqa: PLR2004 - one page of iter_rows
            _copy_page(src, dst, page, tally, failed)
            if progress is not None:
                progress(seen)
    _copy_page(src, dst, page, tally, failed)
    if progress is not None:
        progress(seen)
    return Copied(tally["inserted"], tally["completed"], tally["present"], failed)


Write = tuple["Future[Any]", "GenerationContext", str]


def _copy_page(
    src: GenerationLogRepository,
    dst: GenerationLogRepository,
    page: list[GenerationContext],
    tally: dict[str, int],
    failed: list[str],
) -> None:
    """Write one page of :func:`copy` and wait for it; empties ``page``.

    A replay's ``replay_of`` becomes the target's id of its original (known by call and
    attempt), once what was queued before it is in; 0 if the original is not there.
    """
    if not page:
        return
    found = dst.attempts_of(list({log.call_id for log in page}))
    writes: list[Write] = []
    for log in page:
        there = found.get((log.call_id, log.attempt))
        if there is None:
            if log.replay_of is not None:
                _settle(writes, tally, failed)
                log.replay_of = _same_row(src, dst, log.replay_of)
            writes.append((dst.submit_log(log), log, "inserted"))
        elif there["generation_status"] == "pending" and log.status != "pending":
            write = dst.submit_complete(there["id"], log, only_pending=True)
            writes.append((write, log, "completed"))
        else:
            tally["present"] += 1
    _settle(writes, tally, failed)
    page.clear()


def _settle(writes: list[Write], tally: dict[str, int], failed: list[str]) -> None:
    """Wait for the queued writes of a copy, and count them; empties ``writes``."""
    for write, log, what in writes:
        if (error := write.exception()) is not None:
            failed.append(f"log {log.id} (call {log.call_id}, attempt {log.attempt}): {error}")
        else:
            tally[what if write.result() is not False else "present"] += 1
    writes.clear()


def _same_row(src: GenerationLogRepository, dst: GenerationLogRepository, log_id: int) -> int:
    """The id in ``dst`` of row ``log_id`` of ``src`` (0: not there)."""
    try:
        row = src.get(log_id)
    except LogNotFoundError:
        return 0
    there = dst.attempts_of([row.call_id]).get((row.call_id, row.attempt))
    return int(there["id"]) if there else 0


@dataclass(frozen=True)
class PromptDiff:
    """Two prompts compared: a unified diff and the parameters that differ."""

    a: int
    b: int
    diff: str
    parameters: dict[str, tuple[Any, Any]]


def diff_prompts(
    db: str | os.PathLike[str] | GenerationLogRepository, a: int, b: int
) -> PromptDiff:
    """Compare the prompts of logs ``a`` and ``b``: unified diff plus differing parameters.

    Parameters are those of the columns and every other key of the request body
    (``seed``, ``response_format``, ...), messages excepted.
    """
    with reading(db) as repo:
        left, right = repo.get(a), repo.get(b)
    lines = difflib.unified_diff(
        left.prompt.full_text.splitlines(),
        right.prompt.full_text.splitlines(),
        fromfile=f"log {a}",
        tofile=f"log {b}",
        lineterm="",
    )
    params_a, params_b = _parameters(left), _parameters(right)
    differ = {
        key: (params_a.get(key), params_b.get(key))
        for key in sorted(set(params_a) | set(params_b))
        if params_a.get(key) != params_b.get(key)
    }
    text = "\n".join(lines)
    return PromptDiff(a=a, b=b, diff=text + "\n" if text else "", parameters=differ)


def _parameters(ctx: GenerationContext) -> dict[str, Any]:
    params = ctx.prompt.model_params
    found: dict[str, Any] = {
        "model_name": params.name,
        "model_temperature": _num(params.temperature),
        "model_max_tokens": params.max_tokens,
        "model_top_p": _num(params.top_p),
        "model_frequency_penalty": _num(params.frequency_penalty),
        "model_presence_penalty": _num(params.presence_penalty),
        "prompt_template_name": ctx.prompt.template_name,
        "prompt_template_version": ctx.prompt.template_version,
        "prompt_modules_used": ctx.prompt.modules_used,
        "endpoint": ctx.endpoint,
        "stream": ctx.stream,
    }
    try:
        body = json.loads(ctx.request_json or "{}")
    except ValueError:
        body = {}
    if isinstance(body, dict):
        for key, value in body.items():
            if key not in ("messages", "input", "instructions"):
                found[f"request.{key}"] = value
    return found


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class Comparison:
    """A replayed generation next to its original."""

    original_id: int
    replay_id: int | None
    same_text: bool
    original_text: str | None
    replay_text: str | None
    tokens_delta: int | None
    duration_delta_ms: int | None


def replay(
    db: str | os.PathLike[str] | GenerationLogRepository, log_id: int, client: Any
) -> Comparison:
    """Send the exact stored request again through an audited ``client`` and compare.

    The new row is a replay: its ``replay_of`` is ``log_id``, so it is never taken for
    the generation of a definitie. It carries the original's template name, version and
    modules, and its definitie: erasing the definitie erases the replay too. A request
    that was streamed is replayed as a stream and read to its end.
    """
    send_again = getattr(client, "_audit_send_again", None)
    if not callable(send_again):
        raise InvalidLogError(
            f"replay needs a sync audited client (AuditedOpenAI), not {type(client).__name__}",
            "client",
        )
    with reading(db) as repo:
        original = repo.get(log_id)
    replay_id = send_again(original)
    new = client.audit_store.get(replay_id) if replay_id is not None else None
    return _compare(original, new)


def _compare(original: GenerationContext, new: GenerationContext | None) -> Comparison:
    old_text = original.response.content if original.response else None
    new_text = new.response.content if new and new.response else None
    old_tokens = original.response.tokens_total if original.response else None
    new_tokens = new.response.tokens_total if new and new.response else None
    old_ms = original.response.duration_ms if original.response else None
    new_ms = new.response.duration_ms if new and new.response else None
    return Comparison(
        original_id=original.id or 0,
        replay_id=new.id if new else None,
        same_text=old_text == new_text,
        original_text=old_text,
        replay_text=new_text,
        tokens_delta=None if old_tokens is None or new_tokens is None else new_tokens - old_tokens,
        duration_delta_ms=None if old_ms is None or new_ms is None else new_ms - old_ms,
    )


def verify(
    db: str | os.PathLike[str] | GenerationLogRepository,
    *,
    checkpoint: str | os.PathLike[str] | dict[str, Any] | None = None,
    public_key: str | os.PathLike[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
    record: bool = False,
) -> Verification:
    """Recompute the tamper-evident chain and check every row against it.

    Reports each row whose content no longer matches its last event, each row deleted
    or inserted outside the library, each event changed, swapped, inserted or missing,
    and (against a ``checkpoint`` from :func:`checkpoint`, signed when ``public_key`` is
    given) a rewritten or truncated chain. Constant memory; ``progress(done, total)``
    counts events and rows.

    A small trail is read in one snapshot. From 500,000 events and rows, the work is
    shared out to ``workers`` processes (default: one per core), each over ranges of
    events and rows in a snapshot of its own; what was written after the verification
    began is left to the next one.

    ``record`` notes the result in the database, where :func:`status` shows it (a note
    for operations: the verification itself is the evidence).
    """
    with _writing(db, create=False) if record else reading(db) as repo:
        result = repo.verify(
            checkpoint=checkpoint, public_key=public_key, progress=progress, workers=workers
        )
        if record:
            repo.record_check(
                "verify",
                events=result.events,
                summary=result.summary(),
                problems=len(result.problems),
                ok=result.ok,
            )
        return result


def checkpoint(
    db: str | os.PathLike[str] | GenerationLogRepository,
    *,
    key: str | os.PathLike[str] | None = None,
    record: bool = False,
) -> dict[str, Any]:
    """The chain's head (event count, hash, time), signed with an Ed25519 PEM ``key`` if given.

    Keep it away from the database (another machine, a write-once bucket, a ticket):
    :func:`verify` against it then shows a rewritten or truncated trail. ``record``
    notes it in the database too, so that :func:`status` can say how old it is.
    """
    with _writing(db, create=False) if record else reading(db) as repo:
        found = repo.checkpoint(key=key)
        if record:
            repo.record_check("checkpoint", events=found["events"], summary=found["hash"])
        return found


def status(
    db: str | os.PathLike[str] | GenerationLogRepository,
    *,
    since: datetime | None = None,
    pending_after: timedelta = timedelta(minutes=15),
    disk_days: float = 7.0,
) -> dict[str, Any]:
    """The trail's health at a glance: what ``audited-openai status`` shows.

    ``definities``: the generated ones (``source_type = 'generated'`` in the host's
    table, created ``since`` if given) and the ids of those without a successful
    generation log; ``pending``: rows still pending, and how many for longer than
    ``pending_after``; ``periods``: failures, the top error types and duration
    percentiles over the last day, the last week and the week before; ``size``: bytes,
    rows a day and (SQLite) the days of room left on the volume at that rate;
    ``chain``: its head and the last recorded checkpoint and verification (``record=True``);
    ``schema``: its version. ``problems``: each condition to alert on, a ``kind`` and a
    one-line ``message`` (the definities without a log, stale pending rows, a failed
    last verification, a volume full within ``disk_days``). Only reads.
    """
    with reading(db) as repo:
        return repo.status(since=since, pending_after=pending_after, disk_days=disk_days)


def compare(
    db: str | os.PathLike[str] | GenerationLogRepository,
    a: str,
    b: str,
    *,
    by: str | None = None,
    experiment: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    **filters: Any,
) -> dict[str, Any]:
    """Variants ``a`` and ``b`` compared: what ``audited-openai compare`` shows.

    ``by``: ``"template_version"`` (the default), ``"template_name"``, ``"model"``, or
    any key of the rows' metadata; with ``experiment`` (an :func:`audited_openai.ab.experiment`
    name) it defaults to ``"arm"`` and only that experiment's rows count. ``since`` /
    ``until`` and the other filters of :func:`history` narrow the rows. Completed rows
    that are no replays are compared.

    ``variants``: per variant, calls, attempts, definities, the failure rate per attempt
    and per call (``rate`` with its 95 % Wilson interval ``low``-``high``), latency,
    tokens and cost (``n``, ``mean``, ``p50``, ``p95``, ``total``; cost in ``currency``,
    ``unknown``: successes without a price), finish reasons. ``differences``: per
    measure the test, its ``p``, whether a difference is ``shown`` (p < 0.05), the
    ``better`` variant and a one-line ``verdict``; for rates the difference with its
    Newcombe interval. Only reads, from the covering index when ``by`` is the version.
    """
    found = Filters(since=since, until=until, **filters)
    with reading(db) as repo:
        return repo.compare(a, b, by=by, experiment=experiment, filters=found)


def verify_log(db: str | os.PathLike[str] | GenerationLogRepository, log_id: int) -> Verification:
    """Check one row against its last event, and that event's link: quick at any size.

    ``events`` of the result is the chain's length; :func:`verify` checks the whole chain.
    """
    with reading(db) as repo:
        return repo.verify_log(log_id)


def export_otlp(
    db: str | os.PathLike[str] | GenerationLogRepository,
    endpoint: str | None = None,
    *,
    progress: Callable[[int], None] | None = None,
    batch: int = 500,
    **filters: Any,
) -> int:
    """Send the matching rows to an OTLP/HTTP endpoint as spans with their original times.

    ``endpoint``: the collector's base URL (``/v1/traces`` is added), else the
    ``OTEL_EXPORTER_OTLP_*`` variables. Completed rows only (a pending row has no end).
    Sent in batches; ``progress(n)`` after each. Returns how many were sent; an endpoint
    that refuses a batch raises :class:`StoreError`, naming it.
    """
    with reading(db) as repo:
        return repo.export_otlp(endpoint, progress=progress, batch=batch, **filters)
