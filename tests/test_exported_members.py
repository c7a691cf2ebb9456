"""The public API is curated: this pins it."""

from __future__ import annotations

import audited_openai
from audited_openai import testing


def test_all_is_pinned_and_sorted() -> None:
    """__all__ lists exactly the public names, sorted."""
    assert audited_openai.__all__ == [
        "AsyncAuditedAzureOpenAI",
        "AsyncAuditedOpenAI",
        "AuditHandle",
        "AuditWriteError",
        "AuditedAzureOpenAI",
        "AuditedOpenAI",
        "AuditedOpenAIError",
        "ErrorContext",
        "GenerationContext",
        "GenerationLogRepository",
        "InvalidLogError",
        "LogNotFoundError",
        "ModelParameters",
        "PromptContext",
        "ResponseMetadata",
        "Review",
        "SchemaVersionError",
        "StoreError",
        "audit_context",
        "flush_telemetry",
    ]
    assert sorted(audited_openai.__all__) == audited_openai.__all__


def test_every_exported_name_exists_and_is_documented() -> None:
    """Each public name resolves and has a docstring."""
    for name in audited_openai.__all__:
        member = getattr(audited_openai, name)
        assert member.__doc__, name
    for name in testing.__all__:
        assert getattr(testing, name).__doc__, name
