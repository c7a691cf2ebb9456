"""OpenTelemetry GenAI spans and metrics for each audited attempt (the ``otel`` extra).

With ``opentelemetry-api`` installed and a tracer provider set by the app, every audited
HTTP attempt is a client span ``chat {model}`` in the current context (the app's span
is its parent; the retries of a call are siblings, told apart by
``audited_openai.attempt``), named and attributed as the OpenTelemetry GenAI semantic
conventions say, as ``opentelemetry-instrumentation-openai-v2`` does: v1.30.0 by
default, the latest experimental ones when ``OTEL_SEMCONV_STABILITY_OPT_IN`` holds
``gen_ai_latest_experimental``. Beside them: the row's id, ``call_id``, attempt, the
definitie and the prompt template, and who asked (``user.id``, ``session.id``, as
stored). Prompt and completion go on the span only when
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` is set, and always as stored
(after ``redact=``). The metrics ``gen_ai.client.operation.duration`` and
``gen_ai.client.token.usage`` are recorded for every attempt.

Nothing of OpenTelemetry is imported when it is not installed; a failure here is
logged and never reaches the call. :func:`span_attributes` maps a stored row to the
same attributes, for ``export --format otlp``.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.metadata
import json
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from audited_openai._errors import StoreError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from audited_openai._models import GenerationContext

log = logging.getLogger("audited_openai")

SEMCONV = "1.30.0"  # the GenAI conventions followed by default (the official instrumentation's)
SCHEMA_URL = f"https://opentelemetry.io/schemas/{SEMCONV}"
OPT_IN = "OTEL_SEMCONV_STABILITY_OPT_IN"
CAPTURE_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
# The conventions' advisory bucket boundaries.
DURATION_BUCKETS = [0.01 * 2**n for n in range(14)]  # 0.01 s to 81.92 s
TOKEN_BUCKETS = [4**n for n in range(14)]  # 1 to 67,108,864


@dataclass
class _Api:
    tracer: Any
    duration: Any
    tokens: Any
    client_kind: Any
    status: Any
    error_code: Any
    current: Any  # opentelemetry.context.get_current
    active: Any  # whether the app set a tracer or meter provider


_API: _Api | bool | None = None  # False: not installed


def _api() -> _Api | None:
    global _API  # noqa: PLW0603 - imported once, on first use
    if _API is None:
        try:
            from opentelemetry import context, metrics, trace  # noqa: PLC0415 - the optional extra
        except ImportError:
            _API = False
            return None
        version = _version()
        meter = metrics.get_meter("audited_openai", version, schema_url=SCHEMA_URL)
        _API = _Api(
            tracer=trace.get_tracer("audited_openai", version, schema_url=SCHEMA_URL),
            duration=meter.create_histogram(
                "gen_ai.client.operation.duration",
                unit="s",
                description="GenAI operation duration",
                explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
            ),
            tokens=meter.create_histogram(
                "gen_ai.client.token.usage",
                unit="{token}",
                description="Measures number of input and output tokens used",
                explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
            ),
            client_kind=trace.SpanKind.CLIENT,
            status=trace.Status,
            error_code=trace.StatusCode.ERROR,
            current=context.get_current,
            active=lambda: (
                not (
                    isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
                    and type(metrics.get_meter_provider()).__name__ == "_ProxyMeterProvider"
                )
            ),
        )
    return _API if isinstance(_API, _Api) else None


def _version() -> str:
    try:
        return importlib.metadata.version("audited-openai")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - run from a checkout
        return "0"


def latest() -> bool:
    """Whether the app opted into the latest experimental GenAI conventions."""
    return "gen_ai_latest_experimental" in os.environ.get(OPT_IN, "").replace(" ", "").split(",")


def capture_content() -> bool:
    """Whether the app opted into prompts and completions on spans."""
    return os.environ.get(CAPTURE_CONTENT, "").strip().lower() not in (
        "",
        "false",
        "0",
        "no_content",
    )


def request_attributes(
    body: Mapping[str, Any],
    server: tuple[str | None, int | None],
    *,
    endpoint: str,
    new: bool | None = None,
) -> dict[str, Any]:
    """The GenAI request attributes of a request body (what the instrumentation sets).

    ``new``: the latest experimental names (default: as the environment says now).
    """
    new = latest() if new is None else new
    found: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        ("gen_ai.provider.name" if new else "gen_ai.system"): "openai",
        "gen_ai.request.model": body.get("model"),
        "gen_ai.request.temperature": body.get("temperature"),
        "gen_ai.request.top_p": body.get("top_p"),
        "gen_ai.request.max_tokens": body.get("max_tokens")
        or body.get("max_completion_tokens")
        or body.get("max_output_tokens"),
        "gen_ai.request.presence_penalty": body.get("presence_penalty"),
        "gen_ai.request.frequency_penalty": body.get("frequency_penalty"),
        "gen_ai.request.seed": body.get("seed"),
        "audited_openai.endpoint": endpoint,
    }
    if isinstance(body.get("n"), int) and body["n"] != 1:
        found["gen_ai.request.choice.count"] = body["n"]
    stop = body.get("stop")
    if stop is not None:
        found["gen_ai.request.stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    response_format = body.get("response_format")
    if isinstance(response_format, dict):
        response_format = response_format.get("type")
    key = "gen_ai.output.type" if new else "gen_ai.openai.request.response_format"
    found[key] = response_format if isinstance(response_format, str) else None
    tier = body.get("service_tier")
    key = "openai.request.service_tier" if new else "gen_ai.openai.request.service_tier"
    found[key] = tier if tier != "auto" else None
    address, port = server
    found["server.address"] = address
    found["server.port"] = None if port == 443 else port  # noqa: PLR2004 - as the instrumentation
    return {k: v for k, v in found.items() if v is not None}


def _audit_attributes(ctx: GenerationContext, log_id: int | None) -> dict[str, Any]:
    """The audit's own attributes, and who asked (``user.id``, ``session.id``).

    The row, its call and attempt, the definitie and the template.
    """
    return {
        "user.id": ctx.actor,
        "session.id": ctx.session,
        "audited_openai.log_id": log_id,
        "audited_openai.call_id": ctx.call_id,
        "audited_openai.attempt": ctx.attempt,
        "audited_openai.definitie_id": ctx.definitie_id,
        "audited_openai.template.name": ctx.prompt.template_name,
        "audited_openai.template.version": ctx.prompt.template_version,
        "audited_openai.template.modules": list(ctx.prompt.modules_used or []) or None,
        "audited_openai.status": ctx.status,
    }


def outcome_attributes(
    ctx: GenerationContext,
    log_id: int | None,
    *,
    new: bool | None = None,
    content: bool | None = None,
) -> dict[str, Any]:
    """The response (or error) attributes of a completed row, and the audit's own.

    ``new``, ``content``: the latest names, prompts and completions (default: as the
    environment says now).
    """
    new = latest() if new is None else new
    content = capture_content() if content is None else content
    found = _audit_attributes(ctx, log_id)
    response, error = ctx.response, ctx.error
    if response is not None:
        found.update(
            {
                "gen_ai.response.model": response.response_model,
                "gen_ai.response.id": response.response_id,
                "gen_ai.response.finish_reasons": [response.finish_reason]
                if response.finish_reason
                else None,
                "gen_ai.usage.input_tokens": response.tokens_prompt,
                "gen_ai.usage.output_tokens": response.tokens_completion,
                (
                    "openai.response.system_fingerprint"
                    if new
                    else "gen_ai.openai.response.system_fingerprint"
                ): response.system_fingerprint,
                "http.response.status_code": response.http_status,
            }
        )
    if error is not None:
        found["error.type"] = error.error_type or "_OTHER"
        found["http.response.status_code"] = error.http_status
    if content:
        found["gen_ai.input.messages"] = _messages("user", ctx.prompt.full_text)
        if response is not None and response.content is not None:
            found["gen_ai.output.messages"] = _messages("assistant", response.content)
    return {k: v for k, v in found.items() if v is not None}


def duration_ms(ctx: GenerationContext) -> int | None:
    """How long the attempt took, as stored."""
    outcome = ctx.response or ctx.error
    return None if outcome is None else outcome.duration_ms


def _messages(role: str, text: str | None) -> str:
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": text or ""}]}])


@dataclass(frozen=True)
class Started:
    """What an attempt's span needs from the moment its request leaves."""

    parent: Any  # the app's context then (its current span is the parent)
    start_ns: int
    body: Mapping[str, Any]
    server: tuple[str | None, int | None]
    endpoint: str
    new: bool  # the latest experimental names
    content: bool  # prompts and completions on the span


