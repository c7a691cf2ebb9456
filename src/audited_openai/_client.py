"""AuditedOpenAI and AsyncAuditedOpenAI: the SDK's clients, every attempt written ahead.

The SDK's own ``request()`` loop runs unchanged: its retries, backoff, ``Retry-After``,
idempotency key, ``x-stainless-retry-count`` and ``retries_taken`` are the SDK's. The
audit hooks the one point where each attempt leaves, for ``POST /chat/completions``
and ``POST /responses`` only (every other endpoint passes untouched, unrecorded):

* ``_build_request`` names the attempt: its call (the SDK's idempotency key, the same
  for every retry of one call), its number (retries taken + 1) and the audit context
  in force; a request the SDK cannot build (arguments it cannot serialise) gets a
  failed row here, since it never leaves;
* ``_send_request`` commits the pending row from the exact bytes of the request and
  waits for that commit, sends, and completes the row from the HTTP response (status,
  body, or the stream as it is read) or from the exception.

This is the only module that touches the SDK's private names, all of them here:
``BaseClient._build_request``, ``SyncAPIClient._send_request``,
``AsyncAPIClient._send_request``, ``BaseClient._make_status_error_from_response``,
``BaseClient._make_sse_decoder``, ``openai._httpx2.timeout_exceptions`` and
``openai._httpx2.request_exceptions`` (which transport errors the SDK turns into
``APITimeoutError`` and ``APIConnectionError``), ``openai._models.FinalRequestOptions``
(a type; its ``json_data`` is replaced to add ``stream_options`` under
``include_usage``), the private ``_extra_kwargs`` of ``copy()`` (how the audit options
reach the new client), and ``post(..., cast_to=, stream=, stream_cls=)`` with
``openai.Stream`` for a replay. They exist, with these meanings, from openai 3.15
(before it, any exception from ``_send_request`` was retried and wrapped):
``pyproject.toml`` pins the range.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx2
import openai
from openai._httpx2 import request_exceptions, timeout_exceptions

from audited_openai import _capture
from audited_openai._context import audit_context, current_scope, replaying
from audited_openai._errors import InvalidLogError
from audited_openai._models import ErrorContext, new_call_id
from audited_openai._observe import Failure, Watch, watch_body
from audited_openai._recorder import Attempt, OnAuditFailure, Recorder
from audited_openai._repository import GenerationLogRepository
from audited_openai._rows import validate_who
from audited_openai._store import checked_durability

if TYPE_CHECKING:
    from collections.abc import Callable

    from openai._models import FinalRequestOptions

    from audited_openai._models import GenerationContext
    from audited_openai._store import Durability

DEFAULT_DB = "generation_logs.db"
ENV_DB = "AUDITED_OPENAI_DB"
AUDITED_PATHS = {"/chat/completions": "chat.completions", "/responses": "responses"}
ATTEMPT = "audited_openai.attempt"  # the request extension naming the attempt (never sent)
_KEEP: Any = object()  # copy(): an audit option not given keeps its value


def open_repository(
    audit_db: str | os.PathLike[str] | GenerationLogRepository | None,
    durability: Durability | None = None,
) -> GenerationLogRepository:
    """The repository for ``audit_db`` (default: ``$AUDITED_OPENAI_DB``, else the cwd).

    ``durability`` (default "balanced") is how a store opened here commits; a repository
    given keeps its own, and a different one asked for is refused: it cannot apply.
    """
    if durability is not None:
        checked_durability(durability)
    if audit_db is None:
        audit_db = os.environ.get(ENV_DB) or DEFAULT_DB
    if isinstance(audit_db, GenerationLogRepository):
        if durability is not None and durability != audit_db.durability:
            raise ValueError(
                f"durability={durability!r} cannot apply to the repository given (it is "
                f"{audit_db.durability!r}): open it as GenerationLogRepository(..., "
                f"durability={durability!r})"
            )
        return audit_db
    if not isinstance(audit_db, (str, os.PathLike)):
        raise TypeError(
            "audit_db must be a path or a GenerationLogRepository, "
            f"not {type(audit_db).__name__} {audit_db!r}"
        )
    return GenerationLogRepository(audit_db, durability=durability or "balanced")


class _Audit:
    """What an audited client was built with, handed on by ``copy``/``with_options``."""

    def __init__(
        self,
        audit_db: str | os.PathLike[str] | GenerationLogRepository | None,
        durability: Durability | None,
        on_audit_failure: OnAuditFailure,
        redact: Callable[[str], str] | None,
        include_usage: bool,
        *,
        actor: str | None = None,
    ) -> None:
        if not isinstance(include_usage, bool):
            raise TypeError(f"include_usage must be True or False, not {include_usage!r}")
        validate_who(actor, "actor")  # before the store opens
        repository = open_repository(audit_db, durability)
        self.recorder = Recorder(
            repository, on_audit_failure=on_audit_failure, redact=redact, actor=actor
        )
        self.include_usage = include_usage

    def options(self) -> dict[str, Any]:
        recorder = self.recorder
        return {
            "audit_db": recorder.repository,
            "durability": recorder.repository.durability,
            "on_audit_failure": recorder.on_audit_failure,
            "redact": recorder.redact,
            "include_usage": self.include_usage,
            "actor": recorder.actor,
        }


def _failure(exc: BaseException) -> Failure:
    """How the SDK will report an exception from sending, as the row's error."""
    if isinstance(exc, timeout_exceptions()):
        return _capture.error_context(
            exc, error_type="APITimeoutError", message=_sdk(exc)
        ), "timeout"
    if isinstance(exc, request_exceptions()):
        return _capture.error_context(
            exc, error_type="APIConnectionError", message=_sdk(exc)
        ), "failed"
    if isinstance(exc, openai.APITimeoutError):
        return _capture.error_context(exc), "timeout"
    return _capture.error_context(exc), "failed"


