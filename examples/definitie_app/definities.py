"""The host app's own table: definities, in data/definities.db, beside the audit trail."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS definities (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    begrip TEXT NOT NULL,
    definitie TEXT NOT NULL,
    source_type TEXT NOT NULL DEFAULT 'generated',
    organisatie TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)
"""


@dataclass(frozen=True)
class Definitie:
    """One saved definitie."""

    id: int
    begrip: str
    definitie: str
    source_type: str


class DefinitionRepository:
    """Saves and reads definities (the app's existing repository, unchanged by auditing)."""

    def __init__(self, path: str | Path) -> None:
        """Open (and create) the definities table."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(path, check_same_thread=False)
        self.conn.execute(SCHEMA)
        self.conn.commit()

    def save_definitie(self, data: dict[str, str]) -> int:
        """Insert a definitie and return its id."""
        with self.conn:
            cursor = self.conn.execute(
                "INSERT INTO definities (begrip, definitie, source_type, organisatie) "
                "VALUES (?, ?, ?, ?)",
                (
                    data["begrip"],
                    data["definitie"],
                    data.get("source_type", "generated"),
                    data.get("organisatie"),
                ),
            )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def all(self) -> list[Definitie]:
        """Every definitie, oldest first."""
        rows = self.conn.execute(
            "SELECT id, begrip, definitie, source_type FROM definities ORDER BY id"
        )
        return [Definitie(*row) for row in rows]

    def delete(self, definitie_id: int) -> None:
        """Delete a definitie (its generation logs go with it)."""
        with self.conn:
            self.conn.execute("DELETE FROM definities WHERE id = ?", (definitie_id,))
