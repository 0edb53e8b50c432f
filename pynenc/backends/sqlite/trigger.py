"""SQLite trigger storage: an event log, claims (unique key insert) and the condition
records of AND triggers, each with a timestamp so old rows can be trimmed."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from pynenc.backends.sqlite.connection import database_for
from pynenc.trigger.base_trigger import MAX_CONDITION_RECORDS, BaseTrigger, StoredEvent

if TYPE_CHECKING:
    from pynenc.app import Pynenc

_TABLES = (
    "CREATE TABLE IF NOT EXISTS trigger_events (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
    "app_id TEXT NOT NULL, event_id TEXT NOT NULL, code TEXT NOT NULL, payload BLOB, "
    "ts REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS trigger_claims (app_id TEXT NOT NULL, claim_key TEXT NOT "
    "NULL, ts REAL NOT NULL, PRIMARY KEY (app_id, claim_key))",
    "CREATE TABLE IF NOT EXISTS trigger_conditions (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "app_id TEXT NOT NULL, trigger_id TEXT NOT NULL, cond INTEGER NOT NULL, "
    "ts REAL NOT NULL, record BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS trigger_cron_marks (app_id TEXT PRIMARY KEY, until REAL NOT NULL)",
)
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS trigger_events_ts ON trigger_events (app_id, ts)",
    "CREATE INDEX IF NOT EXISTS trigger_claims_ts ON trigger_claims (app_id, ts)",
    "CREATE INDEX IF NOT EXISTS trigger_conditions_by_cond ON trigger_conditions "
    "(app_id, trigger_id, cond, id)",
)


def _create(conn: sqlite3.Connection) -> None:
    for stmt in _TABLES:
        conn.execute(stmt)
    # a file from before claims were timestamped: its claims count as old (trimmed first)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(trigger_claims)")}
    if "ts" not in columns:
        conn.execute("ALTER TABLE trigger_claims ADD COLUMN ts REAL NOT NULL DEFAULT 0")
    for stmt in _INDEXES:
        conn.execute(stmt)


_DROP_OLD_RECORDS = "DELETE FROM trigger_conditions WHERE app_id = ? AND trigger_id = ? AND ts < ?"


class SQLiteTrigger(BaseTrigger):
    def __init__(self, app: Pynenc) -> None:
        super().__init__(app)
        self.db = database_for(app)
        self.db.write(_create)

    @property
    def _app_id(self) -> str:
        return self.app.app_id

    def store_event(self, event_id: str, code: str, payload: bytes, timestamp: float) -> None:
        self.db.write(
            lambda c: c.execute(
                "INSERT INTO trigger_events (app_id, event_id, code, payload, ts) "
                "VALUES (?, ?, ?, ?, ?)",
                (self._app_id, event_id, code, payload, timestamp),
            )
        )

    def events_after(self, cursor: str, limit: int = 500) -> list[StoredEvent]:
        rows = self.db.read(
            lambda c: c.execute(
                "SELECT seq, event_id, code, payload, ts FROM trigger_events "
                "WHERE app_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (self._app_id, int(cursor or 0), limit),
            ).fetchall()
        )
        return [StoredEvent(str(r[0]), r[1], r[2], bytes(r[3]), float(r[4])) for r in rows]

    def claim(self, key: str) -> bool:
        now = self.clock()

        def work(c: sqlite3.Connection) -> bool:
            cur = c.execute(
                "INSERT OR IGNORE INTO trigger_claims (app_id, claim_key, ts) VALUES (?, ?, ?)",
                (self._app_id, key, now),
            )
            return cur.rowcount == 1

        return self.db.write(work)

    def add_condition_record(
        self, trigger_id: str, index: int, record: bytes, timestamp: float, window_start: float
    ) -> None:
        def work(c: sqlite3.Connection) -> None:
            c.execute(_DROP_OLD_RECORDS, (self._app_id, trigger_id, window_start))
            c.execute(
                "INSERT INTO trigger_conditions (app_id, trigger_id, cond, ts, record) "
                "VALUES (?, ?, ?, ?, ?)",
                (self._app_id, trigger_id, index, timestamp, record),
            )
            c.execute(
                "DELETE FROM trigger_conditions WHERE id IN (SELECT id FROM trigger_conditions "
                "WHERE app_id = ? AND trigger_id = ? AND cond = ? ORDER BY id DESC "
                "LIMIT -1 OFFSET ?)",
                (self._app_id, trigger_id, index, MAX_CONDITION_RECORDS),
            )

        self.db.write(work)

    def take_condition_records(
        self, trigger_id: str, count: int, window_start: float
    ) -> list[bytes] | None:
        def work(c: sqlite3.Connection) -> list[bytes] | None:
            c.execute(_DROP_OLD_RECORDS, (self._app_id, trigger_id, window_start))
            oldest = []
            for index in range(count):
                row = c.execute(
                    "SELECT id, record FROM trigger_conditions WHERE app_id = ? AND "
                    "trigger_id = ? AND cond = ? ORDER BY id LIMIT 1",
                    (self._app_id, trigger_id, index),
                ).fetchone()
                if row is None:
                    return None
                oldest.append(row)
            c.executemany("DELETE FROM trigger_conditions WHERE id = ?", [(r[0],) for r in oldest])
            return [bytes(r[1]) for r in oldest]

        return self.db.write(work)

    def cron_watermark(self) -> float | None:
        row = self.db.read(
            lambda c: c.execute(
                "SELECT until FROM trigger_cron_marks WHERE app_id = ?", (self._app_id,)
            ).fetchone()
        )
        return None if row is None else float(row[0])

    def set_cron_watermark(self, until: float) -> None:
        self.db.write(
            lambda c: c.execute(
                "INSERT INTO trigger_cron_marks (app_id, until) VALUES (?, ?) ON CONFLICT "
                "(app_id) DO UPDATE SET until = max(until, excluded.until)",
                (self._app_id, until),
            )
        )

    def trim(self, before: float) -> None:
        def work(c: sqlite3.Connection) -> None:
            for table in ("trigger_events", "trigger_claims", "trigger_conditions"):
                sql = f"DELETE FROM {table} WHERE app_id = ? AND ts < ?"
                c.execute(sql, (self._app_id, before))

        self.db.write(work)

    def purge(self) -> None:
        def work(c: sqlite3.Connection) -> None:
            tables = (
                "trigger_events",
                "trigger_claims",
                "trigger_conditions",
                "trigger_cron_marks",
            )
            for table in tables:
                c.execute(f"DELETE FROM {table} WHERE app_id = ?", (self._app_id,))

        self.db.write(work)
