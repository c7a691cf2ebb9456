"""Streams, raw responses, structured outputs, the Responses API and Azure, over respx.

For every path: the row was pending when the request arrived, and is complete after.
"""

from __future__ import annotations

import asyncio
import gc
import gzip
import json
import threading
import zlib
from typing import TYPE_CHECKING, Any

import httpx
import openai
import pydantic
import pytest
import respx

from audited_openai import (
    AsyncAuditedAzureOpenAI,
    AuditedAzureOpenAI,
    AuditedOpenAI,
    GenerationLogRepository,
    _writer,
)
from tests.conftest import API_KEY, BASE_URL, async_client, chat_body, rows

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

MESSAGES = [{"role": "user", "content": "Definieer 'verdachte'."}]
HEAD = {
    "id": "chatcmpl-stream1",
    "object": "chat.completion.chunk",
    "created": 1731335025,
    "model": "gpt-4o-2024-08-06",
    "system_fingerprint": "fp_stream",
}
USAGE = {
    "prompt_tokens": 20,
    "completion_tokens": 4,
    "total_tokens": 24,
    "prompt_tokens_details": {"cached_tokens": 16},
    "completion_tokens_details": {"reasoning_tokens": 0},
}


def chunk(choices: Any, **extra: Any) -> dict[str, Any]:
    return {**HEAD, "choices": choices, **extra}


def delta(
    content: str | None = None, index: int = 0, finish: str | None = None, **more: Any
) -> dict[str, Any]:
    d: dict[str, Any] = {} if content is None else {"content": content}
    d.update(more)
    return {"index": index, "delta": d, "finish_reason": finish}


def sse(*events: Any, done: bool = True) -> bytes:
    out = "".join(f"data: {json.dumps(e)}\n\n" for e in events)
    if done:
        out += "data: [DONE]\n\n"
    return out.encode()


class EventStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body that arrives one event at a time, once, as a server streams it."""

    def __init__(self, body: bytes) -> None:
        self.events = [event + b"\n\n" for event in body.split(b"\n\n") if event]

    def __iter__(self) -> Iterator[bytes]:
        while self.events:
            yield self.events.pop(0)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.events:
            yield self.events.pop(0)


def streamed(body: bytes) -> httpx.Response:
    """An event-stream response whose events arrive one by one."""
    return httpx.Response(
        200, stream=EventStream(body), headers={"content-type": "text/event-stream"}
    )


TEXT_CHUNKS = [
    chunk([delta("", role="assistant")]),
    chunk([delta("Een ")]),
    chunk([delta("verdachte ")]),
    chunk([delta("is ...")]),
    chunk([delta(finish="stop")]),
]


ARRIVALS: list[tuple[int, str]] = []


def arrive(db_path: Path, make: Any) -> Any:
    """A respx side effect that notes what a second connection sees when a request arrives."""

    def handler(request: httpx.Request) -> httpx.Response:
        found = rows(db_path, flush=False)  # committed when it arrived, nothing flushed
        ARRIVALS.append((len(found), found[-1]["generation_status"] if found else "none"))
        return make(request) if callable(make) else make

    return handler


@pytest.fixture(autouse=True)
def _every_request_found_its_pending_row(db_path: Path) -> Iterator[None]:
    """After each test: every request arrived with its own row committed and pending."""
    ARRIVALS.clear()
    yield
    assert ARRIVALS, "the test sent no request"
    for number, (count, status) in enumerate(ARRIVALS, start=1):
        assert (count, status) == (number, "pending"), ARRIVALS
    for row in rows(db_path):
        assert row["generation_status"] != "pending", "every row is complete afterwards"


def stream_route(
    router: respx.MockRouter, db_path: Path, body: bytes, seen: list[Any]
) -> respx.Route:
    """Answer with an SSE body, noting what another connection saw when the request came."""

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((rows(db_path, flush=False), json.loads(request.content)))
        return streamed(body)

    return router.post("/chat/completions").mock(side_effect=arrive(db_path, handler))


def assert_pending_on_arrival(seen: list[Any]) -> None:
    found, _ = seen[0]
    assert len(found) == 1
    assert found[0]["generation_status"] == "pending"
    assert found[0]["stream"] == 1


# -- sync chat streams ---------------------------------------------------------------------


def test_stream_exhausted_is_success(
    client: AuditedOpenAI, router: respx.MockRouter, db_path: Path
) -> None:
    """A stream read to its end completes the row with content, ttft, and no usage asked."""
    seen: list[Any] = []
    stream_route(router, db_path, sse(*TEXT_CHUNKS), seen)
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    assert isinstance(stream, openai.Stream)
    assert rows(db_path)[0]["generation_status"] == "pending"
    text = "".join(c.choices[0].delta.content or "" for c in stream)
    assert text == "Een verdachte is ..."
    assert_pending_on_arrival(seen)
    assert "stream_options" not in seen[0][1], "never added unless include_usage=True"
    (row,) = rows(db_path)
    assert row["generation_status"] == "success"
    assert row["response_content"] == "Een verdachte is ..."
    assert row["response_finish_reason"] == "stop"
    assert row["response_id"] == "chatcmpl-stream1"
    assert row["response_model"] == "gpt-4o-2024-08-06"
    assert row["system_fingerprint"] == "fp_stream"
    assert row["tokens_total"] is None
    assert isinstance(row["ttft_ms"], int)
    assert row["ttft_ms"] <= row["duration_ms"]


def test_include_usage_option_records_usage(db_path: Path, router: respx.MockRouter) -> None:
    """include_usage=True adds stream_options, and the usage chunk lands in the row."""
    seen: list[Any] = []
    stream_route(router, db_path, sse(*TEXT_CHUNKS, chunk([], usage=USAGE)), seen)
    client = AuditedOpenAI(
        db_path, api_key=API_KEY, base_url=BASE_URL, http_client=httpx.Client(), include_usage=True
    )
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))  # type: ignore[arg-type]
    assert chunks[-1].usage is not None
    assert seen[0][1]["stream_options"] == {"include_usage": True}
    (row,) = rows(db_path)
    assert (row["tokens_prompt"], row["tokens_completion"], row["tokens_total"]) == (20, 4, 24)
    assert row["tokens_cached"] == 16


def test_caller_stream_options_are_kept(db_path: Path, router: respx.MockRouter) -> None:
    """A caller's own stream_options are sent as given, even with include_usage=True."""
    seen: list[Any] = []
    stream_route(router, db_path, sse(*TEXT_CHUNKS), seen)
    client = AuditedOpenAI(
        db_path, api_key=API_KEY, base_url=BASE_URL, http_client=httpx.Client(), include_usage=True
    )
    list(
        client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": False}
        )
    )  # type: ignore[arg-type]
    assert seen[0][1]["stream_options"] == {"include_usage": False}


