"""AuditedOpenAI and AsyncAuditedOpenAI over respx: write-ahead, completion, retries."""

from __future__ import annotations

import asyncio
import inspect
import json
import sqlite3
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import httpx
import openai
import pytest
import respx

from audited_openai import (
    AsyncAuditedOpenAI,
    AuditedOpenAI,
    AuditWriteError,
    GenerationLogRepository,
    InvalidLogError,
    StoreError,
    audit_context,
)
from audited_openai._context import AuditScope
from audited_openai._recorder import Attempt
from audited_openai._writer import flush_all
from tests.conftest import API_KEY, BASE_URL, async_client, chat_body, rows

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

MESSAGES = [{"role": "user", "content": "Definieer 'verdachte'."}]


def _pending_seen_by_second_connection(
    db_path: Path | str, request: httpx.Request
) -> dict[str, Any]:
    """What another connection finds at the moment the request reaches the 'server'
    (nothing flushed first: what is committed, and only that)."""
    found = rows(db_path, flush=False)
    assert len(found) == 1, "the pending row must be committed before the request leaves"
    row = found[0]
    assert row["generation_status"] == "pending"
    assert row["request_json"] == request.content.decode()
    return row


# -- drop-in -------------------------------------------------------------------------


def test_is_an_openai_client_and_patches_nothing(client: AuditedOpenAI) -> None:
    """The audited client is an OpenAI running the SDK's own request loop; only the two
    hooks where an attempt leaves are its own; the SDK's classes are untouched."""
    assert isinstance(client, openai.OpenAI)
    assert AuditedOpenAI.request is openai.OpenAI.request
    assert AsyncAuditedOpenAI.request is openai.AsyncOpenAI.request
    for hook in ("_build_request", "_send_request"):
        assert getattr(AuditedOpenAI, hook) is not getattr(openai.OpenAI, hook)
        assert "audited_openai" not in getattr(openai.OpenAI, hook).__module__


def test_plain_openai_clients_stay_unaudited(
    client: AuditedOpenAI, router: respx.MockRouter, db_path: Path
) -> None:
    """A plain openai.OpenAI made after importing the library writes nothing."""
    router.post("/chat/completions").respond(json=chat_body())
    plain = openai.OpenAI(api_key=API_KEY, base_url=BASE_URL, http_client=httpx.Client())
    plain.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
    assert rows(db_path) == []


def test_openai_keywords_pass_through(db_path: Path) -> None:
    """Every keyword of openai.OpenAI reaches the SDK unchanged."""
    client = AuditedOpenAI(
        db_path,
        api_key=API_KEY,
        organization="org-canary",
        project="proj-canary",
        base_url="https://example.test/v9",
        timeout=12.5,
        max_retries=5,
        default_headers={"X-App": "definities"},
        http_client=httpx.Client(),
    )
    assert client.api_key == API_KEY
    assert client.organization == "org-canary"
    assert client.project == "proj-canary"
    assert str(client.base_url) == "https://example.test/v9/"
    assert client.timeout == 12.5
    assert client.max_retries == 5
    assert client.default_headers["X-App"] == "definities"


def test_audit_db_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without audit_db: $AUDITED_OPENAI_DB, else generation_logs.db in the working dir."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AUDITED_OPENAI_DB", raising=False)
    assert AuditedOpenAI(api_key=API_KEY).audit_store.path == "generation_logs.db"
    monkeypatch.setenv("AUDITED_OPENAI_DB", str(tmp_path / "env.db"))
    assert AuditedOpenAI(api_key=API_KEY).audit_store.path == str(tmp_path / "env.db")
    repo = GenerationLogRepository(tmp_path / "given.db")
    assert AuditedOpenAI(repo, api_key=API_KEY).audit_store is repo


def test_with_options_and_copy_stay_audited(
    client: AuditedOpenAI, router: respx.MockRouter, db_path: Path
) -> None:
    """with_options() and copy() return audited clients writing to the same store."""
    router.post("/chat/completions").respond(json=chat_body())
    for derived in (client.with_options(timeout=3), client.copy(max_retries=0)):
        assert isinstance(derived, AuditedOpenAI)
        assert derived.audit_store is client.audit_store
        derived.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
    assert client.with_options(max_retries=7).max_retries == 7
    assert len(rows(db_path)) == 2


def test_a_bad_audit_db_fails_at_construction(tmp_path: Path) -> None:
    """audit_db=123 or a directory fails when the client is made, not at its first call."""
    with pytest.raises(TypeError, match="audit_db must be a path"):
        AuditedOpenAI(123, api_key=API_KEY)  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="is a directory"):
        AuditedOpenAI(tmp_path, api_key=API_KEY)
    with pytest.raises(TypeError, match="include_usage"):
        AuditedOpenAI(tmp_path / "a.db", api_key=API_KEY, include_usage="yes")  # type: ignore[arg-type]


def test_bad_audit_options_are_refused(db_path: Path) -> None:
    """Unknown on_audit_failure values and non-callable redactors fail at construction."""
    with pytest.raises(ValueError, match=r"^on_audit_failure must be 'raise' or 'warn', not 'i"):
        AuditedOpenAI(db_path, api_key=API_KEY, on_audit_failure="ignore")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^redact must be a callable taking and returning text$"):
        AuditedOpenAI(db_path, api_key=API_KEY, redact="yes")  # type: ignore[arg-type]


def test_an_attempts_duration_is_whole_milliseconds_since_it_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """duration_ms: rounded milliseconds on the monotonic clock, never negative, and
    none for an attempt that never left."""
    attempt = Attempt(call_id="c", number=1, endpoint="chat", stream=False, scope=AuditScope())
    assert attempt.elapsed_ms() is None
    attempt.started_ms = 1000.0
    for now, expected in ((1000.4, 0), (1250.6, 251), (999.0, 0)):
        monkeypatch.setattr("audited_openai._recorder.monotonic_ms", lambda now=now: now)
        assert attempt.elapsed_ms() == expected


# -- write-ahead and completion --------------------------------------------------------


@pytest.fixture
def any_client(target: str, router: respx.MockRouter) -> Iterator[AuditedOpenAI]:
    """An audited sync client over respx, writing to a store of each backend."""
    with AuditedOpenAI(
        target, api_key=API_KEY, base_url=BASE_URL, http_client=httpx.Client()
    ) as audited:
        yield audited
    audited.audit_store.close()


