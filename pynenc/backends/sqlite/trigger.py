"""SQLite trigger storage: an event log table and a claims table (unique key insert)."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from pynenc.backends.sqlite.connection import database_for
from pynenc.trigger.base_trigger import BaseTrigger

if TYPE_CHECKING:
    from pynenc.app import Pynenc

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS trigger_events (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
    "app_id TEXT NOT NULL, event_id TEXT NOT NULL, code TEXT NOT NULL, payload BLOB, "
    "ts REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS trigger_claims (app_id TEXT NOT NULL, claim_key TEXT NOT "
    "NULL, PRIMARY KEY (app_id, claim_key))",
)


class SQLiteTrigger(BaseTrigger):
    def __init__(self, app: Pynenc) -> None:
        super().__init__(app)
        self.db = database_for(app)

        def create(conn: sqlite3.Connection) -> None:
            for stmt in _SCHEMA:
                conn.execute(stmt)

        self.db.write(create)

    def store_event(self, event_id: str, code: str, payload: bytes, timestamp: float) -> None:
        self.db.write(
            lambda c: c.execute(
                "INSERT INTO trigger_events (app_id, event_id, code, payload, ts) "
                "VALUES (?, ?, ?, ?, ?)",
                (self.app.app_id, event_id, code, payload, timestamp),
            )
        )

    def events_after(
        self, cursor: int, limit: int = 500
    ) -> list[tuple[int, str, str, bytes, float]]:
        rows = self.db.read(
            lambda c: c.execute(
                "SELECT seq, event_id, code, payload, ts FROM trigger_events "
                "WHERE app_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (self.app.app_id, cursor, limit),
            ).fetchall()
        )
        return [(int(r[0]), r[1], r[2], bytes(r[3]), float(r[4])) for r in rows]

    def claim(self, key: str) -> bool:
        def work(c: sqlite3.Connection) -> bool:
            cur = c.execute(
                "INSERT OR IGNORE INTO trigger_claims (app_id, claim_key) VALUES (?, ?)",
                (self.app.app_id, key),
            )
            return cur.rowcount == 1

        return self.db.write(work)

    def purge(self) -> None:
        def work(c: sqlite3.Connection) -> None:
            c.execute("DELETE FROM trigger_events WHERE app_id = ?", (self.app.app_id,))
            c.execute("DELETE FROM trigger_claims WHERE app_id = ?", (self.app.app_id,))

        self.db.write(work)
