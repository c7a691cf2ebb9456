"""The stream observer sees each byte of a body once, whatever the body's shape.

A matrix: both clients; respx answering with bytes, with an iterator (a generator of
the client's kind) and with a stream that can be read once, and the loopback server
over a real socket through httpx2 (the SDK's own) and the classic httpx; a chat
stream (which ends with ``[DONE]``, after which the SDK's async stream drains the body
a second time) and a Responses stream (which does not). In every cell the caller gets
every chunk and the row holds the text once, as a success.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import httpx
import openai
import pytest
import respx

from audited_openai import AsyncAuditedOpenAI, AuditedOpenAI
from audited_openai.testing import LoopbackServer, Reply
from tests.conftest import API_KEY, BASE_URL, rows
from tests.test_streams import TEXT_CHUNKS, EventStream, _response_events, sse

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

TEXT = "Een verdachte is ..."
PIECE = 7  # bytes a piece, so that events and lines are cut anywhere
ENDPOINTS = {
    "chat": ("/chat/completions", sse(*TEXT_CHUNKS)),
    "responses": ("/responses", _response_events(TEXT)),
}
SHAPES = ["respx bytes", "respx iterator", "respx read-once", "loopback httpx2", "loopback httpx"]


def _pieces(body: bytes) -> list[bytes]:
    return [body[n : n + PIECE] for n in range(0, len(body), PIECE)]


def _respx_body(shape: str, body: bytes, *, asynchronous: bool) -> dict[str, Any]:
    """The keywords of an ``httpx.Response`` answering with ``body`` in this shape."""
    if shape == "respx bytes":
        return {"content": body}
    if shape == "respx read-once":
        return {"stream": EventStream(body)}

    def pieces() -> Iterator[bytes]:
        yield from _pieces(body)

    async def apieces() -> AsyncIterator[bytes]:
        for piece in _pieces(body):
            yield piece

    return {"content": apieces() if asynchronous else pieces()}


def _call(client: openai.OpenAI, endpoint: str) -> str:
    """Stream one call to its end as an app would; the text the caller got."""
    if endpoint == "chat":
        stream = client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "verdachte"}], stream=True
        )
        return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    events = client.responses.create(model="gpt-4.1", input="verdachte", stream=True)
    return "".join(e.delta for e in events if e.type == "response.output_text.delta")


async def _acall(client: openai.AsyncOpenAI, endpoint: str) -> str:
    got = ""
    if endpoint == "chat":
        stream = await client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "verdachte"}], stream=True
        )
        async for c in stream:
            got += (c.choices[0].delta.content or "") if c.choices else ""
        return got
    events = await client.responses.create(model="gpt-4.1", input="verdachte", stream=True)
    async for e in events:
        got += e.delta if e.type == "response.output_text.delta" else ""
    return got


def _run(shape: str, endpoint: str, db_path: Path, *, asynchronous: bool) -> str:
    """One cell of the matrix: the text the caller got."""
    loopback = shape.startswith("loopback")
    server = LoopbackServer(default=Reply(TEXT)) if loopback else None
    mock = contextlib.nullcontext() if loopback else respx.mock(base_url=BASE_URL)
    with mock as router, server or contextlib.nullcontext():
        base_url = server.base_url if server is not None else BASE_URL
        if router is not None:
            path, body = ENDPOINTS[endpoint]
            router.post(path).mock(
                return_value=httpx.Response(
                    200,
                    headers={"content-type": "text/event-stream"},
                    **_respx_body(shape, body, asynchronous=asynchronous),
                )
            )
        classic = shape != "loopback httpx2"
        if asynchronous:

            async def main() -> str:
                http = {"http_client": httpx.AsyncClient()} if classic else {}
                async with AsyncAuditedOpenAI(
                    db_path, api_key=API_KEY, base_url=base_url, **http
                ) as client:
                    return await _acall(client, endpoint)

            return asyncio.run(main())
        http = {"http_client": httpx.Client()} if classic else {}
        with AuditedOpenAI(db_path, api_key=API_KEY, base_url=base_url, **http) as client:
            return _call(client, endpoint)


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_each_byte_is_seen_once(
    db_path: Path, shape: str, endpoint: str, asynchronous: bool
) -> None:
    got = _run(shape, endpoint, db_path, asynchronous=asynchronous)
    assert got == TEXT
    (row,) = rows(db_path)
    assert (row["generation_status"], row["error_type"]) == ("success", None)
    assert row["response_content"] == TEXT
    assert row["response_finish_reason"] == ("stop" if endpoint == "chat" else "completed")
