"""Waiting on the event loop for futures that writer threads finish."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import pytest

from audited_openai import _waiting

if TYPE_CHECKING:
    from collections.abc import Callable


def _running() -> Future[Any]:
    future: Future[Any] = Future()
    future.set_running_or_notify_cancel()
    return future


def _later(action: Callable[[], None]) -> None:
    threading.Timer(0.02, action).start()


def test_a_done_future_gives_its_result_without_waiting() -> None:
    future: Future[int] = Future()
    future.set_result(3)
    assert asyncio.run(_waiting.wait(future)) == 3


def test_results_and_errors_from_another_thread() -> None:
    async def main() -> None:
        ok, bad = _running(), _running()
        _later(lambda: ok.set_result("row"))
        _later(lambda: bad.set_exception(ValueError("disk")))
        assert await _waiting.wait(ok) == "row"
        with pytest.raises(ValueError, match="disk"):
            await _waiting.wait(bad)

    asyncio.run(main())


def test_one_wake_up_hands_over_every_future_finished_meanwhile() -> None:
    """A hundred futures finished together cost the loop one call_soon_threadsafe."""
    calls = 0

    async def main() -> list[int]:
        nonlocal calls
        loop = asyncio.get_running_loop()
        original = loop.call_soon_threadsafe

        def counted(*args: Any, **kwargs: Any) -> asyncio.Handle:
            nonlocal calls
            calls += 1
            return original(*args, **kwargs)

        loop.call_soon_threadsafe = counted  # type: ignore[method-assign]
        futures = [_running() for _ in range(100)]
        waits = [asyncio.ensure_future(_waiting.wait(f)) for f in futures]
        await asyncio.sleep(0)  # every wait is registered

        def finish_all() -> None:
            for number, future in enumerate(futures):
                future.set_result(number)

        thread = threading.Thread(target=finish_all)
        thread.start()
        thread.join()
        return await asyncio.gather(*waits)

    assert asyncio.run(main()) == list(range(100))
    assert calls == 1


def test_cancelling_the_wait_leaves_the_write_alone(caplog: pytest.LogCaptureFixture) -> None:
    future = _running()

    async def main() -> None:
        task = asyncio.ensure_future(_waiting.wait(future))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        future.set_result(1)  # finishing after the waiter went away is fine
        await asyncio.sleep(0.01)

    with caplog.at_level(logging.ERROR):
        asyncio.run(main())
    assert future.result() == 1
    assert caplog.text == ""


def test_a_future_finishing_after_its_loop_closed_is_harmless(
    caplog: pytest.LogCaptureFixture,
) -> None:
    future = _running()

    async def main() -> None:
        task = asyncio.ensure_future(_waiting.wait(future))
        await asyncio.sleep(0)
        task.cancel()

    asyncio.run(main())
    with caplog.at_level(logging.ERROR):
        future.set_result(1)
    assert caplog.text == ""


def test_the_table_of_wakers_keeps_no_loop_alive() -> None:
    """Each asyncio.run makes a loop; once closed and dropped, it is collected."""
    import gc
    import weakref

    loop = asyncio.new_event_loop()
    future = _running()
    _later(functools.partial(future.set_result, 1))
    assert loop.run_until_complete(_waiting.wait(future)) == 1
    loop.close()
    gone = weakref.ref(loop)
    del loop, future
    gc.collect()
    assert gone() is None