def _abandoned(db_path: Path, partial: str | None) -> None:
    (row,) = rows(db_path)
    assert row["generation_status"] == "failed"
    assert row["error_type"] == "StreamAbandoned"
    assert row["error_message"] == "the stream was closed or dropped before its last chunk"
    assert row["response_content"] == partial
    assert row["duration_ms"] is not None


def test_break_then_close_is_abandoned_with_partial_content(
    client: AuditedOpenAI, router: respx.MockRouter, db_path: Path
) -> None:
    """Leaving with break and closing keeps what was received, as StreamAbandoned."""
    stream_route(router, db_path, sse(*TEXT_CHUNKS), [])
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    for i, _ in enumerate(stream):
        if i == 2:
            break
    assert rows(db_path)[0]["generation_status"] == "pending"
    stream.close()
    _abandoned(db_path, "Een verdachte ")
    stream.close()  # a second close changes nothing
    _abandoned(db_path, "Een verdachte ")


def test_break_without_close_completes_when_dropped(
    client: AuditedOpenAI, router: respx.MockRouter, db_path: Path
) -> None:
    """A stream left by break and then dropped completes as abandoned."""
    stream_route(router, db_path, sse(*TEXT_CHUNKS), [])

    def read_two() -> None:
        stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
        for i, _ in enumerate(stream):
            if i == 1:
                break

    read_two()
    gc.collect()
    _abandoned(db_path, "Een ")


def test_with_block_exit_completes(
    client: AuditedOpenAI, router: respx.MockRouter, db_path: Path
) -> None:
    """Leaving a with block early completes the row once."""
    stream_route(router, db_path, sse(*TEXT_CHUNKS), [])
    with client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True) as stream:  # type: ignore[arg-type]
        next(stream)
        next(stream)
    _abandoned(db_path, "Een ")


def test_unread_stream_collected_is_abandoned(
    client: AuditedOpenAI, router: respx.MockRouter, db_path: Path
) -> None:
    """A stream dropped unread completes as abandoned with no content."""
    stream_route(router, db_path, sse(*TEXT_CHUNKS), [])
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    del stream
    gc.collect()
    _abandoned(db_path, None)


def test_a_stream_dropped_while_its_thread_holds_the_writers_locks(
    client: AuditedOpenAI, router: respx.MockRouter, db_path: Path
) -> None:
    """A finalizer may run at any allocation, so also inside the writer's critical
    sections in the very thread that holds them (``Writer.submit`` starting the thread,
    ``Owner.writer`` taking the shared writer): the dropped stream's completion is queued
    all the same. This is why those locks are re-entrant: with a plain ``Lock`` this
    thread deadlocks and the test fails (measured by swapping them)."""
    stream_route(router, db_path, sse(*TEXT_CHUNKS), [])
    held = [client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)]  # type: ignore[arg-type]
    writer = GenerationLogRepository(db_path).store.writer()
    finished = threading.Event()

    def drop() -> None:
        with _writer._OWNERS_LOCK, writer._lock:  # as a thread inside submit() holds them
            held.clear()
            gc.collect()
        finished.set()

    threading.Thread(target=drop, daemon=True).start()
    assert finished.wait(10), "the finalizer's write waited for a lock its own thread held"
    _abandoned(db_path, None)


def test_closed_after_every_choice_finished_is_success(
    client: AuditedOpenAI, router: respx.MockRouter, db_path: Path
) -> None:
    """Closing after the finish chunk (before [DONE]) lost nothing: success."""
    stream_route(router, db_path, sse(*TEXT_CHUNKS), [])
    with client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True) as stream:  # type: ignore[arg-type]
        for c in stream:
            if c.choices and c.choices[0].finish_reason:
                break
    assert rows(db_path)[0]["generation_status"] == "success"


