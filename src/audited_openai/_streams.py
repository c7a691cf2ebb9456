"""Streams: the SDK's own stream object, observed, its row completed exactly once.

The caller keeps the very ``Stream`` / ``AsyncStream`` the SDK returned (so
``isinstance``, ``response``, ``close``, ``with`` and ``aclose`` behave as always).
Its private iterator is wrapped to watch the chunks go by, ``close`` is shadowed on
the instance, and a ``weakref.finalize`` catches a stream dropped unread. Whichever
comes first (exhausted, closed, broken, collected) completes the row; the others
find it done. A stream that ends before its last chunk is 'failed' with
``error_type`` 'StreamAbandoned' and the content received so far.
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from audited_openai import _capture
from audited_openai._clock import monotonic_ms
from audited_openai._models import ErrorContext, ResponseMetadata

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

    from openai import AsyncStream, Stream

    from audited_openai._auditor import Attempt, Auditor

ABANDONED = "StreamAbandoned"


@dataclass
class _ToolCall:
    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass
class Accumulator:
    """Everything a stream has said so far, per choice index."""

    endpoint: str
    started_ms: float | None
    texts: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    refusals: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    tools: dict[int, dict[int, _ToolCall]] = field(default_factory=lambda: defaultdict(dict))
    reasons: dict[int, str] = field(default_factory=dict)
    first_content_ms: float | None = None
    head: Any = None
    usage: Any = None
    final: ResponseMetadata | None = None

    def add(self, item: Any) -> None:
        """Take one chunk (chat) or event (Responses API)."""
        if self.endpoint == "responses":
            self._add_event(item)
        else:
            self._add_chunk(item)

    def _add_chunk(self, chunk: Any) -> None:
        if self.head is None:
            self.head = chunk
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self.usage = usage
        for choice in getattr(chunk, "choices", None) or []:
            index = getattr(choice, "index", 0) or 0
            delta = getattr(choice, "delta", None)
            if delta is not None:
                self._add_delta(index, delta)
            if getattr(choice, "finish_reason", None):
                self.reasons[index] = choice.finish_reason

    def _add_delta(self, index: int, delta: Any) -> None:
        content = getattr(delta, "content", None)
        if content:
            self._seen_content()
            self.texts[index].append(content)
        refusal = getattr(delta, "refusal", None)
        if refusal:
            self._seen_content()
            self.refusals[index].append(refusal)
        for call in getattr(delta, "tool_calls", None) or []:
            self._seen_content()
            entry = self.tools[index].setdefault(getattr(call, "index", 0) or 0, _ToolCall())
            entry.id = getattr(call, "id", None) or entry.id
            function = getattr(call, "function", None)
            if function is not None:
                entry.name += getattr(function, "name", None) or ""
                entry.arguments += getattr(function, "arguments", None) or ""

    def _add_event(self, event: Any) -> None:
        kind = getattr(event, "type", "")
        if kind == "response.output_text.delta":
            self._seen_content()
            self.texts[0].append(getattr(event, "delta", "") or "")
        elif kind == "response.refusal.delta":
            self._seen_content()
            self.refusals[0].append(getattr(event, "delta", "") or "")
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            response = getattr(event, "response", None)
            if response is not None:
                self.final = _capture.responses_response(response)

    def complete(self) -> bool:
        """True once the model has finished every choice it started."""
        if self.endpoint == "responses":
            return self.final is not None
        started = set(self.texts) | set(self.refusals) | set(self.tools)
        return bool(self.reasons) and started <= set(self.reasons)

    def _seen_content(self) -> None:
        if self.first_content_ms is None:
            self.first_content_ms = monotonic_ms()

    def metadata(self) -> ResponseMetadata:
        """What was received, as response metadata (usage only if it came)."""
        ttft = None
        if self.first_content_ms is not None and self.started_ms is not None:
            ttft = max(0, round(self.first_content_ms - self.started_ms))
        if self.final is not None:
            self.final.ttft_ms = ttft
            return self.final
        indexes = sorted(set(self.texts) | set(self.refusals) | set(self.tools) | set(self.reasons))
        meta = ResponseMetadata(
            finish_reason=_capture.join_reasons([self.reasons.get(i) for i in indexes]),
            content=_capture.join_choices([self._choice_text(i) for i in indexes]),
            ttft_ms=ttft,
        )
        if self.head is not None:
            meta.response_id = getattr(self.head, "id", None)
            created = getattr(self.head, "created", None)
            meta.created_at = int(created) if isinstance(created, (int, float)) else None
            meta.response_model = getattr(self.head, "model", None)
            meta.system_fingerprint = getattr(self.head, "system_fingerprint", None)
        if self.usage is not None:
            usage = _capture.chat_response({"usage": self.usage})
            meta.tokens_prompt = usage.tokens_prompt
            meta.tokens_completion = usage.tokens_completion
            meta.tokens_total = usage.tokens_total
            meta.tokens_cached = usage.tokens_cached
            meta.tokens_reasoning = usage.tokens_reasoning
        return meta

    def _choice_text(self, index: int) -> str | None:
        lines = []
        if self.texts.get(index):
            lines.append("".join(self.texts[index]))
        if self.refusals.get(index):
            lines.append("[refusal] " + "".join(self.refusals[index]))
        lines.extend(
            f"[tool_call {call.id}] {call.name}({call.arguments})"
            for call in (self.tools.get(index) or {}).values()
        )
        return "\n".join(lines) if lines else None


class _Finisher:
    """Completes a stream's row once: success, abandoned, or an error."""

    def __init__(self, auditor: Auditor, attempt: Attempt, acc: Accumulator) -> None:
        self.auditor = auditor
        self.attempt = attempt
        self.acc = acc

    def success(self) -> None:
        self.auditor.succeed(self.attempt, self._metadata())

    def abandoned(self) -> None:
        if self.acc.complete():  # every choice finished: closing early lost nothing
            self.success()
            return
        if not self.attempt.claim_completion():
            return
        error = ErrorContext(
            message="the stream was closed or dropped before its last chunk",
            error_type=ABANDONED,
            duration_ms=self.attempt.elapsed_ms(),
        )
        self.auditor.fail_with(self.attempt, error, "failed", self._metadata())

    def error(self, exc: BaseException) -> None:
        self.auditor.fail(self.attempt, exc, partial=self._metadata())

    def _metadata(self) -> ResponseMetadata:
        try:
            return self.acc.metadata()
        except Exception:  # pragma: no cover - a malformed chunk must not cost the row
            return ResponseMetadata()