def test_write_ahead_then_success_sync(
    any_client: AuditedOpenAI, router: respx.MockRouter, target: str
) -> None:
    """The pending row is committed before the request arrives, then completed (both
    backends)."""
    client, db_path = any_client, target
    pending: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        pending.append(_pending_seen_by_second_connection(db_path, request))
        return httpx.Response(200, json=chat_body(), headers={"x-request-id": "req_1"})

    router.post("/chat/completions").mock(side_effect=handler)
    with audit_context(
        None, template_name="unified_definition_v2", template_version="2.1", modules_used=["base"]
    ):
        result = client.chat.completions.create(
            model="gpt-4o",
            messages=MESSAGES,
            temperature=0.3,
            max_tokens=300,  # type: ignore[arg-type]
        )
    assert isinstance(result, openai.types.chat.ChatCompletion)
    assert result.choices[0].message.content == "Een verdachte is ..."
    (row,) = rows(db_path)
    assert pending[0]["prompt_full_text"] == "Definieer 'verdachte'."
    assert pending[0]["prompt_template_name"] == "unified_definition_v2"
    _assert_complete_success(row)
    assert row["model_temperature"] == 0.3
    assert row["model_max_tokens"] == 300
    assert row["prompt_template_version"] == "2.1"
    assert json.loads(row["prompt_modules_used"]) == ["base"]


def _assert_complete_success(row: dict[str, Any]) -> None:
    assert row["generation_status"] == "success"
    assert row["tokens_prompt"] == 1234
    assert row["tokens_completion"] == 567
    assert row["tokens_total"] == 1801
    assert row["tokens_cached"] == 1024
    assert row["tokens_reasoning"] == 7
    assert row["response_finish_reason"] == "stop"
    assert row["response_id"] == "chatcmpl-AbCdEf123456"
    assert row["response_created_at"] == 1731335025
    assert row["response_model"] == "gpt-4o-2024-08-06"
    assert row["system_fingerprint"] == "fp_abc123"
    assert row["response_content"] == "Een verdachte is ..."
    assert row["http_status"] == 200
    assert isinstance(row["duration_ms"], int)
    assert row["duration_ms"] >= 0
    assert row["attempt"] == 1
    assert row["endpoint"] == "chat.completions"
    assert row["stream"] == 0
    assert row["error_type"] is None


def test_write_ahead_then_success_async(router: respx.MockRouter, target: str) -> None:
    """The async client commits the pending row before sending, then completes it."""
    db_path = target

    def handler(request: httpx.Request) -> httpx.Response:
        _pending_seen_by_second_connection(db_path, request)
        return httpx.Response(200, json=chat_body())

    router.post("/chat/completions").mock(side_effect=handler)

    async def main() -> openai.types.chat.ChatCompletion:
        async with async_client(db_path) as client:
            assert isinstance(client, openai.AsyncOpenAI)
            return await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]

    result = asyncio.run(main())
    assert result.id == "chatcmpl-AbCdEf123456"
    _assert_complete_success(rows(db_path)[0])


def test_request_json_is_exactly_what_was_sent(
    client: AuditedOpenAI, router: respx.MockRouter, db_path: Path
) -> None:
    """request_json holds the body sent: no omitted values, no defaults, no credentials."""
    sent: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.content)
        assert request.headers["authorization"] == f"Bearer {API_KEY}"
        return httpx.Response(200, json=chat_body())

    router.post("/chat/completions").mock(side_effect=handler)
    client.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,  # type: ignore[arg-type]
        seed=42,
        extra_body={"custom": True},
    )
    (row,) = rows(db_path)
    assert row["request_json"] == sent[0].decode()
    assert json.loads(row["request_json"]) == {
        "model": "gpt-4o",
        "messages": MESSAGES,
        "seed": 42,
        "custom": True,
    }
    for column in ("model_temperature", "model_top_p", "model_max_tokens"):
        assert row[column] is None, f"{column} was not sent, so it is not logged"
    assert API_KEY not in json.dumps(row)


def test_multi_message_prompt_rendering(
    client: AuditedOpenAI, router: respx.MockRouter, db_path: Path
) -> None:
    """Several messages are rendered deterministically with role headers."""
    router.post("/chat/completions").respond(json=chat_body())
    messages = [
        {"role": "system", "content": "Je bent een juridisch redacteur."},
        {
            "role": "user",
            "name": "jurist",
            "content": [
                {"type": "text", "text": "Definieer"},
                {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "zoek", "arguments": '{"q":"wet"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "Wetboek van Strafvordering art. 27"},
    ]
    client.chat.completions.create(model="gpt-4o", messages=messages)  # type: ignore[arg-type]
    assert rows(db_path)[0]["prompt_full_text"] == (
        "[system]\nJe bent een juridisch redacteur.\n\n"
        "[user jurist]\nDefinieer\n[image_url: https://x.test/a.png]\n\n"
        '[assistant]\n[tool_call call_1] zoek({"q":"wet"})\n\n'
        "[tool call_1]\nWetboek van Strafvordering art. 27"
    )


def test_out_of_range_parameters_still_get_their_row(
    client: AuditedOpenAI, router: respx.MockRouter, db_path: Path
) -> None:
    """A temperature the API will reject is kept in request_json; the column stays NULL."""
    router.post("/chat/completions").respond(
        400, json={"error": {"message": "temperature too high", "type": "invalid_request_error"}}
    )
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES, temperature=3.5)  # type: ignore[arg-type]
    (row,) = rows(db_path)
    assert row["model_temperature"] is None
    assert json.loads(row["request_json"])["temperature"] == 3.5
    assert row["generation_status"] == "failed"
    assert row["error_type"] == "BadRequestError"
    assert row["http_status"] == 400


# -- failures --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (404, openai.NotFoundError),
        (422, openai.UnprocessableEntityError),
    ],
)
def test_api_errors_are_failed_rows_and_reach_the_caller_unchanged(
    client: AuditedOpenAI,
    router: respx.MockRouter,
    db_path: Path,
    status: int,
    error: type[openai.APIStatusError],
) -> None:
    """A non-retryable API error is one failed row; the caller gets the SDK's exception."""
    route = router.post("/chat/completions").respond(status, json={"error": {"message": "nope"}})
    with pytest.raises(error) as info:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
    assert type(info.value) is error
    assert route.call_count == 1
    (row,) = rows(db_path)
    assert row["generation_status"] == "failed"
    assert row["error_type"] == error.__name__
    assert row["http_status"] == status
    assert "nope" in row["error_message"]
    assert "Traceback" in row["error_traceback"]


