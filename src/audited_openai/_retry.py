"""Retries done by tenacity, one audited row per attempt (spec defect 10).

The SDK's own retries are hidden inside one call; the audited clients turn them off
(``max_retries=0`` on each inner request) and retry here instead, on the same
conditions the SDK would: connection errors and timeouts, and the statuses its
``_should_retry`` accepts (408, 409, 429, 5xx, or what ``x-should-retry`` says),
waiting as it would (``Retry-After`` honoured, exponential backoff with jitter).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import openai
import tenacity

if TYPE_CHECKING:
    from collections.abc import Callable

    from openai._base_client import BaseClient
    from openai._models import FinalRequestOptions


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
