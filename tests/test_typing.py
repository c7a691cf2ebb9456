"""Type checkers still see the SDK's signatures and return types through the clients."""

from __future__ import annotations

from pathlib import Path

from mypy import api

EXAMPLE = Path(__file__).parent.parent / "examples" / "typed_usage.py"


def test_mypy_sees_the_sdk_types() -> None:
    """mypy --strict passes on the example and reveals the SDK's own return types."""
    stdout, stderr, status = api.run(["--strict", "--no-incremental", str(EXAMPLE)])
    assert status == 0, stdout + stderr
    revealed = [
        line.split("Revealed type is ")[1] for line in stdout.splitlines() if "Revealed" in line
    ]
    assert revealed == [
        '"openai.types.chat.chat_completion.ChatCompletion"',
        '"audited_openai._client.AuditedOpenAI"',
        '"openai.types.chat.chat_completion.ChatCompletion"',
        '"openai._streaming.Stream[openai.types.chat.chat_completion_chunk.ChatCompletionChunk]"',
    ]
