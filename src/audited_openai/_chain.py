"""The tamper-evident chain: every write to ``generation_logs`` appends a hashed event.

Each event (``generation_log_events``) records one write to one row: its kind
(``insert``, ``complete``, ``link``, ``reconcile``, ``erase``, or ``adopt`` for rows
that were there before the chain), the row's state after it, and a hash over the
event and the hash of the event before. A row's state is its columns (``CHAINED``:
all but ``updated_at``, in table order) as a canonical JSON array, every free text
(prompt, request, response, error, traceback, metadata, modules) replaced by its
SHA-256 digest, so the chain holds no personal text. Columns added after the chain
began (``LATER_COLUMNS``: ``replay_of``) are in a state only when set, as an object
after the others, so every state recorded before them still holds:
erasing a definitie deletes its rows and appends ``erase`` events, and the chain
still proves what was there, when it went and by which command.

The event is appended in the same transaction as its write, after the store took
the database's write lock (SQLite's ``BEGIN IMMEDIATE``, PostgreSQL's advisory
lock), so the chain stays linear with any number of threads, processes and hosts
writing, and a killed writer leaves neither a row without its event nor the reverse.

:func:`verify` recomputes the chain from a snapshot in two streaming passes
(constant memory): the events in order, then the rows beside the last event of
each. ``updated_at`` is bookkeeping (a trigger keeps it) and not covered.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shlex
import sys
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audited_openai._clock import format_ts, utc_now
from audited_openai._errors import InvalidLogError
from audited_openai._rows import LATER_COLUMNS, TABLE_COLUMNS, TEXT_COLUMNS

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Iterable, Iterator, Sequence

    from audited_openai._sql import Dialect

EVENTS = "generation_log_events"
SINCE_VERSION = 7  # the schema version that added the chain
GENESIS = "0" * 64  # the "hash before" of the first event
CHAINED = tuple(c for c in TABLE_COLUMNS if c != "updated_at")
FIRST_CHAINED = CHAINED[: len(CHAINED) - len(LATER_COLUMNS)]  # the columns of schema 7
DIGESTED = frozenset(("prompt_modules_used", *TEXT_COLUMNS))
_DEFINITIE = CHAINED.index("definitie_id")
_DIGESTED_AT = tuple(name in DIGESTED for name in CHAINED)
_FIRST = len(FIRST_CHAINED)
CHECKPOINT_FORMAT = "audited-openai-checkpoint/1"
NOTE_LIMIT = 500  # characters of the command line kept in an event

RETURNING = f" RETURNING {', '.join(CHAINED)}"
HEAD = f"SELECT seq, hash FROM {EVENTS} ORDER BY seq DESC LIMIT 1"
_EVENT_COLUMNS = "seq, log_id, definitie_id, kind, at, note, state, hash"
INSERT_EVENT = f"INSERT INTO {EVENTS} ({_EVENT_COLUMNS}) VALUES ({{marks}})"

SQLITE_TABLE = f"""
-- The tamper-evident chain (see audited_openai._chain): one hashed event per write.
CREATE TABLE {EVENTS} (
    seq INTEGER PRIMARY KEY,      -- 1, 2, 3, ... in the order the writes committed
    log_id INTEGER NOT NULL,      -- the row written (no foreign key: erased rows go)
    definitie_id INTEGER,
    kind TEXT NOT NULL,           -- adopt, insert, complete, link, reconcile, erase
    at TEXT NOT NULL,
    note TEXT,                    -- the command that adopted, reconciled or erased
    state TEXT,                   -- the row after the write, texts as digests (NULL: erased)
    hash TEXT NOT NULL            -- sha256(hash before + this event)
);
CREATE INDEX idx_{EVENTS}_log ON {EVENTS}(log_id, seq);
"""
POSTGRES_TABLE = SQLITE_TABLE.replace("INTEGER", "BIGINT")


def command() -> str:
    """The command line of this process, as recorded by adopt, reconcile and erase events."""
    return shlex.join(sys.argv)[:NOTE_LIMIT] or "python"


def digest(value: object) -> str:
    """The digest standing in for a text in a row's state."""
    data = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else bytes(value)  # type: ignore[call-overload]
    return "sha256:" + hashlib.sha256(data).hexdigest()


