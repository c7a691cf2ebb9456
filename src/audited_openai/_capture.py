"""Translate what goes over the wire into the project's data classes.

Everything here works on the bytes of the request and on the decoded JSON of the
response (or of each event of a stream), never on SDK objects.

The prompt of a chat request is stored as follows (``prompt_full_text``):

* one message, from the user, with text content: that text, verbatim;
* otherwise every message in order, each as a header line ``[role]`` (``[role name]``
  when the message has a name) followed by its text; parts that are not text become
  ``[image_url: URL]``, ``[file: NAME]`` or ``[TYPE]``; tool calls become
  ``[tool_call ID] NAME(ARGUMENTS)``; messages are separated by one blank line.

A Responses API request renders ``instructions`` as a ``[instructions]`` message
followed by ``input`` (a plain string input alone is stored verbatim).
"""

from __future__ import annotations

import json
import traceback
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from audited_openai._clock import monotonic_ms
from audited_openai._models import ErrorContext, ModelParameters, ResponseMetadata

MISSING_MODEL = "(not sent)"


def parse_body(content: bytes | None) -> Any:
    """Decode a JSON request body (None when there is none or it is not JSON)."""
    if not content:
        return None
    try:
        return json.loads(content)
    except ValueError:
        return None


def safe_json(value: Any) -> str:
    """Serialise anything: values JSON cannot hold become their ``repr``."""
    return json.dumps(value, ensure_ascii=False, default=repr)


def prompt_text(endpoint: str, body: Any) -> str:
    """Return the prompt of a request body, as documented in this module."""
    if not isinstance(body, dict):
        return "" if body is None else safe_json(body)
    if endpoint == "responses":
        return _responses_prompt(body)
    messages = body.get("messages")
    if not isinstance(messages, list):
        return safe_json(messages)
    return render_messages(messages)


def render_messages(messages: list[Any]) -> str:
    """Render chat messages deterministically (one user text message: verbatim)."""
    if (
        len(messages) == 1
        and isinstance(messages[0], dict)
        and messages[0].get("role") == "user"
        and isinstance(messages[0].get("content"), str)
    ):
        return str(messages[0]["content"])
    return "\n\n".join(_render_message(message) for message in messages)


def _render_message(message: Any) -> str:
    if not isinstance(message, dict):
        return safe_json(message)
    header = f"[{message.get('role', '?')}"
    if message.get("name"):
        header += f" {message['name']}"
    if message.get("tool_call_id"):
        header += f" {message['tool_call_id']}"
    lines = [header + "]"]
    text = _content_text(message.get("content"))
    if text:
        lines.append(text)
    lines.extend(_tool_call_lines(message.get("tool_calls")))
    return "\n".join(lines)


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return safe_json(content)
    return "\n".join(_part_text(part) for part in content)


def _part_text(part: Any) -> str:
    if not isinstance(part, dict):
        return safe_json(part)
    kind = part.get("type")
    if kind in ("text", "input_text", "output_text") and isinstance(part.get("text"), str):
        return str(part["text"])
    if kind == "refusal":
        return f"[refusal] {part.get('refusal', '')}"
    if kind in ("image_url", "input_image"):
        url = part.get("image_url")
        if isinstance(url, dict):
            url = url.get("url")
        return f"[{kind}: {url}]"
    if kind in ("file", "input_file"):
        file = part["file"] if isinstance(part.get("file"), dict) else part
        name = file.get("filename") or file.get("file_id") or ""
        return f"[{kind}: {name}]"
    return f"[{kind}]"


def _tool_call_lines(tool_calls: Any) -> list[str]:
    if not isinstance(tool_calls, list):
        return []
    return [
        f"[tool_call {_get(call, 'id') or ''}] "
        f"{_get(call, 'function', 'name') or ''}({_get(call, 'function', 'arguments') or ''})"
        for call in tool_calls
    ]


def _responses_prompt(body: dict[str, Any]) -> str:
    instructions = body.get("instructions")
    items = body.get("input")
    if isinstance(items, str) and not instructions:
        return items
    messages: list[Any] = []
    if instructions:
        messages.append({"role": "instructions", "content": instructions})
    if isinstance(items, str):
        messages.append({"role": "user", "content": items})
    elif isinstance(items, list):
        messages.extend(_responses_item(item) for item in items)
    return "\n\n".join(_render_message(message) for message in messages)


def _responses_item(item: Any) -> Any:
    if isinstance(item, dict) and "role" not in item and item.get("type"):
        return {"role": item["type"], "content": item.get("output") or item.get("arguments")}
    return item


