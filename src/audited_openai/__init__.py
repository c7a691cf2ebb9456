"""audited_openai: every call to an OpenAI model leaves a durable, queryable row.

Drop-in clients write a ``pending`` row with the full prompt before each request
leaves and complete it afterwards; :class:`GenerationLogRepository` reads and
writes the ``generation_logs`` table of the DEF-151 specification.
"""

from __future__ import annotations

from audited_openai._client import (
    AsyncAuditedAzureOpenAI,
    AsyncAuditedOpenAI,
    AuditedAzureOpenAI,
    AuditedOpenAI,
)
from audited_openai._context import AuditHandle, audit_context
from audited_openai._errors import (
    AuditedOpenAIError,
    AuditWriteError,
    InvalidLogError,
    LogNotFoundError,
    SchemaVersionError,
    StoreError,
)
from audited_openai._models import (
    ErrorContext,
    GenerationContext,
    ModelParameters,
    PromptContext,
    ResponseMetadata,
)
from audited_openai._otel import flush as flush_telemetry
from audited_openai._repository import GenerationLogRepository
from audited_openai._review import Review

__all__ = [
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