def state(values: Sequence[Any]) -> str:
    """The canonical JSON of a row: an array of its ``CHAINED`` columns, texts as digests.

    The later columns (absent from ``values`` of a row read before they existed) follow
    as one object of those that are set, or not at all.
    """
    stated: list[Any] = [
        digest(value) if digested and value is not None else value
        for digested, value in zip(_DIGESTED_AT[:_FIRST], values[:_FIRST], strict=True)
    ]
    later = {
        name: digest(value) if name in DIGESTED else value
        # a row read before they existed has none of them: not strict
        for name, value in zip(LATER_COLUMNS, values[_FIRST:], strict=False)
        if value is not None
    }
    if later:
        stated.append(later)
    return json.dumps(stated, separators=(",", ":"), ensure_ascii=False, default=str)


def _named(stated: list[Any]) -> dict[str, Any]:
    """A state's columns by name (the later ones only where set)."""
    named = dict(zip(FIRST_CHAINED, stated, strict=False))
    if len(stated) > _FIRST and isinstance(stated[_FIRST], dict):
        named.update(stated[_FIRST])
    return named


def _netstring(field: object) -> str:
    if field is None:
        return "-,"
    text = str(field)
    return f"{len(text)}:{text},"


def link_hash(prev: str, event: Sequence[Any]) -> str:
    """The hash of an event (seq, log_id, definitie_id, kind, at, note, state) after ``prev``.

    sha256 over ``prev`` and each field as a netstring (``length:text,``; ``-,`` for
    NULL): unambiguous, and far cheaper than JSON-escaping the state a second time.
    """
    body = "".join(map(_netstring, event))
    return hashlib.sha256((prev + body).encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Snapshot:
    """A store's read transaction: ``rows(sql)`` streams a query's rows from it."""

    rows: Callable[[str], Iterator[Sequence[Any]]]
    has_definities: bool


class Chain:
    """Appends events on a connection already holding the write lock (one dialect)."""

    def __init__(self, dialect: Dialect, *, lock: str | None = None) -> None:
        """SQL in ``dialect``'s placeholders.

        With ``lock`` (SQL taking the chain's lock until the transaction ends), events are
        held and appended by :meth:`seal` just before the commit, under that lock: the
        rows of concurrent transactions are written in parallel, only their events in
        turn. Events are held per thread: a writer thread runs one transaction at a time.
        """
        self.insert_event = INSERT_EVENT.format(marks=", ".join([dialect.param] * 8))
        self.param = dialect.param
        self.lock = lock
        self._local = threading.local()

    @property
    def held(self) -> list[tuple[str, int, int | None, str | None, Sequence[Any] | None]]:
        """The events this thread's transaction holds until :meth:`seal`."""
        try:
            return self._local.held  # type: ignore[no-any-return]
        except AttributeError:
            self._local.held = []
            return self._local.held  # type: ignore[no-any-return]

    def append(
        self,
        conn: Any,
        kind: str,
        log_id: int,
        *,
        erased_from: int | None = None,
        note: str | None = None,
        values: Sequence[Any] | None = None,
    ) -> None:
        """Append the event of a write to row ``log_id``.

        Its state is ``values`` (the ``CHAINED`` columns, as :meth:`written` has them). ``erase``
        events carry no state: ``erased_from`` is the definitie the row had.
        """
        if self.lock is not None:
            self.held.append((kind, log_id, erased_from, note, values))
            return
        self._append(conn, kind, log_id, erased_from=erased_from, note=note, values=values)

    def seal(self, conn: Any) -> None:
        """Take the lock and append the held events (a chain with ``lock``)."""
        if not self.held:
            return
        conn.execute(self.lock)
        held, self._local.held = self.held, []
        for kind, log_id, erased_from, note, values in held:
            self._append(conn, kind, log_id, erased_from=erased_from, note=note, values=values)

    def _append(
        self,
        conn: Any,
        kind: str,
        log_id: int,
        *,
        erased_from: int | None,
        note: str | None,
        values: Sequence[Any] | None,
    ) -> None:
        if kind == "erase":
            row_state, definitie_id = None, erased_from
        else:
            assert values is not None  # noqa: S101 - written() passes what RETURNING gave
            row_state, definitie_id = state(values), values[_DEFINITIE]
        head = conn.execute(HEAD).fetchone()
        seq, prev = (int(head[0]) + 1, head[1]) if head else (1, GENESIS)
        event = (seq, log_id, definitie_id, kind, format_ts(utc_now()), note, row_state)
        conn.execute(self.insert_event, (*event, link_hash(prev, event)))

    def written(
        self, conn: Any, sql: str, params: Sequence[Any], kind: str, note: str | None = None
    ) -> list[Sequence[Any]]:
        """Run an INSERT or UPDATE of ``generation_logs``; an event for each row it wrote.

        Returns the rows in id order (``CHAINED`` columns, as ``RETURNING`` gives them).
        ``updated_at``, which AFTER triggers may still change, is not in them.
        """
        rows = sorted(conn.execute(sql + RETURNING, params).fetchall(), key=lambda r: r[0])
        for values in rows:
            self.append(conn, kind, int(values[0]), note=note, values=values)
        return rows

    def as_chained(self, conn: Any, log_id: int) -> bool:
        """Whether row ``log_id`` is as its last event says.

        A write on top of a row changed behind the library's back would hide the change:
        a migration marks only rows that hold.
        """
        row = conn.execute(
            f"SELECT {', '.join(CHAINED)} FROM generation_logs WHERE id = {self.param}", (log_id,)
        ).fetchone()
        event = conn.execute(
            f"SELECT state FROM {EVENTS} WHERE log_id = {self.param} ORDER BY seq DESC LIMIT 1",
            (log_id,),
        ).fetchone()
        return row is not None and event is not None and state(row) == event[0]

    def adopt(self, conn: Any, rows: Iterable[Sequence[Any]]) -> None:
        """Chain rows written before the chain existed, in id order, as ``adopt`` events."""
        head = conn.execute(HEAD).fetchone()
        seq, prev = (int(head[0]), head[1]) if head else (0, GENESIS)
        at, note = format_ts(utc_now()), f"chained when adopted: {command()}"
        for values in rows:
            seq += 1
            event = (seq, values[0], values[_DEFINITIE], "adopt", at, note, state(values))
            prev = link_hash(prev, event)
            conn.execute(self.insert_event, (*event, prev))


# -- checkpoints ------------------------------------------------------------------------------


def _signed_part(checkpoint: dict[str, Any]) -> bytes:
    unsigned = {k: v for k, v in checkpoint.items() if k != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":")).encode()


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
        from cryptography.hazmat.primitives.asymmetric import ed25519  # noqa: PLC0415
    except ImportError as exc:
        raise InvalidLogError(
            "signing checkpoints needs the cryptography package: "
            "pip install 'audited-openai[signing]'"
        ) from exc
    return serialization, ed25519