def model_parameters(endpoint: str, body: Any) -> ModelParameters:
    """Return the model parameters as sent; values outside a column's range stay None.

    The exact values are always in ``request_json``; a column only holds a value the
    schema accepts (so a request the API will reject still gets its row).
    """
    if not isinstance(body, dict):
        return ModelParameters(MISSING_MODEL)
    model = body.get("model")
    token_keys: tuple[str, ...] = ("max_output_tokens",) if endpoint == "responses" else ()
    token_keys += ("max_tokens", "max_completion_tokens")
    max_tokens = next((body[k] for k in token_keys if body.get(k) is not None), None)
    return ModelParameters(
        name=model if isinstance(model, str) and model else MISSING_MODEL,
        temperature=_decimal(body.get("temperature"), 0, 2),
        max_tokens=max_tokens if _is_count(max_tokens) else None,
        top_p=_decimal(body.get("top_p"), 0, 1),
        frequency_penalty=_decimal(body.get("frequency_penalty"), -2, 2),
        presence_penalty=_decimal(body.get("presence_penalty"), -2, 2),
    )


def _decimal(value: Any, low: int, high: int) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not low <= value <= high:
        return None
    return Decimal(repr(float(value)))


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _get(obj: Any, *path: str) -> Any:
    for name in path:
        if obj is None:
            return None
        obj = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
    return obj


def _count(value: Any) -> int | None:
    return value if _is_count(value) else None


def chat_response(completion: Any) -> ResponseMetadata:
    """Read usage, ids and content from a ChatCompletion (or its parsed variant)."""
    choices = _get(completion, "choices") or []
    reasons = [_get(c, "finish_reason") for c in choices]
    texts = [_choice_text(_get(c, "message")) for c in choices]
    created = _get(completion, "created")
    return ResponseMetadata(
        tokens_prompt=_count(_get(completion, "usage", "prompt_tokens")),
        tokens_completion=_count(_get(completion, "usage", "completion_tokens")),
        tokens_total=_count(_get(completion, "usage", "total_tokens")),
        tokens_cached=_count(_get(completion, "usage", "prompt_tokens_details", "cached_tokens")),
        tokens_reasoning=_count(
            _get(completion, "usage", "completion_tokens_details", "reasoning_tokens")
        ),
        finish_reason=join_reasons(reasons),
        response_id=_get(completion, "id"),
        created_at=int(created) if isinstance(created, (int, float)) else None,
        response_model=_get(completion, "model"),
        system_fingerprint=_get(completion, "system_fingerprint"),
        content=join_choices(texts),
    )


def _choice_text(message: Any) -> str | None:
    if message is None:
        return None
    lines = []
    content = _get(message, "content")
    if content:
        lines.append(str(content))
    refusal = _get(message, "refusal")
    if refusal:
        lines.append(f"[refusal] {refusal}")
    lines.extend(_tool_call_lines(_get(message, "tool_calls")))
    return "\n".join(lines) if lines else None


def join_choices(texts: list[str | None]) -> str | None:
    """One choice: its text. Several: ``[choice N]`` sections, in index order."""
    if not texts:
        return None
    if len(texts) == 1:
        return texts[0]
    return "\n\n".join(f"[choice {i}]\n{text or ''}" for i, text in enumerate(texts))


def join_reasons(reasons: list[Any]) -> str | None:
    """The finish reasons of the choices, distinct, in order, comma-separated."""
    distinct = [r for i, r in enumerate(reasons) if r and r not in reasons[:i]]
    return ",".join(distinct) if distinct else None


def responses_response(response: Any) -> ResponseMetadata:
    """Read usage, status, ids and output text from a Responses API ``Response``."""
    created = _get(response, "created_at")
    status = _get(response, "status")
    reason = _get(response, "incomplete_details", "reason")
    return ResponseMetadata(
        tokens_prompt=_count(_get(response, "usage", "input_tokens")),
        tokens_completion=_count(_get(response, "usage", "output_tokens")),
        tokens_total=_count(_get(response, "usage", "total_tokens")),
        tokens_cached=_count(_get(response, "usage", "input_tokens_details", "cached_tokens")),
        tokens_reasoning=_count(
            _get(response, "usage", "output_tokens_details", "reasoning_tokens")
        ),
        finish_reason=f"{status}:{reason}" if reason else status,
        response_id=_get(response, "id"),
        created_at=int(created) if isinstance(created, (int, float)) else None,
        response_model=_get(response, "model"),
        content=responses_text(response),
    )


def responses_text(response: Any) -> str | None:
    """The output text of a Response (as the SDK's ``output_text``), then refusals and calls."""
    texts: list[str] = []
    extra: list[str] = []
    for item in _get(response, "output") or []:
        for part in _get(item, "content") or []:
            kind = _get(part, "type")
            if kind == "output_text":
                texts.append(str(_get(part, "text") or ""))
            elif kind == "refusal":
                extra.append(f"[refusal] {_get(part, 'refusal') or ''}")
        if _get(item, "type") == "function_call":
            extra.append(
                f"[tool_call {_get(item, 'call_id') or ''}] "
                f"{_get(item, 'name') or ''}({_get(item, 'arguments') or ''})"
            )
    parts = (["".join(texts)] if texts else []) + extra
    return "\n".join(parts) if parts else None