def test_timeout_gives_status_timeout(
    client: AuditedOpenAI, router: respx.MockRouter, db_path: Path
) -> None:
    """openai.APITimeoutError is stored as 'timeout', one row per attempt."""
    router.post("/chat/completions").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(openai.APITimeoutError):
        client.with_options(max_retries=0).chat.completions.create(
            model="gpt-4o",
            messages=MESSAGES,  # type: ignore[arg-type]
        )
    (row,) = rows(db_path)
    assert row["generation_status"] == "timeout"
    assert row["error_type"] == "APITimeoutError"
    assert row["http_status"] is None


@pytest.fixture
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's backoff without a Retry-After (0.5 s, 1 s, ...) shortened to 1 ms."""
    monkeypatch.setattr(
        openai._base_client.BaseClient, "_calculate_retry_timeout", lambda *args: 0.001
    )


@pytest.mark.usefixtures("quick_backoff")
def test_connection_error_is_failed(
    client: AuditedOpenAI, router: respx.MockRouter, db_path: Path
) -> None:
    """A refused connection is a failed APIConnectionError row per attempt."""
    router.post("/chat/completions").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
    found = rows(db_path)
    assert [r["error_type"] for r in found] == ["APIConnectionError"] * 3
    assert [r["attempt"] for r in found] == [1, 2, 3]
    assert "ConnectError: refused" in found[0]["error_message"]


# -- retries: the SDK's own loop, one row per attempt ------------------------------------


def _status_sequence(router: respx.MockRouter, *statuses: int) -> respx.Route:
    """Answer with ``statuses`` in turn; errors ask for a 1 ms wait (``retry-after-ms``)."""
    responses = [
        httpx.Response(200, json=chat_body())
        if s == 200
        else httpx.Response(
            s, json={"error": {"message": f"HTTP {s}"}}, headers={"retry-after-ms": "1"}
        )
        for s in statuses
    ]
    return router.post("/chat/completions").mock(side_effect=responses)


def test_every_attempt_is_a_row_sync(
    any_client: AuditedOpenAI, router: respx.MockRouter, target: str
) -> None:
    """500, 500, 200 give exactly 3 requests and 3 rows (failed, failed, success)."""
    client, db_path = any_client, target
    route = _status_sequence(router, 500, 500, 200)
    result = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
    assert result.id == "chatcmpl-AbCdEf123456"
    assert route.call_count == 3
    found = rows(db_path)
    assert [r["generation_status"] for r in found] == ["failed", "failed", "success"]
    assert [r["attempt"] for r in found] == [1, 2, 3]
    assert [r["http_status"] for r in found] == [500, 500, 200]
    assert len({r["call_id"] for r in found}) == 1
    assert [r["error_type"] for r in found[:2]] == ["InternalServerError"] * 2


def test_every_attempt_is_a_row_async(target: str, router: respx.MockRouter) -> None:
    """The async client retries the same way, one row per attempt."""
    db_path = target
    route = _status_sequence(router, 503, 429, 200)

    async def main() -> None:
        async with async_client(db_path) as client:
            await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]

    asyncio.run(main())
    assert route.call_count == 3
    found = rows(db_path)
    assert [r["generation_status"] for r in found] == ["failed", "failed", "success"]
    assert [r["error_type"] for r in found[:2]] == ["InternalServerError", "RateLimitError"]


@pytest.mark.parametrize("failures", [0, 2, 4])
def test_retries_taken_and_retry_count_header_as_the_sdk(
    db_path: Path, router: respx.MockRouter, failures: int
) -> None:
    """After 0, 2 and 4 failures: ``retries_taken`` and ``x-stainless-retry-count`` are the
    SDK's (0, 1, 2, ...), and each attempt is a row numbered retries + 1."""
    route = _status_sequence(router, *[500] * failures, 200)
    client = AuditedOpenAI(
        db_path, api_key=API_KEY, base_url=BASE_URL, http_client=httpx.Client(), max_retries=4
    )
    response = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
    assert response.retries_taken == failures
    sent = [call.request.headers["x-stainless-retry-count"] for call in route.calls]
    assert sent == [str(n) for n in range(failures + 1)]
    found = rows(db_path)
    assert [r["attempt"] for r in found] == list(range(1, failures + 2))
    assert [r["generation_status"] for r in found] == ["failed"] * failures + ["success"]
    assert len({r["call_id"] for r in found}) == 1


@pytest.mark.parametrize("failures", [0, 2, 4])
def test_retries_taken_and_retry_count_header_async(
    db_path: Path, router: respx.MockRouter, failures: int
) -> None:
    """The async client: the same counts as the SDK."""
    route = _status_sequence(router, *[429] * failures, 200)

    async def main() -> int:
        async with async_client(db_path, max_retries=4) as client:
            response = await client.chat.completions.with_raw_response.create(
                model="gpt-4o",
                messages=MESSAGES,  # type: ignore[arg-type]
            )
            return response.retries_taken

    assert asyncio.run(main()) == failures
    sent = [call.request.headers["x-stainless-retry-count"] for call in route.calls]
    assert sent == [str(n) for n in range(failures + 1)]
    assert [r["attempt"] for r in rows(db_path)] == list(range(1, failures + 2))


def test_retry_count_header_set_by_the_caller_is_kept(
    db_path: Path, router: respx.MockRouter
) -> None:
    """A caller's own x-stainless-retry-count goes out unchanged on every attempt; the rows
    still count the attempts."""
    route = _status_sequence(router, 500, 200)

    async def main() -> None:
        async with async_client(db_path) as client:
            await client.chat.completions.create(
                model="gpt-4o",
                messages=MESSAGES,  # type: ignore[arg-type]
                extra_headers={"X-Stainless-Retry-Count": "7"},
            )

    asyncio.run(main())
    assert [call.request.headers["x-stainless-retry-count"] for call in route.calls] == ["7", "7"]
    assert [r["attempt"] for r in rows(db_path)] == [1, 2]