class _BrokenStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    def __init__(self, head: bytes, error: Exception | None = None) -> None:
        self.head = head
        self.error = error or httpx.ReadError("connection reset by peer")

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        raise self.error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.head
        raise self.error


@pytest.mark.parametrize(
    ("error", "sdk_error", "status"),
    [
        (httpx.ReadError("connection reset by peer"), openai.APIConnectionError, "failed"),
        (httpx.ReadTimeout("timed out"), openai.APITimeoutError, "timeout"),
    ],
)
def test_network_error_mid_stream_is_failed_with_that_error(
    client: AuditedOpenAI,
    router: respx.MockRouter,
    db_path: Path,
    *,
    error: Exception,
    sdk_error: type[Exception],
    status: str,
) -> None:
    """A stream broken by the network is failed (a read timeout: 'timeout') with the SDK's
    error and the partial text."""
    router.post("/chat/completions").mock(
        side_effect=arrive(
            db_path,
            lambda request: httpx.Response(
                200,
                stream=_BrokenStream(sse(*TEXT_CHUNKS[:3], done=False), error),
                headers={"content-type": "text/event-stream"},
            ),
        )
    )
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    with pytest.raises(sdk_error):
        for _ in stream:
            pass
    (row,) = rows(db_path)
    assert row["generation_status"] == status
    assert row["error_type"] == sdk_error.__name__
    assert row["response_content"] == "Een verdachte "


def test_n_choices_tool_calls_and_empty_choices(
    client: AuditedOpenAI, router: respx.MockRouter, db_path: Path
) -> None:
    """n>1 stays separate, tool-call deltas are assembled, empty/None choices are fine."""
    tool = {
        "index": 0,
        "id": "call_9",
        "type": "function",
        "function": {"name": "zoek_wet", "arguments": ""},
    }
    events = [
        chunk(None),
        chunk([]),
        chunk([delta("A", index=0), delta("B", index=1)]),
        chunk([delta("a", index=0), delta("b", index=1)]),
        chunk([delta(index=2, tool_calls=[tool])]),
        chunk([delta(index=2, tool_calls=[{"index": 0, "function": {"arguments": '{"q":'}}])]),
        chunk([delta(index=2, tool_calls=[{"index": 0, "function": {"arguments": '"art. 27"}'}}])]),
        chunk(
            [
                delta(index=0, finish="stop"),
                delta(index=1, finish="length"),
                delta(index=2, finish="tool_calls"),
            ]
        ),
    ]
    stream_route(router, db_path, sse(*events), [])
    list(client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True, n=3))  # type: ignore[arg-type]
    (row,) = rows(db_path)
    assert row["generation_status"] == "success"
    assert row["response_content"] == (
        '[choice 0]\nAa\n\n[choice 1]\nBb\n\n[choice 2]\n[tool_call call_9] zoek_wet({"q":"art. 27"})'
    )
    assert row["response_finish_reason"] == "stop,length,tool_calls"


def test_streamed_refusal_is_stored_as_such(
    client: AuditedOpenAI, router: respx.MockRouter, db_path: Path
) -> None:
    """A refusal arriving in deltas is stored marked as a refusal."""
    events = [
        chunk([delta(refusal="Ik kan ")]),
        chunk([delta(refusal="niet helpen.")]),
        chunk([delta(finish="stop")]),
    ]
    stream_route(router, db_path, sse(*events), [])
    list(client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))  # type: ignore[arg-type]
    assert rows(db_path)[0]["response_content"] == "[refusal] Ik kan niet helpen."


# -- async chat streams ----------------------------------------------------------------------


def test_async_stream_exhausted_closed_and_with(router: respx.MockRouter, db_path: Path) -> None:
    """AsyncStream: exhausted is success; aclose() and async with early are abandoned."""
    seen: list[Any] = []
    stream_route(router, db_path, sse(*TEXT_CHUNKS), seen)

    async def main() -> None:
        async with async_client(db_path) as client:
            stream = await client.chat.completions.create(
                model="gpt-4o", messages=MESSAGES, stream=True
            )  # type: ignore[arg-type]
            assert isinstance(stream, openai.AsyncStream)
            assert [c async for c in stream][-1].choices[0].finish_reason == "stop"
            stream = await client.chat.completions.create(
                model="gpt-4o", messages=MESSAGES, stream=True
            )  # type: ignore[arg-type]
            await stream.__anext__()
            await stream.__anext__()
            await stream.aclose()
            async with await client.chat.completions.create(
                model="gpt-4o", messages=MESSAGES, stream=True
            ) as stream:  # type: ignore[arg-type]
                await stream.__anext__()

    asyncio.run(main())
    assert_pending_on_arrival(seen)
    found = rows(db_path)
    assert [r["generation_status"] for r in found] == ["success", "failed", "failed"]
    assert [r["error_type"] for r in found] == [None, "StreamAbandoned", "StreamAbandoned"]
    assert [r["response_content"] for r in found] == ["Een verdachte is ...", "Een ", None]


