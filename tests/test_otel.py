"""OpenTelemetry: live GenAI spans and metrics of each attempt, side by side with the
official instrumentation, OTLP/HTTP to a local receiver, and the back-fill from the trail.

The real OpenTelemetry SDK throughout: an in-memory exporter and metric reader, and an
OTLP/HTTP exporter sending protobuf to a receiver in the test that decodes it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import httpx
import openai
import pytest
import respx
from click.testing import CliRunner
from opentelemetry import metrics, trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from audited_openai import AuditedOpenAI, GenerationLogRepository, audit_context, flush_telemetry
from audited_openai._clock import parse_ts
from audited_openai.cli import main
from tests.conftest import API_KEY, BASE_URL, async_client, chat_body, rows

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

MESSAGES = [{"role": "user", "content": "Wat is een verdachte? Mijn BSN is geheim."}]


class _Switch(SpanProcessor):
    """The session's one span processor: forwards to what the running test added."""

    def __init__(self) -> None:
        self.processors: list[SpanProcessor] = []

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        for processor in self.processors:
            processor.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        for processor in self.processors:
            processor.on_end(span)


_SWITCH = _Switch()
_READER = InMemoryMetricReader()


@pytest.fixture(scope="session")
def provider() -> TracerProvider:
    """The global tracer and meter providers (OpenTelemetry allows setting them once: a
    second pytest session in the same process, as mutmut runs one, finds them set)."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(_SWITCH)
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[_READER]))
    return tracer_provider


@pytest.fixture
def spans(provider: TracerProvider) -> Iterator[InMemorySpanExporter]:
    """The spans ended during the test (not those an earlier test left on the telemetry
    thread: in a random order, or a second session in one process, the provider is set
    while other files' tests make spans)."""
    assert flush_telemetry()
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    _SWITCH.processors.append(processor)
    yield exporter
    _SWITCH.processors.remove(processor)


@pytest.fixture
def audited(tmp_path: Path, router: respx.MockRouter) -> Iterator[AuditedOpenAI]:
    with AuditedOpenAI(
        tmp_path / "audit.db",
        api_key=API_KEY,
        base_url=BASE_URL,
        http_client=httpx.Client(),
        max_retries=2,
        redact=lambda text: text.replace("geheim", "[BSN]"),
    ) as client:
        yield client


def _attempt_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    assert flush_telemetry(), "the telemetry thread hands its spans over"
    return [s for s in exporter.get_finished_spans() if s.name.startswith("chat")]


def test_an_attempt_is_a_genai_client_span_under_the_apps_span(
    spans: InMemorySpanExporter, audited: AuditedOpenAI, router: respx.MockRouter, tmp_path: Path
) -> None:
    router.post("/chat/completions").mock(return_value=httpx.Response(200, json=chat_body()))
    tracer = trace.get_tracer("the app")
    with (
        tracer.start_as_current_span("genereer definitie") as parent,
        audit_context(
            7,
            template_name="unified",
            template_version="2.1",
            modules_used=["base"],
            actor="medewerker-042",
            session="sessie-7",
        ),
    ):
        audited.chat.completions.create(
            model="gpt-4o",
            messages=MESSAGES,
            temperature=0.3,
            max_tokens=300,
            seed=4,  # type: ignore[arg-type]
        )
    (span,) = _attempt_spans(spans)
    assert span.name == "chat gpt-4o"
    assert span.kind == trace.SpanKind.CLIENT
    assert span.parent is not None
    assert span.parent.span_id == parent.get_span_context().span_id
    (row,) = rows(tmp_path / "audit.db")
    assert dict(span.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.request.temperature": 0.3,
        "gen_ai.request.max_tokens": 300,
        "gen_ai.request.seed": 4,
        "server.address": "api.openai.test",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.response.id": "chatcmpl-AbCdEf123456",
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 1234,
        "gen_ai.usage.output_tokens": 567,
        "gen_ai.openai.response.system_fingerprint": "fp_abc123",
        "http.response.status_code": 200,
        "audited_openai.endpoint": "chat.completions",
        "audited_openai.log_id": row["id"],
        "audited_openai.call_id": row["call_id"],
        "audited_openai.attempt": 1,
        "audited_openai.definitie_id": 7,
        "audited_openai.template.name": "unified",
        "audited_openai.template.version": "2.1",
        "audited_openai.template.modules": ("base",),
        "audited_openai.status": "success",
        "user.id": "medewerker-042",  # who asked, as stored
        "session.id": "sessie-7",
    }
    assert span.status.status_code == trace.StatusCode.UNSET


def test_retries_are_sibling_spans_and_errors_are_marked(
    spans: InMemorySpanExporter, audited: AuditedOpenAI, router: respx.MockRouter
) -> None:
    router.post("/chat/completions").mock(
        side_effect=[
            httpx.Response(
                500, json={"error": {"message": "boom"}}, headers={"retry-after-ms": "1"}
            ),
            httpx.Response(200, json=chat_body()),
        ]
    )
    with trace.get_tracer("the app").start_as_current_span("call") as parent:
        audited.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
    first, second = _attempt_spans(spans)
    assert {first.parent.span_id, second.parent.span_id} == {parent.get_span_context().span_id}  # type: ignore[union-attr]
    assert [s.attributes["audited_openai.attempt"] for s in (first, second)] == [1, 2]  # type: ignore[index]
    assert first.attributes["audited_openai.call_id"] == second.attributes["audited_openai.call_id"]  # type: ignore[index]
    assert first.attributes["error.type"] == "InternalServerError"  # type: ignore[index]
    assert first.status.status_code == trace.StatusCode.ERROR
    assert "error.type" not in (second.attributes or {})


def test_content_only_when_asked_and_always_redacted(
    spans: InMemorySpanExporter,
    audited: AuditedOpenAI,
    router: respx.MockRouter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    router.post("/chat/completions").mock(return_value=httpx.Response(200, json=chat_body()))
    audited.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    audited.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
    without, with_content = _attempt_spans(spans)
    assert not {"gen_ai.input.messages", "gen_ai.output.messages"} & set(without.attributes or {})
    given = str(with_content.attributes["gen_ai.input.messages"])  # type: ignore[index]
    assert "[BSN]" in given
    assert "geheim" not in given
    assert "Een verdachte is" in str(with_content.attributes["gen_ai.output.messages"])  # type: ignore[index]


def test_the_latest_conventions_when_opted_in(
    spans: InMemorySpanExporter,
    audited: AuditedOpenAI,
    router: respx.MockRouter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    router.post("/chat/completions").mock(return_value=httpx.Response(200, json=chat_body()))
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "http, gen_ai_latest_experimental")
    audited.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        response_format={"type": "json_object"},  # type: ignore[arg-type]
    )
    (span,) = _attempt_spans(spans)
    attributes = dict(span.attributes or {})
    assert attributes["gen_ai.provider.name"] == "openai"
    assert "gen_ai.system" not in attributes
    assert attributes["gen_ai.output.type"] == "json_object"


def _points(model: str) -> dict[str, list[Any]]:
    """The data points of this library's metrics for one requested model, by metric."""
    found: dict[str, list[Any]] = {}
    assert flush_telemetry()
    data = _READER.get_metrics_data()
    for resource in data.resource_metrics:  # type: ignore[union-attr]
        for scope in resource.scope_metrics:
            if scope.scope.name != "audited_openai":
                continue
            for metric in scope.metrics:
                found.setdefault(metric.name, []).extend(
                    p
                    for p in metric.data.data_points
                    if p.attributes.get("gen_ai.request.model") == model  # type: ignore[union-attr]
                )
    return found


def test_metrics_for_duration_and_tokens(
    spans: InMemorySpanExporter, audited: AuditedOpenAI, router: respx.MockRouter, tmp_path: Path
) -> None:
    """The duration, in seconds, is the row's; the tokens are the answer's."""

    def slow(request: httpx.Request) -> httpx.Response:
        time.sleep(0.02)  # a duration of some milliseconds, not 0
        return httpx.Response(200, json=chat_body())

    router.post("/chat/completions").mock(side_effect=slow)
    model = f"gpt-4o-metrics-{uuid.uuid4().hex}"  # the meter's sums outlive a test: repeatable
    audited.chat.completions.create(model=model, messages=MESSAGES)  # type: ignore[arg-type]
    found = _points(model)
    (duration,) = found["gen_ai.client.operation.duration"]
    assert duration.count == 1
    (row,) = rows(tmp_path / "audit.db")
    assert row["duration_ms"] >= 20
    assert duration.sum == row["duration_ms"] / 1000
    assert duration.attributes["gen_ai.response.model"] == "gpt-4o-2024-08-06"  # type: ignore[index]
    tokens = {p.attributes["gen_ai.token.type"]: p.sum for p in found["gen_ai.client.token.usage"]}  # type: ignore[index]
    assert tokens == {"input": 1234, "output": 567}


def test_async_and_streamed_attempts_end_their_spans(
    spans: InMemorySpanExporter, router: respx.MockRouter, tmp_path: Path
) -> None:
    chunks = [
        (
            b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o",'
            b'"choices":[{"index":0,"delta":{"content":"Een "},"finish_reason":null}]}\n\n'
        ),
        (
            b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o",'
            b'"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],'
            b'"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}\n\n'
        ),
        b"data: [DONE]\n\n",
    ]
    router.post("/chat/completions").mock(
        return_value=httpx.Response(
            200, content=b"".join(chunks), headers={"content-type": "text/event-stream"}
        )
    )

    async def run() -> None:
        async with async_client(tmp_path / "a.db") as client:
            stream = await client.chat.completions.create(
                model="gpt-4o",
                messages=MESSAGES,
                stream=True,  # type: ignore[arg-type]
            )
            async for _ in stream:
                pass

    asyncio.run(run())
    (span,) = _attempt_spans(spans)
    assert span.attributes["gen_ai.usage.output_tokens"] == 2  # type: ignore[index]
    assert span.attributes["gen_ai.response.finish_reasons"] == ("stop",)  # type: ignore[index]


def test_a_failing_span_processor_never_fails_the_call(
    spans: InMemorySpanExporter, audited: AuditedOpenAI, router: respx.MockRouter, tmp_path: Path
) -> None:
    class Broken(SpanProcessor):
        def on_start(self, span: Any, parent_context: Any = None) -> None:  # noqa: ARG002
            raise RuntimeError("broken exporter")

        def on_end(self, span: ReadableSpan) -> None:  # noqa: ARG002
            raise RuntimeError("broken exporter")

    router.post("/chat/completions").mock(return_value=httpx.Response(200, json=chat_body()))
    _SWITCH.processors.append(Broken())
    try:
        result = audited.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
        assert flush_telemetry(), "the telemetry thread survives a broken processor"
    finally:
        _SWITCH.processors.pop()
    assert result.id == "chatcmpl-AbCdEf123456"
    assert [r["generation_status"] for r in rows(tmp_path / "audit.db")] == ["success"]


def test_side_by_side_with_the_official_instrumentation(
    spans: InMemorySpanExporter,
    provider: TracerProvider,
    router: respx.MockRouter,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same call through opentelemetry-instrumentation-openai-v2 (on the bare SDK) and
    through ours: every attribute the official span sets, ours sets to the same value.

    The official 2.4b0 with opentelemetry-util-genai 1.1b0 always follows the latest
    experimental conventions, so ours runs with the opt-in that selects them."""
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    router.post("/chat/completions").mock(return_value=httpx.Response(200, json=chat_body()))
    arguments: dict[str, Any] = {
        "model": "gpt-4o",
        "messages": MESSAGES,
        "temperature": 0.2,
        "top_p": 0.9,
        "max_tokens": 100,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.2,
        "seed": 7,
        "stop": ["###"],
        "n": 2,
        "response_format": {"type": "text"},
        "service_tier": "default",
    }
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        bare = openai.OpenAI(api_key=API_KEY, base_url=BASE_URL, http_client=httpx.Client())
        bare.chat.completions.create(**arguments)
    finally:
        instrumentor.uninstrument()
    (official,) = _attempt_spans(spans)
    spans.clear()
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
    with AuditedOpenAI(
        tmp_path / "side.db", api_key=API_KEY, base_url=BASE_URL, http_client=httpx.Client()
    ) as audited:
        audited.chat.completions.create(**arguments)
    (ours,) = _attempt_spans(spans)
    theirs = dict(official.attributes or {})
    mine = dict(ours.attributes or {})
    assert len(theirs) >= 15
    assert {k: mine.get(k) for k in theirs} == theirs
    assert (ours.name, ours.kind) == (official.name, official.kind)


def test_nothing_of_opentelemetry_is_imported_without_it(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "sys.modules['opentelemetry'] = None  # as if the extra were not installed\n"
        "from audited_openai import AuditedOpenAI, _otel\n"
        "from audited_openai.testing import LoopbackServer\n"
        "with LoopbackServer() as server:\n"
        f"    client = AuditedOpenAI({str(tmp_path / 'x.db')!r}, base_url=server.base_url,\n"
        "                           api_key='k', max_retries=0)\n"
        "    client.chat.completions.create(model='m', messages=[{'role': 'user', 'content': 'x'}])\n"
        "assert _otel._API is False\n"
        "assert not [m for m in sys.modules if m.startswith('opentelemetry.')], 'imported'\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.stdout.strip() == "ok", done.stderr


# -- OTLP/HTTP, decoded by a receiver in the test ------------------------------------------------


class _Receiver(BaseHTTPRequestHandler):
    requests: list[ExportTraceServiceRequest]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        decoded = ExportTraceServiceRequest()
        decoded.ParseFromString(body)
        type(self).requests.append(decoded)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[ExportTraceServiceRequest]]]:
    """A local OTLP/HTTP receiver: (its base URL, the decoded requests)."""
    handler = type("Receiver", (_Receiver,), {"requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler.requests
    server.shutdown()
    server.server_close()


def _decoded(requests: list[ExportTraceServiceRequest]) -> list[tuple[Any, dict[str, Any]]]:
    found = []
    for request in requests:
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                for span in scope.spans:
                    attributes = {a.key: _value(a.value) for a in span.attributes}
                    found.append((span, attributes))
    return found


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(_value(v) for v in value.array_value.values)
    return getattr(value, kind)


def test_live_spans_over_otlp_http(
    provider: TracerProvider,
    receiver: tuple[str, list[ExportTraceServiceRequest]],
    audited: AuditedOpenAI,
    router: respx.MockRouter,
) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    url, received = receiver
    router.post("/chat/completions").mock(return_value=httpx.Response(200, json=chat_body()))
    router.route(host="127.0.0.1").pass_through()
    processor = SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{url}/v1/traces"))
    _SWITCH.processors.append(processor)
    try:
        audited.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
        flush_telemetry()
    finally:
        _SWITCH.processors.remove(processor)
        processor.shutdown()
    ((span, attributes),) = _decoded(received)
    assert span.name == "chat gpt-4o"
    assert attributes["gen_ai.usage.input_tokens"] == 1234
    assert attributes["audited_openai.attempt"] == 1


def test_backfill_sends_the_stored_rows_with_their_times(
    receiver: tuple[str, list[ExportTraceServiceRequest]], tmp_path: Path
) -> None:
    from audited_openai.testing import Fail, LoopbackServer, Reply

    url, received = receiver
    db = tmp_path / "trail.db"
    with (
        LoopbackServer() as server,
        AuditedOpenAI(db, base_url=server.base_url, api_key="k", max_retries=1) as client,
    ):
        server.script(Reply("Een verdachte is ..."), Fail(500, "kapot"), Reply("opnieuw"))
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
    with GenerationLogRepository(db) as repo:
        repo.create_pending_log(__import__("tests.conftest").conftest.make_context())
    stored = rows(db)
    result = CliRunner().invoke(
        main, ["--db", str(db), "export", "--format", "otlp", "--endpoint", url]
    )
    assert result.exit_code == 0, result.output
    assert "sent 3 spans" in result.output
    found = sorted(_decoded(received), key=lambda pair: pair[1]["audited_openai.log_id"])
    assert [a["audited_openai.log_id"] for _, a in found] == [r["id"] for r in stored[:3]]
    for (span, attributes), row in zip(found, stored, strict=False):
        assert (
            span.start_time_unix_nano
            == int(parse_ts(str(row["logged_at"])).timestamp() * 1e6) * 1000
        )
        assert (
            span.end_time_unix_nano - span.start_time_unix_nano
            == int(row["duration_ms"]) * 1_000_000
        )  # type: ignore[call-overload]
        assert attributes["gen_ai.request.model"] == "gpt-4o"
    assert found[1][1]["error.type"] == "InternalServerError"
    assert found[1][0].trace_id == found[2][0].trace_id, "the attempts of a call share a trace"
    assert found[0][0].trace_id != found[1][0].trace_id
    resource = {a.key: _value(a.value) for a in received[0].resource_spans[0].resource.attributes}
    assert resource["service.name"] == "audited-openai"
    again = CliRunner().invoke(main, ["--db", str(db), "export", "--format", "otlp", "--endpoint", url, "--status", "failed"])  # fmt: skip
    assert "sent 1 span" in again.output
    assert _decoded(received)[-1][0].span_id == found[1][0].span_id, "the same ids again"


def test_backfill_errors_are_one_line(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    with GenerationLogRepository(db) as repo:
        from tests.conftest import make_context

        context = make_context()
        context.mark_success(__import__("audited_openai").ResponseMetadata(content="x"))
        repo.insert_log(context)
    runner = CliRunner()
    result = runner.invoke(main, ["--db", str(db), "export", "--format", "otlp", "-o", "x"])
    assert (result.exit_code, "-o is for csv and jsonl" in result.output) == (2, True)
    result = runner.invoke(main, ["--db", str(db), "export", "--format", "csv"])
    assert (result.exit_code, "needs -o FILE" in result.output) == (2, True)
    result = runner.invoke(
        main, ["--db", str(db), "export", "--format", "csv", "-o", "-", "--endpoint", "http://x"]
    )
    assert (result.exit_code, "--endpoint is for --format otlp" in result.output) == (2, True)
    result = runner.invoke(
        main, ["--db", str(db), "export", "--format", "otlp", "--endpoint", "http://127.0.0.1:9"]
    )
    assert result.exit_code == 3
    assert "http://127.0.0.1:9 did not take 1 spans" in result.output


def test_a_stream_closed_twice_ends_one_span(
    spans: InMemorySpanExporter, audited: AuditedOpenAI, router: respx.MockRouter
) -> None:
    """A row is completed once, however often its body is closed: one span, one duration."""
    body = (
        b'data: {"id":"c2","object":"chat.completion.chunk","created":1,"model":"gpt-4o",'
        b'"choices":[{"index":0,"delta":{"content":"Een"},"finish_reason":"stop"}]}\n\n'
        b"data: [DONE]\n\n"
    )
    router.post("/chat/completions").mock(
        return_value=httpx.Response(
            200, content=body, headers={"content-type": "text/event-stream"}
        )
    )
    stream = audited.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    assert [c.choices[0].delta.content for c in stream] == ["Een"]
    stream.close()
    stream.response.close()
    stream.response.stream.close()  # type: ignore[union-attr]
    (span,) = _attempt_spans(spans)
    assert span.attributes["gen_ai.response.finish_reasons"] == ("stop",)  # type: ignore[index]


def test_a_request_the_sdk_cannot_build_is_an_error_span(
    spans: InMemorySpanExporter, audited: AuditedOpenAI, router: respx.MockRouter
) -> None:
    """Arguments the SDK cannot send: no request, and a span of the failed attempt with the
    model asked for and the error's type."""
    route = router.post("/chat/completions").respond(json=chat_body())
    model = f"gpt-4o-unsendable-{uuid.uuid4().hex}"
    with pytest.raises(TypeError):
        audited.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": object()}],  # type: ignore[list-item]
        )
    assert route.call_count == 0
    (span,) = _attempt_spans(spans)
    assert span.attributes["gen_ai.request.model"] == model  # type: ignore[index]
    assert span.attributes["gen_ai.operation.name"] == "chat"  # type: ignore[index]
    assert span.attributes["audited_openai.endpoint"] == "chat.completions"  # type: ignore[index]
    assert span.attributes["error.type"] == "TypeError"  # type: ignore[index]
    assert span.status.status_code == trace.StatusCode.ERROR
    (duration,) = _points(model)["gen_ai.client.operation.duration"]
    assert (duration.count, duration.sum) == (1, 0.0)  # never sent: it took no time


class _BrokenBody(httpx.SyncByteStream):
    """A stream body that breaks off after its first event."""

    def __iter__(self) -> Iterator[bytes]:
        yield (
            b'data: {"id":"c3","object":"chat.completion.chunk","created":1,"model":"gpt-4o",'
            b'"choices":[{"index":0,"delta":{"content":"Een"},"finish_reason":null}]}\n\n'
        )
        raise httpx.ReadError("connection reset by peer")


def test_a_broken_stream_closed_afterwards_ends_one_error_span(
    spans: InMemorySpanExporter, audited: AuditedOpenAI, router: respx.MockRouter
) -> None:
    """A row failed by a broken body is not completed again when the body is closed."""
    router.post("/chat/completions").mock(
        return_value=httpx.Response(
            200, stream=_BrokenBody(), headers={"content-type": "text/event-stream"}
        )
    )
    stream = audited.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    with pytest.raises(openai.APIConnectionError):
        for _ in stream:
            pass
    stream.close()
    stream.response.stream.close()  # type: ignore[union-attr]
    (span,) = _attempt_spans(spans)
    assert span.attributes["error.type"] == "APIConnectionError"  # type: ignore[index]