def _key(path: str | os.PathLike[str], kind: str) -> Any:
    serialization, ed25519 = _crypto()
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidLogError(f"cannot read the {kind} key {path}: {exc.strerror}") from exc
    try:
        if kind == "private":
            key = serialization.load_pem_private_key(data, password=None)
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise InvalidLogError(f"{path} is not a PEM {kind} key: {exc}") from exc
    wanted = ed25519.Ed25519PrivateKey if kind == "private" else ed25519.Ed25519PublicKey
    if not isinstance(key, wanted):
        raise InvalidLogError(f"{path} is not an Ed25519 {kind} key")
    return key


def make_checkpoint(
    trail: str, events: int, head: str, key_file: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """The checkpoint of a chain's head, signed with the Ed25519 key in ``key_file``."""
    checkpoint: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "trail": trail,
        "events": events,
        "hash": head,
        "at": format_ts(utc_now()),
    }
    if key_file is not None:
        signature = _key(key_file, "private").sign(_signed_part(checkpoint))
        checkpoint["signature"] = base64.b64encode(signature).decode()
    return checkpoint


def read_checkpoint(source: str | os.PathLike[str] | dict[str, Any]) -> dict[str, Any]:
    """A checkpoint from a file (or as given), checked for its fields."""
    if isinstance(source, dict):
        found = source
    else:
        try:
            found = json.loads(Path(source).read_text(encoding="utf-8"))
        except OSError as exc:
            raise InvalidLogError(f"cannot read the checkpoint {source}: {exc.strerror}") from exc
        except ValueError as exc:
            raise InvalidLogError(f"{source} is not a checkpoint (not JSON: {exc})") from exc
    if (
        not isinstance(found, dict)
        or found.get("format") != CHECKPOINT_FORMAT
        or isinstance(found.get("events"), bool)
        or not isinstance(found.get("events"), int)
        or not isinstance(found.get("hash"), str)
    ):
        raise InvalidLogError(f"{source} is not an {CHECKPOINT_FORMAT} checkpoint")
    return found


def signature_holds(checkpoint: dict[str, Any], public_key_file: str | os.PathLike[str]) -> bool:
    """Whether the checkpoint carries a valid signature by the key in ``public_key_file``."""
    key = _key(public_key_file, "public")
    try:
        signature = base64.b64decode(checkpoint.get("signature") or "", validate=True)
        key.verify(signature, _signed_part(checkpoint))
    except Exception:  # any failure (bad base64, a bad signature) is a forgery
        return False
    return bool(signature)


