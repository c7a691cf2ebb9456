"""Waiting on an event loop for futures that writer threads finish, cheaply.

``asyncio.wrap_future`` wakes the loop once per future (a write to its self-pipe,
from the thread that finished it). A group commit finishes a hundred futures at
once; each wake-up would make the writer thread give up the GIL and wait to get it
back from a busy loop. Here one wake-up hands the loop every future finished since
the last one, and cancelling a wait never cancels the write behind it.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from concurrent.futures import Future

T = TypeVar("T")


async def wait(future: Future[T]) -> T:
    """Wait for ``future`` without blocking the running loop; cancelling leaves it running."""
    if future.done():
        return future.result()
    return await _waker(asyncio.get_running_loop()).waiter(future)  # type: ignore[no-any-return]


class _Waker:
    """Hands futures finished in other threads to one loop, one wake-up per burst."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = weakref.ref(loop)  # the table of wakers must not keep loops alive
        self.lock = threading.Lock()
        self.ready: list[tuple[asyncio.Future[Any], Future[Any]]] = []

    def waiter(self, future: Future[Any]) -> asyncio.Future[Any]:
        waiter = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda done: self._finished(waiter, done))
        return waiter

    def _finished(self, waiter: asyncio.Future[Any], done: Future[Any]) -> None:
        with self.lock:
            self.ready.append((waiter, done))
            if len(self.ready) > 1:
                return  # a wake-up is already on its way
        loop = self.loop()
        try:
            if loop is None:
                raise RuntimeError("the loop is gone")  # noqa: TRY301 - handled just below
            loop.call_soon_threadsafe(self._deliver)
        except RuntimeError:  # the loop is closed or gone: nobody waits any more
            with self.lock:
                self.ready.clear()

    def _deliver(self) -> None:
        with self.lock:
            ready, self.ready = self.ready, []
        for waiter, done in ready:
            if waiter.cancelled():
                continue
            error = done.exception()
            if error is not None:
                waiter.set_exception(error)
            else:
                waiter.set_result(done.result())


_WAKERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Waker] = weakref.WeakKeyDictionary()


def _waker(loop: asyncio.AbstractEventLoop) -> _Waker:
    waker = _WAKERS.get(loop)
    if waker is None:
        waker = _WAKERS[loop] = _Waker(loop)
    return waker
