"""Connections and group commit: concurrent writers share transactions, failures stay apart."""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import TYPE_CHECKING

import pytest

from audited_openai._database import Database, Statement, _queue_for

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def database(tmp_path: Path) -> Database:
    db = Database(tmp_path / "g.db")
    db.run(lambda conn: conn.execute("CREATE TABLE t (x INTEGER UNIQUE)"))
    return db


def _values(db: Database) -> list[int]:
    with db.read() as conn:
        return [r[0] for r in conn.execute("SELECT x FROM t ORDER BY x")]


def test_queued_writers_commit_together_and_fail_alone(database: Database) -> None:
    """Jobs that queue behind a leader commit in one batch; one failing job fails alone."""
    release = threading.Event()
    started = threading.Event()
    results: dict[str, object] = {}

    def slow(conn: sqlite3.Connection) -> int:
        started.set()
        release.wait(5)
        conn.execute("INSERT INTO t VALUES (1)")
        return 1

    def call(name: str, work: object) -> None:
        try:
            results[name] = database.run(work)  # type: ignore[arg-type]
        except Exception as exc:
            results[name] = exc

    leader = threading.Thread(target=call, args=("leader", slow))
    leader.start()
    started.wait(5)
    followers = [
        threading.Thread(
            target=call, args=("good", lambda c: c.execute("INSERT INTO t VALUES (2)").rowcount)
        ),
        threading.Thread(
            target=call, args=("dup", lambda c: c.execute("INSERT INTO t VALUES (1)"))
        ),
        threading.Thread(
            target=call, args=("other", lambda c: c.execute("INSERT INTO t VALUES (3)").rowcount)
        ),
    ]
    for thread in followers:
        thread.start()
    while len(_queue_for(database.path).jobs) < 3:
        time.sleep(0.001)
    release.set()
    for thread in [leader, *followers]:
        thread.join(5)
    assert results["leader"] == 1
    assert results["good"] == 1
    assert results["other"] == 1
    assert isinstance(results["dup"], sqlite3.IntegrityError)
    assert _values(database) == [1, 2, 3]
    assert _queue_for(database.path).busy is False


