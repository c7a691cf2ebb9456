"""Verifying the chain: every event recomputed, every row against its last event.

:func:`verify` reads one snapshot in two streaming passes (constant memory): the events
in order (each link recomputed, the newest's too), then the log ids up to the highest of
a row or an event, each row beside the last event of its log id; then each review
beside the last event of its negated id. From
``PARALLEL_FROM`` events and rows :func:`verify_store` shares the work out to worker
processes, each over ranges in a snapshot of its own (:func:`part_main`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audited_openai import _checkpoint, _sql
from audited_openai._chain import (
    GENESIS,
    GONE,
    Snapshot,
    link_hash,
    named,
    review_state,
    state,
)
from audited_openai._errors import StoreError
from audited_openai._rows import CHAINED, FIRST_CHAINED

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from audited_openai._store import Store


@dataclass
class Problem:
    """One thing that does not hold: what (``kind``), where, and in words."""

    kind: str  # event, missing_events, row_changed, row_deleted, row_inserted, truncated, ...
    message: str
    seq: int | None = None
    log_id: int | None = None


@dataclass
class Verification:
    """What :func:`verify` found: the counts, and every problem."""

    events: int = 0
    rows: int = 0
    head: str = GENESIS
    erased: int = 0  # rows erased through the library (erase events)
    host_erased: int = 0  # rows gone with their definitie, deleted by the host app
    retained: int = 0  # rows removed by the retention policy (retain events)
    reviews: int = 0  # reviews checked against their events
    reviews_erased: int = 0  # reviews gone with their definitie or by retention
    adopted: int = 0  # rows chained when the trail was adopted (history before not covered)
    adopted_at: str | None = None
    checkpoint: dict[str, Any] | None = None
    signature: str = "none"  # none, valid, not checked, forged
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the chain, the rows and the checkpoint all hold."""
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        """For ``--json``."""
        return {**asdict(self), "ok": self.ok}

    def summary(self) -> str:
        """One line saying whether it holds."""
        if self.ok:
            reviews = f"{self.reviews} reviews, " if self.reviews else ""
            said = f"verified: {self.events} events, {self.rows} rows, {reviews}"
            said += f"head {self.head[:16]}"
            if self.checkpoint is not None:
                said += f"; the checkpoint of {self.checkpoint['events']} events holds"
                if self.signature == "valid":
                    said += " (signature valid)"
            return said
        return (
            f"NOT verified: {len(self.problems)} problem(s) in {self.events} events, "
            f"{self.rows} rows"
        )

    def notes(self) -> list[str]:
        """What an auditor should know even when everything holds."""
        said = []
        if self.adopted:
            said.append(
                f"{self.adopted} rows were chained when the trail was adopted "
                f"({self.adopted_at}): what happened to them before is not covered"
            )
        if self.erased:
            said.append(f"{self.erased} rows were erased (their events keep the digests)")
        if self.retained:
            said.append(
                f"{self.retained} rows were removed by the retention policy (their events "
                "keep the digests)"
            )
        if self.reviews_erased:
            said.append(f"{self.reviews_erased} reviews went with their definitie or by retention")
        if self.host_erased:
            said.append(
                f"{self.host_erased} rows went with their definitie, deleted by the host app "
                "(not chained: no erase event)"
            )
        if self.signature == "not checked":
            said.append("the checkpoint is signed, but no public key was given to check it")
        return said


@dataclass(frozen=True)
class Part:
    """A share of a verification: events ``seqs`` and rows ``ids`` (inclusive ranges).

    ``head`` is the chain's last event when the verification began: a row whose last
    event came later was written since, and is left to the next verification.
    """

    seqs: tuple[int, int]
    ids: tuple[int, int]
    head: int
    checkpoint_seq: int | None = None

    @property
    def size(self) -> int:
        """Events and rows in it (for progress)."""
        return max(0, self.seqs[1] - self.seqs[0] + 1) + max(0, self.ids[1] - self.ids[0] + 1)


