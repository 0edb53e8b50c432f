"""SQLite broker: a table ordered by (visible_at, seq), popped in batches by runners."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from pynenc.backends.sqlite.connection import SUPPORTS_RETURNING, database_for
from pynenc.backends.sqlite.notify import SAFETY_RECHECK_SEC, channel_name
from pynenc.broker.base import BaseBroker

if TYPE_CHECKING:
    from pynenc.app import Pynenc

T = TypeVar("T")

_VISIBLE = (
    "SELECT seq FROM broker_queue WHERE app_id = ? AND visible_at <= ? "
    "ORDER BY visible_at, seq LIMIT ?"
)


class SQLiteBroker(BaseBroker):
    """Ids become visible at ``visible_at`` (route time, or later when delayed) and leave
    in that order; a pop is one ``DELETE ... RETURNING``, so two runners never get the
    same id."""

    def __init__(self, app: Pynenc) -> None:
        super().__init__(app)
        self.db = database_for(app)
        self._channel = channel_name("queue", app.app_id)

    def route_invocations(self, invocation_ids: Sequence[str], delay_sec: float = 0.0) -> None:
        if not invocation_ids:
            return
        self.db.write(lambda conn: self.write_routes(conn, invocation_ids, delay_sec))
        self.notify()

    def write_routes(
        self, conn: sqlite3.Connection, invocation_ids: Sequence[str], delay_sec: float = 0.0
    ) -> None:
        """Queue ids inside the caller's transaction (call ``notify`` after its COMMIT)."""
        app_id = self.app.app_id
        # the clock is read under the write lock, so visible_at grows with seq
        visible_at = time.time() + max(delay_sec, 0.0)
        conn.executemany(
            "INSERT INTO broker_queue (app_id, invocation_id, visible_at) VALUES (?, ?, ?)",
            [(app_id, i, visible_at) for i in invocation_ids],
        )

    def notify(self) -> None:
        """Wake runners blocked on this app's queue."""
        self.db.notifier.notify(self._channel)

    def retrieve_invocations(self, max_count: int, timeout_sec: float) -> list[str]:
        return self.retrieve_then(max_count, timeout_sec, lambda _conn, ids: ids) or []

    def retrieve_then(
        self,
        max_count: int,
        timeout_sec: float,
        then: Callable[[sqlite3.Connection, list[str]], T],
    ) -> T | None:
        """Pop like ``retrieve_invocations`` and run ``then(conn, ids)`` in the same
        transaction (the orchestrator claims there: no id is ever popped but unclaimed).
        Returns None when nothing arrived within the timeout."""
        if max_count <= 0:
            return None
        deadline = time.monotonic() + timeout_sec
        waiter = None

        def work(conn: sqlite3.Connection) -> tuple[T | None, float | None]:
            ids, next_due = self._pop(conn, max_count)
            return (then(conn, ids) if ids else None), next_due

        while True:
            done, next_due = self.db.write(work)
            if done is not None:
                return done
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if waiter is None:
                # listen first, then look again: a route committed in between still wakes us
                waiter = self.db.notifier.waiter(self._channel)
                continue
            wait = min(remaining, SAFETY_RECHECK_SEC)
            if next_due is not None:
                wait = min(wait, max(next_due - time.time(), 0.0))
            waiter.wait(wait)

    def _pop(self, conn: sqlite3.Connection, max_count: int) -> tuple[list[str], float | None]:
        """Visible ids, oldest first; else ([], when the next delayed one is due)."""
        params = (self.app.app_id, time.time(), max_count)
        if SUPPORTS_RETURNING:
            rows = conn.execute(
                f"DELETE FROM broker_queue WHERE seq IN ({_VISIBLE}) "
                "RETURNING visible_at, seq, invocation_id",
                params,
            ).fetchall()
        else:
            rows = conn.execute(
                "SELECT visible_at, seq, invocation_id FROM broker_queue "
                f"WHERE seq IN ({_VISIBLE})",
                params,
            ).fetchall()
            conn.executemany("DELETE FROM broker_queue WHERE seq = ?", [(r[1],) for r in rows])
        if rows:
            rows.sort()  # RETURNING gives no order
            return [row[2] for row in rows], None
        (next_due,) = conn.execute(
            "SELECT MIN(visible_at) FROM broker_queue WHERE app_id = ?", (self.app.app_id,)
        ).fetchone()
        return [], next_due

    def count_invocations(self) -> int:
        (count,) = self.db.read(
            lambda conn: conn.execute(
                "SELECT COUNT(*) FROM broker_queue WHERE app_id = ?", (self.app.app_id,)
            ).fetchone()
        )
        return int(count)

    def purge(self) -> None:
        app_id = self.app.app_id
        self.db.write(
            lambda conn: conn.execute("DELETE FROM broker_queue WHERE app_id = ?", (app_id,))
        )

    def close(self) -> None:
        self.db.close()
        self.db.notifier.close()
