"""Finishing the erasures a host app starts by deleting a definitie on its own connection.

The host's ``DELETE FROM definities`` fires a trigger that blanks the texts of the
definitie's logs in place and deletes them (see ``_schema``), but two copies of the
text are out of that connection's reach: the terms in the full-text index (a
deletion only marks them until the index is merged) and the old pages in the WAL
and in the database file (until a checkpoint overwrites them and the WAL restarts).
The trigger leaves a request in ``generation_log_erasures``; :func:`finish` does
the rest, and a watcher thread runs it within about a second for every database
file with a ``definities`` table that this process has open.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import weakref
from typing import TYPE_CHECKING

from audited_openai._schema import MERGE_FTS

if TYPE_CHECKING:
    from audited_openai._database import Database

log = logging.getLogger("audited_openai")

INTERVAL_S = 1.0
_REQUESTS = "SELECT EXISTS (SELECT 1 FROM generation_log_erasures)"


def finish(database: Database) -> list[int]:
    """Merge the full-text index and truncate the WAL for the host's erasures.

    Returns the definitie ids whose erasure is now complete (none if there was no
    request, or if a reader kept the WAL from restarting: then it stays requested).
    """
    with database.read() as conn:
        try:
            if not conn.execute(_REQUESTS).fetchone()[0]:
                return []
        except sqlite3.OperationalError:  # no definities table: nothing is ever requested
            return []
    with database.write(sync="FULL") as conn:
        conn.execute("PRAGMA secure_delete = ON")  # the old index pages are zeroed
        ids = sorted(
            {row[0] for row in conn.execute("SELECT definitie_id FROM generation_log_erasures")}
        )
        conn.execute(MERGE_FTS)
    with database.read() as conn:
        if conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]:
            return []  # a reader kept the WAL from restarting: still requested
    with database.write(sync="FULL") as conn:
        placeholders = ", ".join("?" for _ in ids)
        conn.execute(
            f"DELETE FROM generation_log_erasures WHERE definitie_id IN ({placeholders})", ids
        )
    return ids


# -- the watcher ---------------------------------------------------------------------------


class _Watcher:
    """One daemon thread per process, finishing erasures of the files it was given."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.files: dict[str, weakref.ref[Database]] = {}
        self.failing: set[str] = set()
        self.thread: threading.Thread | None = None

    def watch(self, database: Database) -> None:
        with self.lock:
            self.files[database.path] = weakref.ref(database)
            if self.thread is None:
                self.thread = threading.Thread(
                    target=self._run, name="audited_openai-erasures", daemon=True
                )
                self.thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(INTERVAL_S)
            with self.lock:
                files = list(self.files.items())
            for path, ref in files:
                database = ref()
                if database is None or database.closed:
                    with self.lock:
                        if self.files.get(path) is ref:
                            del self.files[path]
                    continue
                self._finish(path, database)

    def _finish(self, path: str, database: Database) -> None:
        try:
            finish(database)
        except Exception as exc:
            if path not in self.failing:
                self.failing.add(path)
                log.warning("could not finish erasures in %s (%s); will retry", path, exc)
        else:
            self.failing.discard(path)


_WATCHER = _Watcher()


def watch(database: Database) -> None:
    """Finish the host's erasures in ``database`` from now on, about once a second."""
    if database.path != ":memory:":
        _WATCHER.watch(database)


def _reset_after_fork() -> None:
    # The parent's thread is not in the child, and its lock may have been held.
    global _WATCHER  # noqa: PLW0603 - process-wide state, reset in the child
    _WATCHER = _Watcher()


os.register_at_fork(after_in_child=_reset_after_fork)
