"""SQLite state backend: records, history, results, exceptions and runner heartbeats."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pynenc.backends.sqlite.connection import database_for, fetch_by_ids
from pynenc.backends.sqlite.schema import HISTORY_INSERT
from pynenc.invocation.record import InvocationRecord
from pynenc.invocation.status import InvocationStatus, StatusRecord
from pynenc.state_backend.base import BaseStateBackend, RunnerInfo

if TYPE_CHECKING:
    from pynenc.app import Pynenc

_APP_TABLES = ("invocations", "history", "results", "exceptions", "runners", "workflow_data")


class SQLiteStateBackend(BaseStateBackend):
    def __init__(self, app: Pynenc) -> None:
        super().__init__(app)
        self.db = database_for(app)

    def store_invocations(self, records: Sequence[InvocationRecord]) -> None:
        if records:
            self.db.write(lambda conn: self.write_records(conn, records))

    def write_records(self, conn: sqlite3.Connection, records: Sequence[InvocationRecord]) -> None:
        """Insert invocation records inside the caller's transaction."""
        app_id = self.app.app_id
        conn.executemany(
            "INSERT OR IGNORE INTO invocations (app_id, invocation_id, task_id, arguments, "
            "parent_invocation_id, workflow_id, workflow_task_id, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    app_id,
                    r.invocation_id,
                    r.task_id,
                    r.arguments,
                    r.parent_invocation_id,
                    r.workflow_id,
                    r.workflow_task_id,
                    r.created_at,
                )
                for r in records
            ],
        )

    def get_invocations(self, invocation_ids: Sequence[str]) -> dict[str, InvocationRecord]:
        return self.db.read(lambda conn: self.read_records(conn, invocation_ids))

    def read_records(
        self, conn: sqlite3.Connection, invocation_ids: Sequence[str]
    ) -> dict[str, InvocationRecord]:
        """Records by id, read with the caller's connection (inside its transaction)."""
        rows = fetch_by_ids(
            conn,
            "SELECT invocation_id, task_id, arguments, parent_invocation_id, workflow_id, "
            "workflow_task_id, created_at FROM invocations "
            "WHERE app_id = ? AND invocation_id IN {ids}",
            (self.app.app_id,),
            invocation_ids,
        )
        return {row[0]: InvocationRecord(*row) for row in rows}

    def add_history(self, entries: Sequence[tuple[str, StatusRecord]]) -> None:
        if entries:
            rows = history_rows(self.app.app_id, entries)
            self.db.write(lambda conn: conn.executemany(HISTORY_INSERT, rows))

    def get_history(self, invocation_id: str) -> list[StatusRecord]:
        rows = self.db.read(
            lambda conn: conn.execute(
                "SELECT status, timestamp, runner_id FROM history "
                "WHERE app_id = ? AND invocation_id = ? ORDER BY seq",
                (self.app.app_id, invocation_id),
            ).fetchall()
        )
        return [StatusRecord(InvocationStatus(s), t, r) for s, t, r in rows]

    def store_results(self, results: Sequence[tuple[str, bytes]]) -> None:
        self._store_values("results", results)

    def get_results(self, invocation_ids: Sequence[str]) -> dict[str, bytes]:
        return self._get_values("results", invocation_ids)

    def store_exceptions(self, exceptions: Sequence[tuple[str, bytes]]) -> None:
        self._store_values("exceptions", exceptions)

    def get_exceptions(self, invocation_ids: Sequence[str]) -> dict[str, bytes]:
        return self._get_values("exceptions", invocation_ids)

    def _store_values(self, table: str, values: Sequence[tuple[str, bytes]]) -> None:
        if values:
            self.db.write(lambda conn: self.write_values(conn, table, values))

    def write_values(
        self, conn: sqlite3.Connection, table: str, values: Sequence[tuple[str, bytes]]
    ) -> None:
        """Insert results or exceptions inside the caller's transaction."""
        if not values:
            return
        app_id = self.app.app_id
        conn.executemany(
            f"INSERT OR REPLACE INTO {table} (app_id, invocation_id, value) VALUES (?, ?, ?)",
            [(app_id, invocation_id, value) for invocation_id, value in values],
        )

    def _get_values(self, table: str, invocation_ids: Sequence[str]) -> dict[str, bytes]:
        rows = self.db.read(
            lambda conn: fetch_by_ids(
                conn,
                f"SELECT invocation_id, value FROM {table} "
                "WHERE app_id = ? AND invocation_id IN {ids}",
                (self.app.app_id,),
                invocation_ids,
            )
        )
        return {invocation_id: bytes(value) for invocation_id, value in rows}

    def store_runner_heartbeat(self, info: RunnerInfo) -> None:
        row = (
            self.app.app_id,
            info.runner_id,
            info.hostname,
            info.pid,
            info.runner_cls,
            info.started_at,
            info.last_heartbeat,
        )
        self.db.write(
            lambda conn: conn.execute(
                "INSERT OR REPLACE INTO runners (app_id, runner_id, hostname, pid, runner_cls, "
                "started_at, last_heartbeat) VALUES (?, ?, ?, ?, ?, ?, ?)",
                row,
            )
        )

    def get_runners(self) -> list[RunnerInfo]:
        rows = self.db.read(
            lambda conn: conn.execute(
                "SELECT runner_id, hostname, pid, runner_cls, started_at, last_heartbeat "
                "FROM runners WHERE app_id = ? ORDER BY last_heartbeat DESC",
                (self.app.app_id,),
            ).fetchall()
        )
        return [RunnerInfo(*row) for row in rows]

    def remove_runner(self, runner_id: str) -> None:
        key = (self.app.app_id, runner_id)
        self.db.write(
            lambda conn: conn.execute("DELETE FROM runners WHERE app_id = ? AND runner_id = ?", key)
        )

    def set_workflow_data(self, workflow_id: str, key: str, value: bytes) -> None:
        row = (self.app.app_id, workflow_id, key, value)
        self.db.write(
            lambda conn: conn.execute(
                "INSERT OR REPLACE INTO workflow_data (app_id, workflow_id, key, value) "
                "VALUES (?, ?, ?, ?)",
                row,
            )
        )

    def get_workflow_data(self, workflow_id: str, key: str) -> bytes | None:
        row = self.db.read(
            lambda conn: conn.execute(
                "SELECT value FROM workflow_data WHERE app_id = ? AND workflow_id = ? AND key = ?",
                (self.app.app_id, workflow_id, key),
            ).fetchone()
        )
        return None if row is None else bytes(row[0])

    def get_workflow_invocations(self, workflow_id: str) -> list[InvocationRecord]:
        rows = self.db.read(
            lambda conn: conn.execute(
                "SELECT invocation_id, task_id, arguments, parent_invocation_id, workflow_id, "
                "workflow_task_id, created_at FROM invocations "
                "WHERE app_id = ? AND workflow_id = ? ORDER BY created_at, invocation_id",
                (self.app.app_id, workflow_id),
            ).fetchall()
        )
        return [InvocationRecord(*row) for row in rows]

    def purge(self) -> None:
        app_id = self.app.app_id

        def delete(conn: sqlite3.Connection) -> None:
            for table in _APP_TABLES:
                conn.execute(f"DELETE FROM {table} WHERE app_id = ?", (app_id,))

        self.db.write(delete)

    def close(self) -> None:
        self.db.close()


def history_rows(
    app_id: str, entries: Sequence[tuple[str, StatusRecord]]
) -> list[tuple[str, str, str, float, str | None]]:
    return [
        (app_id, invocation_id, record.status.value, record.timestamp, record.runner_id)
        for invocation_id, record in entries
    ]
