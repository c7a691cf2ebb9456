"""The pytest plugin of audited_openai: the ``loopback_openai`` fixture."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from audited_openai.testing import LoopbackServer

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def loopback_openai() -> Iterator[LoopbackServer]:
    """A started OpenAI-compatible server on 127.0.0.1, stopped after the test."""
    with LoopbackServer() as server:
        yield server