def bounds(snapshot: Snapshot) -> tuple[int, int]:
    """(the last event's seq, the highest log id) of a snapshot.

    The highest log id is that of a row or of an event, whichever is higher: the newest
    rows deleted behind the library's back still have their events, and are checked.
    """
    head = next(snapshot.rows(_sql.EVENTS_TOP))[0]
    top = next(snapshot.rows(_sql.LOG_TOP))[0]
    return int(head), int(top)


def split(head: int, top: int, parts: int, checkpoint_seq: int | None = None) -> list[Part]:
    """``parts`` shares of events 1..head and rows 1..top."""

    def cut(last: int, n: int) -> tuple[int, int]:
        step = -(-last // parts) if last else 1
        return (n * step + 1, min(last, (n + 1) * step) if n < parts - 1 else last)

    return [Part(cut(head, n), cut(top, n), head, checkpoint_seq) for n in range(parts)]


def verify_part(
    snapshot: Snapshot, part: Part, tick: Callable[[], None] | None = None
) -> tuple[Verification, str | None]:
    """Check one share in one snapshot: its links, its rows; the checkpoint event's hash."""
    found = Verification()
    tick = tick or (lambda: None)
    at_checkpoint = _walk_events(found, snapshot, part, tick)
    _walk_rows(found, snapshot, part, tick)
    if part.ids[0] <= 1:  # the reviews, with the first share of the rows
        _walk_reviews(found, snapshot, part)
    return found, at_checkpoint


def merge(
    results: list[tuple[Verification, str | None]],
    *,
    checkpoint: dict[str, Any] | None = None,
    public_key: str | os.PathLike[str] | None = None,
) -> Verification:
    """One verification of the shares' results (in order), checked against the checkpoint."""
    found = Verification(checkpoint=checkpoint)
    at_checkpoint = None
    for share, at in results:
        found.events += share.events
        found.rows += share.rows
        found.erased += share.erased
        found.host_erased += share.host_erased
        found.retained += share.retained
        found.reviews += share.reviews
        found.reviews_erased += share.reviews_erased
        found.adopted += share.adopted
        found.adopted_at = found.adopted_at or share.adopted_at
        found.problems += share.problems
        if share.events:
            found.head = share.head
        at_checkpoint = at_checkpoint or at
    found.problems.sort(
        key=lambda p: (0, p.seq or 0) if p.kind in _EVENT_PROBLEMS else (1, p.log_id or 0)
    )
    if checkpoint is not None:
        _check_signature(found, checkpoint, public_key)
        _check_against(found, checkpoint, at_checkpoint)
    return found


_EVENT_PROBLEMS = frozenset({"missing_events", "event"})


def verify(
    snapshot: Snapshot,
    *,
    checkpoint: dict[str, Any] | None = None,
    public_key: str | os.PathLike[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Verification:
    """Recompute the chain over one snapshot; see the module docstring.

    ``progress(done, total)`` is told every 10,000 events and rows.
    """
    head, top = bounds(snapshot)
    (part,) = split(head, top, 1, None if checkpoint is None else checkpoint["events"])
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None and done % 10_000 == 0:
            progress(done, part.size)

    result = verify_part(snapshot, part, tick)
    if progress is not None:
        progress(part.size, part.size)
    return merge([result], checkpoint=checkpoint, public_key=public_key)


def _check_signature(
    found: Verification, checkpoint: dict[str, Any], public_key: str | os.PathLike[str] | None
) -> None:
    if public_key is not None:
        found.signature = (
            "valid" if _checkpoint.signature_holds(checkpoint, public_key) else "forged"
        )
        if found.signature == "forged":
            found.problems.insert(
                0, Problem("forged_checkpoint", "the checkpoint's signature does not hold")
            )
    elif checkpoint.get("signature"):
        found.signature = "not checked"


def _walk_events(
    found: Verification, snapshot: Snapshot, part: Part, tick: Callable[[], None]
) -> str | None:
    """Check every link of the share in order; the stored hash of the checkpoint's event."""
    first, last = part.seqs
    prev: str = GENESIS
    if first > 1:
        before = next(snapshot.rows(_sql.event_hash(first - 1)), None)
        prev = "" if before is None else str(before[0])  # missing: the share before says so
    expected, at_checkpoint = first, None
    for seq, log_id, definitie_id, kind, at, note, row_state, stored in snapshot.rows(
        _sql.events_between(first, last)
    ):
        tick()
        if seq != expected:
            found.problems.append(
                Problem(
                    "missing_events",
                    f"events {expected} to {seq - 1} are missing before event {seq}",
                    seq=seq,
                )
            )
        if link_hash(prev, (seq, log_id, definitie_id, kind, at, note, row_state)) != stored:
            found.problems.append(
                Problem(
                    "event",
                    f"event {seq} (log {log_id}, {kind}) does not follow from the event "
                    "before it: changed, swapped, inserted or removed",
                    seq=seq,
                    log_id=log_id,
                )
            )
        if kind == "adopt":
            found.adopted += 1
            found.adopted_at = found.adopted_at or at
        prev, expected = stored, seq + 1
        found.events += 1
        if seq == part.checkpoint_seq:
            at_checkpoint = stored
    if first <= last < part.head and expected <= last:
        found.problems.append(
            Problem(
                "missing_events",
                f"events {expected} to {last} are missing before event {last + 1}",
                seq=last + 1,
            )
        )
    found.head = prev
    return at_checkpoint


def _walk_rows(
    found: Verification, snapshot: Snapshot, part: Part, tick: Callable[[], None]
) -> None:
    """Each row of the share beside the last event of its log id (both in id order)."""
    first, last = part.ids
    rows = snapshot.rows(_sql.chained_rows_between(first, last))
    events = _last_events(snapshot.rows(_sql.events_of_rows_between(first, last)))
    for row, event in _beside(rows, events):
        if event is None:
            found.problems.append(
                Problem(
                    "row_inserted",
                    f"log {row[0]} has no event: written outside the library",
                    log_id=row[0],
                )
            )
        elif event[1] > part.head:
            pass  # written since the verification began: the next one checks it
        elif row is not None:
            _compare(found, row, event)
        else:
            _gone(found, snapshot, event)
        if row is not None:
            found.rows += 1
            tick()


def _walk_reviews(found: Verification, snapshot: Snapshot, part: Part) -> None:
    """Each review beside its last event (its log id negated: see ``_review``), by id."""
    reviews = snapshot.rows(_sql.CHAINED_REVIEWS)
    events = _last_events(snapshot.rows(_sql.EVENTS_OF_REVIEWS), newest_first=True)
    for review, event in _beside(reviews, events):
        if event is None:
            found.problems.append(
                Problem(
                    "review_inserted",
                    f"review {review[0]} has no event: written outside the library",
                )
            )
        elif event[1] > part.head:
            pass
        elif review is not None:
            if event[2] in GONE:
                said = f"review {review[0]} was erased (event {event[1]}) but is there"
            elif review_state(review) != event[4]:
                said = f"review {review[0]} no longer matches event {event[1]} (review)"
            else:
                said = ""
            if said:
                found.problems.append(Problem("review_changed", said, seq=event[1]))
        elif event[2] in GONE or _definitie_gone(snapshot, event[3]):
            found.reviews_erased += 1
        else:
            found.problems.append(
                Problem(
                    "review_deleted",
                    f"review {event[0]} is gone without an erase event (event {event[1]})",
                    seq=event[1],
                )
            )
        if review is not None:
            found.reviews += 1


def _beside(
    rows: Iterator[Sequence[Any]], events: Iterator[tuple[Any, ...]]
) -> Iterator[tuple[Any, Any]]:
    """(row, its last event) by id, both streams in id order; None where one has none."""
    row, event = next(rows, None), next(events, None)
    while row is not None or event is not None:
        if row is not None and (event is None or row[0] < event[0]):
            yield row, None
            row = next(rows, None)
        elif row is not None and event is not None and row[0] == event[0]:
            yield row, event
            row, event = next(rows, None), next(events, None)
        else:
            yield None, event
            event = next(events, None)


def _definitie_gone(snapshot: Snapshot, definitie_id: int | None) -> bool:
    """Whether the host app deleted this definitie (its table is here, the row is not)."""
    return (
        definitie_id is not None
        and snapshot.has_definities
        and next(snapshot.rows(_sql.definitie_there(definitie_id)), None) is None
    )


def _gone(found: Verification, snapshot: Snapshot, event: tuple[Any, ...]) -> None:
    """A row with events and no row: erased, retained out, gone with its definitie, or deleted."""
    log_id, seq, kind, definitie_id, _ = event
    if kind == "erase":
        found.erased += 1
    elif kind == "retain":
        found.retained += 1
    elif _definitie_gone(snapshot, definitie_id):
        found.host_erased += 1
    else:
        found.problems.append(
            Problem(
                "row_deleted",
                f"log {log_id} is gone without an erase event (last event {seq}, {kind})",
                seq=seq,
                log_id=log_id,
            )
        )


def _last_events(
    events: Iterator[Sequence[Any]], *, newest_first: bool = False
) -> Iterator[tuple[Any, ...]]:
    """The last event of each id, from events grouped by id (``newest_first`` in a group)."""
    held: tuple[Any, ...] | None = None
    for event in events:
        if held is not None and held[0] != event[0]:
            yield held
            held = tuple(event)
        elif held is None or not newest_first:
            held = tuple(event)
    if held is not None:
        yield held


def _compare(found: Verification, row: Sequence[Any], event: tuple[Any, ...]) -> None:
    log_id, seq, kind, _, chained = event
    last = {"seq": seq, "kind": kind}
    if kind in GONE:
        found.problems.append(
            Problem(
                "row_changed",
                f"log {log_id} was erased (event {last['seq']}) but is there",
                seq=last["seq"],
                log_id=log_id,
            )
        )
        return
    now = state(row)
    if now == chained:
        return
    before, after = named(json.loads(chained or "[]")), named(json.loads(now))
    changed = [
        name
        for name in CHAINED
        if (name in FIRST_CHAINED and name not in before) or before.get(name) != after.get(name)
    ]
    found.problems.append(
        Problem(
            "row_changed",
            f"log {log_id}: {', '.join(changed) or 'its content'} no longer match event "
            f"{last['seq']} ({last['kind']})",
            seq=last["seq"],
            log_id=log_id,
        )
    )


def _check_against(found: Verification, checkpoint: dict[str, Any], at: str | None) -> None:
    wanted = checkpoint["events"]
    if found.events < wanted:
        found.problems.append(
            Problem(
                "truncated",
                f"the trail has {found.events} events, the checkpoint of "
                f"{checkpoint.get('at')} {wanted}: its tail was cut off",
            )
        )
    elif wanted and at != checkpoint["hash"]:
        found.problems.append(
            Problem(
                "checkpoint",
                f"event {wanted} does not have the checkpoint's hash: the chain was "
                "rewritten up to it",
                seq=wanted,
            )
        )


def verify_one(snapshot: Snapshot, log_id: int) -> Verification:
    """Check one row against its last event, and that event's link to the one before.

    Quick whatever the trail's size (two index lookups); :func:`verify` checks it all.
    """
    found = Verification()
    head = next(snapshot.rows(_sql.EVENT_HEAD), None)
    found.events, found.head = (int(head[0]), str(head[1])) if head else (0, GENESIS)
    log_id = int(log_id)
    last = next(snapshot.rows(_sql.last_event_of(log_id)), None)
    row = next(snapshot.rows(_sql.chained_row_of(log_id)), None)
    if last is None:
        if row is not None:
            found.rows = 1
            found.problems.append(
                Problem("row_inserted", f"log {log_id} has no event", log_id=log_id)
            )
        return found
    seq = int(last[0])
    before = next(snapshot.rows(_sql.event_hash(seq - 1)), None)
    prev = GENESIS if seq == 1 else (before[0] if before else None)
    if prev is None or link_hash(prev, last[:7]) != last[7]:
        found.problems.append(
            Problem(
                "event",
                f"event {seq} (log {log_id}) does not follow from the event before it",
                seq=seq,
                log_id=log_id,
            )
        )
    event = (log_id, seq, last[3], last[2], last[6])
    if row is not None:
        found.rows = 1
        _compare(found, row, event)
    else:  # erased, gone with its definitie, or deleted
        _gone(found, snapshot, event)
    return found


# -- one store, in one snapshot or shared out to processes --------------------------------------


def _in_a_process(target: str, part: Part) -> tuple[Verification, str | None]:
    """Verify one share in a process of its own (the target reaches it on stdin).

    The worker imports this very ``audited_openai`` (its directory first on the path),
    not whichever one the environment would find.
    """
    order = json.dumps({"target": target, "part": dataclasses.asdict(part)})
    here = str(Path(__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [sys.executable, "-c", "from audited_openai import _verify; _verify.part_main()"],
        input=order,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": path},
    )
    if done.returncode != 0:
        said = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise StoreError(f"a verify worker failed: {said}")
    found = json.loads(done.stdout)
    verification = Verification(
        **{k: v for k, v in found["found"].items() if k not in ("problems", "ok")},
    )
    verification.problems = [Problem(**problem) for problem in found["found"]["problems"]]
    return verification, found["at"]


def part_main() -> None:
    """A verify worker: one share (JSON on stdin), its result (JSON on stdout)."""
    from audited_openai._store import open_store  # noqa: PLC0415 - only in a worker

    order = json.loads(sys.stdin.read())
    part = order["part"]
    share = Part(tuple(part["seqs"]), tuple(part["ids"]), part["head"], part["checkpoint_seq"])
    store = open_store(order["target"], read_only=True)
    with store.snapshot() as snapshot:
        found, at = verify_part(snapshot, share)
    store.close()
    sys.stdout.write(json.dumps({"found": found.as_dict(), "at": at}))


def verify_store(
    store: Store,
    *,
    checkpoint: str | os.PathLike[str] | dict[str, Any] | None = None,
    public_key: str | os.PathLike[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
) -> Verification:
    """Verify a store's chain, in one snapshot or shared out to worker processes.

    From ``PARALLEL_FROM`` events and rows: ``workers`` processes (default: one per core).
    """
    wanted = None if checkpoint is None else _checkpoint.read_checkpoint(checkpoint)
    count = workers or os.cpu_count() or 1
    target = getattr(store, "reopen_target", None)
    with store.snapshot() as snapshot:
        head, top = bounds(snapshot)
        if target is None or count < 2 or head + top < PARALLEL_FROM:  # noqa: PLR2004
            return verify(snapshot, checkpoint=wanted, public_key=public_key, progress=progress)
    parts = split(head, top, count * 2, None if wanted is None else wanted["events"])
    total, done = sum(part.size for part in parts), 0
    results: list[tuple[Verification, str | None]] = []
    with ThreadPoolExecutor(count) as pool:  # each thread waits for its process
        for part, result in zip(
            parts, pool.map(lambda p: _in_a_process(target, p), parts), strict=True
        ):
            results.append(result)
            done += part.size
            if progress is not None:
                progress(done, total)
    return merge(results, checkpoint=wanted, public_key=public_key)


def verify_log(store: Store, log_id: int) -> Verification:
    """One row against its last event, and that event's link (see :func:`verify_one`)."""
    with store.snapshot() as snapshot:
        return verify_one(snapshot, log_id)


PARALLEL_FROM = 500_000  # events and rows from which verify shares the work out