def test_async_stream_dropped_and_broken(router: respx.MockRouter, db_path: Path) -> None:
    """An unread AsyncStream dropped is abandoned; a broken one is failed with the error."""
    responses = iter(
        [
            streamed(sse(*TEXT_CHUNKS)),
            httpx.Response(
                200,
                stream=_BrokenStream(sse(*TEXT_CHUNKS[:2], done=False)),
                headers={"content-type": "text/event-stream"},
            ),
        ]
    )
    router.post("/chat/completions").mock(
        side_effect=arrive(db_path, lambda request: next(responses))
    )

    async def main() -> None:
        async with async_client(db_path) as client:
            stream = await client.chat.completions.create(
                model="gpt-4o", messages=MESSAGES, stream=True
            )  # type: ignore[arg-type]
            del stream
            gc.collect()
            stream = await client.chat.completions.create(
                model="gpt-4o", messages=MESSAGES, stream=True
            )  # type: ignore[arg-type]
            with pytest.raises(openai.APIConnectionError):
                async for _ in stream:
                    pass
            for _ in range(100):
                if rows(db_path)[0]["generation_status"] != "pending":
                    break
                await asyncio.sleep(0.01)

    asyncio.run(main())
    found = rows(db_path)
    assert [r["error_type"] for r in found] == ["StreamAbandoned", "APIConnectionError"]
    assert found[1]["response_content"] == "Een "


# -- raw and streaming responses ----------------------------------------------------------------


def test_with_raw_response_sync_and_async(router: respx.MockRouter, db_path: Path) -> None:
    """The caller's LegacyAPIResponse is untouched and parses; the row is complete."""
    seen: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(rows(db_path, flush=False)[-1]["generation_status"])
        return httpx.Response(200, json=chat_body(), headers={"x-request-id": "req_raw"})

    router.post("/chat/completions").mock(side_effect=arrive(db_path, handler))
    client = AuditedOpenAI(db_path, api_key=API_KEY, base_url=BASE_URL, http_client=httpx.Client())
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
    assert raw.headers["x-request-id"] == "req_raw"
    assert raw.parse().choices[0].message.content == "Een verdachte is ..."
    assert json.loads(raw.text)["id"] == "chatcmpl-AbCdEf123456"

    async def main() -> None:
        async with async_client(db_path) as aclient:
            araw = await aclient.chat.completions.with_raw_response.create(
                model="gpt-4o", messages=MESSAGES
            )  # type: ignore[arg-type]
            assert araw.parse().id == "chatcmpl-AbCdEf123456"

    asyncio.run(main())
    assert seen == ["pending", "pending"]
    found = rows(db_path)
    assert [r["generation_status"] for r in found] == ["success", "success"]
    assert {r["tokens_total"] for r in found} == {1801}
    assert {r["response_content"] for r in found} == {"Een verdachte is ..."}


def test_with_raw_response_of_a_stream(
    client: AuditedOpenAI, router: respx.MockRouter, db_path: Path
) -> None:
    """A raw response whose body is a stream: the parsed stream is observed."""
    stream_route(router, db_path, sse(*TEXT_CHUNKS), [])
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=MESSAGES, stream=True
    )  # type: ignore[arg-type]
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse())
    assert text == "Een verdachte is ..."
    assert rows(db_path)[0]["response_content"] == "Een verdachte is ..."