def test_calls_are_told_apart_by_their_idempotency_key(
    client: AuditedOpenAI, router: respx.MockRouter, db_path: Path
) -> None:
    """Two calls, the second retried once: the rows say which attempt of which call."""
    _status_sequence(router, 200, 429, 200)
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
    found = rows(db_path)
    assert [r["generation_status"] for r in found] == ["success", "failed", "success"]
    assert [r["attempt"] for r in found] == [1, 1, 2]
    assert found[1]["call_id"] == found[2]["call_id"] != found[0]["call_id"]


def test_max_retries_and_its_per_call_option_are_the_sdks(
    db_path: Path, router: respx.MockRouter
) -> None:
    """max_retries=1 means two attempts, then the SDK's own exception; with_options too."""
    route = router.post("/chat/completions").respond(
        429, json={"error": {"message": "slow down"}}, headers={"retry-after-ms": "1"}
    )
    client = AuditedOpenAI(
        db_path, api_key=API_KEY, base_url=BASE_URL, http_client=httpx.Client(), max_retries=1
    )
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
    assert route.call_count == 2
    with pytest.raises(openai.RateLimitError):
        client.with_options(max_retries=0).chat.completions.create(
            model="gpt-4o", messages=MESSAGES
        )  # type: ignore[arg-type]
    assert route.call_count == 3
    assert len(rows(db_path)) == 3


def test_x_should_retry_false_is_obeyed(
    client: AuditedOpenAI, router: respx.MockRouter, db_path: Path
) -> None:
    """A 500 the server marks as not retryable is not retried, as in the SDK."""
    route = router.post("/chat/completions").respond(
        500, json={"error": {"message": "no"}}, headers={"x-should-retry": "false"}
    )
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
    assert route.call_count == 1
    assert len(rows(db_path)) == 1


def test_the_retry_option_is_gone_with_a_pointer(db_path: Path) -> None:
    """retry= (a tenacity policy around the SDK's loop) is refused, saying what to do."""
    with pytest.raises(TypeError, match=r"retry= is gone.*max_retries"):
        AuditedOpenAI(db_path, api_key=API_KEY, retry=3)


def test_copy_takes_every_parameter_of_init(client: AuditedOpenAI, db_path: Path) -> None:
    """copy()/with_options() take the audit options as well as the SDK's (its own test
    checks that copy's signature holds every parameter of __init__)."""
    init = inspect.signature(client.__init__).parameters
    copy = inspect.signature(client.copy).parameters
    assert set(init) <= set(copy)
    other = db_path.with_name("other.db")
    derived = client.copy(audit_db=str(other), include_usage=True, max_retries=0)
    assert derived.audit_store.path == str(other)
    assert derived._audit.include_usage is True
    assert derived.max_retries == 0
    assert client.copy().audit_store is client.audit_store


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_every_option_is_checked_wherever_it_is_given(db_path: Path, asynchronous: bool) -> None:
    """The constructor, a repository passed in, copy() and with_options() all refuse a
    bad value; an option that cannot apply to a repository passed in (its durability,
    set when it was opened) is refused with one line saying what to do instead."""
    cls = AsyncAuditedOpenAI if asynchronous else AuditedOpenAI
    repo = GenerationLogRepository(db_path)
    bogus = r"^durability must be 'full' or 'balanced', not 'bogus'$"
    with pytest.raises(ValueError, match=bogus):
        cls(db_path, api_key=API_KEY, durability="bogus")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=bogus):
        cls(repo, api_key=API_KEY, durability="bogus")  # type: ignore[arg-type]
    cannot = (
        r"^durability='full' cannot apply to the repository given \(it is 'balanced'\): "
        r"open it as GenerationLogRepository\(\.\.\., durability='full'\)$"
    )
    with pytest.raises(ValueError, match=cannot):
        cls(repo, api_key=API_KEY, durability="full")
    client = cls(repo, api_key=API_KEY, durability="balanced")  # what it is: fine
    assert client.audit_store is repo
    for derive in (client.copy, client.with_options):
        with pytest.raises(ValueError, match=bogus):
            derive(durability="bogus")
        with pytest.raises(ValueError, match=cannot):
            derive(durability="full")
        with pytest.raises(ValueError, match="on_audit_failure"):
            derive(on_audit_failure="ignore")
        with pytest.raises(TypeError, match="redact"):
            derive(redact="yes")
        with pytest.raises(TypeError, match="include_usage"):
            derive(include_usage="yes")
        full = derive(audit_db=str(db_path.with_name("full.db")), durability="full")
        assert full.audit_store.durability == "full"
        full.audit_store.close()
    repo.close()


# -- cancellation and interrupts ---------------------------------------------------------


def test_keyboard_interrupt_leaves_a_failed_row(
    client: AuditedOpenAI, router: respx.MockRouter, db_path: Path
) -> None:
    """KeyboardInterrupt during the request fails the row and propagates."""

    def interrupt(request: httpx.Request) -> httpx.Response:
        raise KeyboardInterrupt

    router.post("/chat/completions").mock(side_effect=interrupt)
    with pytest.raises(KeyboardInterrupt):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
    (row,) = rows(db_path)
    assert row["generation_status"] == "failed"
    assert row["error_type"] == "KeyboardInterrupt"


def test_cancelled_task_leaves_a_failed_row(router: respx.MockRouter, db_path: Path) -> None:
    """Cancelling the task mid-request fails the row with CancelledError and propagates."""
    arrived = asyncio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        arrived.set()
        await asyncio.sleep(60)
        return httpx.Response(200, json=chat_body())  # pragma: no cover - cancelled

    router.post("/chat/completions").mock(side_effect=hang)

    async def main() -> None:
        async with async_client(db_path) as client:
            task = asyncio.create_task(
                client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
            )
            await arrived.wait()
            assert rows(db_path)[0]["generation_status"] == "pending"
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(main())
    (row,) = rows(db_path)
    assert row["generation_status"] == "failed"
    assert row["error_type"] == "CancelledError"


