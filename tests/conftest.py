"""Shared fixtures: a database path, a repository, and a clean audit context."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from audited_openai import (
    GenerationContext,
    GenerationLogRepository,
    ModelParameters,
    PromptContext,
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
