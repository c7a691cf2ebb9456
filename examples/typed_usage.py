"""Type checkers see the SDK's own signatures through the audited clients.

`mypy examples/typed_usage.py` must pass; tests/test_typing.py checks what it reveals.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import openai
    from openai.types.chat import ChatCompletion
    from typing_extensions import reveal_type

    from audited_openai import AsyncAuditedOpenAI, AuditedOpenAI


def sync_call(client: AuditedOpenAI) -> ChatCompletion:
    completion = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hoi"}]
    )
    if TYPE_CHECKING:
        reveal_type(completion)
        reveal_type(client.with_options(timeout=3))
    return completion


async def async_call(client: AsyncAuditedOpenAI) -> ChatCompletion:
    completion = await client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hoi"}]
    )
    if TYPE_CHECKING:
        reveal_type(completion)
    return completion


def stream_call(client: AuditedOpenAI) -> str:
    stream = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hoi"}], stream=True
    )
    if TYPE_CHECKING:
        reveal_type(stream)
    return "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)


def is_openai(client: AuditedOpenAI) -> openai.OpenAI:
    return client
