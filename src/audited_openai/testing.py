"""A real OpenAI-compatible HTTP server on 127.0.0.1, for tests and offline demos.

It speaks ``POST /v1/chat/completions`` (JSON, and SSE with a usage chunk when
``stream_options.include_usage`` is set) and ``POST /v1/responses`` (JSON and SSE),
and answers each request with the next scripted outcome, or a templated reply::

    from audited_openai.testing import LoopbackServer, Reply, Fail

    with LoopbackServer() as server:
        server.script(Fail(429, retry_after=0.01), Reply("Een getuige is ..."))
        client = AuditedOpenAI(db, base_url=server.base_url, api_key="test")
        ...
        assert server.request_count == 2

Outcomes: :class:`Reply` (text, token counts, latency), :class:`Fail` (an HTTP error,
optionally with ``Retry-After``), :class:`Hang` (no answer until the client gives up
or ``seconds`` pass) and :class:`Drop` (a stream cut after some chunks, without its
end). With pytest, the ``loopback_openai`` fixture gives a started server.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

__all__ = ["Drop", "Fail", "Hang", "LoopbackServer", "Outcome", "ReceivedRequest", "Reply"]

DEFAULT_TEMPLATE = "Antwoord op: {prompt}"


@dataclass(frozen=True)
class Reply:
    """A successful answer; ``text`` may use ``{prompt}`` (the last user text, cut short)."""

    text: str = DEFAULT_TEMPLATE
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency: float = 0.0
    finish_reason: str = "stop"
    chunk_delay: float = 0.0  # streams: the pause before each chunk


@dataclass(frozen=True)
class Fail:
    """An HTTP error response, with ``Retry-After`` (seconds) when given."""

    status: int = 500
    message: str = "the loopback server was told to fail"
    retry_after: float | None = None


@dataclass(frozen=True)
class Hang:
    """No answer: the request waits until the client times out (or ``seconds`` pass)."""

    seconds: float = 30.0


@dataclass(frozen=True)
class Drop:
    """A stream that sends ``after_chunks`` chunks of ``text`` and then loses its connection."""

    after_chunks: int = 2
    text: str = "Een afgebroken antwoord dat nooit eindigt"


Outcome = Reply | Fail | Hang | Drop


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the server received it."""

    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    received_at: float = field(default_factory=time.monotonic)