def start(
    body: Mapping[str, Any], server: tuple[str | None, int | None], *, endpoint: str
) -> Started | None:
    """Note an attempt about to leave (None when nothing traces or meters).

    Only the context, the time and two settings are taken here; the span is made and
    ended, and the metrics recorded, on a thread of their own once the attempt
    completes: the SDK spends about 0.2 ms of CPU on a span and its metrics, which the
    call should not wait for.
    """
    api = _api()
    if api is None or not api.active():
        return None
    return Started(
        api.current(), time.time_ns(), body, server, endpoint, latest(), capture_content()
    )


def end(
    handle: Started | None, ctx: GenerationContext, log_id: int | None, seconds: float | None
) -> None:
    """Hand the attempt's outcome to the telemetry thread (never waits, never raises)."""
    if handle is None:
        return
    _submit((handle, ctx, log_id, seconds, time.time_ns()))


def _emit(
    handle: Started, ctx: GenerationContext, log_id: int | None, seconds: float | None, end_ns: int
) -> None:
    """Make and end the span of a completed attempt, with its times, and record metrics."""
    api = _api()
    assert api is not None  # noqa: S101 - start() returned a handle
    request = request_attributes(
        handle.body, handle.server, endpoint=handle.endpoint, new=handle.new
    )
    outcome = outcome_attributes(ctx, log_id, new=handle.new, content=handle.content)
    model = request.get("gen_ai.request.model")
    span = api.tracer.start_span(
        f"chat {model}" if model else "chat",
        context=handle.parent,
        kind=api.client_kind,
        attributes={**request, **outcome},
        start_time=handle.start_ns,
    )
    if "error.type" in outcome:
        message = ctx.error.message if ctx.error is not None else ""
        span.set_status(api.status(api.error_code, message[:200]))
    span.end(end_time=max(handle.start_ns, end_ns))
    _record(api, request, outcome, seconds)


