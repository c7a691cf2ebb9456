"""Retries done by tenacity, one audited row per attempt (spec defect 10).

The SDK's own retries are hidden inside one call; the audited clients turn them off
(``max_retries=0`` on each inner request) and retry here instead, on the same
conditions the SDK would: connection errors and timeouts, and the statuses its
``_should_retry`` accepts (408, 409, 429, 5xx, or what ``x-should-retry`` says),
waiting as it would (``Retry-After`` honoured, exponential backoff with jitter).

The default policy is only built once a first attempt has failed in a way the SDK
would retry: most calls succeed at once, and a tenacity run allocates objects that
only the cyclic garbage collector frees (its per-thread state holds bound methods
of the policy), which under load costs more than the rest of the audit's own work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import openai
import tenacity

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from openai._base_client import BaseClient
    from openai._models import FinalRequestOptions

T = TypeVar("T")


def sdk_should_retry(client: BaseClient[Any, Any], exc: BaseException) -> bool:
    """Tell whether the SDK would retry after this exception."""
    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return True
    if isinstance(exc, openai.APIStatusError):
        return client._should_retry(exc.response)
    return False


def sdk_wait(
    client: BaseClient[Any, Any], options: FinalRequestOptions, max_retries: int
) -> Callable[[tenacity.RetryCallState], float]:
    """The SDK's own delay before the next attempt, as a tenacity wait strategy."""

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        headers = exc.response.headers if isinstance(exc, openai.APIStatusError) else None
        remaining = max_retries - (state.attempt_number - 1)
        return client._calculate_retry_timeout(remaining, options, headers)

    return wait


def default_policy(
    client: BaseClient[Any, Any],
    options: FinalRequestOptions,
    max_retries: int,
    *,
    asynchronous: bool,
) -> tenacity.BaseRetrying:
    """The policy that mirrors the SDK: ``max_retries`` retries on its conditions."""
    kwargs: dict[str, Any] = {
        "retry": tenacity.retry_if_exception(lambda exc: sdk_should_retry(client, exc)),
        "stop": tenacity.stop_after_attempt(max_retries + 1),
        "wait": sdk_wait(client, options, max_retries),
        "reraise": True,
    }
    if asynchronous:
        return tenacity.AsyncRetrying(**kwargs)
    return tenacity.Retrying(**kwargs)


def with_reraise(policy: tenacity.BaseRetrying) -> tenacity.BaseRetrying:
    """A caller's policy, made to raise the SDK's own exception when it gives up."""
    return policy.copy(reraise=True)


class Retries:
    """How one request's attempts are retried.

    A caller's policy runs every attempt, as tenacity always does. Without one, the
    first attempt runs bare; only if it fails and the SDK would retry does the
    default policy take over, replaying that first failure as its attempt 1 so the
    count, the stop and the waits are the ones the SDK would use.
    """

    def __init__(
        self,
        client: BaseClient[Any, Any],
        options: FinalRequestOptions,
        custom: tenacity.BaseRetrying | None,
    ) -> None:
        """Retry the request of ``options`` made by ``client``, with ``custom`` if given."""
        self.client = client
        self.options = options
        self.custom = None if custom is None else with_reraise(custom)

    def run(self, attempt: Callable[[], T]) -> T:
        """Call ``attempt`` until it succeeds or the policy gives up."""
        if self.custom is not None:
            return self.custom(attempt)
        try:
            return attempt()
        except Exception as exc:
            policy = self._after(exc, asynchronous=False)
            if policy is None:
                raise
            first: BaseException | None = exc

        def replayed() -> T:
            nonlocal first
            if first is not None:
                failure, first = first, None
                raise failure
            return attempt()

        return policy(replayed)

    async def run_async(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """:meth:`run` for attempts that are awaited."""
        if self.custom is not None:
            return await self.custom(attempt)
        try:
            return await attempt()
        except Exception as exc:
            policy = self._after(exc, asynchronous=True)
            if policy is None:
                raise
            first: BaseException | None = exc

        async def replayed() -> T:
            nonlocal first
            if first is not None:
                failure, first = first, None
                raise failure
            return await attempt()

        return await policy(replayed)

    def _after(self, exc: Exception, *, asynchronous: bool) -> tenacity.BaseRetrying | None:
        """The default policy if the SDK would retry after ``exc``, else None."""
        max_retries = self.options.get_max_retries(self.client.max_retries)
        if max_retries <= 0 or not sdk_should_retry(self.client, exc):
            return None
        return default_policy(self.client, self.options, max_retries, asynchronous=asynchronous)
