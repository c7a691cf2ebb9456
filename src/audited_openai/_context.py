"""``audit_context``: bind a definitie and its prompt template to the calls inside.

Built on :mod:`contextvars`, so it follows asyncio tasks and nests: inner values
override, the rest is inherited. Values are captured when a call starts. A thread
pool does not inherit context by itself; submit work with
``contextvars.copy_context().run`` (see docs/quickstart.md).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from contextvars import ContextVar, Token
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

from audited_openai._errors import InvalidLogError
from audited_openai._rows import validate_definitie_id, validate_who

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import TracebackType

    from audited_openai._repository import GenerationLogRepository
    from audited_openai._review import Review, Verdict

F = TypeVar("F", bound="Callable[..., Any]")


@dataclass(frozen=True)
class AuditScope:
    """The values bound by the innermost ``audit_context`` (merged with outer ones)."""

    definitie_id: int | None = None
    template_name: str | None = None
    template_version: str | None = None
    modules_used: tuple[str, ...] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    actor: str | None = None
    session: str | None = None
    handles: tuple[AuditHandle, ...] = ()
    replay_of: int | None = None  # set by query.replay: the row whose request is sent again


_SCOPE: ContextVar[AuditScope] = ContextVar("audited_openai_scope", default=AuditScope())  # noqa: B039 - frozen


def current_scope() -> AuditScope:
    """Return the scope in force now (captured by a call when it starts)."""
    return _SCOPE.get()


class AuditHandle:
    """What an ``audit_context`` yields: the rows written inside it, ``link`` and ``review``."""

    def __init__(self) -> None:
        """Start with no rows."""
        self._rows: list[tuple[GenerationLogRepository, int]] = []

    @property
    def log_ids(self) -> list[int]:
        """The ids of the rows written inside the context, in order."""
        return [log_id for _, log_id in self._rows]

    @property
    def last_log_id(self) -> int | None:
        """The id of the latest row written inside the context, or None."""
        return self._rows[-1][1] if self._rows else None

    def record(self, store: GenerationLogRepository, log_id: int) -> None:
        """Note a row written inside the context (called by the clients)."""
        self._rows.append((store, log_id))

    def link(self, definitie_id: int) -> None:
        """Link every row written inside the context to a definitie saved afterwards."""
        definitie_id = validate_definitie_id(definitie_id)  # type: ignore[assignment]
        for store, log_id in self._rows:
            store.link_to_definitie(log_id, definitie_id)

    def review(
        self,
        verdict: Verdict,
        *,
        reviewer: str,
        note: str | None = None,
        edited_text: str | None = None,
    ) -> Review:
        """Record a review of the latest row written inside the context.

        See :meth:`GenerationLogRepository.record_review`; the row must be linked to
        its definitie.
        """
        if not self._rows:
            raise InvalidLogError("nothing was generated inside this context to review")
        store, log_id = self._rows[-1]
        store.flush()
        definitie_id = store.get(log_id).definitie_id
        if definitie_id is None:
            raise InvalidLogError(
                f"log {log_id} is not linked to a definitie yet: link it, then review",
                "definitie_id",
            )
        return store.record_review(
            definitie_id,
            verdict,
            reviewer=reviewer,
            note=note,
            edited_text=edited_text,
            log_id=log_id,
        )


class audit_context:  # noqa: N801 - used like a function, as contextlib's helpers are
    """Bind a definitie and its prompt template to the audited calls made inside.

    Use as ``with audit_context(456, template_name=...) as audit:`` (``audit.log_ids``,
    ``audit.link(id)``), ``async with``, or as a decorator on sync or async functions.
    ``actor`` is who asked (a person or a service, as the app names them: an employee
    number rather than a name), ``session`` the working session; both are stored on
    every row, redacted like the prompt, and override the client's ``actor=``.
    """

    def __init__(
        self,
        definitie_id: int | None = None,
        *,
        template_name: str | None = None,
        template_version: str | None = None,
        modules_used: list[str] | tuple[str, ...] | None = None,
        metadata: dict[str, Any] | None = None,
        actor: str | None = None,
        session: str | None = None,
    ) -> None:
        """Validate the values now, so a mistake shows where it is made."""
        self.definitie_id = validate_definitie_id(definitie_id)
        self.actor = validate_who(actor, "actor")
        self.session = validate_who(session, "session")
        if modules_used is not None and (
            isinstance(modules_used, str) or not all(isinstance(m, str) for m in modules_used)
        ):
            raise TypeError("modules_used must be a list of strings")
        if metadata is not None and not isinstance(metadata, dict):
            raise TypeError("metadata must be a dict")
        self.template_name = template_name
        self.template_version = template_version
        self.modules_used = None if modules_used is None else tuple(modules_used)
        self.metadata = metadata
        self._tokens: list[tuple[Token[AuditScope], AuditHandle]] = []

    def __enter__(self) -> AuditHandle:
        """Bind the values; return the handle for this block."""
        outer = _SCOPE.get()
        handle = AuditHandle()
        scope = replace(
            outer,
            definitie_id=_pick(self.definitie_id, outer.definitie_id),
            template_name=_pick(self.template_name, outer.template_name),
            template_version=_pick(self.template_version, outer.template_version),
            modules_used=_pick(self.modules_used, outer.modules_used),
            metadata={**outer.metadata, **(self.metadata or {})},
            actor=_pick(self.actor, outer.actor),
            session=_pick(self.session, outer.session),
            handles=(*outer.handles, handle),
        )
        self._tokens.append((_SCOPE.set(scope), handle))
        return handle

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Restore the outer values."""
        token, _ = self._tokens.pop()
        _SCOPE.reset(token)

    async def __aenter__(self) -> AuditHandle:
        """Bind the values in ``async with``."""
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Restore the outer values."""
        self.__exit__(exc_type, exc, tb)

    def __call__(self, func: F) -> F:
        """Use as a decorator: each call of ``func`` runs inside a fresh context."""
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with self._fresh():
                    return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._fresh():
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    def _fresh(self) -> audit_context:
        return audit_context(
            self.definitie_id,
            template_name=self.template_name,
            template_version=self.template_version,
            modules_used=self.modules_used,
            metadata=self.metadata,
            actor=self.actor,
            session=self.session,
        )


@contextlib.contextmanager
def replaying(log_id: int) -> Iterator[None]:
    """The calls inside send the request of row ``log_id`` again: their rows are replays."""
    token = _SCOPE.set(replace(_SCOPE.get(), replay_of=log_id))
    try:
        yield
    finally:
        _SCOPE.reset(token)


def _pick(inner: Any, outer: Any) -> Any:
    return outer if inner is None else inner