def test_with_streaming_response(
    client: AuditedOpenAI, router: respx.MockRouter, db_path: Path
) -> None:
    """Completed when the caller is done: with content when read, else status and timing."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(rows(db_path, flush=False)[-1]["generation_status"])
        return httpx.Response(200, json=chat_body())

    router.post("/chat/completions").mock(side_effect=arrive(db_path, handler))
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o", messages=MESSAGES
    ) as response:  # type: ignore[arg-type]
        assert rows(db_path)[0]["generation_status"] == "pending"
        assert response.parse().id == "chatcmpl-AbCdEf123456"
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o", messages=MESSAGES
    ) as response:  # type: ignore[arg-type]
        assert response.http_response.status_code == 200
    assert seen == ["pending", "pending"]
    read, unread = rows(db_path)
    assert read["generation_status"] == "success"
    assert read["response_content"] == "Een verdachte is ..."
    assert read["tokens_total"] == 1801
    assert unread["generation_status"] == "success"
    assert unread["response_content"] is None
    assert unread["http_status"] == 200
    assert unread["duration_ms"] is not None


def test_with_streaming_response_async_and_streamed(
    router: respx.MockRouter, db_path: Path
) -> None:
    """Async streaming responses complete on exit; a parsed SSE body is observed as a stream."""
    bodies = iter(
        [
            httpx.Response(200, json=chat_body()),
            streamed(sse(*TEXT_CHUNKS)),
        ]
    )
    router.post("/chat/completions").mock(side_effect=arrive(db_path, lambda request: next(bodies)))

    async def main() -> None:
        async with async_client(db_path) as client:
            async with client.chat.completions.with_streaming_response.create(
                model="gpt-4o", messages=MESSAGES
            ) as response:  # type: ignore[arg-type]
                await response.read()
            async with client.chat.completions.with_streaming_response.create(
                model="gpt-4o", messages=MESSAGES, stream=True
            ) as response:  # type: ignore[arg-type]
                stream = await response.parse()
                assert [c async for c in stream][-1].choices[0].finish_reason == "stop"

    asyncio.run(main())
    first, second = rows(db_path)
    assert first["response_content"] == "Een verdachte is ..."
    assert second["response_content"] == "Een verdachte is ..."
    assert second["generation_status"] == "success"


# -- structured outputs -----------------------------------------------------------------------------


class Definitie(pydantic.BaseModel):
    begrip: str
    definitie: str


def test_parse_keeps_the_schema_and_completes(
    client: AuditedOpenAI, router: respx.MockRouter, db_path: Path
) -> None:
    """chat.completions.parse: request_json keeps the JSON schema; the row is complete."""
    content = json.dumps({"begrip": "verdachte", "definitie": "persoon ..."})
    router.post("/chat/completions").mock(
        side_effect=arrive(db_path, httpx.Response(200, json=chat_body(content)))
    )
    result = client.chat.completions.parse(
        model="gpt-4o", messages=MESSAGES, response_format=Definitie
    )  # type: ignore[arg-type]
    parsed = result.choices[0].message.parsed
    assert parsed == Definitie(begrip="verdachte", definitie="persoon ...")
    (row,) = rows(db_path)
    sent = json.loads(row["request_json"])
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["name"] == "Definitie"
    assert row["response_content"] == content
    assert row["generation_status"] == "success"


def test_parse_refusal_is_stored_as_such(
    client: AuditedOpenAI, router: respx.MockRouter, db_path: Path
) -> None:
    """A structured-output refusal is recorded as a refusal."""
    body = chat_body()
    body["choices"] = [
        {
            "index": 0,
            "message": {"role": "assistant", "content": None, "refusal": "Dat doe ik niet."},
            "finish_reason": "stop",
        }
    ]
    router.post("/chat/completions").mock(
        side_effect=arrive(db_path, httpx.Response(200, json=body))
    )
    result = client.chat.completions.parse(
        model="gpt-4o", messages=MESSAGES, response_format=Definitie
    )  # type: ignore[arg-type]
    assert result.choices[0].message.refusal == "Dat doe ik niet."
    assert rows(db_path)[0]["response_content"] == "[refusal] Dat doe ik niet."


def test_stream_helper_sync_and_async(router: respx.MockRouter, db_path: Path) -> None:
    """The chat.completions.stream(...) helper leaves complete rows, sync and async."""
    content = json.dumps({"begrip": "getuige", "definitie": "persoon"})
    pieces = [content[:10], content[10:]]
    events = [chunk([delta(p)]) for p in pieces] + [chunk([delta(finish="stop")])]
    router.post("/chat/completions").mock(
        side_effect=arrive(
            db_path,
            lambda request: streamed(sse(*events)),
        )
    )
    client = AuditedOpenAI(db_path, api_key=API_KEY, base_url=BASE_URL, http_client=httpx.Client())
    with client.chat.completions.stream(
        model="gpt-4o", messages=MESSAGES, response_format=Definitie
    ) as stream:  # type: ignore[arg-type]
        final = stream.get_final_completion()
    assert final.choices[0].message.parsed == Definitie(begrip="getuige", definitie="persoon")

    async def main() -> None:
        async with (
            async_client(db_path) as aclient,
            aclient.chat.completions.stream(
                model="gpt-4o", messages=MESSAGES, response_format=Definitie
            ) as astream,
        ):  # type: ignore[arg-type]
            await astream.get_final_completion()

    asyncio.run(main())
    found = rows(db_path)
    assert [r["generation_status"] for r in found] == ["success", "success"]
    assert {r["response_content"] for r in found} == {content}
    assert all("json_schema" in r["request_json"] for r in found)


# -- the Responses API ------------------------------------------------------------------------------------


def response_body(text: str = "Een getuige is ...", status: str = "completed") -> dict[str, Any]:
    return {
        "id": "resp_123",
        "object": "response",
        "created_at": 1731335025,
        "model": "gpt-4.1-2025-04-14",
        "status": status,
        "output": [
            {
                "id": "msg_1",
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
            "input_tokens": 30,
            "output_tokens": 5,
            "total_tokens": 35,
            "input_tokens_details": {"cached_tokens": 8},
            "output_tokens_details": {"reasoning_tokens": 2},
        },
    }


def _assert_responses_row(
    row: dict[str, Any], *, stream: int = 0, text: str = "Een getuige is ..."
) -> None:
    assert row["endpoint"] == "responses"
    assert row["generation_status"] == "success"
    assert row["stream"] == stream
    assert (
        row["prompt_full_text"] == "[instructions]\nWees precies.\n\n[user]\nDefinieer 'getuige'."
    )
    assert row["response_id"] == "resp_123"
    assert (row["response_created_at"], row["response_model"]) == (1731335025, "gpt-4.1-2025-04-14")
    assert row["response_content"] == text
    assert (row["tokens_prompt"], row["tokens_completion"], row["tokens_total"]) == (30, 5, 35)
    assert (row["tokens_cached"], row["tokens_reasoning"]) == (8, 2)
    assert row["response_finish_reason"] == "completed"


def test_responses_create_plain_and_parse(router: respx.MockRouter, db_path: Path) -> None:
    """responses.create and responses.parse: endpoint 'responses', prompt, usage, text."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(rows(db_path, flush=False)[-1]["generation_status"])
        return httpx.Response(
            200,
            json=response_body(
                json.dumps({"begrip": "getuige", "definitie": "p"})
                if len(seen) > 1
                else "Een getuige is ..."
            ),
        )

    router.post("/responses").mock(side_effect=arrive(db_path, handler))
    client = AuditedOpenAI(db_path, api_key=API_KEY, base_url=BASE_URL, http_client=httpx.Client())
    result = client.responses.create(
        model="gpt-4.1",
        instructions="Wees precies.",
        input="Definieer 'getuige'.",
        max_output_tokens=300,
    )
    assert result.output_text == "Een getuige is ..."
    parsed = client.responses.parse(
        model="gpt-4.1",
        instructions="Wees precies.",
        input="Definieer 'getuige'.",
        text_format=Definitie,
    )
    assert parsed.output_parsed == Definitie(begrip="getuige", definitie="p")
    assert seen == ["pending", "pending"]
    first, second = rows(db_path)
    _assert_responses_row(first)
    _assert_responses_row(second, text=json.dumps({"begrip": "getuige", "definitie": "p"}))
    assert "json_schema" in second["request_json"]
    assert (first["model_max_tokens"], second["model_max_tokens"]) == (300, None), (
        "the Responses API's max_output_tokens is the row's max tokens"
    )