# -- the telemetry thread ----------------------------------------------------------------------

_QUEUE: queue.SimpleQueue[Any] = queue.SimpleQueue()
_THREAD: threading.Thread | None = None
_THREAD_LOCK = threading.Lock()


def _submit(item: Any) -> None:
    global _THREAD  # noqa: PLW0603 - one thread per process, started on first use
    if _THREAD is None or not _THREAD.is_alive():
        with _THREAD_LOCK:
            if _THREAD is None or not _THREAD.is_alive():
                _THREAD = threading.Thread(
                    target=_run, name="audited_openai-telemetry", daemon=True
                )
                _THREAD.start()
    _QUEUE.put(item)


def _run() -> None:
    while True:
        item = _QUEUE.get()
        if item is None:
            return
        if isinstance(item, threading.Event):
            item.set()
            continue
        try:
            _emit(*item)
        except Exception:
            log.debug("could not emit an OpenTelemetry span", exc_info=True)


def flush(timeout: float = 10.0) -> bool:
    """Wait until the spans and metrics of completed attempts are handed to the SDK."""
    if _THREAD is None or not _THREAD.is_alive():
        return True
    done = threading.Event()
    _QUEUE.put(done)
    return done.wait(timeout)


@atexit.register
def _drain() -> None:
    """At exit, hand over what is queued (before the SDK's own shutdown flushes it)."""
    flush(5.0)


def _forget_after_fork() -> None:
    global _QUEUE, _THREAD, _THREAD_LOCK
    _QUEUE, _THREAD, _THREAD_LOCK = queue.SimpleQueue(), None, threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


_METRIC_KEYS = (
    "gen_ai.operation.name",
    "gen_ai.system",
    "gen_ai.provider.name",
    "gen_ai.request.model",
    "server.address",
    "server.port",
)


def _record(
    api: Any, request: dict[str, Any], outcome: dict[str, Any], seconds: float | None
) -> None:
    common = {k: request[k] for k in _METRIC_KEYS if k in request}
    for key in ("gen_ai.response.model", "error.type"):
        if key in outcome:
            common[key] = outcome[key]
    if seconds is not None:
        api.duration.record(seconds, attributes=common)
    for kind, key in (
        ("input", "gen_ai.usage.input_tokens"),
        ("output", "gen_ai.usage.output_tokens"),
    ):
        if key in outcome:
            api.tokens.record(outcome[key], attributes={**common, "gen_ai.token.type": kind})


# -- back-fill: stored rows as spans ------------------------------------------------------------