def _sdk(exc: BaseException) -> str:
    said = "Request timed out." if isinstance(exc, timeout_exceptions()) else "Connection error."
    return f"{said} ({type(exc).__name__}: {exc})" if str(exc) else said


def _body(request: httpx2.Request) -> bytes | None:
    try:
        return request.content
    except Exception:  # a streamed request body: not JSON, so no prompt to record
        return None


class _Audited:
    """The hooks and options the sync and async clients share."""

    _audit: _Audit

    def __init__(
        self,
        audit_db: str | os.PathLike[str] | GenerationLogRepository | None = None,
        *,
        durability: Durability | None = None,
        on_audit_failure: OnAuditFailure = "raise",
        redact: Callable[[str], str] | None = None,
        include_usage: bool = False,
        actor: str | None = None,
        **openai_kwargs: Any,
    ) -> None:
        """Open the audit store (so a bad one fails here), then build the SDK client."""
        if "retry" in openai_kwargs:
            raise TypeError(
                "retry= is gone: the SDK retries by itself (max_retries=), each attempt "
                "its own row; wrap a call in tenacity for a policy of your own "
                "(examples/retry_policy.py)"
            )
        self._audit = _Audit(
            audit_db, durability, on_audit_failure, redact, include_usage, actor=actor
        )
        super().__init__(**openai_kwargs)

    @property
    def audit_store(self) -> GenerationLogRepository:
        """The repository this client writes to."""
        return self._audit.recorder.repository

    if not TYPE_CHECKING:  # type checkers keep seeing the SDK's signature

        def copy(  # noqa: ANN202 - typed as the SDK's copy
            self,
            *,
            audit_db=_KEEP,  # noqa: ANN001
            durability=_KEEP,  # noqa: ANN001
            on_audit_failure=_KEEP,  # noqa: ANN001
            redact=_KEEP,  # noqa: ANN001
            include_usage=_KEEP,  # noqa: ANN001
            actor=_KEEP,  # noqa: ANN001
            **openai_kwargs,  # noqa: ANN003
        ):
            """A new client with these options changed; the audit options as well."""
            given = {
                "audit_db": audit_db,
                "durability": durability,
                "on_audit_failure": on_audit_failure,
                "redact": redact,
                "include_usage": include_usage,
                "actor": actor,
            }
            audit = {**self._audit.options(), **{k: v for k, v in given.items() if v is not _KEEP}}
            extra = {**(openai_kwargs.pop("_extra_kwargs", None) or {}), **audit}
            return super().copy(**openai_kwargs, _extra_kwargs=extra)

        with_options = copy

    def _build_request(
        self, options: FinalRequestOptions, *, retries_taken: int = 0
    ) -> httpx2.Request:
        path = AUDITED_PATHS.get(options.url) if options.method.lower() == "post" else None
        if path is None:
            return super()._build_request(options, retries_taken=retries_taken)  # type: ignore[misc,no-any-return]
        body = options.json_data if isinstance(options.json_data, Mapping) else {}
        if (
            self._audit.include_usage
            and body.get("stream") is True
            and path == "chat.completions"
            and "stream_options" not in body
        ):
            options.json_data = {**body, "stream_options": {"include_usage": True}}
        attempt = Attempt(
            call_id=options.idempotency_key or new_call_id(),
            number=retries_taken + 1,
            endpoint=path,
            stream=body.get("stream") is True,
            scope=current_scope(),
        )
        try:
            request: httpx2.Request = super()._build_request(options, retries_taken=retries_taken)  # type: ignore[misc]
        except Exception as exc:  # the SDK could not build it: it never leaves
            self._audit.recorder.never_sent(attempt, exc, options.json_data)
            raise
        request.extensions[ATTEMPT] = attempt
        return request

    def _outcome(self, attempt: Attempt, response: httpx2.Response, *, streamed: bool) -> None:
        """Complete the row from the response (its body read if the status is an error)."""
        recorder = self._audit.recorder
        attempt.http_status = response.status_code
        if response.status_code >= 400:  # noqa: PLR2004 - the SDK's own test for an error
            error = self._make_status_error_from_response(response)  # type: ignore[attr-defined]
            recorder.fail_with(
                attempt,
                ErrorContext(
                    message=str(error),
                    error_type=type(error).__name__,
                    traceback=_capture.where_raised(error),
                ),
                "failed",
            )
        elif streamed:
            decoder = self._make_sse_decoder()  # type: ignore[attr-defined]
            watch = Watch(recorder, attempt, response.headers, decoder.decode, _failure)
            watch_body(response, watch, *_stream_bases(response))
        else:
            body = _capture.parse_body(response.content)
            recorder.succeed(attempt, _capture.any_response(attempt.endpoint, body))