# -- verification -----------------------------------------------------------------------------


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
            said = f"verified: {self.events} events, {self.rows} rows, head {self.head[:16]}"
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
    head = next(snapshot.rows(f"SELECT coalesce(max(seq), 0) FROM {EVENTS}"))[0]
    top = next(
        snapshot.rows(
            "SELECT max(top) FROM (SELECT coalesce(max(id), 0) AS top FROM generation_logs"
            f" UNION ALL SELECT coalesce(max(log_id), 0) FROM {EVENTS}) AS tops"
        )
    )[0]
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
        found.signature = "valid" if signature_holds(checkpoint, public_key) else "forged"
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
        before = next(snapshot.rows(f"SELECT hash FROM {EVENTS} WHERE seq = {first - 1}"), None)
        prev = "" if before is None else str(before[0])  # missing: the share before says so
    expected, at_checkpoint = first, None
    for seq, log_id, definitie_id, kind, at, note, row_state, stored in snapshot.rows(
        f"SELECT {_EVENT_COLUMNS} FROM {EVENTS} WHERE seq BETWEEN {first} AND {last} ORDER BY seq"
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
    rows = snapshot.rows(
        f"SELECT {', '.join(CHAINED)} FROM generation_logs "
        f"WHERE id BETWEEN {first} AND {last} ORDER BY id"
    )
    events = _last_events(snapshot, first, last)
    row = next(rows, None)
    event = next(events, None)
    while row is not None or event is not None:
        if row is not None and (event is None or row[0] < event[0]):
            found.problems.append(
                Problem(
                    "row_inserted",
                    f"log {row[0]} has no event: written outside the library",
                    log_id=row[0],
                )
            )
        elif event is not None and event[1] > part.head:
            pass  # written since the verification began: the next one checks it
        elif event is not None and row is not None and row[0] == event[0]:
            _compare(found, row, event)
        elif event is not None:
            _gone(found, snapshot, event)
        if row is not None and (event is None or row[0] <= event[0]):
            found.rows += 1
            tick()
            if event is not None and row[0] == event[0]:
                event = next(events, None)
            row = next(rows, None)
        else:
            event = next(events, None)


def _gone(found: Verification, snapshot: Snapshot, event: tuple[Any, ...]) -> None:
    """A row with events and no row: erased, gone with its definitie, or deleted."""
    log_id, seq, kind, definitie_id, _ = event
    if kind == "erase":
        found.erased += 1
    elif (
        definitie_id is not None
        and snapshot.has_definities
        and next(snapshot.rows(f"SELECT 1 FROM definities WHERE id = {int(definitie_id)}"), None)
        is None
    ):
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


def _last_events(snapshot: Snapshot, first: int, last: int) -> Iterator[tuple[Any, ...]]:
    """(log_id, seq, kind, definitie_id, state) of the last event of each row, by log id."""
    held: tuple[Any, ...] | None = None
    for event in snapshot.rows(
        f"SELECT log_id, seq, kind, definitie_id, state FROM {EVENTS} "
        f"WHERE log_id BETWEEN {first} AND {last} ORDER BY log_id, seq"
    ):
        if held is not None and held[0] != event[0]:
            yield held
        held = tuple(event)
    if held is not None:
        yield held


def _compare(found: Verification, row: Sequence[Any], event: tuple[Any, ...]) -> None:
    log_id, seq, kind, _, chained = event
    last = {"seq": seq, "kind": kind}
    if kind == "erase":
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
    before, after = _named(json.loads(chained or "[]")), _named(json.loads(now))
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
    head = next(snapshot.rows(HEAD), None)
    found.events, found.head = (int(head[0]), str(head[1])) if head else (0, GENESIS)
    log_id = int(log_id)
    last = next(
        snapshot.rows(
            f"SELECT {_EVENT_COLUMNS} FROM {EVENTS} WHERE log_id = {log_id} "
            "ORDER BY seq DESC LIMIT 1"
        ),
        None,
    )
    row = next(
        snapshot.rows(f"SELECT {', '.join(CHAINED)} FROM generation_logs WHERE id = {log_id}"),
        None,
    )
    if last is None:
        if row is not None:
            found.rows = 1
            found.problems.append(
                Problem("row_inserted", f"log {log_id} has no event", log_id=log_id)
            )
        return found
    seq = int(last[0])
    before = next(snapshot.rows(f"SELECT hash FROM {EVENTS} WHERE seq = {seq - 1}"), None)
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
    elif last[3] == "erase":
        found.erased = 1
    else:
        _gone(found, snapshot, event)
    return found
