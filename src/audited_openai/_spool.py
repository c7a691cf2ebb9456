"""The spool: a JSONL file beside the database for rows the store could not take.

Each line is a whole snapshot of one row (``GenerationContext.to_dict()``). Import is
idempotent: a row is known by ``(call_id, attempt)``, inserted when missing and
completed when it is still pending, so importing a line twice changes nothing.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from audited_openai._models import GenerationContext, context_from_dict

if TYPE_CHECKING:
    from collections.abc import Iterator

FILE_MODE = 0o600
_lock = threading.RLock()  # re-entrant: a finalizer may spool in a thread that holds it


def spool_path(db_path: str) -> Path | None:
    """The spool file of a database (None for an in-memory database).

    A SQLite file's lies beside it; a server's (``postgresql://``, no password in the
    name) in ``$AUDITED_OPENAI_SPOOL_DIR``, else the working directory.
    """
    if db_path == ":memory:":
        return None
    if "://" in db_path:
        parts = urlsplit(db_path)
        name = f"{parts.hostname or 'localhost'}_{parts.port or 5432}_{parts.path.strip('/')}"
        folder = Path(os.environ.get("AUDITED_OPENAI_SPOOL_DIR") or ".")
        return folder / f"{name}.spool.jsonl"
    if db_path.startswith("file:"):
        db_path = db_path[len("file:") :].split("?", 1)[0]
    return Path(db_path + ".spool.jsonl")


def append(path: Path, context: GenerationContext) -> None:
    """Append one snapshot as a single write, creating the file 0600."""
    line = (json.dumps(context.to_dict(), ensure_ascii=False, default=repr) + "\n").encode()
    with _lock:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)


def claim(path: Path) -> list[Path]:
    """Move the spool aside for import; include files left by an interrupted import."""
    claimed = sorted(path.parent.glob(path.name + ".importing-*"))
    if path.exists():
        target = path.with_name(f"{path.name}.importing-{os.getpid()}-{len(claimed)}")
        path.rename(target)
        claimed.append(target)
    return claimed


def read(path: Path) -> Iterator[GenerationContext]:
    """Yield the snapshots of a claimed spool file, in order (a torn last line is skipped)."""
    with path.open(encoding="utf-8") as file:
        for line in file:
            if not line.endswith("\n"):
                return  # torn by a crash mid-write: never completed, never acknowledged
            yield context_from_dict(json.loads(line))