class LoopbackServer:
    """An OpenAI-compatible server on ``127.0.0.1`` in a background thread."""

    def __init__(
        self,
        *,
        default: Outcome | None = None,
        respond: Callable[[ReceivedRequest], Outcome] | None = None,
        port: int = 0,
    ) -> None:
        """Prepare the server.

        With the script empty, ``respond(request)`` picks the outcome when given,
        else ``default`` answers.
        """
        self.default: Outcome = default or Reply()
        self.respond = respond
        self._script: deque[Outcome] = deque()
        self._lock = threading.Lock()
        self.requests: list[ReceivedRequest] = []
        self._stopping = threading.Event()
        self._httpd = _QuietServer(("127.0.0.1", port), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The ``base_url`` to give the OpenAI client."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def request_count(self) -> int:
        """How many requests reached the server."""
        with self._lock:
            return len(self.requests)

    def script(self, *outcomes: Outcome) -> None:
        """Queue outcomes for the next requests, in order."""
        with self._lock:
            self._script.extend(outcomes)

    def next_outcome(self, request: ReceivedRequest) -> Outcome:
        """Record a request and pick its outcome."""
        with self._lock:
            self.requests.append(request)
            if self._script:
                return self._script.popleft()
        return self.respond(request) if self.respond is not None else self.default

    def start(self) -> LoopbackServer:
        """Start serving in a daemon thread."""
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def wait_stopping(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True if the server is stopping."""
        return self._stopping.wait(seconds)

    def __enter__(self) -> LoopbackServer:  # noqa: PYI034 - final in practice; keeps mypy simple
        """Start on entry."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop on exit."""
        self.stop()


class _QuietServer(ThreadingHTTPServer):
    """A client that hangs up (a timeout, a dropped stream) is normal here."""

    request_queue_size = 1024  # hundreds of clients connect at once in load tests

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore connections the client closed; report anything else."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def _handler_for(server: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        owner = server

    return Handler


class _Handler(BaseHTTPRequestHandler):
    owner: LoopbackServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms stalls

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """Stay quiet."""

    def do_POST(self) -> None:
        """Answer chat completions and responses."""
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        if len(raw) < length:  # the client went away mid-request: nothing arrived
            self.close_connection = True
            return
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        path = self.path.split("?", 1)[0]
        if path not in ("/v1/chat/completions", "/v1/responses"):
            self._json(404, {"error": {"message": f"no route {path}", "type": "not_found"}})
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        outcome = self.owner.next_outcome(ReceivedRequest(path, body, headers))
        self._answer(path, body, outcome)

    def _answer(self, path: str, body: dict[str, Any], outcome: Outcome) -> None:
        if isinstance(outcome, Fail):
            extra = {}
            if outcome.retry_after is not None:
                extra["retry-after-ms"] = str(round(outcome.retry_after * 1000))
            self._json(
                outcome.status,
                {"error": {"message": outcome.message, "type": "loopback_error"}},
                extra,
            )
            return
        if isinstance(outcome, Hang):
            self.owner.wait_stopping(outcome.seconds)
            self.close_connection = True
            return
        responses = path.endswith("/responses")
        if isinstance(outcome, Drop):
            self._stream(body, Reply(outcome.text), responses, drop_after=outcome.after_chunks)
            return
        if outcome.latency:
            self.owner.wait_stopping(outcome.latency)
        if body.get("stream"):
            self._stream(body, outcome, responses)
        elif responses:
            self._json(200, _response_object(body, outcome))
        else:
            self._json(200, _chat_completion(body, outcome))

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _stream(
        self, body: dict[str, Any], reply: Reply, responses: bool, drop_after: int | None = None
    ) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        events = _response_events(body, reply) if responses else _chat_chunks(body, reply)
        for sent, (event, data) in enumerate(events):
            if drop_after is not None and sent >= drop_after:
                self.wfile.flush()
                self.close_connection = True
                return  # no terminating chunk: the client sees a broken stream
            if reply.chunk_delay:
                self.owner.wait_stopping(reply.chunk_delay)
            line = (f"event: {event}\n" if event else "") + f"data: {data}\n\n"
            self._chunk(line.encode())
        self._chunk(b"")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def _prompt_of(body: dict[str, Any]) -> str:
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                content = message.get("content")
                return content if isinstance(content, str) else json.dumps(content)
    value = body.get("input")
    return value if isinstance(value, str) else json.dumps(value)


def _render(body: dict[str, Any], reply: Reply) -> tuple[str, int, int]:
    prompt = _prompt_of(body)
    text = reply.text.replace("{prompt}", prompt[:60])
    prompt_tokens = reply.prompt_tokens
    if prompt_tokens is None:
        prompt_tokens = max(1, len(json.dumps(body.get("messages") or body.get("input"))) // 4)
    completion_tokens = reply.completion_tokens
    if completion_tokens is None:
        completion_tokens = max(1, len(text) // 4)
    return text, prompt_tokens, completion_tokens


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def _chat_completion(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    text, prompt_tokens, completion_tokens = _render(body, reply)
    n = body.get("n") or 1
    return {
        "id": f"chatcmpl-loopback-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model") or "loopback",
        "system_fingerprint": "fp_loopback",
        "choices": [
            {
                "index": i,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "finish_reason": reply.finish_reason,
            }
            for i in range(n)
        ],
        "usage": _usage(prompt_tokens, completion_tokens),
    }


def _chat_chunks(body: dict[str, Any], reply: Reply) -> list[tuple[str | None, str]]:
    text, prompt_tokens, completion_tokens = _render(body, reply)
    head = {
        "id": f"chatcmpl-loopback-{time.monotonic_ns()}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model") or "loopback",
        "system_fingerprint": "fp_loopback",
    }
    words = text.split(" ")
    pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
    chunks = [{**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
    chunks += [{**head, "choices": [{"index": 0, "delta": {"content": p}}]} for p in pieces]
    chunks.append(
        {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": reply.finish_reason}]}
    )
    if (body.get("stream_options") or {}).get("include_usage"):
        chunks.append({**head, "choices": [], "usage": _usage(prompt_tokens, completion_tokens)})
    events: list[tuple[str | None, str]] = [(None, json.dumps(c)) for c in chunks]
    events.append((None, "[DONE]"))
    return events


def _response_object(body: dict[str, Any], reply: Reply, status: str = "completed") -> Any:
    text, prompt_tokens, completion_tokens = _render(body, reply)
    return {
        "id": f"resp_loopback_{time.monotonic_ns()}",
        "object": "response",
        "created_at": int(time.time()),
        "model": body.get("model") or "loopback",
        "status": status,
        "output": [
            {
                "id": "msg_loopback",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        ],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": prompt_tokens,
            "output_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        },
    }


def _response_events(body: dict[str, Any], reply: Reply) -> list[tuple[str | None, str]]:
    final = _response_object(body, reply)
    text = final["output"][0]["content"][0]["text"]
    created = {**final, "status": "in_progress", "output": [], "usage": None}
    events: list[dict[str, Any]] = [{"type": "response.created", "response": created}]
    events += [
        {
            "type": "response.output_text.delta",
            "item_id": "msg_loopback",
            "output_index": 0,
            "content_index": 0,
            "delta": piece,
        }
        for piece in [text[i : i + 8] for i in range(0, len(text), 8)]
    ]
    events.append({"type": "response.completed", "response": final})
    return [
        (event["type"], json.dumps({**event, "sequence_number": i}))
        for i, event in enumerate(events)
    ]
