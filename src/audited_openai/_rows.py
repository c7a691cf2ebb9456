"""Translation between :class:`GenerationContext` and the columns of ``generation_logs``.

One table of fields serves both directions. Validation lives here too, so bad input is
refused with a clear error before any SQL runs; the table's CHECK constraints stay as
the second line of defence.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from audited_openai._clock import format_ts, parse_ts
from audited_openai._errors import InvalidLogError
from audited_openai._models import (
    STATUSES,
    Cost,
    ErrorContext,
    GenerationContext,
    ModelParameters,
    PromptContext,
    ResponseMetadata,
    to_decimal,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

# The model and its parameters: column -> ModelParameters field.
MODEL = {
    "model_name": "name",
    "model_temperature": "temperature",
    "model_max_tokens": "max_tokens",
    "model_top_p": "top_p",
    "model_frequency_penalty": "frequency_penalty",
    "model_presence_penalty": "presence_penalty",
}
MODEL_COLUMNS = tuple(MODEL)
DECIMALS = ("temperature", "top_p", "frequency_penalty", "presence_penalty")
# What a response says: column -> ResponseMetadata field (duration and status are shared
# with the error).
RESPONSE = {
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
ERROR = {"error_message": "message", "error_type": "error_type", "error_traceback": "traceback"}
SHARED = ("duration_ms", "http_status")
COUNTS = ("tokens_prompt", "tokens_completion", "tokens_total", "tokens_cached", "tokens_reasoning")
# The large texts, last in a row (reading other columns never walks their pages).
TEXT_COLUMNS = (
    "prompt_full_text",
    "request_json",
    "response_content",
    "error_message",
    "error_traceback",
    "additional_metadata",
)
# Columns added after the chain began (schema 8 on), in table order: after the texts.
COST_COLUMNS = ("cost_nanos", "cost_currency", "price_version")  # schema 11
WHO_COLUMNS = ("actor", "session_id")  # schema 12: who asked, in which working session
LATER_COLUMNS = ("replay_of", *COST_COLUMNS, *WHO_COLUMNS)
WHO_LIMIT = 256  # characters of an actor or a session id
# Every column, in table order (tests/test_schema.py pins it).
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
    *COUNTS,
    *SHARED[:1],
    "ttft_ms",
    "response_finish_reason",
    "response_id",
    "response_created_at",
    "response_model",
    "system_fingerprint",
    *SHARED[1:],
    "generation_status",
    "error_type",
    "logged_at",
    "updated_at",
    *TEXT_COLUMNS,
    *LATER_COLUMNS,
)

# The chain's table and columns (see _chain): every column but updated_at is chained;
# FIRST_CHAINED are those of schema 7, when the chain began.
EVENTS = "generation_log_events"
EVENT_COLUMNS = "seq, log_id, definitie_id, kind, at, note, state, hash"
CHAINED = tuple(c for c in TABLE_COLUMNS if c != "updated_at")
FIRST_CHAINED = CHAINED[: len(CHAINED) - len(LATER_COLUMNS)]


NANOS = 1_000_000_000  # a cost is stored in billionths of its currency
MAX_ID = 2**63 - 1  # the largest id either store can hold (INTEGER, BIGINT)


def validate_definitie_id(value: object) -> int | None:
    """Return ``value`` if it is an integer id (or None), else raise InvalidLogError."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise InvalidLogError(
            f"definitie_id must be an integer, not {type(value).__name__} {value!r}",
            field="definitie_id",
        )
    return _in_range(value, "definitie_id")


def validate_who(value: object, name: str) -> str | None:
    """Return an actor or session (or None) if it is a short line of text, else raise."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidLogError(f"{name} must be text, not {type(value).__name__} {value!r}", name)
    if not value.strip() or len(value) > WHO_LIMIT or not value.isprintable():
        raise InvalidLogError(
            f"{name} must be 1 to {WHO_LIMIT} printable characters, not {value[:40]!r}", name
        )
    return value


def validate_log_id(value: object) -> int:
    """Return ``value`` if it is an integer log id, else raise InvalidLogError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidLogError(
            f"log id must be an integer, not {type(value).__name__} {value!r}", field="id"
        )
    return _in_range(value, "id")  # type: ignore[return-value]