def any_response(endpoint: str, body: Any) -> ResponseMetadata:
    """Metadata of a decoded JSON response body (empty when it is not one)."""
    if not isinstance(body, dict):
        return ResponseMetadata()
    return responses_response(body) if endpoint == "responses" else chat_response(body)


def error_context(
    exc: BaseException, *, error_type: str | None = None, message: str | None = None
) -> ErrorContext:
    """Describe an exception: its class (or the SDK's name for it), message and traceback."""
    return ErrorContext(
        message=message or str(exc) or type(exc).__name__,
        error_type=error_type or type(exc).__name__,
        traceback="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    )


def where_raised(exc: BaseException) -> str:
    """A traceback for an exception made, not raised, here: the caller's stack, then it."""
    stack = traceback.format_stack()[:-2]  # up to the frame that made it
    return "Traceback (most recent call last):\n" + "".join(
        [*stack, *traceback.format_exception_only(type(exc), exc)]
    )


# -- streams --------------------------------------------------------------------------------


@dataclass
class _ToolCall:
    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass
class Accumulator:
    """Everything a stream has said so far, per choice index, from its decoded events."""

    endpoint: str
    started_ms: float | None
    texts: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    refusals: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    tools: dict[int, dict[int, _ToolCall]] = field(default_factory=lambda: defaultdict(dict))
    reasons: dict[int, str] = field(default_factory=dict)
    first_content_ms: float | None = None
    head: Any = None
    usage: Any = None
    final: ResponseMetadata | None = None
    error: Any = None  # an error event: the stream failed
    done: bool = False  # [DONE] arrived

    def add(self, data: str) -> None:
        """Take the data of one event: a chat chunk or a Responses API event, as JSON."""
        if data.startswith("[DONE]"):
            self.done = True
            return
        item = parse_body(data.encode())
        if not isinstance(item, dict):
            return
        if item.get("error"):
            self.error = item["error"]
        elif self.endpoint == "responses":
            self._add_event(item)
        else:
            self._add_chunk(item)

    def _add_chunk(self, chunk: dict[str, Any]) -> None:
        if self.head is None:
            self.head = chunk
        if chunk.get("usage") is not None:
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            index = choice.get("index") or 0
            if isinstance(choice.get("delta"), dict):
                self._add_delta(index, choice["delta"])
            if choice.get("finish_reason"):
                self.reasons[index] = choice["finish_reason"]

    def _add_delta(self, index: int, delta: dict[str, Any]) -> None:
        if delta.get("content"):
            self._seen_content()
            self.texts[index].append(str(delta["content"]))
        if delta.get("refusal"):
            self._seen_content()
            self.refusals[index].append(str(delta["refusal"]))
        for call in delta.get("tool_calls") or []:
            self._seen_content()
            entry = self.tools[index].setdefault(_get(call, "index") or 0, _ToolCall())
            entry.id = _get(call, "id") or entry.id
            entry.name += _get(call, "function", "name") or ""
            entry.arguments += _get(call, "function", "arguments") or ""

    def _add_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type", "")
        if kind == "response.output_text.delta":
            self._seen_content()
            self.texts[0].append(str(event.get("delta") or ""))
        elif kind == "response.refusal.delta":
            self._seen_content()
            self.refusals[0].append(str(event.get("delta") or ""))
        elif kind in ("response.completed", "response.incomplete", "response.failed") and (
            isinstance(event.get("response"), dict)
        ):
            self.final = responses_response(event["response"])

    def complete(self) -> bool:
        """True once the model has finished every choice it started."""
        if self.endpoint == "responses":
            return self.final is not None
        started = set(self.texts) | set(self.refusals) | set(self.tools)
        return self.done or (bool(self.reasons) and started <= set(self.reasons))

    def _seen_content(self) -> None:
        if self.first_content_ms is None:
            self.first_content_ms = monotonic_ms()

    def metadata(self) -> ResponseMetadata:
        """What was received, as response metadata (usage only if it came)."""
        ttft = None
        if self.first_content_ms is not None and self.started_ms is not None:
            ttft = max(0, round(self.first_content_ms - self.started_ms))
        if self.final is not None:
            self.final.ttft_ms = ttft
            return self.final
        indexes = sorted(set(self.texts) | set(self.refusals) | set(self.tools) | set(self.reasons))
        meta = chat_response({**(self.head or {}), "choices": [], "usage": self.usage})
        meta.finish_reason = join_reasons([self.reasons.get(i) for i in indexes])
        meta.content = join_choices([self._choice_text(i) for i in indexes])
        meta.ttft_ms = ttft
        return meta

    def _choice_text(self, index: int) -> str | None:
        lines = []
        if self.texts.get(index):
            lines.append("".join(self.texts[index]))
        if self.refusals.get(index):
            lines.append("[refusal] " + "".join(self.refusals[index]))
        lines.extend(
            f"[tool_call {call.id}] {call.name}({call.arguments})"
            for call in (self.tools.get(index) or {}).values()
        )
        return "\n".join(lines) if lines else None
