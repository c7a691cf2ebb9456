"""The loopback server: a real OpenAI-compatible server for users' tests and the demo."""

from __future__ import annotations

import socket

import httpx
import openai
import pytest

from audited_openai import AuditedOpenAI
from audited_openai.testing import Drop, Fail, Hang, LoopbackServer, Reply
from tests.conftest import rows

MESSAGES = [{"role": "user", "content": "Definieer 'verdachte'."}]


def test_fixture_templated_reply_and_request_count(loopback_openai: LoopbackServer) -> None:
    """The pytest fixture gives a started server; the default reply quotes the prompt."""
    client = openai.OpenAI(base_url=loopback_openai.base_url, api_key="test")
    result = client.chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
    assert result.choices[0].message.content == "Antwoord op: Definieer 'verdachte'."
    assert result.usage is not None
    assert result.usage.total_tokens > 0
    client.close()
    assert loopback_openai.request_count == 1
    assert loopback_openai.requests[0].body["messages"] == MESSAGES
    assert loopback_openai.requests[0].headers["authorization"] == "Bearer test"


def test_scripted_outcomes_in_order(tmp_path) -> None:
    """Scripted errors with Retry-After are retried; every request leaves one row."""
    with LoopbackServer() as server:
        server.script(
            Fail(429, retry_after=0.001),
            Fail(503, retry_after=0.001),
            Reply("Klaar", prompt_tokens=3, completion_tokens=1),
        )
        client = AuditedOpenAI(tmp_path / "a.db", base_url=server.base_url, api_key="test")
        result = client.chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
        assert result.choices[0].message.content == "Klaar"
        assert result.usage is not None
        assert result.usage.total_tokens == 4
        assert server.request_count == 3
        client.close()
    assert [r["generation_status"] for r in rows(tmp_path / "a.db")] == [
        "failed",
        "failed",
        "success",
    ]


def test_hang_until_the_client_times_out(tmp_path) -> None:
    """Hang makes the client time out: a 'timeout' row."""
    with LoopbackServer(default=Hang(5)) as server:
        client = AuditedOpenAI(
            tmp_path / "a.db", base_url=server.base_url, api_key="test", timeout=0.2, max_retries=0
        )
        with pytest.raises(openai.APITimeoutError):
            client.chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
        client.close()
    assert rows(tmp_path / "a.db")[0]["generation_status"] == "timeout"


def test_streams_with_usage_and_dropped_connections(tmp_path) -> None:
    """SSE streams end with a usage chunk when asked; Drop breaks a stream mid-way."""
    with LoopbackServer() as server:
        client = AuditedOpenAI(
            tmp_path / "a.db",
            base_url=server.base_url,
            api_key="test",
            include_usage=True,
            max_retries=0,
        )
        chunks = list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))  # type: ignore[arg-type]
        assert chunks[-1].usage is not None
        server.script(Drop(after_chunks=2))
        with pytest.raises(openai.APIConnectionError):
            list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))  # type: ignore[arg-type]
        client.close()
    ok, broken = rows(tmp_path / "a.db")
    assert ok["generation_status"] == "success"
    assert ok["tokens_total"] == chunks[-1].usage.total_tokens
    assert broken["generation_status"] == "failed"
    assert broken["error_type"] == "APIConnectionError"


def test_responses_api_plain_and_streamed(tmp_path) -> None:
    """The server speaks the Responses API, plain and streamed."""
    with LoopbackServer() as server:
        client = AuditedOpenAI(tmp_path / "a.db", base_url=server.base_url, api_key="test")
        assert client.responses.create(model="m", input="hallo").output_text == "Antwoord op: hallo"
        events = list(client.responses.create(model="m", input="hallo", stream=True))
        assert events[-1].type == "response.completed"
        client.close()
    found = rows(tmp_path / "a.db")
    assert [r["response_content"] for r in found] == ["Antwoord op: hallo"] * 2


def test_unknown_paths_and_bad_bodies() -> None:
    """Other paths get a 404; a body that is not JSON is answered anyway."""
    with LoopbackServer() as server:
        assert httpx.post(server.base_url + "/embeddings", json={}).status_code == 404
        response = httpx.post(server.base_url + "/chat/completions", content=b"not json")
        assert response.status_code == 200
        assert server.request_count == 1


def test_a_request_cut_off_mid_body_is_not_received() -> None:
    """A client that dies while sending never reached the model: it is not counted."""
    with LoopbackServer() as server:
        host, port = server.base_url.split("//")[1].split("/")[0].split(":")
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                b'{"model": "m", "messages": [{"role": "us'
            )
        client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0)
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        assert server.request_count == 1
        assert server.requests[0].body["messages"][0]["content"] == "x"
        client.close()
