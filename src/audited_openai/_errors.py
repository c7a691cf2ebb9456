"""The exceptions of audited_openai.

The caller's own OpenAI exceptions (``openai.RateLimitError`` and friends) always
propagate unchanged; these are only raised for problems of the audit trail itself::

    AuditedOpenAIError
    ├── StoreError             the store cannot be used: missing, unreadable, unreachable
    │   ├── AuditWriteError    a row could not be committed (under "raise": nothing was sent)
    │   └── SchemaVersionError the database was written by a newer audited_openai
    ├── InvalidLogError        bad input to the repository (also a ValueError)
    └── LogNotFoundError       no row with that id (also a LookupError)

None of them is an ``openai.OpenAIError``: an audit problem never looks like an API error.
"""

from __future__ import annotations


class AuditedOpenAIError(Exception):
    """Base class of every error raised by audited_openai itself."""


class StoreError(AuditedOpenAIError):
    """The audit store cannot be used; the cause is chained."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        """Describe the problem; ``path`` names the database (never with a password)."""
        super().__init__(message)
        self.path = path


class AuditWriteError(StoreError):
    """A row could not be committed to the audit store; the cause is chained."""


class InvalidLogError(AuditedOpenAIError, ValueError):
    """A value given to the repository is not valid; nothing was written."""

    def __init__(self, message: str, field: str | None = None) -> None:
        """Describe the bad value; ``field`` names it."""
        super().__init__(message)
        self.field = field


class LogNotFoundError(AuditedOpenAIError, LookupError):
    """No generation log has the given id; nothing was written."""

    def __init__(self, log_id: int) -> None:
        """Name the id that was not found."""
        super().__init__(f"no generation log with id {log_id}")
        self.log_id = log_id


class SchemaVersionError(StoreError):
    """The database's schema is newer than this version of audited_openai knows."""

    def __init__(self, *, found: int, supported: int, path: str | None = None) -> None:
        """Record the version found and the newest this library supports."""
        where = f" {path}" if path else ""
        super().__init__(
            f"database{where} has schema version {found}, but this audited_openai "
            f"supports up to {supported}; upgrade audited_openai to open it",
            path=path,
        )
        self.found = found
        self.supported = supported