def row_span(ctx: GenerationContext, log_id: int, resource: Any, scope: Any) -> Any:
    """A finished span of a stored row, with its original times (for OTLP export).

    Its trace id comes from the ``call_id`` (the attempts of a call share a trace), its
    span id from call and attempt: exporting again gives the same ids.
    """
    from opentelemetry.sdk.trace import ReadableSpan  # noqa: PLC0415 - the optional extra
    from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags  # noqa: PLC0415

    try:
        body = json.loads(ctx.request_json or "{}")
    except ValueError:  # redacted into something else: the columns say enough
        body = {}
    if not isinstance(body, dict) or not body:
        params = ctx.prompt.model_params
        body = {
            "model": params.name,
            "temperature": None if params.temperature is None else float(params.temperature),
            "top_p": None if params.top_p is None else float(params.top_p),
            "max_tokens": params.max_tokens,
        }
    attributes = {
        **request_attributes(body, (None, None), endpoint=ctx.endpoint),
        **outcome_attributes(ctx, log_id),
    }
    start = int(ctx.logged_at.timestamp() * 1_000_000) * 1000
    took = duration_ms(ctx)
    end = start + took * 1_000_000 if took is not None else int(ctx.updated_at.timestamp() * 1e9)
    trace_id = int(hashlib.sha256(ctx.call_id.encode()).hexdigest()[:32], 16)
    span_id = int(hashlib.sha256(f"{ctx.call_id}/{ctx.attempt}".encode()).hexdigest()[:16], 16)
    model = attributes.get("gen_ai.request.model")
    failed = "error.type" in attributes
    return ReadableSpan(
        name=f"chat {model}" if model else "chat",
        context=SpanContext(trace_id, span_id, is_remote=False, trace_flags=TraceFlags(1)),
        attributes=attributes,
        kind=SpanKind.CLIENT,
        status=Status(StatusCode.ERROR, (ctx.error.message or "")[:200])
        if failed and ctx.error is not None
        else Status(StatusCode.UNSET),
        start_time=start,
        end_time=max(start, end),
        resource=resource,
        instrumentation_scope=scope,
    )


def exporter(endpoint: str | None) -> Any:
    """An OTLP/HTTP span exporter to ``endpoint`` (a base URL; else the OTEL_ variables)."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )
    except ImportError as exc:
        raise ImportError(
            "export --format otlp needs OpenTelemetry: pip install 'audited-openai[otel]'"
        ) from exc
    if endpoint is None:
        return OTLPSpanExporter()
    url = endpoint.rstrip("/")
    return OTLPSpanExporter(endpoint=url if url.endswith("/v1/traces") else url + "/v1/traces")


def backfill_resource() -> tuple[Any, Any]:
    """The resource (``service.name``: $OTEL_SERVICE_NAME, else audited-openai) and scope."""
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope  # noqa: PLC0415

    given = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": "audited-openai"}
    return Resource.create(given), InstrumentationScope("audited_openai", _version(), SCHEMA_URL)


def backfill(
    logs: Iterable[GenerationContext],
    endpoint: str | None,
    *,
    progress: Callable[[int], None] | None = None,
    batch: int = 500,
) -> int:
    """Send completed rows to an OTLP/HTTP endpoint as spans with their original times.

    In batches of ``batch``, ``progress(n)`` after each; how many were sent. An endpoint
    that refuses a batch raises :class:`StoreError`, naming it.
    """
    sender = exporter(endpoint)
    resource, scope = backfill_resource()
    sent, spans = 0, []
    try:
        for log in logs:
            if log.status == "pending":
                continue
            spans.append(row_span(log, log.id or 0, resource, scope))
            if len(spans) == batch:
                sent += _send(sender, spans, endpoint)
                if progress is not None:
                    progress(sent)
        sent += _send(sender, spans, endpoint)
    finally:
        sender.shutdown()
    if progress is not None:
        progress(sent)
    return sent


def _send(sender: Any, spans: list[Any], endpoint: str | None) -> int:
    from opentelemetry.sdk.trace.export import SpanExportResult  # noqa: PLC0415

    if not spans:
        return 0
    if sender.export(spans) is not SpanExportResult.SUCCESS:
        where = endpoint or "the OTLP endpoint of OTEL_EXPORTER_OTLP_*"
        raise StoreError(f"{where} did not take {len(spans)} spans (see the log for why)")
    count = len(spans)
    spans.clear()
    return count