def _stream_bases(response: Any) -> tuple[type, type]:
    """The byte-stream classes of the response's library (httpx2, or the classic httpx)."""
    if isinstance(response, httpx2.Response):
        return httpx2.SyncByteStream, httpx2.AsyncByteStream
    httpx = inspect.getmodule(type(response))
    return httpx.SyncByteStream, httpx.AsyncByteStream  # type: ignore[union-attr]


class AuditedOpenAI(_Audited, openai.OpenAI):
    """``openai.OpenAI`` that writes every chat/responses attempt to an audit trail.

    ``audit_db``: a path or a :class:`GenerationLogRepository` (default
    ``$AUDITED_OPENAI_DB``, else ``generation_logs.db`` in the working directory),
    opened and migrated here. ``durability``: ``"balanced"`` (the default) or ``"full"``,
    for a store opened here (a repository given keeps its own).
    ``on_audit_failure``: ``"raise"`` (no row, no request: :class:`AuditWriteError`) or
    ``"warn"`` (send anyway, spool the row). ``redact``: applied to every stored text.
    ``include_usage``: ask streams for their usage chunk. ``actor``: who asks when no
    ``audit_context(actor=...)`` says (the app's service name, say). Every other keyword
    goes to ``openai.OpenAI`` unchanged.
    """

    def _send_request(
        self, request: httpx2.Request, *, stream: bool, **kwargs: Any
    ) -> httpx2.Response:
        attempt: Attempt | None = request.extensions.pop(ATTEMPT, None)
        if attempt is None:
            return super()._send_request(request, stream=stream, **kwargs)
        recorder = self._audit.recorder
        attempt.server = (request.url.host, request.url.port)
        recorder.open(attempt, _body(request))
        try:
            response = super()._send_request(request, stream=stream, **kwargs)
        except BaseException as exc:
            recorder.fail_with(attempt, *_failure(exc))
            raise
        if stream and response.status_code >= 400:  # noqa: PLR2004 - as in _outcome
            with contextlib.suppress(Exception):
                response.read()
        self._outcome(attempt, response, streamed=stream)
        return response

    def _audit_send_again(self, original: GenerationContext) -> int | None:
        """Send a row's exact stored request again, recorded as its replay; the new row's id.

        The replay carries the original's definitie, template and modules; a request
        that was streamed is sent as a stream and read to its end (``query.replay``).
        """
        from openai.types.chat import ChatCompletion, ChatCompletionChunk  # noqa: PLC0415
        from openai.types.responses import Response, ResponseStreamEvent  # noqa: PLC0415

        body = _capture.parse_body((original.request_json or "").encode())
        if not isinstance(body, dict):
            raise InvalidLogError(
                f"log {original.id} has no replayable request_json", "request_json"
            )
        responses = original.endpoint == "responses"
        chunk: Any = ResponseStreamEvent if responses else ChatCompletionChunk
        with (
            audit_context(
                original.definitie_id,
                template_name=original.prompt.template_name,
                template_version=original.prompt.template_version,
                modules_used=original.prompt.modules_used,
            ) as audit,
            replaying(original.id or 0),
        ):
            result = self.post(
                "/responses" if responses else "/chat/completions",
                body=body,
                cast_to=Response if responses else ChatCompletion,
                stream=bool(body.get("stream")),
                stream_cls=openai.Stream[chunk],
            )
            if body.get("stream"):
                for _ in result:
                    pass
        return audit.last_log_id


