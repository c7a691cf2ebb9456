"""Translating request bodies and responses into rows: the documented renderings."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from decimal import Decimal

import pytest

from audited_openai import _capture, _clock, _spool, _sqlite_connect


def test_prompt_of_odd_bodies() -> None:
    """Bodies that are not the usual shape still give a deterministic text."""
    assert _capture.prompt_text("chat.completions", None) == ""
    assert _capture.prompt_text("chat.completions", ["x"]) == '["x"]'
    assert _capture.prompt_text("chat.completions", {"messages": "hi"}) == '"hi"'
    assert _capture.render_messages(["odd"]) == '"odd"'


def test_content_parts_render() -> None:
    """Every kind of content part has a documented rendering."""
    message = {
        "role": "user",
        "content": [
            {"type": "input_image", "image_url": "https://x.test/i.png"},
            {"type": "file", "file": {"filename": "wet.pdf"}},
            {"type": "input_file", "file_id": "file_1"},
            {"type": "input_audio", "input_audio": {}},
            {"type": "refusal", "refusal": "nee"},
            "loose",
        ],
    }
    assert _capture.render_messages([message, {"role": "assistant", "content": {"a": 1}}]) == (
        "[user]\n[input_image: https://x.test/i.png]\n[file: wet.pdf]\n[input_file: file_1]\n"
        '[input_audio]\n[refusal] nee\n"loose"\n\n[assistant]\n{"a": 1}'
    )


def test_responses_prompts() -> None:
    """Responses input: a lone string verbatim, else instructions and items rendered."""
    assert _capture.prompt_text("responses", {"input": "hallo"}) == "hallo"
    body = {
        "instructions": "Wees kort.",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "Wat is een getuige?"}]},
            {"type": "function_call_output", "call_id": "c1", "output": "art. 27"},
        ],
    }
    assert _capture.prompt_text("responses", body) == (
        "[instructions]\nWees kort.\n\n[user]\nWat is een getuige?\n\n[function_call_output]\nart. 27"
    )
    assert _capture.prompt_text("responses", {"instructions": "i", "input": "x"}) == (
        "[instructions]\ni\n\n[user]\nx"
    )


def test_model_parameters_as_sent() -> None:
    """Only values that were sent, and that fit their column, are kept."""
    params = _capture.model_parameters(
        "responses",
        {
            "model": "gpt-4.1",
            "temperature": 0.7,
            "top_p": 3,
            "max_output_tokens": 99,
            "frequency_penalty": True,
            "presence_penalty": -2,
        },
    )
    assert params.name == "gpt-4.1"
    assert params.temperature == Decimal("0.7")
    assert params.top_p is None
    assert params.max_tokens == 99
    assert params.frequency_penalty is None
    assert params.presence_penalty == Decimal("-2.0")
    assert _capture.model_parameters("chat.completions", None).name == "(not sent)"
    assert (
        _capture.model_parameters("chat.completions", {"max_completion_tokens": -1}).max_tokens
        is None
    )


def test_parse_body_and_safe_json() -> None:
    """Bodies that are not JSON give None; safe_json never fails."""
    assert _capture.parse_body(b"") is None
    assert _capture.parse_body(b"{nope") is None
    assert _capture.safe_json({"x": object}).startswith('{"x": "<class')


def test_responses_text_with_refusals_and_calls() -> None:
    """Output text, then refusals and function calls, each marked."""
    response = {
        "output": [
            {
                "type": "message",
                "content": [
                    {"type": "output_text", "text": "Een "},
                    {"type": "output_text", "text": "getuige"},
                ],
            },
            {"type": "message", "content": [{"type": "refusal", "refusal": "nee"}]},
            {"type": "function_call", "call_id": "c1", "name": "zoek", "arguments": "{}"},
        ]
    }
    assert (
        _capture.responses_text(response) == "Een getuige\n[refusal] nee\n[tool_call c1] zoek({})"
    )
    assert _capture.responses_text({"output": []}) is None
    meta = _capture.responses_response(
        {"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}
    )
    assert meta.finish_reason == "incomplete:max_output_tokens"


def test_chat_response_without_choices_or_usage() -> None:
    """A bare completion gives empty metadata instead of an error."""
    meta = _capture.chat_response({"id": "x", "choices": [{"message": None}], "created": "later"})
    assert meta.content is None
    assert meta.created_at is None
    assert meta.tokens_total is None
    assert _capture.join_choices([]) is None


def test_timestamps_are_one_utc_format() -> None:
    """Naive datetimes are refused; stored text parses back to the same instant."""
    with pytest.raises(ValueError, match="naive"):
        _clock.format_ts(datetime(2025, 1, 1))  # noqa: DTZ001 - the bad input
    now = _clock.utc_now()
    assert _clock.parse_ts(_clock.format_ts(now)) == now


def test_retry_locked_gives_up_and_passes_other_errors() -> None:
    """Journal-mode retries stop at the deadline, and other errors pass at once."""
    calls = []

    def locked() -> None:
        calls.append(1)
        raise sqlite3.OperationalError("database is locked")

    with pytest.raises(sqlite3.OperationalError, match="locked"):
        _sqlite_connect.retry_busy(locked, timeout_s=0.02)
    assert len(calls) > 1

    def broken() -> None:
        raise sqlite3.OperationalError("disk I/O error")

    with pytest.raises(sqlite3.OperationalError, match="disk"):
        _sqlite_connect.retry_busy(broken, timeout_s=1)


def test_spool_paths() -> None:
    """The spool lives beside the file; an in-memory database has none."""
    assert _spool.spool_path(":memory:") is None
    assert str(_spool.spool_path("file:/data/a.db?mode=ro")) == "/data/a.db.spool.jsonl"


# -- what the mutants of _capture showed untested --------------------------------------------------


def test_every_kind_of_part_renders_as_documented() -> None:
    """Text parts of every kind verbatim; a part whose type is not text (or has none) is
    named, even when it carries a text; a refusal, a file or a message with pieces missing
    still renders the same way every time."""
    parts = [
        {"type": "text", "text": "a"},
        {"type": "input_text", "text": "b"},
        {"type": "output_text", "text": "c"},
        {"text": "no type"},
        {"type": "text", "text": 7},
        {"type": "refusal"},
        {"type": "file", "file": {}},
    ]
    assert _capture.render_messages([{"content": parts}]) == (
        "[?]\na\nb\nc\n[None]\n[text]\n[refusal] \n[file: ]"
    )


def test_responses_items_render_as_documented() -> None:
    """An item with a role is a message; one without (a function call or its output) is
    headed by its type, with its output or else its arguments."""
    body = {
        "input": [
            {"type": "message", "role": "user", "content": "vraag"},
            {"type": "function_call", "call_id": "c1", "name": "zoek", "arguments": '{"q":1}'},
            {"type": "function_call_output", "call_id": "c1", "output": "art. 27"},
        ]
    }
    assert _capture.prompt_text("responses", body) == (
        '[user]\nvraag\n\n[function_call]\n{"q":1}\n\n[function_call_output]\nart. 27'
    )


def test_responses_output_with_pieces_missing() -> None:
    """Output text parts joined as the SDK's output_text; refusals and calls after them,
    rendered the same way with their pieces missing."""
    response = {
        "output": [
            {"type": "message", "content": [{"type": "output_text", "text": None}]},
            {"type": "message", "content": [{"type": "output_text", "text": "ja"}]},
            {"type": "message", "content": [{"type": "refusal"}]},
            {"type": "function_call"},
        ]
    }
    assert _capture.responses_text(response) == "ja\n[refusal] \n[tool_call ] ()"


def test_json_of_odd_bodies_keeps_non_ascii_text() -> None:
    """What is stored as JSON keeps its text as written ('é', not '\\u00e9')."""
    assert _capture.prompt_text("chat.completions", {"messages": {"begrip": "privé"}}) == (
        '{"begrip": "privé"}'
    )


def _boom() -> None:
    raise ValueError("boom")


def _raised() -> ValueError:
    try:
        _boom()
    except ValueError as exc:
        return exc
    raise AssertionError  # pragma: no cover


def _made_in_a_helper() -> str:
    return _capture.where_raised(ValueError("made, not raised"))


def test_an_error_keeps_its_class_message_and_where_it_was_raised() -> None:
    """The traceback is the exception's own, down to the frame that raised it; a
    message-less exception is named by its class. One made, not raised (an HTTP error
    the SDK turns into its exception), gets the stack of the one who asked for it."""
    error = _capture.error_context(_raised())
    assert (error.message, error.error_type) == ("boom", "ValueError")
    assert error.traceback is not None
    assert error.traceback.startswith("Traceback (most recent call last):\n  File ")
    assert "in _boom\n" in error.traceback
    assert error.traceback.endswith("ValueError: boom\n")
    assert _capture.error_context(ValueError()).message == "ValueError"
    made = _made_in_a_helper()
    assert made.startswith("Traceback (most recent call last):\n")
    assert "in test_an_error_keeps_its_class_message_and_where_it_was_raised\n" in made
    assert "in _made_in_a_helper" not in made
    assert "in where_raised" not in made
    assert made.endswith("ValueError: made, not raised\n")


def _stream(endpoint: str, *events: object) -> _capture.Accumulator:
    acc = _capture.Accumulator(endpoint, started_ms=None)
    for event in events:
        acc.add(event if isinstance(event, str) else json.dumps(event))
    return acc


def test_a_responses_stream_refusal_and_its_end() -> None:
    """A streamed refusal is stored as one; a stream ending incomplete or failed is
    complete with that status."""
    acc = _stream(
        "responses",
        {"type": "response.refusal.delta", "delta": "Dat doe "},
        {"type": "response.refusal.delta", "delta": None},
        {"type": "response.refusal.delta", "delta": "ik niet."},
    )
    assert not acc.complete()
    assert acc.metadata().content == "[refusal] Dat doe ik niet."
    for status in ("incomplete", "failed"):
        final = {"id": "r1", "status": status, "output": []}
        done = _stream("responses", {"type": f"response.{status}", "response": final})
        assert done.complete()
        assert done.metadata().finish_reason == status
    untyped = _stream("responses", {"delta": "x"})
    assert (untyped.complete(), untyped.metadata().content) == (False, None)


def test_stream_tool_calls_by_index_and_malformed_choices() -> None:
    """Tool call deltas are joined per call index (no index: call 0); a malformed choice
    in a chunk does not hide the choices after it; a stream without content has none."""
    first = {"id": "a", "function": {"name": "zoek", "arguments": "{"}}  # no index: call 0
    second = {"index": 1, "id": "b", "function": {"name": "lees"}}
    rest = {"index": 0, "function": {"arguments": "}"}}
    acc = _stream(
        "chat.completions",
        {"choices": [{"index": 0, "delta": {"tool_calls": [first]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [second]}}]},
        {"choices": ["kapot", {"index": 0, "delta": {"tool_calls": [rest]}}]},
    )
    assert acc.metadata().content == "[tool_call a] zoek({})\n[tool_call b] lees()"
    stop = {"index": 0, "delta": {}, "finish_reason": "stop"}
    silent = _stream("chat.completions", {"choices": [stop]})
    assert (silent.metadata().content, silent.metadata().finish_reason) == (None, "stop")
