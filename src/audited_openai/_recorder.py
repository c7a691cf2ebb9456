"""The recorder: the row of each attempt, committed before it leaves and completed once.

It knows nothing of the SDK: it takes the bytes that are sent and the outcome as
response metadata or an error. The caller waits only for the pending row's durable
commit; every completion is queued and the call goes on (a crash before it lands
leaves the row ``pending``, which is what pending means). It never raises into the
caller except :class:`AuditWriteError` under ``on_audit_failure="raise"``, before
anything was sent; every other store failure is spooled and logged.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from audited_openai import _capture, _otel, _spool
from audited_openai._clock import monotonic_ms, utc_now
from audited_openai._errors import AuditWriteError
from audited_openai._models import ErrorContext, GenerationContext, PromptContext, ResponseMetadata
from audited_openai._rows import validate_who

if TYPE_CHECKING:
    from collections.abc import Callable

    from audited_openai._context import AuditScope
    from audited_openai._repository import GenerationLogRepository

log = logging.getLogger("audited_openai")

OnAuditFailure = Literal["raise", "warn"]
REDACTION_FAILED = "[redaction failed: text withheld]"


@dataclass(eq=False)
class Attempt:
    """One HTTP attempt of a call, and its row."""

    call_id: str
    number: int
    endpoint: str
    stream: bool
    scope: AuditScope
    context: GenerationContext | None = None
    log_id: int | None = None
    started_ms: float | None = None
    http_status: int | None = None
    server: tuple[str | None, int | None] = (None, None)  # where the request goes
    body: Any = None  # the request as parsed, until its span starts
    span: Any = None  # its OpenTelemetry span, when the app traces
    _claimed: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def elapsed_ms(self) -> int | None:
        """Milliseconds since the request left (monotonic), or None if it never did."""
        if self.started_ms is None:
            return None
        return max(0, round(monotonic_ms() - self.started_ms))

    def claim(self) -> bool:
        """True exactly once: whoever gets it writes the completion."""
        with self._lock:
            claimed, self._claimed = self._claimed, True
            return not claimed


class Recorder:
    """Turns attempts and their outcomes into rows of a repository's store."""

    def __init__(
        self,
        repository: GenerationLogRepository,
        *,
        on_audit_failure: OnAuditFailure = "raise",
        redact: Callable[[str], str] | None = None,
        actor: str | None = None,
    ) -> None:
        """Write to ``repository``; ``redact`` is applied to every text that is stored.

        ``actor``: who asks when no ``audit_context(actor=...)`` says (the app's service).
        """
        if on_audit_failure not in ("raise", "warn"):
            raise ValueError(
                f"on_audit_failure must be 'raise' or 'warn', not {on_audit_failure!r}"
            )
        if redact is not None and not callable(redact):
            raise TypeError("redact must be a callable taking and returning text")
        self.repository = repository
        self.on_audit_failure: OnAuditFailure = on_audit_failure
        self.redact = redact
        self.actor = validate_who(actor, "actor")

    # -- the pending row ----------------------------------------------------------------------

    def open(self, attempt: Attempt, body: bytes | None) -> None:
        """Commit the pending row of an attempt whose request is about to leave."""
        write = self._write_pending(attempt, body)
        write.exception()  # waits for the commit
        self._opened(attempt, write)

    async def open_async(self, attempt: Attempt, body: bytes | None) -> None:
        """:meth:`open` for an event loop: the loop is free while the commit is awaited.

        If the task is cancelled meanwhile, the write goes on; once it lands the row is
        failed with the cancellation (queued from the writer thread, never waited on).
        """
        write = self._write_pending(attempt, body)
        try:
            await asyncio.wrap_future(write)
        except asyncio.CancelledError as cancelled:
            write.add_done_callback(functools.partial(self._cancelled, attempt, cancelled))
            raise
        except Exception:  # noqa: S110 - _opened tells what a failed write means
            pass
        self._opened(attempt, write)

    def _write_pending(self, attempt: Attempt, body: bytes | None) -> Future[int]:
        attempt.body = _capture.parse_body(body)
        attempt.context = self._context(attempt, attempt.body, body)
        try:
            return self.repository.submit_pending_log(attempt.context)
        except Exception as exc:  # bad input: a failed write, refused before queueing
            failed: Future[int] = Future()
            failed.set_exception(exc)
            return failed

    def _opened(self, attempt: Attempt, write: Future[int]) -> None:
        """Record where the pending row went; under "raise" a failed write raises."""
        assert attempt.context is not None  # noqa: S101 - set by _write_pending
        error = write.exception()
        if error is None:
            attempt.log_id = write.result()
            for handle in attempt.scope.handles:
                handle.record(self.repository, attempt.log_id)
        elif self.on_audit_failure == "raise":
            if isinstance(error, AuditWriteError):
                raise error
            raise AuditWriteError(
                f"could not write the pending log: {error}", path=self.repository.path
            ) from error
        else:
            log.warning("audit store failed (%s); spooling the row and sending anyway", error)
            self._spool(attempt.context)
        attempt.started_ms = monotonic_ms()
        body, attempt.body = attempt.body, None
        attempt.span = _otel.start(
            body if isinstance(body, dict) else {}, attempt.server, endpoint=attempt.endpoint
        )

    def _cancelled(self, attempt: Attempt, exc: BaseException, write: Future[int]) -> None:
        try:
            self._opened(attempt, write)
        except AuditWriteError:  # "raise": no row was written, so none to fail
            return
        self.fail(attempt, exc)

    def _context(self, attempt: Attempt, body: Any, raw: bytes | str | None) -> GenerationContext:
        scope = attempt.scope
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", errors="replace")
        return GenerationContext(
            prompt=PromptContext(
                full_text=self._redact(_capture.prompt_text(attempt.endpoint, body)) or "",
                model_params=_capture.model_parameters(attempt.endpoint, body),
                template_version=scope.template_version,
                template_name=scope.template_name,
                modules_used=None if scope.modules_used is None else list(scope.modules_used),
            ),
            definitie_id=scope.definitie_id,
            metadata=dict(scope.metadata),
            call_id=attempt.call_id,
            attempt=attempt.number,
            endpoint=attempt.endpoint,
            request_json=self._redact(raw),
            stream=attempt.stream,
            replay_of=scope.replay_of,
            actor=self._redact(scope.actor or self.actor),
            session=self._redact(scope.session),
        )

    # -- the completion ----------------------------------------------------------------------

    def succeed(self, attempt: Attempt, response: ResponseMetadata) -> None:
        """Complete the row with a response (status 'success'), unless already completed."""
        if not attempt.claim() or attempt.context is None:
            return
        response.duration_ms = attempt.elapsed_ms()
        response.http_status = response.http_status or attempt.http_status
        response.content = self._redact(response.content)
        attempt.context.mark_success(response)
        self._complete(attempt)

    def fail(self, attempt: Attempt, exc: BaseException) -> None:
        """Complete the row with an exception (an audit error of our own is no outcome)."""
        if isinstance(exc, AuditWriteError):
            return
        self.fail_with(attempt, _capture.error_context(exc), "failed")

    def fail_with(
        self,
        attempt: Attempt,
        error: ErrorContext,
        status: Literal["failed", "timeout"],
        partial: ResponseMetadata | None = None,
    ) -> None:
        """Complete the row with an error, unless already completed."""
        if not attempt.claim() or attempt.context is None:
            return
        error.message = self._redact(error.message) or ""
        error.traceback = self._redact(error.traceback)
        error.http_status = error.http_status or attempt.http_status
        error.duration_ms = attempt.elapsed_ms()
        ctx = attempt.context
        if partial is not None:
            partial.duration_ms, partial.http_status = error.duration_ms, error.http_status
            partial.content = self._redact(partial.content)
            ctx.response = partial
        if status == "timeout":
            ctx.mark_timeout(error)
        else:
            ctx.mark_failed(error)
        self._complete(attempt)

    def never_sent(self, attempt: Attempt, exc: BaseException, json_data: Any) -> None:
        """A failed row for a request the SDK could not build: what the caller asked for."""
        attempt.context = self._context(attempt, json_data, _capture.safe_json(json_data))
        attempt.claim()
        error = _capture.error_context(exc)
        error.message = self._redact(error.message) or ""
        error.traceback = self._redact(error.traceback)
        attempt.context.mark_failed(error)
        if isinstance(json_data, dict):
            started = _otel.start(json_data, (None, None), endpoint=attempt.endpoint)
            _otel.end(started, attempt.context, None, 0.0)
        try:
            write = self.repository.submit_log(attempt.context)
        except Exception as refused:
            self._completed(attempt.context, refused)
            return
        write.add_done_callback(lambda done: self._inserted(attempt, done))

    def _inserted(self, attempt: Attempt, write: Future[int]) -> None:
        assert attempt.context is not None  # noqa: S101 - set by never_sent
        if write.exception() is not None:
            self._completed(attempt.context, write.exception())
            return
        attempt.log_id = write.result()
        for handle in attempt.scope.handles:
            handle.record(self.repository, attempt.log_id)

    def _complete(self, attempt: Attempt) -> None:
        ctx = attempt.context
        assert ctx is not None  # noqa: S101 - checked by the callers
        ctx.updated_at = utc_now()
        if attempt.span is not None:
            took = _otel.duration_ms(ctx)
            _otel.end(attempt.span, ctx, attempt.log_id, None if took is None else took / 1000)
        if attempt.log_id is None:  # the pending row went to the spool: so does this
            self._spool(ctx)
            return
        try:
            write = self.repository.submit_complete(attempt.log_id, ctx, only_pending=True)
        except Exception as exc:  # refused at once: as a failed write
            self._completed(ctx, exc)
            return
        write.add_done_callback(lambda done: self._completed(ctx, done.exception()))

    def _completed(self, ctx: GenerationContext, error: BaseException | None) -> None:
        """After a completion write: if it failed, spool the completion instead."""
        if error is not None:
            log.warning("audit store failed (%s); spooling the completion", error)
            self._spool(ctx)

    def _spool(self, ctx: GenerationContext) -> None:
        path = _spool.spool_path(self.repository.path)
        if path is None:
            log.error("audit row LOST: the store failed and an in-memory database has no spool")
            return
        try:
            _spool.append(path, ctx)
        except Exception:
            log.exception("audit row LOST: neither the store nor the spool took it")

    def _redact(self, text: str | None) -> str | None:
        if text is None or self.redact is None:
            return text
        try:
            return str(self.redact(text))
        except Exception:
            return REDACTION_FAILED