async def _start_and_cancel(client: AsyncAuditedOpenAI, writer: Any) -> None:
    """Start a call, cancel it once its pending write is handed to ``writer`` (before
    that, the call would rightly leave no row at all), see the cancellation propagate."""
    submitted, submit = threading.Event(), writer.submit

    def handing_over(*args: Any, **kwargs: Any) -> Any:
        future = submit(*args, **kwargs)
        submitted.set()
        return future

    writer.submit = handing_over
    try:
        task = asyncio.create_task(
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
        )
        assert await asyncio.to_thread(submitted.wait, 5), "no write reached the writer"
    finally:
        del writer.submit
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def _hold_the_write_lock(db_path: Path) -> sqlite3.Connection:
    """Another connection holding the file's write lock (as another process would)."""
    GenerationLogRepository(db_path).flush()
    holder = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    return holder


def test_cancelled_while_the_pending_row_is_written(
    router: respx.MockRouter, db_path: Path
) -> None:
    """A cancellation that lands while the writer commits the pending row (here: waiting
    for another connection's lock) still completes that row, and nothing is sent."""
    route = router.post("/chat/completions").respond(json=chat_body())

    async def main() -> None:
        async with async_client(db_path) as client:
            holder = _hold_the_write_lock(db_path)
            await _start_and_cancel(client, GenerationLogRepository(db_path).store.writer())
            holder.execute("COMMIT")
            holder.close()

    asyncio.run(main())
    assert route.call_count == 0
    (row,) = rows(db_path)
    assert row["generation_status"] == "failed"
    assert row["error_type"] == "CancelledError"


def test_cancelled_while_a_failing_pending_write_runs_under_raise(
    router: respx.MockRouter, db_path: Path
) -> None:
    """Under "raise", a pending write that fails after its caller was cancelled leaves
    nothing to fail: no row, no spool, nothing sent."""
    route = router.post("/chat/completions").respond(json=chat_body())
    repo = GenerationLogRepository(db_path, busy_timeout_ms=200)

    async def main() -> None:
        async with async_client(repo) as client:
            holder = _hold_the_write_lock(db_path)
            await _start_and_cancel(client, repo.store.writer())
            await asyncio.to_thread(repo.flush)  # the write has failed on the lock by now
            holder.execute("COMMIT")
            holder.close()

    asyncio.run(main())
    assert route.call_count == 0
    assert rows(db_path) == []
    assert not list(db_path.parent.glob("*.spool*"))


def test_cancelled_while_the_pending_row_waits_for_the_writer(
    router: respx.MockRouter, db_path: Path
) -> None:
    """The pending write waits in the queue behind a slow one; the task is cancelled;
    once the writer commits the row, the failure is written too, and the writer keeps
    going (a later call still gets its row)."""
    route = router.post("/chat/completions").respond(json=chat_body())
    running, gate = threading.Event(), threading.Event()

    def hold(_conn: object) -> bool:
        running.set()
        return gate.wait(5)

    async def main() -> None:
        store = GenerationLogRepository(db_path)
        async with async_client(store) as client:
            slow = store.store.writer().submit(hold)
            # a batch commits its pending rows first: the pending write must come after
            # the slow one is running, not beside it in the queue
            assert await asyncio.to_thread(running.wait, 5)
            await _start_and_cancel(client, store.store.writer())
            gate.set()
            assert await asyncio.wrap_future(slow) is True
            await asyncio.wait_for(
                client.chat.completions.create(model="gpt-4o", messages=MESSAGES),  # type: ignore[arg-type]
                timeout=5,
            )

    asyncio.run(main())
    assert route.call_count == 1
    first, second = rows(db_path)
    assert first["error_type"] == "CancelledError"
    assert second["generation_status"] == "success"


# -- the audit store failing ----------------------------------------------------------------


def _read_only(db_path: Path) -> str:
    GenerationLogRepository(db_path).get_prompt_history()
    return f"file:{db_path}?mode=ro"


def test_raise_mode_sends_nothing_when_the_row_cannot_be_written(
    db_path: Path, router: respx.MockRouter
) -> None:
    """on_audit_failure='raise': no committed row, no request, AuditWriteError."""
    route = router.post("/chat/completions").respond(json=chat_body())
    client = AuditedOpenAI(
        _read_only(db_path), api_key=API_KEY, base_url=BASE_URL, http_client=httpx.Client()
    )
    with pytest.raises(AuditWriteError, match="could not write the pending log") as info:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
    assert route.call_count == 0
    assert isinstance(info.value.__cause__, sqlite3.Error)
    assert not isinstance(info.value, openai.OpenAIError), "never disguised as an API error"


def test_raise_mode_async(db_path: Path, router: respx.MockRouter) -> None:
    """The async client refuses to send just the same."""
    route = router.post("/chat/completions").respond(json=chat_body())

    async def main() -> None:
        async with AsyncAuditedOpenAI(
            _read_only(db_path), api_key=API_KEY, base_url=BASE_URL, http_client=httpx.AsyncClient()
        ) as client:
            await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]

    with pytest.raises(AuditWriteError):
        asyncio.run(main())
    assert route.call_count == 0


