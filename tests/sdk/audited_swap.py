"""A pytest plugin: openai-python's own tests, run with the audited clients in the SDK's place.

Loaded with ``-p audited_swap`` (``tests/sdk/run.py`` does it). It swaps at import, before
the SDK's ``conftest.py`` and test modules do ``from openai import OpenAI, AsyncOpenAI``,
so every client those tests make is an ``AuditedOpenAI`` / ``AsyncAuditedOpenAI``
writing to ``$AUDITED_OPENAI_DB``.
"""

from __future__ import annotations

import openai

from audited_openai import AsyncAuditedOpenAI, AuditedOpenAI

openai.OpenAI = AuditedOpenAI  # type: ignore[misc]
openai.AsyncOpenAI = AsyncAuditedOpenAI  # type: ignore[misc]