def test_a_failed_commit_fails_every_job_of_the_batch(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If BEGIN or COMMIT fails, each job of the batch gets that error."""
    holder = sqlite3.connect(database.path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    database.busy_timeout_ms = 50
    with database.read() as conn:
        conn.execute("PRAGMA busy_timeout = 50")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        database.run(lambda c: c.execute("INSERT INTO t VALUES (9)"))
    holder.execute("ROLLBACK")
    assert _values(database) == []
    assert database.run(lambda c: c.execute("INSERT INTO t VALUES (9)").rowcount) == 1


def test_exclusive_block_waits_for_the_queue(database: Database) -> None:
    """write() runs its block alone, after the group writers, and lets them go on after."""
    with database.write() as conn:
        conn.execute("INSERT INTO t VALUES (5)")
        done = threading.Event()
        thread = threading.Thread(
            target=lambda: (
                database.run(lambda c: c.execute("INSERT INTO t VALUES (6)")),
                done.set(),
            )
        )
        thread.start()
        assert not done.wait(0.05), "a group writer waits while an exclusive block runs"
    thread.join(5)
    assert done.is_set()
    assert _values(database) == [5, 6]


def test_an_exception_in_a_write_block_rolls_back(database: Database) -> None:
    """A block that raises leaves nothing behind and frees the queue."""

    def block() -> None:
        with database.write() as conn:
            conn.execute("INSERT INTO t VALUES (7)")
            raise RuntimeError

    with pytest.raises(RuntimeError):
        block()
    assert _values(database) == []
    assert database.run(lambda c: c.execute("INSERT INTO t VALUES (8)").rowcount) == 1


def test_a_base_exception_in_a_job_reaches_its_caller(database: Database) -> None:
    """KeyboardInterrupt inside a job rolls back and propagates; the queue is left usable."""

    def interrupt(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t VALUES (4)")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        database.run(interrupt)
    assert _values(database) == []
    assert database.run(lambda c: c.execute("INSERT INTO t VALUES (4)").rowcount) == 1


def test_an_interrupted_job_sends_the_others_back_to_the_queue(database: Database) -> None:
    """An interrupt in one job of a batch fails that job only; the rest commit next."""
    release = threading.Event()
    started = threading.Event()
    outcome: dict[str, object] = {}

    def blocker(conn: sqlite3.Connection) -> None:
        started.set()
        release.wait(5)
        conn.execute("INSERT INTO t VALUES (10)")

    def interrupted(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t VALUES (11)")
        raise KeyboardInterrupt

    def call(name: str, work: object) -> None:
        try:
            outcome[name] = database.run(work)  # type: ignore[arg-type]
        except BaseException as exc:
            outcome[name] = exc

    first = threading.Thread(target=call, args=("first", blocker))
    first.start()
    started.wait(5)
    others = [
        threading.Thread(target=call, args=("interrupted", interrupted)),
        threading.Thread(
            target=call, args=("after", lambda c: c.execute("INSERT INTO t VALUES (12)").rowcount)
        ),
    ]
    for thread in others:
        thread.start()
        while thread.name and len(_queue_for(database.path).jobs) < others.index(thread) + 1:
            time.sleep(0.001)
    release.set()
    for thread in [first, *others]:
        thread.join(5)
    assert isinstance(outcome["interrupted"], KeyboardInterrupt)
    assert outcome["after"] == 1
    assert _values(database) == [10, 12]


# -- queued writes (submit) and merged statements ------------------------------------------


def _insert(x: int) -> Statement:
    def merge(rows: list[tuple[object, ...]]) -> tuple[str, tuple[object, ...]]:
        values = ", ".join("(?)" for _ in rows)
        return f"INSERT INTO t (x) VALUES {values}", tuple(v for row in rows for v in row)

    return Statement("INSERT INTO t (x) VALUES (?)", (x,), merge)


def _held(database: Database) -> tuple[threading.Event, threading.Thread]:
    """Keep the writers of ``database`` busy until the event is set: queued jobs pile up."""
    release, holding = threading.Event(), threading.Event()

    def hold() -> None:
        with database.alone():
            holding.set()
            release.wait(5)

    thread = threading.Thread(target=hold)
    thread.start()
    holding.wait(5)
    return release, thread


def test_submit_returns_at_once_and_resolves_after_the_commit(database: Database) -> None:
    """A submitted job is committed by the writer thread; its future cannot be cancelled."""
    release, holder = _held(database)
    future = database.submit(lambda c: c.execute("INSERT INTO t VALUES (7)").rowcount)
    assert not future.done()
    assert future.cancel() is False  # running from the start: never dropped
    release.set()
    holder.join(5)
    assert future.result(5) == 1
    assert _values(database) == [7]


def test_merged_inserts_give_each_job_its_own_id(database: Database) -> None:
    """Queued inserts of one kind run as one statement; each job gets the id of its row."""
    release, holder = _held(database)
    futures = {x: database.submit(_insert(x)) for x in range(10, 60)}
    release.set()
    holder.join(5)
    changes = {x: f.result(5) for x, f in futures.items()}
    with database.read() as conn:
        by_rowid = dict(conn.execute("SELECT rowid, x FROM t"))
    assert {x: by_rowid[c.lastrowid] for x, c in changes.items()} == {x: x for x in futures}
    assert all(c.rowcount == 1 for c in changes.values())


def test_a_failing_row_in_a_merged_statement_fails_alone(database: Database) -> None:
    """The batch runs again job by job: only the bad row fails, the others commit."""
    database.run(lambda c: c.execute("INSERT INTO t VALUES (1)"))
    release, holder = _held(database)
    good = [database.submit(_insert(x)) for x in (2, 3)]
    bad = database.submit(_insert(1))  # UNIQUE
    more = database.submit(_insert(4))
    release.set()
    holder.join(5)
    assert [f.result(5).rowcount for f in [*good, more]] == [1, 1, 1]
    with pytest.raises(sqlite3.IntegrityError):
        bad.result(5)
    assert _values(database) == [1, 2, 3, 4]


def test_a_merged_statement_that_changes_fewer_rows_runs_again_job_by_job(
    database: Database,
) -> None:
    """Exact results per job: a merged UPDATE that missed a row is redone one by one."""
    database.run(lambda c: c.execute("INSERT INTO t VALUES (1), (2)"))

    def update(old: int, new: int) -> Statement:
        def merge(rows: list[tuple[object, ...]]) -> tuple[str, tuple[object, ...]]:
            values = ", ".join("(?, ?)" for _ in rows)
            return (
                f"UPDATE t SET x = v.column1 FROM (VALUES {values}) AS v WHERE t.x = v.column2",
                tuple(v for row in rows for v in row),
            )

        return Statement("UPDATE t SET x = ? WHERE x = ?", (new, old), merge)

    release, holder = _held(database)
    futures = [database.submit(update(1, 10)), database.submit(update(99, 11))]
    futures.append(database.submit(update(2, 20)))
    release.set()
    holder.join(5)
    assert [f.result(5).rowcount for f in futures] == [1, 0, 1]
    assert _values(database) == [10, 20]


def test_in_memory_databases_queue_apart() -> None:
    """Two callers' in-memory connections never share a batch (each gets its own rows)."""
    one, two = (Database(sqlite3.connect(":memory:", check_same_thread=False)) for _ in "12")
    for db in (one, two):
        db.run(lambda c: c.execute("CREATE TABLE t (x INTEGER UNIQUE)"))

    def write(db: Database, start: int) -> None:
        for x in range(start, start + 20):
            db.run(_insert(x))

    threads = [
        threading.Thread(target=write, args=(db, start))
        for start in (0, 100, 200)
        for db in (one, two)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    expected = [x for start in (0, 100, 200) for x in range(start, start + 20)]
    assert _values(one) == _values(two) == expected


def test_submit_on_a_callers_in_memory_connection_runs_at_once() -> None:
    """Such a connection may only work in its own thread: the job runs in the caller's."""
    db = Database(sqlite3.connect(":memory:"))
    db.run(lambda c: c.execute("CREATE TABLE t (x INTEGER UNIQUE)"))
    assert db.submit(_insert(1)).result(0).rowcount == 1
    with pytest.raises(sqlite3.IntegrityError):
        db.submit(_insert(1)).result(0)
    assert _values(db) == [1]
