"""Shared fixtures: a database path, a repository, and a clean audit context."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from typing import TYPE_CHECKING

import httpx
import pytest
import respx

from audited_openai import (
    AsyncAuditedOpenAI,
    AuditedOpenAI,
    GenerationContext,
    GenerationLogRepository,
    ModelParameters,
    PromptContext,
    _context,
    _writer,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A path for a fresh database file."""
    return tmp_path / "audit.db"


@pytest.fixture
def repo(db_path: Path) -> Iterator[GenerationLogRepository]:
    """A repository over a fresh database file."""
    repository = GenerationLogRepository(db_path)
    yield repository
    repository.close()


def make_context(**overrides: object) -> GenerationContext:
    """A pending context with a realistic prompt; keywords override fields."""
    params = ModelParameters(
        name="gpt-4-turbo-2024-04-09",
        temperature=Decimal("0.7"),
        max_tokens=2000,
        top_p=Decimal("1.0"),
        frequency_penalty=Decimal("0.0"),
        presence_penalty=Decimal("0.0"),
    )
    prompt = PromptContext(
        full_text="# DEFINITIE GENERATIE\n\nGenereer een definitie voor 'verdachte'.",
        model_params=params,
        template_version="2.0",
        template_name="unified_definition_v2",
        modules_used=["base", "context", "examples", "rules"],
    )
    ctx = GenerationContext(prompt=prompt)
    for key, value in overrides.items():
        setattr(ctx, key, value)
    return ctx


# -- the SDK over respx ------------------------------------------------------------

BASE_URL = "https://api.openai.test/v1"
API_KEY = "sk-canary-" + "7f3a9c1e5b" * 3


def chat_body(content: str = "Een verdachte is ...", **overrides: object) -> dict[str, object]:
    """A chat.completion body as the API returns it."""
    body: dict[str, object] = {
        "id": "chatcmpl-AbCdEf123456",
        "object": "chat.completion",
        "created": 1731335025,
        "model": "gpt-4o-2024-08-06",
        "system_fingerprint": "fp_abc123",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 1234,
            "completion_tokens": 567,
            "total_tokens": 1801,
            "prompt_tokens_details": {"cached_tokens": 1024},
            "completion_tokens_details": {"reasoning_tokens": 7},
        },
    }
    body.update(overrides)
    return body


def rows(path: Path | str) -> list[dict[str, object]]:
    """Every row of generation_logs, through a connection of its own, oldest first.

    This process's queued writes are committed first, as a read through the library
    would see them.
    """
    _writer.flush_all()
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        if not conn.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'generation_logs'"
        ).fetchone():
            return []
        return [dict(r) for r in conn.execute("SELECT * FROM generation_logs ORDER BY id")]
    finally:
        conn.close()


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    """A respx router for the test base URL; unmatched requests fail the test."""
    with respx.mock(base_url=BASE_URL, assert_all_called=False) as mock:
        yield mock


@pytest.fixture
def client(db_path: Path, router: respx.MockRouter) -> Iterator[AuditedOpenAI]:
    """An audited sync client over respx, writing to ``db_path``."""
    with AuditedOpenAI(
        db_path, api_key=API_KEY, base_url=BASE_URL, http_client=httpx.Client()
    ) as audited:
        yield audited


def async_client(db_path: Path | object, **kwargs: object) -> AsyncAuditedOpenAI:
    """An audited async client over respx (create it inside the running loop)."""
    return AsyncAuditedOpenAI(
        db_path,
        api_key=API_KEY,
        base_url=BASE_URL,
        http_client=httpx.AsyncClient(),
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture(autouse=True)
def _reset_audit_context() -> Iterator[None]:
    """Every test starts outside any audit_context."""
    token = _context._SCOPE.set(_context.AuditScope())
    yield
    _context._SCOPE.reset(token)
