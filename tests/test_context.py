"""audit_context: binding, nesting, decorators, tasks, threads and the handle."""

from __future__ import annotations

import asyncio
import contextvars
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest

from audited_openai import AuditedOpenAI, InvalidLogError, audit_context
from audited_openai._context import current_scope
from tests.conftest import async_client, chat_body, rows
from tests.test_schema import DEFINITIES_DDL

if TYPE_CHECKING:
    from pathlib import Path

    import respx

MESSAGES = [{"role": "user", "content": "Definieer 'getuige'."}]


def test_outside_any_context_nothing_is_bound() -> None:
    """With no audit_context the scope is empty."""
    scope = current_scope()
    assert scope.definitie_id is None
    assert scope.template_name is None
    assert scope.handles == ()


def test_nesting_overrides_and_inherits() -> None:
    """Inner values override, the rest is inherited, and the outer scope comes back."""
    with audit_context(1, template_name="t", template_version="1", metadata={"a": 1}):
        with audit_context(template_version="2", modules_used=["base"], metadata={"b": 2}):
            inner = current_scope()
            assert inner.definitie_id == 1
            assert inner.template_name == "t"
            assert inner.template_version == "2"
            assert inner.modules_used == ("base",)
            assert inner.metadata == {"a": 1, "b": 2}
        outer = current_scope()
        assert outer.template_version == "1"
        assert outer.modules_used is None
    assert current_scope().definitie_id is None


def test_the_same_context_object_can_be_reentered() -> None:
    """One audit_context object used twice, nested, restores correctly."""
    ctx = audit_context(template_name="x")
    with ctx, ctx:
        assert current_scope().template_name == "x"
    assert current_scope().template_name is None


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"definitie_id": "456"}, InvalidLogError),
        ({"definitie_id": 4.5}, InvalidLogError),
        ({"modules_used": "base"}, TypeError),
        ({"modules_used": ["base", 1]}, TypeError),
        ({"metadata": ["x"]}, TypeError),
    ],
)
def test_bad_values_are_refused_where_they_are_written(
    kwargs: dict[str, object], error: type[Exception]
) -> None:
    """A mistake in audit_context fails at once, not later inside a request."""
    with pytest.raises(error):
        audit_context(**kwargs)  # type: ignore[arg-type]


def test_decorator_on_sync_and_async_functions() -> None:
    """As a decorator it binds for each call of sync and async functions."""

    @audit_context(7, template_name="decorated")
    def sync() -> int | None:
        return current_scope().definitie_id

    @audit_context(8)
    async def asynchronous() -> int | None:
        await asyncio.sleep(0)
        return current_scope().definitie_id

    assert sync() == 7
    assert asyncio.run(asynchronous()) == 8
    assert current_scope().definitie_id is None


def test_async_with_and_task_isolation() -> None:
    """Concurrent tasks each see their own context."""

    async def work(definitie_id: int) -> int | None:
        async with audit_context(definitie_id):
            await asyncio.sleep(0.01)
            return current_scope().definitie_id

    async def main() -> list[int | None]:
        return await asyncio.gather(*(work(i) for i in range(20)))

    assert asyncio.run(main()) == list(range(20))


def test_thread_pools_need_copy_context() -> None:
    """A plain thread does not inherit the context; copy_context().run carries it."""
    with audit_context(99), ThreadPoolExecutor(1) as pool:
        plain = pool.submit(lambda: current_scope().definitie_id).result()
        carried = pool.submit(
            contextvars.copy_context().run, lambda: current_scope().definitie_id
        ).result()
    assert plain is None
    assert carried == 99


def test_handle_records_rows_in_order_and_links(
    client: AuditedOpenAI, router: respx.MockRouter, db_path: Path
) -> None:
    """log_ids lists the rows written inside (outer handles too); link() sets definitie_id."""
    router.post("/chat/completions").respond(json=chat_body())
    with audit_context(template_name="t") as outer:
        with audit_context() as inner:
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
    assert inner.log_ids == [1]
    assert outer.log_ids == [1, 2]
    assert outer.last_log_id == 2
    conn = sqlite3.connect(db_path)
    conn.execute(DEFINITIES_DDL)
    conn.execute("INSERT INTO definities VALUES (5, 'getuige', 'd', 'generated')")
    conn.commit()
    outer.link(5)
    assert [r["definitie_id"] for r in rows(db_path)] == [5, 5]


def test_values_are_captured_when_the_call_starts(router: respx.MockRouter, db_path: Path) -> None:
    """A context that changes while a call is in flight does not change its row."""
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow(request: object) -> object:
        import httpx

        started.set()
        await release.wait()
        return httpx.Response(200, json=chat_body())

    router.post("/chat/completions").mock(side_effect=slow)

    async def main() -> None:
        async with async_client(db_path) as client:
            with audit_context(1, template_version="1.0"):
                task = asyncio.create_task(
                    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
                )
                await started.wait()
            with audit_context(2, template_version="9.9"):
                release.set()
                await task

    asyncio.run(main())
    (row,) = rows(db_path)
    assert row["definitie_id"] == 1
    assert row["prompt_template_version"] == "1.0"


def test_empty_handle() -> None:
    """A handle with no rows has no last id and links nothing."""
    with audit_context() as handle:
        pass
    assert handle.log_ids == []
    assert handle.last_log_id is None
    handle.link(3)
