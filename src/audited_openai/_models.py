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

import dataclasses
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from audited_openai._clock import format_ts, parse_ts, utc_now

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
class Cost:
    """What a completed call cost, priced at its completion (see :mod:`audited_openai.prices`).

    ``amount`` is ``None`` when it is unknown: the table had no price for the model, or
    the response gave no usage. ``price_version`` names the table that was used.
    """

    amount: Decimal | None
    currency: str | None
    price_version: str


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
    replay_of: int | None = None  # a replay: the id of the row whose request it sent again
    cost: Cost | None = None  # priced when completed; None: not priced (failed, or older rows)
    actor: str | None = None  # who asked: the person or service, as the app names them
    session: str | None = None  # the working session the call was made in

    def mark_success(self, response: ResponseMetadata) -> None:
        """Record a successful response."""
        self.response, self.status, self.updated_at = response, "success", utc_now()

    def mark_failed(self, error: ErrorContext) -> None:
        """Record a failure."""
        self.error, self.status, self.updated_at = error, "failed", utc_now()

    def mark_timeout(self, error: ErrorContext) -> None:
        """Record a request that timed out."""
        self.error, self.status, self.updated_at = error, "timeout", utc_now()

    def to_dict(self) -> dict[str, Any]:
        """Every field as JSON-ready values (the spec's nested shape, extended)."""
        return _plain(dataclasses.asdict(self))  # type: ignore[no-any-return]


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return format_ts(value)
    return value


def to_decimal(value: float | None) -> Decimal | None:
    """A stored number as the Decimal it was given as (``None`` stays ``None``)."""
    return None if value is None else Decimal(repr(float(value)))


def to_amount(value: float | str | None) -> Decimal | None:
    """A cost given as a number or text, as a Decimal (``None`` stays ``None``)."""
    return None if value is None else Decimal(str(value))


def context_from_dict(data: dict[str, Any]) -> GenerationContext:
    """Rebuild a context from :meth:`GenerationContext.to_dict` output."""
    prompt, response, error = data["prompt"], data.get("response"), data.get("error")
    params: dict[str, Any] = {
        k: v if k in ("name", "max_tokens") else to_decimal(v)
        for k, v in prompt["model_params"].items()
    }
    kept = (
        "id",
        "definitie_id",
        "status",
        "call_id",
        "attempt",
        "endpoint",
        "request_json",
        "replay_of",
        "actor",
        "session",
    )
    fields: dict[str, Any] = {key: data.get(key) for key in kept}
    cost = data.get("cost")
    return GenerationContext(
        cost=None if cost is None else Cost(**{**cost, "amount": to_amount(cost["amount"])}),
        prompt=PromptContext(**{**prompt, "model_params": ModelParameters(**params)}),
        response=None if response is None else ResponseMetadata(**response),
        error=None if error is None else ErrorContext(**error),
        metadata=data.get("metadata") or {},
        logged_at=parse_ts(data["logged_at"]),
        updated_at=parse_ts(data["updated_at"]),
        stream=bool(data.get("stream")),
        **fields,
    )