def test_warn_mode_spools_and_recovers_exactly_once(
    db_path: Path, router: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    """on_audit_failure='warn': the call succeeds, the row is spooled, recovery imports it once."""
    route = router.post("/chat/completions").respond(json=chat_body())
    client = AuditedOpenAI(
        _read_only(db_path),
        api_key=API_KEY,
        base_url=BASE_URL,
        http_client=httpx.Client(),
        on_audit_failure="warn",
    )
    result = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
    assert result.choices[0].message.content == "Een verdachte is ..."
    assert route.call_count == 1
    assert "spooling" in caplog.text
    spool = db_path.with_name(db_path.name + ".spool.jsonl")
    assert spool.stat().st_mode & 0o777 == 0o600
    assert rows(db_path) == []
    repo = GenerationLogRepository(db_path)
    assert repo.recover_spool() == 2  # the pending snapshot, then its completion
    assert repo.recover_spool() == 0
    (row,) = rows(db_path)
    _assert_complete_success(row)
    assert not spool.exists()


BROKEN_COMPLETION = (
    "CREATE TRIGGER broken_completion BEFORE UPDATE OF generation_status ON generation_logs "
    "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
)


def test_failed_completion_write_never_costs_the_answer(
    client: AuditedOpenAI, router: respx.MockRouter, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """If completing the row fails in the database, the caller still gets the response;
    the completion is spooled, and recovery completes the row."""
    router.post("/chat/completions").respond(json=chat_body())
    sqlite3.connect(db_path).execute(BROKEN_COMPLETION).connection.close()
    result = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
    assert result.id == "chatcmpl-AbCdEf123456"
    assert rows(db_path)[0]["generation_status"] == "pending"
    (warned,) = [r.getMessage() for r in caplog.records if "spooling the completion" in r.msg]
    assert warned.endswith("disk full); spooling the completion"), "the cause is named"
    sqlite3.connect(db_path).execute("DROP TRIGGER broken_completion").connection.close()
    assert GenerationLogRepository(db_path).recover_spool() == 1
    _assert_complete_success(rows(db_path)[0])


def test_async_warn_mode_spools_and_recovers_exactly_once(
    db_path: Path, router: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    """The async client under 'warn': the call succeeds, both writes are spooled."""
    route = router.post("/chat/completions").respond(json=chat_body())

    async def main() -> None:
        async with async_client(_read_only(db_path), on_audit_failure="warn") as client:
            await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]

    asyncio.run(main())
    assert route.call_count == 1
    assert "spooling" in caplog.text
    repo = GenerationLogRepository(db_path)
    assert repo.recover_spool() == 2
    _assert_complete_success(rows(db_path)[0])


@pytest.mark.parametrize("failure", ["at once", "on commit"])
def test_async_failed_completion_write_is_spooled(
    db_path: Path, router: respx.MockRouter, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    """A queued completion that fails (refused, or its commit failing) goes to the spool."""
    router.post("/chat/completions").respond(json=chat_body())
    repo = GenerationLogRepository(db_path)

    def broken(*args: object, **kwargs: object) -> Future[bool]:
        if failure == "at once":
            raise AuditWriteError("disk full")
        later: Future[bool] = Future()
        later.set_exception(AuditWriteError("disk full"))
        return later

    async def main() -> None:
        async with async_client(repo) as client:
            monkeypatch.setattr(repo, "submit_complete", broken)
            result = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
            assert result.id == "chatcmpl-AbCdEf123456"

    asyncio.run(main())
    assert rows(db_path)[0]["generation_status"] == "pending"
    monkeypatch.undo()
    assert repo.recover_spool() == 1
    _assert_complete_success(rows(db_path)[0])


def test_async_refused_pending_row_raises_and_sends_nothing(
    db_path: Path, router: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A queued pending write refused at once is an AuditWriteError under 'raise'."""
    route = router.post("/chat/completions").respond(json=chat_body())
    repo = GenerationLogRepository(db_path)

    def refused(*args: object) -> Future[int]:
        raise InvalidLogError("bad row")

    async def main() -> None:
        async with async_client(repo) as client:
            monkeypatch.setattr(repo, "submit_pending_log", refused)
            await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]

    with pytest.raises(AuditWriteError) as info:
        asyncio.run(main())
    assert route.call_count == 0
    assert str(info.value) == "could not write the pending log: bad row"
    assert info.value.path == str(db_path), "the error names the store"
    assert isinstance(info.value.__cause__, InvalidLogError)


def test_recovery_survives_an_interrupted_import(db_path: Path, router: respx.MockRouter) -> None:
    """A spool claimed by an import that died is picked up again, without duplicates."""
    router.post("/chat/completions").respond(json=chat_body())
    client = AuditedOpenAI(
        _read_only(db_path),
        api_key=API_KEY,
        base_url=BASE_URL,
        http_client=httpx.Client(),
        on_audit_failure="warn",
    )
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
    spool = db_path.with_name(db_path.name + ".spool.jsonl")
    stranded = spool.with_name(spool.name + ".importing-999-0")
    spool.rename(stranded)
    with stranded.open("a") as file:
        file.write('{"torn": ')  # a line cut short by a crash
    assert GenerationLogRepository(db_path).recover_spool() == 2
    assert len(rows(db_path)) == 1


# -- hostile and odd input -------------------------------------------------------------------


def test_unserialisable_content_leaves_a_failed_row(
    router: respx.MockRouter, db_path: Path
) -> None:
    """Arguments the SDK cannot send leave a failed row with the SDK's error, the prompt
    asked for, the definitie bound, redacted like any other row, and named by the
    context's handle."""
    route = router.post("/chat/completions").respond(json=chat_body())
    client = AuditedOpenAI(
        db_path,
        api_key=API_KEY,
        base_url=BASE_URL,
        http_client=httpx.Client(),
        redact=lambda text: text.replace("object", "[OBJ]").replace("geheim", "[G]"),
    )
    with audit_context(definitie_id=31) as audit, pytest.raises(TypeError) as raised:
        client.chat.completions.create(
            model="gpt-4o",
            messages=[
                {"role": "system", "content": "Definieer 'geheim'."},
                {"role": "user", "content": object()},  # type: ignore[list-item]
            ],
        )
    assert route.call_count == 0
    (row,) = rows(db_path)
    assert audit.log_ids == [row["id"]]
    assert row["generation_status"] == "failed"
    assert row["definitie_id"] == 31
    assert row["error_type"] == "TypeError"
    assert row["error_message"] == str(raised.value).replace("object", "[OBJ]")
    assert "[OBJ]" in row["error_message"]
    assert "TypeError" in row["error_traceback"]
    assert "object" not in row["error_traceback"].replace("[OBJ]", "")
    assert "Definieer '[G]'." in row["prompt_full_text"]
    assert "<[OBJ] [OBJ] at" in row["request_json"]
    assert "geheim" not in row["request_json"]
    audit.link(77)  # the handle knows the row's store
    assert rows(db_path)[0]["definitie_id"] == 77


def test_ten_megabyte_prompt_is_stored_whole(
    client: AuditedOpenAI, router: respx.MockRouter, db_path: Path
) -> None:
    """A 10 MB prompt goes into the row byte for byte."""
    router.post("/chat/completions").respond(json=chat_body())
    prompt = "Wetboek " * (10 * 1024 * 1024 // 8)
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": prompt}])
    assert rows(db_path)[0]["prompt_full_text"] == prompt


def _assert_no_credentials(db_path: Path, *canaries: bytes) -> None:
    """No byte of the database, its WAL or its spool (all three must exist) holds the API
    key, an Authorization header or one of the canaries."""
    files = [p for p in db_path.parent.iterdir() if p.name.startswith(db_path.name)]
    assert any(p.name.endswith("-wal") for p in files)
    assert any(p.name.endswith(".spool.jsonl") for p in files)
    for path in files:
        data = path.read_bytes()
        for secret in (API_KEY.encode(), b"Bearer", *canaries):
            assert secret not in data, (path, secret)


@pytest.mark.usefixtures("quick_backoff")
def test_canary_credentials_never_reach_the_files(db_path: Path, router: respx.MockRouter) -> None:
    """The API key and the Authorization value are in no byte of the db, WAL or spool."""
    statuses = iter([500, 200, 200])
    router.post("/chat/completions").mock(
        side_effect=lambda request: httpx.Response(next(statuses), json=chat_body())
    )
    client = AuditedOpenAI(
        db_path,
        api_key=API_KEY,
        base_url=BASE_URL,
        http_client=httpx.Client(),
        organization="org-canary-42",
        project="proj-canary-42",
        on_audit_failure="warn",
    )
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
    ro = AuditedOpenAI(  # the spooled row too
        _read_only(db_path),
        api_key=API_KEY,
        base_url=BASE_URL,
        http_client=httpx.Client(),
        organization="org-canary-42",
        project="proj-canary-42",
        on_audit_failure="warn",
    )
    ro.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
    _assert_no_credentials(db_path, b"org-canary-42", b"proj-canary-42")


@pytest.mark.usefixtures("quick_backoff")
def test_async_canary_credentials_never_reach_the_files(
    db_path: Path, router: respx.MockRouter
) -> None:
    """The async client, across a retry, an API error, a stream and a spooled row: no key,
    organisation or project in any byte of the db, WAL or spool."""
    answers = iter(
        [
            httpx.Response(500, json={"error": {"message": "later"}}),
            httpx.Response(200, json=chat_body()),
            httpx.Response(401, json={"error": {"message": "Incorrect API key provided"}}),
            httpx.Response(
                200,
                content=b'data: {"id":"c","object":"chat.completion.chunk","created":1,'
                b'"model":"m","choices":[{"index":0,"delta":{"content":"Een"},'
                b'"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n',
                headers={"content-type": "text/event-stream"},
            ),
            httpx.Response(200, json=chat_body()),
        ]
    )
    router.post("/chat/completions").mock(side_effect=lambda request: next(answers))
    canaries = {"organization": "org-canary-43", "project": "proj-canary-43"}

    def audited(path: Path) -> AsyncAuditedOpenAI:
        return AsyncAuditedOpenAI(
            path,
            api_key=API_KEY,
            base_url=BASE_URL,
            http_client=httpx.AsyncClient(),
            on_audit_failure="warn",
            **canaries,
        )

    async def main() -> None:
        async with audited(db_path) as client:
            await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
            with pytest.raises(openai.AuthenticationError):
                await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
            stream = await client.chat.completions.create(
                model="gpt-4o",
                messages=MESSAGES,
                stream=True,  # type: ignore[arg-type]
            )
            async for _ in stream:
                pass
        async with audited(_read_only(db_path)) as spooling:  # the spooled row too
            await spooling.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]

    asyncio.run(main())
    assert len(rows(db_path)) == 4
    _assert_no_credentials(db_path, b"org-canary-43", b"proj-canary-43")


# -- other endpoints -------------------------------------------------------------------------


def test_other_endpoints_pass_through_unrecorded(
    client: AuditedOpenAI, router: respx.MockRouter, db_path: Path
) -> None:
    """Embeddings and models go to the SDK untouched and leave no row."""
    router.post("/embeddings").respond(
        json={
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
            "model": "text-embedding-3-small",
            "usage": {"prompt_tokens": 2, "total_tokens": 2},
        }
    )
    router.get("/models").respond(json={"object": "list", "data": []})
    result = client.embeddings.create(model="text-embedding-3-small", input="verdachte")
    assert result.data[0].embedding == [0.1, 0.2]
    assert list(client.models.list()) == []
    assert rows(db_path) == []


# -- redaction --------------------------------------------------------------------------------


def test_redact_applies_to_every_stored_text(db_path: Path, router: respx.MockRouter) -> None:
    """redact= runs over the prompt, request JSON, response content and error messages."""
    router.post("/chat/completions").mock(
        side_effect=[
            httpx.Response(200, json=chat_body("Bel 0612345678")),
            httpx.Response(400, json={"error": {"message": "bad 0612345678"}}),
        ]
    )
    client = AuditedOpenAI(
        db_path,
        api_key=API_KEY,
        base_url=BASE_URL,
        http_client=httpx.Client(),
        redact=lambda text: text.replace("0612345678", "[TEL]"),
    )
    messages = [{"role": "user", "content": "Mijn nummer is 0612345678"}]
    client.chat.completions.create(model="gpt-4o", messages=messages)  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4o", messages=messages)  # type: ignore[arg-type]
    ok, failed = rows(db_path)
    assert ok["prompt_full_text"] == "Mijn nummer is [TEL]"
    assert "[TEL]" in ok["request_json"]
    assert ok["response_content"] == "Bel [TEL]"
    assert "[TEL]" in failed["error_message"]
    for path in db_path.parent.iterdir():
        assert b"0612345678" not in path.read_bytes()


def test_a_failing_redactor_stores_a_marker_never_the_text(
    db_path: Path, router: respx.MockRouter
) -> None:
    """If redact raises, a fixed marker is stored instead of the raw text."""
    router.post("/chat/completions").respond(json=chat_body("geheim antwoord"))

    def broken(text: str) -> str:
        raise RuntimeError("redactor bug")

    client = AuditedOpenAI(
        db_path, api_key=API_KEY, base_url=BASE_URL, http_client=httpx.Client(), redact=broken
    )
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
    (row,) = rows(db_path)
    marker = "[redaction failed: text withheld]"
    assert row["prompt_full_text"] == marker
    assert row["request_json"] == marker
    assert row["response_content"] == marker


def test_a_redactor_that_blanks_everything_leaves_empty_texts(
    db_path: Path, router: respx.MockRouter
) -> None:
    """A redactor may return "": the texts are stored empty (never a placeholder), for an
    API error and for a request the SDK could not build alike."""
    router.post("/chat/completions").respond(400, json={"error": {"message": "bad"}})
    client = AuditedOpenAI(
        db_path,
        api_key=API_KEY,
        base_url=BASE_URL,
        http_client=httpx.Client(),
        redact=lambda _text: "",
    )
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": object()}],  # type: ignore[list-item]
        )
    found = rows(db_path)
    assert len(found) == 2
    for row in found:
        assert row["generation_status"] == "failed"
        assert row["error_message"] == ""
        assert row["prompt_full_text"] == ""
        assert row["error_traceback"] in ("", None)


def test_failed_insert_before_sending_is_spooled(db_path: Path, router: respx.MockRouter) -> None:
    """A failed row (never sent) that the store cannot take goes to the spool, not lost."""
    client = AuditedOpenAI(
        _read_only(db_path), api_key=API_KEY, base_url=BASE_URL, http_client=httpx.Client()
    )
    with pytest.raises(TypeError):
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": object()}]
        )  # type: ignore[list-item]
    assert GenerationLogRepository(db_path).recover_spool() == 1
    assert rows(db_path)[0]["error_type"] == "TypeError"


def test_a_failed_row_refused_at_once_is_spooled(db_path: Path, router: respx.MockRouter) -> None:
    """A request the SDK cannot build, on a store that refuses every write before queueing
    it (opened read-only): the failed row goes to the spool and is recovered."""
    GenerationLogRepository(db_path).flush()
    store = GenerationLogRepository(db_path, read_only=True)
    client = AuditedOpenAI(
        store,
        api_key=API_KEY,
        base_url=BASE_URL,
        http_client=httpx.Client(),
        on_audit_failure="warn",
    )
    with pytest.raises(TypeError):
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": object()}]
        )  # type: ignore[list-item]
    assert GenerationLogRepository(db_path).recover_spool() == 1
    (row,) = rows(db_path)
    assert (row["generation_status"], row["error_type"]) == ("failed", "TypeError")


def test_in_memory_store_failure_is_logged_as_lost(
    router: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    """Where no spool can exist, a lost row is logged loudly, and the caller still gets the answer."""
    router.post("/chat/completions").respond(json=chat_body())
    memory = sqlite3.connect(":memory:", check_same_thread=False)
    repo = GenerationLogRepository(memory)
    memory.execute(BROKEN_COMPLETION)
    client = AuditedOpenAI(repo, api_key=API_KEY, base_url=BASE_URL, http_client=httpx.Client())
    assert client.chat.completions.create(model="gpt-4o", messages=MESSAGES).id  # type: ignore[arg-type]
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        "audit row LOST: the store failed and an in-memory database has no spool"
    ]


def test_a_row_neither_the_store_nor_the_spool_takes_is_logged_as_lost(
    db_path: Path, router: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    """The store refuses the row and the spool cannot be written: the call still goes
    through ("warn"), and the loss is logged with its cause, never silent."""
    router.post("/chat/completions").respond(json=chat_body())
    read_only = _read_only(db_path)
    db_path.with_name(db_path.name + ".spool.jsonl").mkdir()  # the spool cannot be a file
    client = AuditedOpenAI(
        read_only,
        api_key=API_KEY,
        base_url=BASE_URL,
        http_client=httpx.Client(),
        on_audit_failure="warn",
    )
    assert client.chat.completions.create(model="gpt-4o", messages=MESSAGES).id  # type: ignore[arg-type]
    flush_all()
    lost = [r for r in caplog.records if r.levelname == "ERROR"]
    assert [r.getMessage() for r in lost] == [
        "audit row LOST: neither the store nor the spool took it"
    ] * 2  # the pending row and its completion
    assert all(isinstance(r.exc_info[1], IsADirectoryError) for r in lost)  # type: ignore[index]


def test_async_warn_mode_and_failed_completion(
    db_path: Path, router: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Async: warn mode spools when the store fails; a failed completion keeps the answer."""
    router.post("/chat/completions").respond(json=chat_body())

    async def main() -> None:
        async with AsyncAuditedOpenAI(
            _read_only(db_path),
            api_key=API_KEY,
            base_url=BASE_URL,
            http_client=httpx.AsyncClient(),
            on_audit_failure="warn",
        ) as client:
            result = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
            assert result.id == "chatcmpl-AbCdEf123456"

    asyncio.run(main())
    assert rows(db_path) == []
    assert GenerationLogRepository(db_path).recover_spool() == 2
    _assert_complete_success(rows(db_path)[0])


def test_async_unserialisable_content_and_timeout(db_path: Path, router: respx.MockRouter) -> None:
    """Async: arguments the SDK cannot send leave a failed row; a timeout is 'timeout'."""
    router.post("/chat/completions").mock(side_effect=httpx.ReadTimeout("slow"))

    async def main() -> None:
        async with async_client(db_path, max_retries=0) as client:
            with pytest.raises(TypeError):
                await client.chat.completions.create(
                    model="gpt-4o", messages=[{"role": "user", "content": object()}]
                )  # type: ignore[list-item]
            with pytest.raises(openai.APITimeoutError):
                await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]

    asyncio.run(main())
    failed, timed_out = rows(db_path)
    assert (failed["generation_status"], failed["error_type"]) == ("failed", "TypeError")
    assert (timed_out["generation_status"], timed_out["error_type"]) == (
        "timeout",
        "APITimeoutError",
    )


def test_async_other_endpoints_and_copies(db_path: Path, router: respx.MockRouter) -> None:
    """Async: with_options stays audited on the same store; embeddings leave no row."""
    router.post("/embeddings").respond(
        json={
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.5]}],
            "model": "e",
            "usage": {"prompt_tokens": 0, "total_tokens": 0},
        }
    )

    async def main() -> None:
        async with async_client(db_path) as client:
            derived = client.with_options(timeout=3)
            assert isinstance(derived, AsyncAuditedOpenAI)
            assert derived.audit_store is client.audit_store
            await client.embeddings.create(model="e", input="x")

    asyncio.run(main())
    assert rows(db_path) == []