def validate_count(value: object, field: str) -> int:
    """Return ``value`` if it is a count (a limit) a store can take, else InvalidLogError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidLogError(f"{field} must be a non-negative integer, not {value!r}", field)
    if value > MAX_ID:
        raise InvalidLogError(f"{field} {value} is out of range (at most {MAX_ID})", field)
    return value


def _in_range(value: int | None, field: str) -> int | None:
    if value is not None and not -MAX_ID - 1 <= value <= MAX_ID:
        name = "log id" if field == "id" else field
        raise InvalidLogError(f"{name} {value} is out of range (at most {MAX_ID})", field=field)
    return value


def prompt_row(ctx: GenerationContext) -> dict[str, Any]:
    """The columns written when the pending row is created."""
    _validate_prompt(ctx)
    params, prompt = ctx.prompt.model_params, ctx.prompt
    modules = prompt.modules_used
    return {
        "definitie_id": validate_definitie_id(ctx.definitie_id),
        "call_id": ctx.call_id,
        "attempt": ctx.attempt,
        "endpoint": ctx.endpoint,
        "prompt_full_text": prompt.full_text,
        "prompt_template_version": prompt.template_version,
        "prompt_template_name": prompt.template_name,
        "prompt_modules_used": None if modules is None else json.dumps(modules, ensure_ascii=False),
        "request_json": ctx.request_json,
        **{column: _stored(name, getattr(params, name)) for column, name in MODEL.items()},
        "stream": int(ctx.stream),
        "generation_status": ctx.status,
        "additional_metadata": _metadata_json(ctx.metadata),
        "logged_at": format_ts(ctx.logged_at),
        "updated_at": format_ts(ctx.updated_at),
        # only a replay has it (an INSERT names only what it sets)
        **({} if ctx.replay_of is None else {"replay_of": _replay_of(ctx.replay_of)}),
        **({} if ctx.actor is None else {"actor": validate_who(ctx.actor, "actor")}),
        **({} if ctx.session is None else {"session_id": validate_who(ctx.session, "session")}),
    }


def _replay_of(value: object) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise InvalidLogError(f"replay_of must be a log id, not {value!r}", field="replay_of")
    return _in_range(value, "replay_of")


def completion_row(ctx: GenerationContext) -> dict[str, Any]:
    """The columns written when a row is completed (success or failure)."""
    _validate_status(ctx.status)
    response, error = ctx.response, ctx.error
    row: dict[str, Any] = {c: getattr(response, a, None) for c, a in RESPONSE.items()}
    row.update({c: getattr(error, a, None) for c, a in ERROR.items()})
    for column in SHARED:
        said = [
            v
            for v in (getattr(response, column, None), getattr(error, column, None))
            if v is not None
        ]
        if len(said) == 2 and said[0] != said[1]:  # noqa: PLR2004 - the response and the error
            raise InvalidLogError(
                f"response and error disagree on {column}: {said[0]} != {said[1]}", field=column
            )
        row[column] = said[0] if said else None
    for column in (*COUNTS, "duration_ms", "ttft_ms"):
        _check_non_negative(column, row[column])
    status = row["http_status"]
    if status is not None and (
        isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599  # noqa: PLR2004
    ):
        raise InvalidLogError(f"http_status must be 100-599, not {status!r}", "http_status")
    row["generation_status"] = ctx.status
    row["additional_metadata"] = _metadata_json(ctx.metadata)
    row["updated_at"] = format_ts(ctx.updated_at)
    if ctx.cost is not None:
        row.update(cost_row(ctx.cost))
    return row


def cost_row(cost: Cost) -> dict[str, Any]:
    """The cost columns of a priced row (schema 11)."""
    amount = cost.amount
    if amount is not None and (
        not isinstance(amount, Decimal) or not amount.is_finite() or amount < 0
    ):
        raise InvalidLogError(f"cost must be a Decimal of 0 or more, not {amount!r}", "cost_nanos")
    if not isinstance(cost.price_version, str) or not cost.price_version:
        raise InvalidLogError("a cost needs the price table's version", field="price_version")
    nanos = None if amount is None else int((amount * NANOS).to_integral_value())
    return {
        "cost_nanos": _in_range(nanos, "cost_nanos"),
        "cost_currency": cost.currency,
        "price_version": cost.price_version,
    }


def _cost(row: Mapping[str, Any]) -> Cost | None:
    version = row.get("price_version")
    if version is None:
        return None
    nanos = row.get("cost_nanos")
    amount = None if nanos is None else Decimal(nanos) / NANOS
    return Cost(amount=amount, currency=row.get("cost_currency"), price_version=version)


def row_to_context(row: Mapping[str, Any]) -> GenerationContext:
    """Map every column of a ``generation_logs`` row back to a context (spec defect 4)."""
    params: dict[str, Any] = {
        n: to_decimal(row[c]) if n in DECIMALS else row[c] for c, n in MODEL.items()
    }
    modules, metadata, failed = (
        row["prompt_modules_used"],
        row["additional_metadata"],
        row["error_type"],
    )
    response = None
    if any(row[c] is not None for c in RESPONSE) or (
        failed is None and any(row[c] is not None for c in SHARED)
    ):
        response = ResponseMetadata(
            **{a: row[c] for c, a in RESPONSE.items()}, **{c: row[c] for c in SHARED}
        )
    error = None
    if failed is not None:
        texts = {a: row[c] for c, a in ERROR.items()}
        error = ErrorContext(
            **{**texts, "message": texts["message"] or ""}, **{c: row[c] for c in SHARED}
        )
    return GenerationContext(
        prompt=PromptContext(
            full_text=row["prompt_full_text"],
            model_params=ModelParameters(**params),
            template_version=row["prompt_template_version"],
            template_name=row["prompt_template_name"],
            modules_used=None if modules is None else _loads(modules, lambda raw: [raw]),
        ),
        id=row["id"],
        definitie_id=row["definitie_id"],
        response=response,
        error=error,
        status=row["generation_status"],
        metadata={} if metadata is None else _loads(metadata, lambda raw: {"unreadable": raw}),
        logged_at=parse_ts(row["logged_at"]),
        updated_at=parse_ts(row["updated_at"]),
        call_id=row["call_id"],
        attempt=row["attempt"],
        endpoint=row["endpoint"],
        request_json=row["request_json"],
        stream=bool(row["stream"]),
        replay_of=row.get("replay_of"),
        cost=_cost(row),
        actor=row.get("actor"),
        session=row.get("session_id"),
    )


def _loads(text: str, unreadable: Callable[[str], Any]) -> Any:
    """A JSON cell; one that is not JSON (written by other SQL) is shown, not fatal."""
    try:
        return json.loads(text)
    except ValueError:
        return unreadable(text)


def _validate_prompt(ctx: GenerationContext) -> None:
    _validate_status(ctx.status)
    if not isinstance(ctx.prompt, PromptContext):
        raise InvalidLogError("context.prompt must be a PromptContext", field="prompt")
    if not isinstance(ctx.prompt.full_text, str):
        raise InvalidLogError("prompt.full_text must be a string", field="prompt_full_text")
    params = ctx.prompt.model_params
    if not isinstance(params.name, str) or not params.name:
        raise InvalidLogError("model_params.name must be a non-empty string", field="model_name")
    for column, low, high in (
        ("model_temperature", 0, 2),
        ("model_top_p", 0, 1),
        ("model_frequency_penalty", -2, 2),
        ("model_presence_penalty", -2, 2),
    ):
        value = getattr(params, MODEL[column])
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (Decimal, int, float)):
            raise InvalidLogError(f"{column} must be a number, not {value!r}", field=column)
        if not low <= value <= high:
            raise InvalidLogError(f"{column} must be between {low} and {high}, not {value}", column)
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


def _check_non_negative(column: str, value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise InvalidLogError(f"{column} must be a non-negative integer, not {value!r}", column)


def _stored(name: str, value: Any) -> Any:
    """A Decimal parameter as the float the column holds; the others as they are."""
    return float(value) if name in DECIMALS and value is not None else value


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
