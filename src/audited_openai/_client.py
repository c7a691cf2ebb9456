"""AuditedOpenAI and AsyncAuditedOpenAI: the SDK's clients, every request written ahead.

They subclass ``openai.OpenAI`` / ``openai.AsyncOpenAI`` and hook two methods:

* ``request``: for the audited endpoints (``POST /chat/completions`` and
  ``POST /responses``) it runs the retry loop itself, one attempt per inner SDK
  request with ``max_retries=0``, and completes each attempt's row;
* ``_send_request``: just before the HTTP request leaves, the attempt's pending row
  is committed, built from the exact bytes of the request body.

Every other endpoint goes to the SDK untouched and unrecorded.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import openai
from openai._legacy_response import LegacyAPIResponse
from openai._response import AsyncAPIResponse, BaseAPIResponse
from pydantic import BaseModel

from audited_openai import _capture, _retry, _streams, _waiting
from audited_openai._auditor import Attempt, Auditor, Call, OnAuditFailure
from audited_openai._errors import AuditWriteError
from audited_openai._models import ResponseMetadata
from audited_openai._repository import GenerationLogRepository

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx2
    import tenacity
    from openai._models import FinalRequestOptions

    from audited_openai._database import Durability
    from audited_openai._store import LogStore

DEFAULT_DB = "generation_logs.db"
ENV_DB = "AUDITED_OPENAI_DB"
AUDITED_ENDPOINTS = {"/chat/completions": "chat.completions", "/responses": "responses"}

# The attempt whose request is being sent by this task or thread, if audited.
_ATTEMPT: ContextVar[Attempt | None] = ContextVar("audited_openai_attempt", default=None)


def resolve_store(
    audit_db: str | os.PathLike[str] | LogStore | None, durability: Durability
) -> LogStore:
    """Return a store for a path or a store (default: the environment, then the cwd)."""
    if audit_db is None:
        audit_db = os.environ.get(ENV_DB) or DEFAULT_DB
    if isinstance(audit_db, (str, os.PathLike)):
        return GenerationLogRepository(audit_db, durability=durability)
    return audit_db


def audited_endpoint(options: FinalRequestOptions) -> str | None:
    """The endpoint name of an audited request, or None for everything else."""
    if options.method.lower() != "post":
        return None
    return AUDITED_ENDPOINTS.get(options.url)


def inner_options(
    client: openai.OpenAI | openai.AsyncOpenAI,
    options: FinalRequestOptions,
    *,
    endpoint: str,
    stream: bool,
    include_usage: bool,
) -> FinalRequestOptions:
    """A copy of the options for one attempt: no SDK retries, one idempotency key."""
    inner = options.model_copy(deep=False)
    inner.max_retries = 0
    if inner.idempotency_key is None:
        inner.idempotency_key = client._idempotency_key()
    if (
        include_usage
        and stream
        and endpoint == "chat.completions"
        and isinstance(inner.json_data, dict)
        and "stream_options" not in inner.json_data
    ):
        inner.json_data = {**inner.json_data, "stream_options": {"include_usage": True}}
    return inner


RETRY_COUNT_HEADER = "x-stainless-retry-count"


def attempt_options(inner: FinalRequestOptions, number: int) -> FinalRequestOptions:
    """The options of attempt ``number``: its retry-count header says how many came before.

    The SDK sends ``x-stainless-retry-count`` with the retries taken so far; each of our
    attempts is a fresh inner request, so the count is set here. A caller's own value
    (or its ``Omit``) is kept, as the SDK keeps it.
    """
    headers = inner.headers or {}
    if number == 1 or any(name.lower() == RETRY_COUNT_HEADER for name in headers):
        return inner
    options = inner.model_copy(deep=False)
    options.headers = {**headers, RETRY_COUNT_HEADER: str(number - 1)}
    return options


def response_metadata(endpoint: str, parsed: Any) -> ResponseMetadata:
    """Metadata of a parsed, non-streamed result."""
    if isinstance(parsed, BaseModel):
        if endpoint == "responses":
            return _capture.responses_response(parsed)
        return _capture.chat_response(parsed)
    return ResponseMetadata()


class _AuditSettings:
    """What an audited client was built with, handed on by ``copy``/``with_options``."""

    def __init__(  # noqa: PLR0917 - private, called from two places
        self,
        audit_db: str | os.PathLike[str] | LogStore | None,
        durability: Durability,
        on_audit_failure: OnAuditFailure,
        redact: Callable[[str], str] | None,
        retry: tenacity.BaseRetrying | None,
        include_usage: bool,
    ) -> None:
        self.store = resolve_store(audit_db, durability)
        self.durability = durability
        self.auditor = Auditor(self.store, on_audit_failure=on_audit_failure, redact=redact)
        self.retry = retry
        self.include_usage = include_usage

    def copy_kwargs(self) -> dict[str, Any]:
        return {
            "audit_db": self.store,
            "durability": self.durability,
            "on_audit_failure": self.auditor.on_audit_failure,
            "redact": self.auditor.redact,
            "retry": self.retry,
            "include_usage": self.include_usage,
        }

    def prepare(
        self,
        client: openai.OpenAI | openai.AsyncOpenAI,
        options: FinalRequestOptions,
        endpoint: str,
        *,
        stream: bool,
    ) -> tuple[Call, FinalRequestOptions, _retry.Retries]:
        """The call, the options of each attempt, and how attempts are retried."""
        call = Call(endpoint, stream=bool(stream))
        inner = inner_options(
            client, options, endpoint=endpoint, stream=call.stream, include_usage=self.include_usage
        )
        return call, inner, _retry.Retries(client, options, self.retry)


class _Audited:
    """What the sync and async clients share: the audit options, the store, ``copy``."""

    _audit: _AuditSettings

    def __init__(
        self,
        audit_db: str | os.PathLike[str] | LogStore | None = None,
        *,
        durability: Durability = "balanced",
        on_audit_failure: OnAuditFailure = "raise",
        redact: Callable[[str], str] | None = None,
        retry: tenacity.BaseRetrying | None = None,
        include_usage: bool = False,
        **openai_kwargs: Any,
    ) -> None:
        """Build the SDK client, then the audit settings."""
        super().__init__(**openai_kwargs)
        self._audit = _AuditSettings(
            audit_db, durability, on_audit_failure, redact, retry, include_usage
        )

    @property
    def audit_store(self) -> LogStore:
        """The store this client writes to."""
        return self._audit.store

    if not TYPE_CHECKING:  # type checkers keep seeing the SDK's signature

        def copy(self, **kwargs):  # noqa: ANN003, ANN202 - typed as the SDK's copy
            extra = {**(kwargs.pop("_extra_kwargs", None) or {}), **self._audit.copy_kwargs()}
            return super().copy(**kwargs, _extra_kwargs=extra)

        with_options = copy


class AuditedOpenAI(_Audited, openai.OpenAI):
    """``openai.OpenAI`` that writes every chat/responses request to an audit trail.

    ``audit_db``: a path or a :class:`GenerationLogRepository` (default
    ``$AUDITED_OPENAI_DB``, else ``generation_logs.db`` in the working directory).
    ``durability``: ``"balanced"`` or ``"full"`` (see the README).
    ``on_audit_failure``: ``"raise"`` (no row, no request: :class:`AuditWriteError`)
    or ``"warn"`` (send anyway, spool the row). ``redact``: applied to every stored
    text. ``retry``: a tenacity policy replacing the SDK-equivalent default.
    ``include_usage``: ask streams for their usage chunk. Every other keyword goes
    to ``openai.OpenAI`` unchanged.
    """

    def request(  # type: ignore[override,unused-ignore]
        self,
        cast_to: Any,
        options: FinalRequestOptions,
        *,
        stream: bool = False,
        stream_cls: Any = None,
    ) -> Any:
        """Send a request; audited endpoints get one row per attempt."""
        endpoint = audited_endpoint(options)
        if endpoint is None:
            return super().request(cast_to, options, stream=stream, stream_cls=stream_cls)
        call, inner, retries = self._audit.prepare(self, options, endpoint, stream=stream)
        numbers = itertools.count(1)

        def attempt_once() -> Any:
            attempt = Attempt(call, next(numbers))
            options = attempt_options(inner, attempt.number)
            return self._attempt(attempt, cast_to, options, stream, stream_cls)

        return retries.run(attempt_once)

    def _attempt(
        self,
        attempt: Attempt,
        cast_to: Any,
        options: FinalRequestOptions,
        stream: bool,
        stream_cls: Any,
    ) -> Any:
        auditor = self._audit.auditor
        token = _ATTEMPT.set(attempt)
        try:
            result = super().request(cast_to, options, stream=stream, stream_cls=stream_cls)
        except BaseException as exc:
            auditor.fail(attempt, exc, json_data=options.json_data)
            raise
        finally:
            _ATTEMPT.reset(token)
        return self._finish(attempt, result)

    def _finish(self, attempt: Attempt, result: Any) -> Any:
        auditor = self._audit.auditor
        if isinstance(result, openai.Stream):
            return _streams.observe(auditor, attempt, result)
        if isinstance(result, LegacyAPIResponse):
            parsed = result.parse()  # cached: the caller's parse() returns this object
            if isinstance(parsed, openai.Stream):
                _streams.observe(auditor, attempt, parsed)
                return result
            auditor.succeed(attempt, _safe_metadata(attempt, parsed))
            return result
        if isinstance(result, BaseAPIResponse):
            return _streams.observe_response(auditor, attempt, result)
        auditor.succeed(attempt, _safe_metadata(attempt, result))
        return result

    def _send_request(
        self, request: httpx2.Request, *, stream: bool, **kwargs: Any
    ) -> httpx2.Response:
        attempt = _ATTEMPT.get()
        if attempt is not None and attempt.context is None:
            self._audit.auditor.open(attempt, request.content)
        response = super()._send_request(request, stream=stream, **kwargs)
        if attempt is not None:
            attempt.http_status = response.status_code
        return response


def _fail_later(auditor: Auditor, attempt: Attempt, exc: BaseException, json_data: Any) -> None:
    """Record a pending write whose caller was cancelled while it ran, then fail its row."""
    assert attempt.opening is not None  # noqa: S101 - called once it is done
    try:
        auditor.land(attempt, attempt.opening)
    except AuditWriteError:  # "raise": no row was written, so none to fail
        return
    auditor.fail(attempt, exc, json_data=json_data)


def _safe_metadata(attempt: Attempt, parsed: Any) -> ResponseMetadata:
    try:
        return response_metadata(attempt.call.endpoint, parsed)
    except Exception:  # pragma: no cover - an odd response must not cost the caller
        return ResponseMetadata()


class AsyncAuditedOpenAI(_Audited, openai.AsyncOpenAI):
    """``openai.AsyncOpenAI`` that writes every chat/responses request to an audit trail.

    Same options as :class:`AuditedOpenAI`. Database work never runs on the event
    loop: with a :class:`~audited_openai.GenerationLogRepository` the two writes of a
    call are queued for the store's writer thread (a caller's in-memory connection is
    written at once, having no disk to wait for); other stores are called from
    worker threads. The row itself is built on the loop, ``redact`` included, so a
    slow redactor blocks the loop while it runs. A cancelled task leaves its row
    failed with ``error_type`` 'CancelledError', and the cancellation propagates.
    """

    async def _db(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run store work in a worker thread; cancelling the caller never aborts it."""
        future = _shared_pool().submit(fn, *args, **kwargs)
        return await _waiting.wait(future)

    def _background(self, fn: Callable[[], None]) -> None:
        try:
            _shared_pool().submit(fn)
        except RuntimeError:  # the pool is shut down (interpreter exit): write here
            fn()

    async def request(  # type: ignore[override,unused-ignore]
        self,
        cast_to: Any,
        options: FinalRequestOptions,
        *,
        stream: bool = False,
        stream_cls: Any = None,
    ) -> Any:
        """Send a request; audited endpoints get one row per attempt."""
        endpoint = audited_endpoint(options)
        if endpoint is None:
            return await super().request(cast_to, options, stream=stream, stream_cls=stream_cls)
        call, inner, retries = self._audit.prepare(self, options, endpoint, stream=stream)
        numbers = itertools.count(1)

        async def attempt_once() -> Any:
            attempt = Attempt(call, next(numbers))
            options = attempt_options(inner, attempt.number)
            return await self._attempt(attempt, cast_to, options, stream, stream_cls)

        return await retries.run_async(attempt_once)

    async def _attempt(
        self,
        attempt: Attempt,
        cast_to: Any,
        options: FinalRequestOptions,
        stream: bool,
        stream_cls: Any,
    ) -> Any:
        auditor = self._audit.auditor
        token = _ATTEMPT.set(attempt)
        try:
            result = await super().request(cast_to, options, stream=stream, stream_cls=stream_cls)
        except BaseException as exc:
            opening = attempt.opening
            if opening is not None and not attempt.landed:
                # Cancelled while the pending row was being written: once it is, a
                # worker thread records it and fails it (never the thread that wrote it,
                # which must not wait for its own queue).
                fail = functools.partial(_fail_later, auditor, attempt, exc, options.json_data)
                opening.add_done_callback(lambda _: self._background(fail))
            else:
                await self._db(auditor.fail, attempt, exc, json_data=options.json_data)
            raise
        finally:
            _ATTEMPT.reset(token)
        return await self._finish(attempt, result)

    async def _finish(self, attempt: Attempt, result: Any) -> Any:
        auditor = self._audit.auditor
        if isinstance(result, openai.AsyncStream):
            return _streams.observe_async(auditor, attempt, result, self._db, self._background)
        if isinstance(result, LegacyAPIResponse):
            parsed = result.parse()
            if isinstance(parsed, openai.AsyncStream):
                _streams.observe_async(auditor, attempt, parsed, self._db, self._background)
                return result
            await self._succeed(attempt, _safe_metadata(attempt, parsed))
            return result
        if isinstance(result, AsyncAPIResponse):
            return _streams.observe_async_response(
                auditor, attempt, result, self._db, self._background
            )
        await self._succeed(attempt, _safe_metadata(attempt, result))
        return result

    async def _succeed(self, attempt: Attempt, metadata: ResponseMetadata) -> None:
        auditor = self._audit.auditor
        if auditor.queues_writes:  # the store queues the write: no worker thread waits
            write = auditor.succeed_soon(attempt, metadata)
            if write is not None:
                with contextlib.suppress(Exception):  # a failed write was spooled
                    await _waiting.wait(write)
        else:
            await self._db(auditor.succeed, attempt, metadata)

    async def _send_request(
        self, request: httpx2.Request, *, stream: bool, **kwargs: Any
    ) -> httpx2.Response:
        attempt = _ATTEMPT.get()
        if attempt is not None and attempt.context is None and attempt.opening is None:
            auditor = self._audit.auditor
            attempt.opening = auditor.open_soon(attempt, request.content, _shared_pool())
            with contextlib.suppress(Exception):  # land() tells what a failure means
                await _waiting.wait(attempt.opening)
            auditor.land(attempt, attempt.opening)
        response = await super()._send_request(request, stream=stream, **kwargs)
        if attempt is not None:
            attempt.http_status = response.status_code
        return response


_POOL: ThreadPoolExecutor | None = None


def _shared_pool() -> ThreadPoolExecutor:
    """One pool of store workers for every async client in the process."""
    global _POOL  # noqa: PLW0603 - a lazily created process-wide pool
    if _POOL is None or os.getpid() != getattr(_POOL, "_audited_pid", None):
        _POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="audited_openai")
        _POOL._audited_pid = os.getpid()  # type: ignore[attr-defined]
    return _POOL


class AuditedAzureOpenAI(AuditedOpenAI, openai.AzureOpenAI):
    """``openai.AzureOpenAI`` with the audit trail of :class:`AuditedOpenAI`."""


class AsyncAuditedAzureOpenAI(AsyncAuditedOpenAI, openai.AsyncAzureOpenAI):
    """``openai.AsyncAzureOpenAI`` with the audit trail of :class:`AsyncAuditedOpenAI`."""