def _response_events(text: str) -> bytes:
    final = response_body(text)
    events = [
        {
            "type": "response.created",
            "response": {**final, "status": "in_progress", "output": [], "usage": None},
        },
        *(
            {
                "type": "response.output_text.delta",
                "item_id": "msg_1",
                "output_index": 0,
                "content_index": 0,
                "delta": p,
            }
            for p in (text[:4], text[4:])
        ),
        {"type": "response.completed", "response": final},
    ]
    return "".join(
        f"event: {e['type']}\ndata: {json.dumps({**e, 'sequence_number': i})}\n\n"
        for i, e in enumerate(events)
    ).encode()


def test_responses_stream_sync_and_async(router: respx.MockRouter, db_path: Path) -> None:
    """A streamed Responses call is completed from its response.completed event."""
    router.post("/responses").mock(
        side_effect=arrive(
            db_path,
            lambda request: streamed(_response_events("Een getuige is ...")),
        )
    )
    client = AuditedOpenAI(db_path, api_key=API_KEY, base_url=BASE_URL, http_client=httpx.Client())
    events = list(
        client.responses.create(
            model="gpt-4.1", instructions="Wees precies.", input="Definieer 'getuige'.", stream=True
        )
    )
    assert events[-1].type == "response.completed"

    async def main() -> None:
        async with async_client(db_path) as aclient:
            stream = await aclient.responses.create(
                model="gpt-4.1",
                instructions="Wees precies.",
                input="Definieer 'getuige'.",
                stream=True,
            )
            async for _ in stream:
                pass

    asyncio.run(main())
    for row in rows(db_path):
        _assert_responses_row(row, stream=1)
        assert row["ttft_ms"] is not None


def test_responses_stream_abandoned_keeps_partial_text(
    client: AuditedOpenAI, router: respx.MockRouter, db_path: Path
) -> None:
    """A Responses stream closed early keeps the text deltas received."""
    router.post("/responses").mock(
        side_effect=arrive(
            db_path,
            streamed(_response_events("Een getuige is ...")),
        )
    )
    with client.responses.create(model="gpt-4.1", input="x", stream=True) as stream:
        next(stream)
        next(stream)
    (row,) = rows(db_path)
    assert row["error_type"] == "StreamAbandoned"
    assert row["response_content"] == "Een "


def test_responses_stream_closed_after_its_final_event_is_complete(
    client: AuditedOpenAI, router: respx.MockRouter, db_path: Path
) -> None:
    """Closed the moment response.completed arrived (before the body's end was read):
    the model finished, so the row is a success with the whole text."""
    router.post("/responses").mock(
        side_effect=arrive(db_path, streamed(_response_events("Een getuige is ...")))
    )
    with client.responses.create(model="gpt-4.1", input="x", stream=True) as stream:
        for event in stream:
            if event.type == "response.completed":
                break
    (row,) = rows(db_path)
    assert (row["generation_status"], row["error_type"]) == ("success", None)
    assert row["response_content"] == "Een getuige is ..."


# -- Azure ------------------------------------------------------------------------------------------------


def test_azure_clients_are_audited(db_path: Path) -> None:
    """AuditedAzureOpenAI and its async twin write the same rows."""
    azure = "https://definities.openai.azure.com"
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(f"{azure}/openai/deployments/gpt-4o/chat/completions").mock(
            side_effect=arrive(db_path, lambda request: httpx.Response(200, json=chat_body()))
        )
        client = AuditedAzureOpenAI(
            db_path,
            api_key=API_KEY,
            api_version="2024-10-21",
            azure_endpoint=azure,
            http_client=httpx.Client(),
        )
        assert isinstance(client, openai.AzureOpenAI)
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
        assert isinstance(client.with_options(timeout=5), AuditedAzureOpenAI)

        async def main() -> None:
            async with AsyncAuditedAzureOpenAI(
                db_path,
                api_key=API_KEY,
                api_version="2024-10-21",
                azure_endpoint=azure,
                http_client=httpx.AsyncClient(),
            ) as aclient:
                assert isinstance(aclient, openai.AsyncAzureOpenAI)
                await aclient.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]

        asyncio.run(main())
        assert route.call_count == 2
    assert [r["generation_status"] for r in rows(db_path)] == ["success", "success"]