class AsyncAuditedOpenAI(_Audited, openai.AsyncOpenAI):
    """``openai.AsyncOpenAI`` that writes every chat/responses attempt to an audit trail.

    Same options as :class:`AuditedOpenAI`. The event loop is free while the pending
    row is committed (the writer thread does it); completions are queued. A cancelled
    task leaves its row failed with ``error_type`` 'CancelledError', and the
    cancellation propagates.
    """

    async def _send_request(
        self, request: httpx2.Request, *, stream: bool, **kwargs: Any
    ) -> httpx2.Response:
        attempt: Attempt | None = request.extensions.pop(ATTEMPT, None)
        if attempt is None:
            return await super()._send_request(request, stream=stream, **kwargs)
        recorder = self._audit.recorder
        attempt.server = (request.url.host, request.url.port)
        await recorder.open_async(attempt, _body(request))
        try:
            response = await super()._send_request(request, stream=stream, **kwargs)
        except BaseException as exc:
            recorder.fail_with(attempt, *_failure(exc))
            raise
        if stream and response.status_code >= 400:  # noqa: PLR2004 - as in _outcome
            with contextlib.suppress(Exception):
                await response.aread()
        self._outcome(attempt, response, streamed=stream)
        return response


class AuditedAzureOpenAI(AuditedOpenAI, openai.AzureOpenAI):
    """``openai.AzureOpenAI`` with the audit trail of :class:`AuditedOpenAI`."""


class AsyncAuditedAzureOpenAI(AsyncAuditedOpenAI, openai.AsyncAzureOpenAI):
    """``openai.AsyncAzureOpenAI`` with the audit trail of :class:`AsyncAuditedOpenAI`."""
