"""An experiment of issue 29, not a feature: the audited client's writes committed by a
writer *process* instead of the writer thread.

``install(path)`` starts a process that opens the trail at ``path`` with the library's
own store (its writer thread, its batches, its chain) and makes this process's
``Rows.insert`` and ``Rows.complete`` hand their row to it over a pipe: a pending row's
future settles when the child's commit is acknowledged, so the promise holds as it is
(no request leaves before its row is durable). What this process keeps is the SDK, the
capture of the request and the response, and the pipe; the child's CPU is counted with
the caller's by :func:`cpu_seconds`. ``overhead.py --variants ...,audited-process``
measures it beside the thread.
"""

from __future__ import annotations

import functools
import itertools
import multiprocessing
import os
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

_REMOTE: Remote | None = None


def _serve(conn: Any, path: str) -> None:
    """The child: every message a write for the store, every acknowledgement its result."""
    from audited_openai import GenerationLogRepository

    store = GenerationLogRepository(path).store
    sending = threading.Lock()

    def reply(key: int, future: Future[Any]) -> None:
        error = future.exception()
        with sending:
            conn.send(
                (key, None if error else future.result(), None if error is None else repr(error))
            )

    while True:
        try:
            message = conn.recv()
        except EOFError:
            break
        key, op, args = message
        if op == "flush":
            store.flush()
            done: Future[Any] = Future()
            done.set_result(None)
            reply(key, done)
        elif op == "insert":
            store.insert(args[0], durable=args[1]).add_done_callback(functools.partial(reply, key))
        else:
            log_id, values, only_pending = args
            written = store.complete(log_id, values, only_pending=only_pending)
            written.add_done_callback(functools.partial(reply, key))
    store.flush()


class Remote:
    """The caller's side: a pipe, and a thread that settles the futures it acknowledges."""

    def __init__(self, path: str) -> None:
        context = multiprocessing.get_context("spawn")  # a clean child: none of our patches
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, path), daemon=True)
        self.process.start()
        self.futures: dict[int, Future[Any]] = {}
        self.keys = itertools.count()
        self.sending = threading.Lock()
        threading.Thread(target=self._acknowledged, daemon=True).start()

    def call(self, op: str, *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        with self.sending:
            key = next(self.keys)
            self.futures[key] = future
            self.conn.send((key, op, args))
        return future

    def _acknowledged(self) -> None:
        from audited_openai import AuditWriteError

        while True:
            try:
                key, value, error = self.conn.recv()
            except (EOFError, OSError):
                return
            future = self.futures.pop(key)
            if error is None:
                future.set_result(value)
            else:
                future.set_exception(AuditWriteError(error))


def install(path: str) -> Remote:
    """Send this process's pending rows and completions to a writer process on ``path``."""
    global _REMOTE  # noqa: PLW0603 - one experiment a worker process
    from audited_openai import _store

    remote = _REMOTE = Remote(path)

    def insert(_self: Any, row: dict[str, Any], *, durable: bool = True) -> Future[Any]:
        return remote.call("insert", row, durable)

    def complete(
        _self: Any, log_id: int, values: dict[str, Any], *, only_pending: bool
    ) -> Future[Any]:
        return remote.call("complete", log_id, values, only_pending)

    _store.Rows.insert = insert  # type: ignore[method-assign,assignment]
    _store.Rows.complete = complete  # type: ignore[method-assign,assignment]
    return remote


def flush() -> None:
    """Wait until the writer process has committed everything handed to it."""
    if _REMOTE is not None:
        _REMOTE.call("flush").result()


def cpu_seconds() -> float:
    """The writer process's CPU time so far (user and system), or 0 without one."""
    if _REMOTE is None or _REMOTE.process.pid is None:
        return 0.0
    fields = Path(f"/proc/{_REMOTE.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