def test_parse_and_responses_parse_async(router: respx.MockRouter, db_path: Path) -> None:
    """chat.completions.parse and responses.parse on the async client leave complete rows."""
    content = json.dumps({"begrip": "getuige", "definitie": "persoon"})
    router.post("/chat/completions").mock(
        side_effect=arrive(db_path, lambda request: httpx.Response(200, json=chat_body(content)))
    )
    router.post("/responses").mock(
        side_effect=arrive(
            db_path, lambda request: httpx.Response(200, json=response_body(content))
        )
    )

    async def main() -> None:
        async with async_client(db_path) as client:
            parsed = await client.chat.completions.parse(
                model="gpt-4o", messages=MESSAGES, response_format=Definitie
            )  # type: ignore[arg-type]
            assert parsed.choices[0].message.parsed == Definitie(
                begrip="getuige", definitie="persoon"
            )
            answer = await client.responses.parse(
                model="gpt-4.1",
                instructions="Wees precies.",
                input="Definieer 'getuige'.",
                text_format=Definitie,
            )
            assert answer.output_parsed == Definitie(begrip="getuige", definitie="persoon")

    asyncio.run(main())
    chat, responses = rows(db_path)
    assert chat["endpoint"] == "chat.completions"
    assert "json_schema" in chat["request_json"]
    assert chat["response_content"] == content
    _assert_responses_row(responses, text=content)


def test_async_stream_read_to_the_end_completes_while_still_referenced(
    router: respx.MockRouter, db_path: Path
) -> None:
    """The end of an AsyncStream completes its row then, not when the stream object is
    collected: with the stream still referenced and the collector off, the row is a
    success once the store has committed what was queued."""
    stream_route(router, db_path, sse(*TEXT_CHUNKS), [])

    async def main() -> None:
        async with async_client(db_path) as client:
            stream = await client.chat.completions.create(
                model="gpt-4o", messages=MESSAGES, stream=True
            )  # type: ignore[arg-type]
            assert [c async for c in stream][-1].choices[0].finish_reason == "stop"
            await asyncio.to_thread(client.audit_store.flush)
            (row,) = rows(db_path)
            assert row["generation_status"] == "success", "completed only by the collector"
            assert row["response_content"] == "Een verdachte is ..."
            assert stream is not None  # referenced until here

    gc.disable()
    try:
        asyncio.run(main())
    finally:
        gc.enable()


def test_an_error_event_mid_stream_fails_the_row_with_the_apis_message(
    client: AuditedOpenAI, router: respx.MockRouter, db_path: Path
) -> None:
    """The API can end a stream with an error event instead of a chunk: the caller gets
    the SDK's APIError, and the row is failed as 'APIError' with the API's message and
    the text that came before."""
    error = {"error": {"message": "The server had an error mid-stream", "type": "server_error"}}
    stream_route(router, db_path, sse(*TEXT_CHUNKS[:2], error, done=False), [])
    with pytest.raises(openai.APIError, match="mid-stream"):
        for _ in client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True):  # type: ignore[arg-type]
            pass
    (row,) = rows(db_path)
    assert row["generation_status"] == "failed"
    assert row["error_type"] == "APIError"
    assert row["error_message"] == "The server had an error mid-stream"
    assert row["response_content"] == "Een "


def test_an_error_event_without_a_message_is_stored_with_the_sdks_words(
    client: AuditedOpenAI, router: respx.MockRouter, db_path: Path
) -> None:
    """An error event whose error has no message (or no object at all): the row says what
    the SDK's APIError says."""
    for error in (
        {"error": {"type": "server_error"}},
        {"error": {"message": 42}},
        {"error": "overloaded"},
    ):
        stream_route(router, db_path, sse(TEXT_CHUNKS[0], error, done=False), [])
        with pytest.raises(openai.APIError) as raised:
            for _ in client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True):  # type: ignore[arg-type]
                pass
        row = rows(db_path)[-1]
        assert row["generation_status"] == "failed"
        assert row["error_type"] == "APIError"
        assert row["error_message"] == raised.value.message == "An error occurred during streaming"


