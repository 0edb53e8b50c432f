"""SQLite client data store: table ``client_data`` (app_id, key) in the shared database."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from pynenc.backends.sqlite.connection import database_for, fetch_by_ids
from pynenc.client_data_store.base import BaseClientDataStore

if TYPE_CHECKING:
    from pynenc.app import Pynenc


class SQLiteClientDataStore(BaseClientDataStore):
    def __init__(self, app: Pynenc) -> None:
        super().__init__(app)
        self.db = database_for(app)

    def store(self, values: Mapping[str, bytes]) -> None:
        if not values:
            return
        app_id = self.app.app_id
        rows = [(app_id, key, data) for key, data in values.items()]
        self.db.write(
            lambda conn: conn.executemany(
                "INSERT OR IGNORE INTO client_data (app_id, key, value) VALUES (?, ?, ?)", rows
            )
        )

    def get(self, keys: Sequence[str]) -> dict[str, bytes]:
        if not keys:
            return {}
        rows = self.db.read(
            lambda conn: fetch_by_ids(
                conn,
                "SELECT key, value FROM client_data WHERE app_id = ? AND key IN {ids}",
                (self.app.app_id,),
                list(keys),
            )
        )
        return {row[0]: bytes(row[1]) for row in rows}

    def count(self) -> int:
        return int(
            self.db.read(
                lambda conn: conn.execute(
                    "SELECT COUNT(*) FROM client_data WHERE app_id = ?", (self.app.app_id,)
                ).fetchone()[0]
            )
        )

    def purge(self) -> None:
        app_id = self.app.app_id

        def delete(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM client_data WHERE app_id = ?", (app_id,))

        self.db.write(delete)
        self.forget_local()

    def close(self) -> None:
        self.db.close()
