"""SQLite backends: one file shared by every process of one host (WAL, atomic claims)."""

from pynenc.backends.sqlite.broker import SQLiteBroker
from pynenc.backends.sqlite.orchestrator import SQLiteOrchestrator
from pynenc.backends.sqlite.state_backend import SQLiteStateBackend

__all__ = ["SQLiteBroker", "SQLiteOrchestrator", "SQLiteStateBackend"]
