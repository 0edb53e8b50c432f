"""Settings of the SQLite backends (the default, zero-setup backend)."""

from __future__ import annotations

from typing import ClassVar

from pynenc.conf.config_base import ConfigBase

DEFAULT_SQLITE_DB_PATH = "pynenc.db"  # relative: resolved against the current directory


class ConfigSQLite(ConfigBase):
    section_name: ClassVar[str] = "sqlite"

    sqlite_db_path: str | None = None  # None = ./pynenc.db in the current directory
    sqlite_busy_timeout_ms: int = 5000

    def db_path(self) -> str:
        """The database file to open."""
        return self.sqlite_db_path or DEFAULT_SQLITE_DB_PATH
