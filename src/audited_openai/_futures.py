"""Small helpers for ``concurrent.futures.Future``s handed between the store and clients.

Every future made here is running from the start: cancelling it does nothing, so a
write that was queued is never dropped by a caller that stopped waiting.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")


def running() -> Future[Any]:
    """A future that cannot be cancelled, for whoever will finish it."""
    future: Future[Any] = Future()
    future.set_running_or_notify_cancel()
    return future


def now(fn: Callable[[], T]) -> Future[T]:
    """A future already done with ``fn()``'s result, or its error."""
    target: Future[T] = running()
    settle(target, fn)
    return target


def failed(error: BaseException) -> Future[Any]:
    """A future already done with ``error``."""
    target: Future[Any] = running()
    target.set_exception(error)
    return target


def settle(target: Future[T], fn: Callable[[], T]) -> None:
    """Finish ``target`` with ``fn()``'s result, or its error."""
    try:
        value = fn()
    except BaseException as exc:
        target.set_exception(exc)
    else:
        target.set_result(value)
