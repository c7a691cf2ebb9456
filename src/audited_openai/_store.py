"""The interface the clients need from a store of generation logs.

:class:`~audited_openai.GenerationLogRepository` implements it over SQLite; a
PostgreSQL store would implement the same methods.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from concurrent.futures import Future

    from audited_openai._models import GenerationContext


@runtime_checkable
class LogStore(Protocol):
    """Where audited clients write: create ahead, complete once, link, import spools."""

    @property
    def path(self) -> str:
        """Where the store lives (a file path or a URL without credentials)."""
        ...

    def create_pending_log(self, context: GenerationContext) -> int:
        """Commit a pending row durably and return its id."""
        ...

    def complete(
        self, log_id: int, context: GenerationContext, *, only_pending: bool = False
    ) -> bool:
        """Write the outcome of a row; with ``only_pending`` leave completed rows alone."""
        ...

    def insert_log(self, context: GenerationContext) -> int:
        """Insert a row in whatever state it is (a failure before the request left)."""
        ...

    def link_to_definitie(self, log_id: int, definitie_id: int) -> None:
        """Link a row to a definitie."""
        ...


@runtime_checkable
class QueueingLogStore(LogStore, Protocol):
    """A store that can also queue the two writes of a call without blocking.

    Async clients use these when a store has them: the event loop waits on the
    futures, and no thread is tied up per write. Bad input raises at once.
    """

    def submit_pending_log(self, context: GenerationContext) -> Future[int]:
        """Queue :meth:`create_pending_log`; the future gives the id once committed."""
        ...

    def submit_complete(
        self, log_id: int, context: GenerationContext, *, only_pending: bool = False
    ) -> Future[bool]:
        """Queue :meth:`complete`; the future gives its result once committed."""
        ...
