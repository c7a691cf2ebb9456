"""Translation between :class:`GenerationContext` and the columns of ``generation_logs``.

Validation lives here too, so bad input is refused with a clear error before any SQL
runs; the table's CHECK constraints stay as the second line of defence.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from audited_openai._clock import format_ts, parse_ts
from audited_openai._errors import InvalidLogError
from audited_openai._models import (
    STATUSES,
    ErrorContext,
    GenerationContext,
    ModelParameters,
    PromptContext,
    ResponseMetadata,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

# Every column of generation_logs, in table order (tests/test_schema.py pins it).
# The model and its parameters.
MODEL_COLUMNS = (
    "model_name",
    "model_temperature",
    "model_max_tokens",
    "model_top_p",
    "model_frequency_penalty",
    "model_presence_penalty",
)
# The large texts, last in a row (reading other columns never walks their pages).
TEXT_COLUMNS = (
    "prompt_full_text",
    "request_json",
    "response_content",
    "error_message",
    "error_traceback",
    "additional_metadata",
)
TABLE_COLUMNS: tuple[str, ...] = (
    "id",
    "definitie_id",
    "call_id",
    "attempt",
    "endpoint",
    "prompt_template_version",
    "prompt_template_name",
    "prompt_modules_used",
    *MODEL_COLUMNS,
    "stream",
    "tokens_prompt",
    "tokens_completion",
    "tokens_total",
    "tokens_cached",
    "tokens_reasoning",
    "duration_ms",
    "ttft_ms",
    "response_finish_reason",
    "response_id",
    "response_created_at",
    "response_model",
    "system_fingerprint",
    "http_status",
    "generation_status",
    "error_type",
    "logged_at",
    "updated_at",
    *TEXT_COLUMNS,
)

RESPONSE_COLUMNS = (
    "tokens_prompt",
    "tokens_completion",
    "tokens_total",
    "tokens_cached",
    "tokens_reasoning",
    "duration_ms",
    "ttft_ms",
    "response_finish_reason",
    "response_id",
    "response_created_at",
    "response_model",
    "system_fingerprint",
    "response_content",
    "http_status",
)

ERROR_COLUMNS = ("error_message", "error_type", "error_traceback")

COMPLETION_COLUMNS = (
    *RESPONSE_COLUMNS,
    *ERROR_COLUMNS,
    "generation_status",
    "additional_metadata",
    "updated_at",
)

_RESPONSE_FIELDS = {
    "tokens_prompt": "tokens_prompt",
    "tokens_completion": "tokens_completion",
    "tokens_total": "tokens_total",
    "tokens_cached": "tokens_cached",
    "tokens_reasoning": "tokens_reasoning",
    "ttft_ms": "ttft_ms",
    "response_finish_reason": "finish_reason",
    "response_id": "response_id",
    "response_created_at": "created_at",
    "response_model": "response_model",
    "system_fingerprint": "system_fingerprint",
    "response_content": "content",
}

_NON_NEGATIVE = (
    "tokens_prompt",
    "tokens_completion",
    "tokens_total",
    "tokens_cached",
    "tokens_reasoning",
    "duration_ms",
    "ttft_ms",
)


def validate_definitie_id(value: object) -> int | None:
    """Return ``value`` if it is an integer id (or None), else raise InvalidLogError."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidLogError(
            f"definitie_id must be an integer, not {type(value).__name__} {value!r}",
            field="definitie_id",
        )
    return value