def observe(auditor: Auditor, attempt: Attempt, stream: Stream[Any]) -> Stream[Any]:
    """Watch a sync stream; return the same object."""
    finish = _Finisher(auditor, attempt, Accumulator(attempt.call.endpoint, attempt.started_ms))
    inner: Iterator[Any] = stream._iterator

    def watched() -> Iterator[Any]:
        try:
            for item in inner:
                finish.acc.add(item)
                yield item
        except GeneratorExit:
            finish.abandoned()
            raise
        except BaseException as exc:
            finish.error(exc)
            raise
        finish.success()

    stream._iterator = watched()
    ref = weakref.ref(stream)

    def close() -> None:
        target = ref()
        if target is not None:
            type(target).close(target)
        finish.abandoned()

    stream.close = close  # type: ignore[method-assign]
    weakref.finalize(stream, finish.abandoned)
    return stream


def observe_async(
    auditor: Auditor,
    attempt: Attempt,
    stream: AsyncStream[Any],
    run: Callable[..., Any],
    background: Callable[[Callable[[], None]], None],
) -> AsyncStream[Any]:
    """Watch an async stream; return the same object.

    ``run(fn, *args)`` awaits ``fn`` in a worker thread; ``background(fn)`` starts it there
    without waiting (used where awaiting is impossible: generator exit, collection).
    """
    finish = _Finisher(auditor, attempt, Accumulator(attempt.call.endpoint, attempt.started_ms))
    inner: AsyncIterator[Any] = stream._iterator

    async def watched() -> AsyncIterator[Any]:
        try:
            async for item in inner:
                finish.acc.add(item)
                yield item
        except GeneratorExit:
            background(finish.abandoned)
            raise
        except BaseException as exc:
            await run(finish.error, exc)
            raise
        await run(finish.success)

    stream._iterator = watched()
    ref = weakref.ref(stream)

    async def close() -> None:
        target = ref()
        if target is not None:
            await type(target).close(target)
        await run(finish.abandoned)

    stream.close = close  # type: ignore[method-assign]
    weakref.finalize(stream, background, finish.abandoned)
    return stream


def _body_metadata(endpoint: str, http_response: Any) -> ResponseMetadata:
    """Metadata from a streamed-response body the caller read, when it is JSON."""
    try:
        content = http_response.content
    except Exception:  # not read by the caller: status and timing only
        return ResponseMetadata()
    body = _capture.parse_body(content)
    if not isinstance(body, dict):
        return ResponseMetadata()
    if endpoint == "responses":
        return _capture.responses_response(body)
    return _capture.chat_response(body)


def observe_response(auditor: Auditor, attempt: Attempt, response: Any) -> Any:
    """Watch a ``with_streaming_response`` result: the row completes when it is closed.

    A stream parsed from it is observed like any stream; otherwise the row gets the
    body's metadata when the caller read it, else only status and duration.
    """
    ref = weakref.ref(response)
    streams: list[Any] = []

    def parse(**kwargs: Any) -> Any:
        target = ref()
        assert target is not None  # noqa: S101 - called on the live object
        parsed = type(target).parse(target, **kwargs)
        if not streams and hasattr(parsed, "_iterator"):
            streams.append(observe(auditor, attempt, parsed))
        return parsed

    def close() -> None:
        target = ref()
        if target is None:  # pragma: no cover - close is only reachable from the object
            return
        type(target).close(target)
        if not streams:
            auditor.succeed(attempt, _body_metadata(attempt.call.endpoint, target.http_response))

    response.parse = parse
    response.close = close

    def collected() -> None:
        if not streams:
            auditor.succeed(attempt, ResponseMetadata())

    weakref.finalize(response, collected)
    return response


def observe_async_response(
    auditor: Auditor,
    attempt: Attempt,
    response: Any,
    run: Callable[..., Any],
    background: Callable[[Callable[[], None]], None],
) -> Any:
    """Async twin of :func:`observe_response`."""
    ref = weakref.ref(response)
    streams: list[Any] = []

    async def parse(**kwargs: Any) -> Any:
        target = ref()
        assert target is not None  # noqa: S101 - called on the live object
        parsed = await type(target).parse(target, **kwargs)
        if not streams and hasattr(parsed, "_iterator"):
            streams.append(observe_async(auditor, attempt, parsed, run, background))
        return parsed

    async def close() -> None:
        target = ref()
        if target is None:  # pragma: no cover - close is only reachable from the object
            return
        await type(target).close(target)
        if not streams:
            meta = _body_metadata(attempt.call.endpoint, target.http_response)
            await run(auditor.succeed, attempt, meta)

    def collected() -> None:
        if not streams:
            background(lambda: auditor.succeed(attempt, ResponseMetadata()))

    response.parse = parse
    response.close = close
    weakref.finalize(response, collected)
    return response
