"""The auditor: writes each attempt's row ahead of the request and completes it once.

Shared by the sync and async clients; it never raises into the caller except
:class:`AuditWriteError` from :meth:`Auditor.open` under ``on_audit_failure="raise"``
(before anything was sent). Every other store failure is spooled and logged.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from audited_openai import _capture, _futures, _spool
from audited_openai._clock import monotonic_ms, utc_now
from audited_openai._context import AuditScope, current_scope
from audited_openai._errors import AuditWriteError
from audited_openai._models import (
    ErrorContext,
    GenerationContext,
    PromptContext,
    ResponseMetadata,
    new_call_id,
)
from audited_openai._store import QueueingLogStore

if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import Executor, Future

    from audited_openai._store import LogStore

log = logging.getLogger("audited_openai")

OnAuditFailure = Literal["raise", "warn"]
REDACTION_FAILED = "[redaction failed: text withheld]"


@dataclass
class Call:
    """One logical call: its id, endpoint and the audit scope captured when it began."""

    endpoint: str
    stream: bool
    scope: AuditScope = field(default_factory=current_scope)
    call_id: str = field(default_factory=new_call_id)


@dataclass
class Attempt:
    """One HTTP attempt of a call, and its row."""

    call: Call
    number: int
    context: GenerationContext | None = None
    log_id: int | None = None
    started_ms: float | None = None
    http_status: int | None = None
    done: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    opening: Future[int] | None = None  # async clients: the pending write in flight
    landed: bool = False  # async clients: the pending write's outcome is recorded

    def elapsed_ms(self) -> int | None:
        """Milliseconds since the request left (monotonic), or None if it never did."""
        if self.started_ms is None:
            return None
        return max(0, round(monotonic_ms() - self.started_ms))

    def claim_completion(self) -> bool:
        """True exactly once: whoever gets it writes the completion."""
        with self.lock:
            if self.done:
                return False
            self.done = True
            return True


class Auditor:
    """Turns requests and outcomes into rows of a :class:`LogStore`."""

    def __init__(
        self,
        store: LogStore,
        *,
        on_audit_failure: OnAuditFailure = "raise",
        redact: Callable[[str], str] | None = None,
    ) -> None:
        """Write to ``store``; ``redact`` is applied to every text that is stored."""
        if on_audit_failure not in ("raise", "warn"):
            raise ValueError(
                f"on_audit_failure must be 'raise' or 'warn', not {on_audit_failure!r}"
            )
        if redact is not None and not callable(redact):
            raise TypeError("redact must be a callable taking and returning text")
        self.store = store
        self._queueing_store = store if isinstance(store, QueueingLogStore) else None
        self.on_audit_failure: OnAuditFailure = on_audit_failure
        self.redact = redact

    # -- the pending row -------------------------------------------------------

    def open(self, attempt: Attempt, body: bytes | None) -> None:
        """Commit the pending row of an attempt whose request is about to leave."""
        attempt.context = self._context(attempt, _capture.parse_body(body), body)
        try:
            log_id = self.store.create_pending_log(attempt.context)
        except Exception as exc:
            self._opened(attempt, None, exc)
        else:
            self._opened(attempt, log_id, None)

    def open_soon(self, attempt: Attempt, body: bytes | None, executor: Executor) -> Future[int]:
        """Start committing the pending row; call :meth:`land` once the future is done.

        The row is built here. A store that queues writes (:class:`QueueingLogStore`)
        queues it, and no thread waits for the commit; any other store's
        ``create_pending_log`` runs on ``executor``. Bad input gives a failed future.
        """
        attempt.context = self._context(attempt, _capture.parse_body(body), body)
        try:
            if self._queueing_store is not None:
                return self._queueing_store.submit_pending_log(attempt.context)
            return executor.submit(self.store.create_pending_log, attempt.context)
        except Exception as exc:  # bad input: handled as a failed write
            return _futures.failed(exc)

    def land(self, attempt: Attempt, write: Future[int]) -> None:
        """Record where :meth:`open_soon`'s finished write put the row (once per attempt).

        Raises as :meth:`open` does: :class:`AuditWriteError` under "raise" if it failed.
        """
        attempt.landed = True
        error = write.exception()
        self._opened(attempt, None if error else write.result(), error)

    @property
    def queues_writes(self) -> bool:
        """Whether the store can queue writes (``open_soon``/``succeed_soon`` work)."""
        return self._queueing_store is not None

    def _queueing(self) -> QueueingLogStore:
        if self._queueing_store is None:
            raise TypeError(f"{type(self.store).__name__} cannot queue writes")
        return self._queueing_store

    def _opened(self, attempt: Attempt, log_id: int | None, error: BaseException | None) -> None:
        """Record where the pending row went; under "raise" a failed write raises."""
        assert attempt.context is not None  # noqa: S101 - set by open()
        if error is not None:
            if not isinstance(error, Exception):
                raise error
            if self.on_audit_failure == "raise":
                if isinstance(error, AuditWriteError):
                    raise error
                raise AuditWriteError(
                    f"could not write the pending log: {error}", path=self.store.path
                ) from error
            log.warning("audit store failed (%s); spooling the row and sending anyway", error)
            self._spool(attempt.context)
        else:
            attempt.log_id = log_id
            for handle in attempt.call.scope.handles:
                handle.record(self.store, log_id)  # type: ignore[arg-type]
        attempt.started_ms = monotonic_ms()

    def _context(self, attempt: Attempt, body: Any, raw: bytes | str | None) -> GenerationContext:
        call, scope = attempt.call, attempt.call.scope
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", errors="replace")
        params = _capture.model_parameters(call.endpoint, body)
        return GenerationContext(
            prompt=PromptContext(
                full_text=self._redact(_capture.prompt_text(call.endpoint, body)) or "",
                model_params=params,
                template_version=scope.template_version,
                template_name=scope.template_name,
                modules_used=None if scope.modules_used is None else list(scope.modules_used),
            ),
            definitie_id=scope.definitie_id,
            metadata=dict(scope.metadata),
            call_id=call.call_id,
            attempt=attempt.number,
            endpoint=call.endpoint,
            request_json=self._redact(raw),
            stream=call.stream,
        )

    # -- completion ------------------------------------------------------------

    def succeed(self, attempt: Attempt, response: ResponseMetadata) -> None:
        """Complete the row with a response (status 'success')."""
        if self._mark_success(attempt, response):
            self._complete(attempt)

    def succeed_soon(self, attempt: Attempt, response: ResponseMetadata) -> Future[bool] | None:
        """:meth:`succeed` with the write queued: its future, or None if none was queued.

        For a store that queues writes. A failed write is spooled when it fails (in the
        thread that ends it), whether or not anyone still waits.
        """
        store = self._queueing()
        ctx = self._completion(attempt) if self._mark_success(attempt, response) else None
        if ctx is None or attempt.log_id is None:
            return None
        try:
            write = store.submit_complete(attempt.log_id, ctx, only_pending=True)
        except Exception as exc:  # same as a failed write
            self._completed(ctx, exc)
            return None
        write.add_done_callback(lambda done: self._completed(ctx, done.exception()))
        return write

    def _mark_success(self, attempt: Attempt, response: ResponseMetadata) -> bool:
        """Claim the completion and set the response; False if someone else completes."""
        if not attempt.claim_completion() or attempt.context is None:
            return False
        response.duration_ms = attempt.elapsed_ms()
        response.http_status = response.http_status or attempt.http_status
        response.content = self._redact(response.content)
        attempt.context.mark_success(response)
        return True

    def fail(
        self,
        attempt: Attempt,
        exc: BaseException,
        *,
        partial: ResponseMetadata | None = None,
        json_data: Any = None,
    ) -> None:
        """Complete the row with an error ('timeout' for the SDK's timeout error).

        An attempt that failed before its request left (the SDK refused the arguments)
        has no row yet: one is written, failed, from ``json_data``.
        """
        if isinstance(exc, AuditWriteError) or not attempt.claim_completion():
            return
        error = _capture.error_context(exc, duration_ms=attempt.elapsed_ms())
        status: Literal["failed", "timeout"] = (
            "timeout" if _capture.error_status(exc) == "timeout" else "failed"
        )
        self.fail_with(attempt, error, status, partial, json_data)

    def fail_with(
        self,
        attempt: Attempt,
        error: ErrorContext,
        status: Literal["failed", "timeout"],
        partial: ResponseMetadata | None,
        json_data: Any = None,
    ) -> None:
        """Write a failure whose completion was already claimed."""
        error.message = self._redact(error.message) or ""
        error.traceback = self._redact(error.traceback)
        error.http_status = error.http_status or attempt.http_status
        if attempt.context is None:  # never sent: record what the caller asked for
            attempt.context = self._context(attempt, json_data, _capture.safe_json(json_data))
            self._set_failure(attempt.context, error, status, partial)
            self._insert(attempt)
            return
        self._set_failure(attempt.context, error, status, partial)
        self._complete(attempt)

    def _set_failure(
        self,
        ctx: GenerationContext,
        error: ErrorContext,
        status: Literal["failed", "timeout"],
        partial: ResponseMetadata | None,
    ) -> None:
        if partial is not None:
            partial.duration_ms = error.duration_ms
            partial.http_status = error.http_status
            partial.content = self._redact(partial.content)
            ctx.response = partial
        if status == "timeout":
            ctx.mark_timeout(error)
        else:
            ctx.mark_failed(error)

    def _insert(self, attempt: Attempt) -> None:
        assert attempt.context is not None  # noqa: S101 - set by the caller
        try:
            attempt.log_id = self.store.insert_log(attempt.context)
        except Exception as exc:
            log.warning("audit store failed (%s); spooling the failed row", exc)
            self._spool(attempt.context)
        else:
            for handle in attempt.call.scope.handles:
                handle.record(self.store, attempt.log_id)

    def _complete(self, attempt: Attempt) -> None:
        ctx = self._completion(attempt)
        if ctx is None or attempt.log_id is None:
            return
        try:
            self.store.complete(attempt.log_id, ctx, only_pending=True)
        except Exception as exc:
            self._completed(ctx, exc)

    def _completion(self, attempt: Attempt) -> GenerationContext | None:
        """The context to write, stamped; None if the pending row (so this too) was spooled."""
        ctx = attempt.context
        assert ctx is not None  # noqa: S101 - set by open()
        ctx.updated_at = utc_now()
        if attempt.log_id is None:  # the pending row went to the spool: so does this
            self._spool(ctx)
            return None
        return ctx

    def _completed(self, ctx: GenerationContext, error: BaseException | None) -> None:
        """After a completion write: if it failed, spool the completion instead."""
        if error is not None:
            log.warning("audit store failed (%s); spooling the completion", error)
            self._spool(ctx)

    def _spool(self, ctx: GenerationContext) -> None:
        path = _spool.spool_path(self.store.path)
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