def validate_log_id(value: object) -> int:
    """Return ``value`` if it is an integer log id, else raise InvalidLogError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidLogError(
            f"log id must be an integer, not {type(value).__name__} {value!r}", field="id"
        )
    return value


def prompt_row(ctx: GenerationContext) -> dict[str, Any]:
    """Return the columns written when the pending row is created."""
    _validate_prompt(ctx)
    params = ctx.prompt.model_params
    return {
        "definitie_id": validate_definitie_id(ctx.definitie_id),
        "call_id": ctx.call_id,
        "attempt": ctx.attempt,
        "endpoint": ctx.endpoint,
        "prompt_full_text": ctx.prompt.full_text,
        "prompt_template_version": ctx.prompt.template_version,
        "prompt_template_name": ctx.prompt.template_name,
        "prompt_modules_used": _json_or_none(ctx.prompt.modules_used),
        "request_json": ctx.request_json,
        "model_name": params.name,
        "model_temperature": _decimal_to_float(params.temperature),
        "model_max_tokens": params.max_tokens,
        "model_top_p": _decimal_to_float(params.top_p),
        "model_frequency_penalty": _decimal_to_float(params.frequency_penalty),
        "model_presence_penalty": _decimal_to_float(params.presence_penalty),
        "stream": int(ctx.stream),
        "generation_status": ctx.status,
        "additional_metadata": _metadata_json(ctx.metadata),
        "logged_at": format_ts(ctx.logged_at),
        "updated_at": format_ts(ctx.updated_at),
    }


def completion_row(ctx: GenerationContext) -> dict[str, Any]:
    """Return the columns written when a row is completed (success or failure)."""
    _validate_status(ctx.status)
    row: dict[str, Any] = dict.fromkeys(COMPLETION_COLUMNS)
    response, error = ctx.response, ctx.error
    if response is not None:
        for column, attr in _RESPONSE_FIELDS.items():
            row[column] = getattr(response, attr)
        row["duration_ms"] = response.duration_ms
        row["http_status"] = response.http_status
    if error is not None:
        row["error_message"] = error.message
        row["error_type"] = error.error_type
        row["error_traceback"] = error.traceback
        for column in ("duration_ms", "http_status"):
            value = getattr(error, column)
            if value is not None:
                if row[column] is not None and row[column] != value:
                    raise InvalidLogError(
                        f"response and error disagree on {column}: {row[column]} != {value}",
                        field=column,
                    )
                row[column] = value
    for column in _NON_NEGATIVE:
        _check_non_negative(column, row[column])
    _check_http_status(row["http_status"])
    row["generation_status"] = ctx.status
    row["additional_metadata"] = _metadata_json(ctx.metadata)
    row["updated_at"] = format_ts(ctx.updated_at)
    return row


def row_to_context(row: Mapping[str, Any]) -> GenerationContext:
    """Map every column of a ``generation_logs`` row back to a context (spec defect 4)."""
    params = ModelParameters(
        name=row["model_name"],
        temperature=_float_to_decimal(row["model_temperature"]),
        max_tokens=row["model_max_tokens"],
        top_p=_float_to_decimal(row["model_top_p"]),
        frequency_penalty=_float_to_decimal(row["model_frequency_penalty"]),
        presence_penalty=_float_to_decimal(row["model_presence_penalty"]),
    )
    modules = row["prompt_modules_used"]
    prompt = PromptContext(
        full_text=row["prompt_full_text"],
        model_params=params,
        template_version=row["prompt_template_version"],
        template_name=row["prompt_template_name"],
        modules_used=None if modules is None else json.loads(modules),
    )
    response: ResponseMetadata | None = None
    if any(row[column] is not None for column in _RESPONSE_FIELDS) or (
        row["error_type"] is None
        and (row["duration_ms"] is not None or row["http_status"] is not None)
    ):
        response = ResponseMetadata(
            **{attr: row[column] for column, attr in _RESPONSE_FIELDS.items()},
            duration_ms=row["duration_ms"],
            http_status=row["http_status"],
        )
    error: ErrorContext | None = None
    if row["error_type"] is not None:
        error = ErrorContext(
            message=row["error_message"] or "",
            error_type=row["error_type"],
            traceback=row["error_traceback"],
            http_status=row["http_status"],
            duration_ms=row["duration_ms"],
        )
    metadata = row["additional_metadata"]
    return GenerationContext(
        prompt=prompt,
        id=row["id"],
        definitie_id=row["definitie_id"],
        response=response,
        error=error,
        status=row["generation_status"],
        metadata={} if metadata is None else json.loads(metadata),
        logged_at=parse_ts(row["logged_at"]),
        updated_at=parse_ts(row["updated_at"]),
        call_id=row["call_id"],
        attempt=row["attempt"],
        endpoint=row["endpoint"],
        request_json=row["request_json"],
        stream=bool(row["stream"]),
    )


def _validate_prompt(ctx: GenerationContext) -> None:
    _validate_status(ctx.status)
    if not isinstance(ctx.prompt, PromptContext):
        raise InvalidLogError("context.prompt must be a PromptContext", field="prompt")
    if not isinstance(ctx.prompt.full_text, str):
        raise InvalidLogError("prompt.full_text must be a string", field="prompt_full_text")
    params = ctx.prompt.model_params
    if not isinstance(params.name, str) or not params.name:
        raise InvalidLogError("model_params.name must be a non-empty string", field="model_name")
    _check_range("model_temperature", params.temperature, 0, 2)
    _check_range("model_top_p", params.top_p, 0, 1)
    _check_range("model_frequency_penalty", params.frequency_penalty, -2, 2)
    _check_range("model_presence_penalty", params.presence_penalty, -2, 2)
    _check_non_negative("model_max_tokens", params.max_tokens)
    if isinstance(ctx.attempt, bool) or not isinstance(ctx.attempt, int) or ctx.attempt < 1:
        raise InvalidLogError(f"attempt must be an integer >= 1, not {ctx.attempt!r}", "attempt")
    modules = ctx.prompt.modules_used
    if modules is not None and (
        not isinstance(modules, list) or not all(isinstance(m, str) for m in modules)
    ):
        raise InvalidLogError("modules_used must be a list of strings", field="modules_used")


def _validate_status(status: object) -> None:
    if status not in STATUSES:
        raise InvalidLogError(
            f"unknown status {status!r}; expected one of {', '.join(STATUSES)}",
            field="generation_status",
        )


def _check_range(column: str, value: Decimal | None, low: int, high: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, float)):
        raise InvalidLogError(f"{column} must be a number, not {value!r}", field=column)
    if not low <= value <= high:
        raise InvalidLogError(f"{column} must be between {low} and {high}, not {value}", column)


def _check_non_negative(column: str, value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidLogError(f"{column} must be a non-negative integer, not {value!r}", column)


def _check_http_status(value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:  # noqa: PLR2004
        raise InvalidLogError(f"http_status must be 100-599, not {value!r}", "http_status")


def _decimal_to_float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _float_to_decimal(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(repr(float(value)))


def _json_or_none(value: object) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


def _metadata_json(metadata: dict[str, Any]) -> str | None:
    if not isinstance(metadata, dict):
        raise InvalidLogError("metadata must be a dict", field="additional_metadata")
    if not metadata:
        return None
    try:
        return json.dumps(metadata, ensure_ascii=False, default=repr)
    except (ValueError, RecursionError) as exc:
        raise InvalidLogError(
            f"metadata is not JSON-serialisable: {exc}", field="additional_metadata"
        ) from exc
