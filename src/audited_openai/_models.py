"""The data model of the spec, extended with what the client layer records.

Deviations from the spec, each on purpose:

* every model parameter defaults to ``None`` ("not sent"): logging defaults that were
  never sent ruins reproducibility;
* ``GenerationContext.prompt`` is required: a row without a prompt means nothing
  (spec defect 5);
* timestamps are timezone-aware UTC, truncated to milliseconds (spec defect 6);
* ``mark_timeout`` exists and gives status ``'timeout'`` (spec defect 7).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from audited_openai._clock import format_ts, parse_ts, utc_now

if TYPE_CHECKING:
    from datetime import datetime

Status = Literal["pending", "success", "failed", "timeout"]
STATUSES: tuple[Status, ...] = ("pending", "success", "failed", "timeout")


def new_call_id() -> str:
    """Return a fresh id that groups the attempts of one logical call."""
    return uuid.uuid4().hex


@dataclass
class ModelParameters:
    """The model and the sampling parameters that were sent (``None``: not sent)."""

    name: str
    temperature: Decimal | None = None
    max_tokens: int | None = None
    top_p: Decimal | None = None
    frequency_penalty: Decimal | None = None
    presence_penalty: Decimal | None = None


@dataclass
class PromptContext:
    """The complete prompt, captured before the request is sent."""

    full_text: str
    model_params: ModelParameters
    template_version: str | None = None
    template_name: str | None = None
    modules_used: list[str] | None = None


@dataclass
class ResponseMetadata:
    """What the response said: usage, finish reason, ids, timing and the text."""

    tokens_prompt: int | None = None
    tokens_completion: int | None = None
    tokens_total: int | None = None
    finish_reason: str | None = None
    response_id: str | None = None
    created_at: int | None = None
    duration_ms: int | None = None
    tokens_cached: int | None = None
    tokens_reasoning: int | None = None
    response_model: str | None = None
    system_fingerprint: str | None = None
    content: str | None = None
    http_status: int | None = None
    ttft_ms: int | None = None


@dataclass
class ErrorContext:
    """Why a generation failed: the exception class, its message and traceback."""

    message: str
    error_type: str
    traceback: str | None = None
    http_status: int | None = None
    duration_ms: int | None = None


@dataclass
class GenerationContext:
    """One attempt at generating a definitie: the row of ``generation_logs``.

    Lifecycle: created ``pending`` with its prompt, then completed once by
    :meth:`mark_success`, :meth:`mark_failed` or :meth:`mark_timeout`.
    """

    prompt: PromptContext
    id: int | None = None
    definitie_id: int | None = None
    response: ResponseMetadata | None = None
    error: ErrorContext | None = None
    status: Status = "pending"
    metadata: dict[str, Any] = field(default_factory=dict)
    logged_at: datetime = field(default_factory=utc_now)
    updated_at: datetime = field(default_factory=utc_now)
    call_id: str = field(default_factory=new_call_id)
    attempt: int = 1
    endpoint: str = "chat.completions"
    request_json: str | None = None
    stream: bool = False

    def mark_success(self, response: ResponseMetadata) -> None:
        """Record a successful response."""
        self.response = response
        self.status = "success"
        self.updated_at = utc_now()

    def mark_failed(self, error: ErrorContext) -> None:
        """Record a failure."""
        self.error = error
        self.status = "failed"
        self.updated_at = utc_now()

    def mark_timeout(self, error: ErrorContext) -> None:
        """Record a request that timed out."""
        self.error = error
        self.status = "timeout"
        self.updated_at = utc_now()

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dictionary of every field (the spec's shape, extended)."""
        params = self.prompt.model_params
        return {
            "id": self.id,
            "definitie_id": self.definitie_id,
            "call_id": self.call_id,
            "attempt": self.attempt,
            "endpoint": self.endpoint,
            "stream": self.stream,
            "prompt": {
                "full_text": self.prompt.full_text,
                "template_version": self.prompt.template_version,
                "template_name": self.prompt.template_name,
                "modules_used": self.prompt.modules_used,
                "model_params": {
                    "name": params.name,
                    "temperature": _float(params.temperature),
                    "max_tokens": params.max_tokens,
                    "top_p": _float(params.top_p),
                    "frequency_penalty": _float(params.frequency_penalty),
                    "presence_penalty": _float(params.presence_penalty),
                },
            },
            "request_json": self.request_json,
            "response": _response_dict(self.response),
            "error": _error_dict(self.error),
            "status": self.status,
            "metadata": self.metadata,
            "logged_at": format_ts(self.logged_at),
            "updated_at": format_ts(self.updated_at),
        }


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _response_dict(response: ResponseMetadata | None) -> dict[str, Any] | None:
    if response is None:
        return None
    return {
        "tokens_prompt": response.tokens_prompt,
        "tokens_completion": response.tokens_completion,
        "tokens_total": response.tokens_total,
        "tokens_cached": response.tokens_cached,
        "tokens_reasoning": response.tokens_reasoning,
        "finish_reason": response.finish_reason,
        "response_id": response.response_id,
        "created_at": response.created_at,
        "duration_ms": response.duration_ms,
        "response_model": response.response_model,
        "system_fingerprint": response.system_fingerprint,
        "content": response.content,
        "http_status": response.http_status,
        "ttft_ms": response.ttft_ms,
    }


def _error_dict(error: ErrorContext | None) -> dict[str, Any] | None:
    if error is None:
        return None
    return {
        "message": error.message,
        "error_type": error.error_type,
        "traceback": error.traceback,
        "http_status": error.http_status,
        "duration_ms": error.duration_ms,
    }


def context_from_dict(data: dict[str, Any]) -> GenerationContext:
    """Rebuild a context from :meth:`GenerationContext.to_dict` output."""
    prompt = data["prompt"]
    params = prompt["model_params"]
    response = data.get("response")
    error = data.get("error")
    return GenerationContext(
        prompt=PromptContext(
            full_text=prompt["full_text"],
            model_params=ModelParameters(
                name=params["name"],
                temperature=_decimal(params.get("temperature")),
                max_tokens=params.get("max_tokens"),
                top_p=_decimal(params.get("top_p")),
                frequency_penalty=_decimal(params.get("frequency_penalty")),
                presence_penalty=_decimal(params.get("presence_penalty")),
            ),
            template_version=prompt.get("template_version"),
            template_name=prompt.get("template_name"),
            modules_used=prompt.get("modules_used"),
        ),
        id=data.get("id"),
        definitie_id=data.get("definitie_id"),
        response=None if response is None else ResponseMetadata(**response),
        error=None if error is None else ErrorContext(**error),
        status=data["status"],
        metadata=data.get("metadata") or {},
        logged_at=parse_ts(data["logged_at"]),
        updated_at=parse_ts(data["updated_at"]),
        call_id=data["call_id"],
        attempt=data["attempt"],
        endpoint=data["endpoint"],
        request_json=data.get("request_json"),
        stream=bool(data.get("stream")),
    )


def _decimal(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(repr(float(value)))
