"""Connections and group commit: concurrent writers share transactions, failures stay apart."""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import TYPE_CHECKING

import pytest

from audited_openai._database import Database, _queue_for

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