class Chunks(httpx.SyncByteStream):
    """A body that arrives in the given pieces."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces

    def __iter__(self) -> Iterator[bytes]:
        yield from self.pieces


ENCODERS = {
    "gzip": gzip.compress,
    " GZip ": gzip.compress,
    "deflate": zlib.compress,
    "identity": bytes,
}


@pytest.mark.parametrize("encoding", list(ENCODERS))
def test_compressed_bodies_are_stored_decoded(
    client: AuditedOpenAI, router: respx.MockRouter, db_path: Path, encoding: str
) -> None:
    """A body the server compressed (gzip, deflate, as httpx decodes them; the header in
    any case) is stored as
    the text the caller reads, a JSON answer and a stream alike, however the compressed
    bytes are cut into pieces."""
    encode = ENCODERS[encoding]

    def pieces(body: bytes, content_type: str) -> httpx.Response:
        packed = encode(body)
        cut = [packed[i : i + 7] for i in range(0, len(packed), 7)]
        headers = {"content-type": content_type, "content-encoding": encoding}
        return httpx.Response(200, stream=Chunks(cut), headers=headers)

    answers = iter(
        [
            pieces(json.dumps(chat_body()).encode(), "application/json"),
            pieces(json.dumps(chat_body("Gelezen als stroom")).encode(), "application/json"),
            pieces(sse(*TEXT_CHUNKS), "text/event-stream"),
        ]
    )
    router.post("/chat/completions").mock(side_effect=arrive(db_path, lambda _: next(answers)))
    answer = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o", messages=MESSAGES
    ) as response:  # type: ignore[arg-type]
        read = response.parse().choices[0].message.content
    streamed_text = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    )
    found = rows(db_path)
    assert [row["generation_status"] for row in found] == ["success"] * 3
    assert [row["response_content"] for row in found] == [
        answer.choices[0].message.content,
        read,
        streamed_text,
    ]
    assert read == "Gelezen als stroom"
    assert streamed_text == "Een verdachte is ..."
    assert found[1]["tokens_total"] == 1801
    assert found[2]["response_finish_reason"] == "stop"


def test_a_body_in_an_encoding_not_decoded_here_keeps_status_and_timing(
    client: AuditedOpenAI, router: respx.MockRouter, db_path: Path
) -> None:
    """An encoding this library does not decode: the caller gets what the SDK makes of
    it, and the row is a success with its status and timing but no content."""
    router.post("/chat/completions").mock(
        side_effect=arrive(
            db_path,
            httpx.Response(
                200,
                stream=Chunks([sse(*TEXT_CHUNKS)]),
                headers={"content-type": "text/event-stream", "content-encoding": "zstd"},
            ),
        )
    )
    text = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    )
    assert text == "Een verdachte is ..."  # httpx passes an encoding it does not know as is
    (row,) = rows(db_path)
    assert row["generation_status"] == "success", row["error_message"]
    assert row["http_status"] == 200
    assert row["duration_ms"] is not None
    assert row["response_content"] is None
    assert row["tokens_total"] is None


def test_a_responses_answer_read_as_a_stream_is_stored_as_a_responses_answer(
    router: respx.MockRouter, db_path: Path
) -> None:
    """responses.with_streaming_response: the body read by the caller is stored as the
    Responses API's answer (its output text and usage), not as a chat completion's."""
    router.post("/responses").mock(
        side_effect=arrive(db_path, httpx.Response(200, json=response_body("Een getuige is ...")))
    )
    client = AuditedOpenAI(db_path, api_key=API_KEY, base_url=BASE_URL, http_client=httpx.Client())
    with client.responses.with_streaming_response.create(
        model="gpt-4.1", instructions="Wees precies.", input="Definieer 'getuige'."
    ) as response:
        assert response.parse().output_text == "Een getuige is ..."
    (row,) = rows(db_path)
    _assert_responses_row(row)


@pytest.mark.parametrize("size", [1, 7, 10_000])
@pytest.mark.parametrize("end", [b"\r\n", b"\r"], ids=["crlf", "cr"])
def test_a_stream_with_other_line_ends_is_read_whole(
    client: AuditedOpenAI, router: respx.MockRouter, db_path: Path, end: bytes, size: int
) -> None:
    """Server-sent events may end their lines with CR LF or CR (the SDK reads them so),
    and a CR and its LF may arrive in two pieces: the row holds the text and the finish,
    as with LF. The body ends without ``[DONE]``: the CR ending the last event is read
    when the stream ends."""
    body = sse(*TEXT_CHUNKS, done=False).replace(b"\n", end)
    cut = [body[i : i + size] for i in range(0, len(body), size)]
    headers = {"content-type": "text/event-stream"}
    router.post("/chat/completions").mock(
        side_effect=arrive(db_path, httpx.Response(200, stream=Chunks(cut), headers=headers))
    )
    text = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    )
    (row,) = rows(db_path)
    assert row["generation_status"] == "success"
    assert row["response_content"] == text == "Een verdachte is ..."
    assert row["response_finish_reason"] == "stop"


def test_a_stream_the_server_ends_before_a_finish_reason_is_a_success(
    client: AuditedOpenAI, router: respx.MockRouter, db_path: Path
) -> None:
    """A body that ends cleanly, read to its end, without a finish reason or ``[DONE]``
    (sync and async): the caller got all the server sent, so the row is a success with
    that text and no finish reason, not an abandoned stream."""
    body = sse(*TEXT_CHUNKS[:-1], done=False)
    stream_route(router, db_path, body, [])
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))  # type: ignore[arg-type]
    assert chunks[-1].choices[0].finish_reason is None

    async def main() -> None:
        async with async_client(db_path) as aclient:
            stream = await aclient.chat.completions.create(
                model="gpt-4o", messages=MESSAGES, stream=True
            )  # type: ignore[arg-type]
            assert len([c async for c in stream]) == len(chunks)

    asyncio.run(main())
    found = rows(db_path)
    assert [r["generation_status"] for r in found] == ["success", "success"]
    assert [r["response_content"] for r in found] == ["Een verdachte is ..."] * 2
    assert [r["response_finish_reason"] for r in found] == [None, None]
    assert [r["error_type"] for r in found] == [None, None]
