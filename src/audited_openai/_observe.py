"""Watching a response body go by, to complete the attempt's row exactly once.

The caller keeps the very response, stream and objects the SDK made: only the
``stream`` of the HTTP response (httpx's public hook for a body) is wrapped, so the
bytes are seen as they arrive, whoever reads them (the SDK's ``Stream``, the stream
helpers, ``with_streaming_response``, ``iter_lines``). Whichever comes first
completes the row: the body ends, it is closed (``break`` then ``close()``, a
``with`` block), it breaks (the network), or it is garbage-collected unread.
What the row holds is what arrived: a stream closed after its last event is a
success; one closed or dropped before the model finished every choice is 'failed'
with ``error_type`` 'StreamAbandoned' and the content that had arrived.
"""

from __future__ import annotations

import weakref
import zlib
from typing import TYPE_CHECKING, Any, Literal

from audited_openai import _capture
from audited_openai._models import ErrorContext, ResponseMetadata

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

    from audited_openai._recorder import Attempt, Recorder

ABANDONED = "StreamAbandoned"
Failure = tuple[ErrorContext, Literal["failed", "timeout"]]


class Watch:
    """One response body: decoded, split into events, its row completed once."""

    def __init__(
        self,
        recorder: Recorder,
        attempt: Attempt,
        headers: Any,
        decode_line: Callable[[str], Any],
        failure: Callable[[BaseException], Failure],
    ) -> None:
        """Watch a body with these headers; ``decode_line`` is the SDK's SSE decoder."""
        self.recorder, self.attempt = recorder, attempt
        self.acc = _capture.Accumulator(attempt.endpoint, attempt.started_ms)
        self.events = str(headers.get("content-type", "")).startswith("text/event-stream")
        self.decode_line, self.failure = decode_line, failure
        encoding = str(headers.get("content-encoding", "")).strip().lower()
        self.inflate = _decompressor(encoding)
        self.opaque = encoding not in ("", "identity") and self.inflate is None  # not decoded
        self.buffer = b""
        self.body: list[bytes] = []
        self.ended = False

    @property
    def whole(self) -> bool:
        """The body has been read whole: to its end, or to the stream's ``[DONE]``.

        What is read after that is not the body: the SDK's async stream drains
        ``response.stream`` a second time after ``[DONE]``, and a body that can be read
        again (respx's bytes) starts over, while one that cannot (a generator) raises
        ``StreamConsumed``, which the SDK ignores.
        """
        return self.ended or self.acc.done

    def feed(self, raw: bytes) -> None:
        """Take bytes as they arrive, until the body is whole."""
        if self.opaque or self.whole:
            return
        data = self.inflate(raw) if self.inflate is not None else raw
        if not self.events:
            self.body.append(data)
            return
        lines = (self.buffer + data).splitlines(keepends=True)
        # A last line not yet ended, or ended by a CR that an LF may follow, waits.
        self.buffer = lines.pop() if lines and not lines[-1].endswith(b"\n") else b""
        self._decode(lines)

    def _decode(self, lines: list[bytes]) -> None:
        """Lines ended by CR LF, LF or CR (as the SDK reads them) through its SSE decoder."""
        for line in lines:
            event = self.decode_line(line.rstrip(b"\r\n").decode("utf-8", errors="replace"))
            if event is not None:
                self.acc.add(event.data)

    def broken(self, exc: BaseException) -> None:
        """The body broke off (the network): failed with the SDK's name for the error.

        Once the body is whole, a later read's error is no failure of the call.
        """
        if self.whole:
            return
        error, status = self.failure(exc)
        self.recorder.fail_with(self.attempt, error, status, self._metadata())

    def finish(self) -> None:
        """Closed, ended or collected: success, or abandoned before the model finished."""
        self._decode(self.buffer.splitlines(keepends=True))  # a last line ended by CR
        if self.opaque:  # what arrived is unknown: the row keeps status and timing only
            self.recorder.succeed(self.attempt, ResponseMetadata())
        elif not self.events:
            body = _capture.parse_body(b"".join(self.body))  # a cut-off body parses as None
            self.recorder.succeed(self.attempt, _capture.any_response(self.attempt.endpoint, body))
        elif self.acc.error is not None:
            error = ErrorContext(message=_message(self.acc.error), error_type="APIError")
            self.recorder.fail_with(self.attempt, error, "failed", self._metadata())
        elif self.ended or self.acc.complete():
            self.recorder.succeed(self.attempt, self._metadata())
        else:
            error = ErrorContext(
                message="the stream was closed or dropped before its last chunk",
                error_type=ABANDONED,
            )
            self.recorder.fail_with(self.attempt, error, "failed", self._metadata())

    def _metadata(self) -> ResponseMetadata:
        try:
            return self.acc.metadata()
        except Exception:  # pragma: no cover - a malformed event must not cost the row
            return ResponseMetadata()


def _message(error: Any) -> str:
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) and message else "An error occurred during streaming"


def _decompressor(encoding: str) -> Callable[[bytes], bytes] | None:
    """A decoder for the encodings httpx and httpx2 decode themselves: gzip and deflate."""
    if encoding == "gzip":
        return zlib.decompressobj(zlib.MAX_WBITS | 16).decompress
    if encoding == "deflate":
        return zlib.decompressobj().decompress
    return None


def watch_body(response: Any, watch: Watch, sync_base: type, async_base: type) -> None:
    """Wrap ``response.stream`` so that ``watch`` sees the body (sync or async)."""
    inner = response.stream
    if isinstance(inner, async_base):
        wrapper = _stream_class(_WatchedAsync, async_base)(inner, watch)
    else:
        wrapper = _stream_class(_Watched, sync_base)(inner, watch)
    wrapper.finalizer = weakref.finalize(wrapper, watch.finish)  # dropped unread
    response.stream = wrapper


class _Watching:
    """The byte stream a :class:`Watch` sees, and the hook that finishes it if dropped."""

    finalizer: weakref.finalize[Any, Any]

    def __init__(self, inner: Any, watch: Watch) -> None:
        self.inner, self.watch = inner, watch


class _Watched(_Watching):
    """What a watched byte stream adds to its library's stream class (sync)."""

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self.inner:
                self.watch.feed(chunk)
                yield chunk
        except GeneratorExit:
            raise
        except BaseException as exc:
            self.watch.broken(exc)
            raise
        self.watch.ended = True

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self.finalizer.detach()
            self.watch.finish()


class _WatchedAsync(_Watching):
    """The async twin of :class:`_Watched`."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.inner:
                self.watch.feed(chunk)
                yield chunk
        except GeneratorExit:
            raise
        except BaseException as exc:
            self.watch.broken(exc)
            raise
        self.watch.ended = True

    async def aclose(self) -> None:
        try:
            await self.inner.aclose()
        finally:
            self.finalizer.detach()
            self.watch.finish()


_CLASSES: dict[type, type] = {}


def _stream_class(watched: type, base: type) -> Any:
    """``base`` (httpx2's or httpx's byte stream) with ``watched``'s methods first.

    Made once per library. The methods live in plain module-level classes, not in
    classes made inside a function, so that they can be read, tested and mutated like
    any other code.
    """
    found = _CLASSES.get(base)
    if found is None:
        found = _CLASSES[base] = type(f"{watched.__name__[1:]}Stream", (watched, base), {})
    return found
