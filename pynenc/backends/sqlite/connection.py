"""One database object per (process, file): per-thread connections, retried transactions.

The broker, state backend and orchestrator of an app share it, so a thread uses one
connection for all three. A forked child opens its own connections (SQLite connections
must never cross a fork) and keeps the inherited ones unused.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from pynenc.backends.sqlite.notify import Notifier
from pynenc.backends.sqlite.schema import SCHEMA
from pynenc.conf.config_sqlite import ConfigSQLite
from pynenc.exceptions import BackendError, ConfigError

if TYPE_CHECKING:
    from pynenc.app import Pynenc

T = TypeVar("T")
Work = Callable[[sqlite3.Connection], T]

MAX_ATTEMPTS = 8  # tries of one transaction while the file stays locked past busy_timeout
_BACKOFF_SEC = 0.005
_MAX_BACKOFF_SEC = 0.2
_WAL_AUTOCHECKPOINT_PAGES = 10_000  # ~40 MB of WAL between checkpoints (default 1,000)
_JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024  # truncate the WAL back to this after a checkpoint
_IN_CHUNK = 500  # ids per ``IN (?, ...)`` when the JSON functions are missing

SUPPORTS_RETURNING = sqlite3.sqlite_version_info >= (3, 35, 0)

# Connections inherited through fork: never used nor closed in the child (closing them
# could release locks the parent holds), just kept from being garbage collected.
_inherited: list[sqlite3.Connection] = []


def _has_json() -> bool:
    try:
        with sqlite3.connect(":memory:") as probe:
            probe.execute("SELECT value FROM json_each('[1]')").fetchall()
    except sqlite3.OperationalError:
        return False
    return True


HAS_JSON = _has_json()


def is_locked(exc: BaseException) -> bool:
    """True for the transient errors of a file another connection holds."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    message = str(exc)
    return "locked" in message or "busy" in message


class SQLiteDatabase:
    """A database file as seen by one process."""

    def __init__(self, path: str, busy_timeout_ms: int) -> None:
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self.notifier = Notifier(path)
        self._local = threading.local()
        self._schema_lock = threading.Lock()
        self._schema_pid = 0  # pid that created the tables (0 = not yet)
        self._write_lock = threading.Lock()
        self._write_lock_pid = os.getpid()

    def __repr__(self) -> str:
        return f"SQLiteDatabase({self.path!r})"

    # --- connections --------------------------------------------------------------------

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use (and again after a fork)."""
        local = self._local
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        pid = os.getpid()
        if conn is not None and local.pid == pid:
            return conn
        if conn is not None:
            _inherited.append(conn)
        conn = self._open()
        local.conn, local.pid = conn, pid
        return conn

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=self.busy_timeout_ms / 1000,
            isolation_level=None,  # autocommit: transactions are explicit BEGIN IMMEDIATE
            check_same_thread=False,
            cached_statements=256,
        )
        try:
            self._retry(lambda: self._configure(conn))
            if self._schema_pid != os.getpid():
                with self._schema_lock:
                    if self._schema_pid != os.getpid():
                        self._retry(lambda: _create_tables(conn))
                        self._schema_pid = os.getpid()
        except BaseException:
            conn.close()
            raise
        return conn

    def _configure(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise BackendError(
                f"SQLite database '{self.path}' cannot use WAL mode (got '{mode}'); put it on "
                "a local filesystem that supports shared memory (not a network share)."
            )
        conn.execute("PRAGMA synchronous = NORMAL")
        # checkpoints are where WAL mode fsyncs: fewer, larger ones cost far less per commit
        conn.execute(f"PRAGMA wal_autocheckpoint = {_WAL_AUTOCHECKPOINT_PAGES}")
        conn.execute(f"PRAGMA journal_size_limit = {_JOURNAL_SIZE_LIMIT}")
        conn.execute("PRAGMA temp_store = MEMORY")

    def close(self) -> None:
        """Close the calling thread's connection; the next call opens a new one."""
        local = self._local
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        local.conn = None
        if conn is None:
            return
        if local.pid == os.getpid():
            conn.close()
        else:
            _inherited.append(conn)

    # --- running work -------------------------------------------------------------------

    def write(self, work: Work[T]) -> T:
        """Run ``work`` inside ``BEGIN IMMEDIATE ... COMMIT`` (atomic across processes).

        ``work`` may run again when the file stays locked, so it must only touch the DB.
        Any error rolls back; the error propagates.
        """

        def attempt() -> T:
            conn = self.connection()
            with self._process_write_lock():
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = work(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            return result

        return self._retry(attempt)

    def _process_write_lock(self) -> threading.Lock:
        """Threads of one process queue for the write lock here, handed over at once,
        instead of in SQLite's busy handler, which sleeps for milliseconds between tries."""
        pid = os.getpid()
        if self._write_lock_pid != pid:  # a fork copies the lock in whatever state it was
            self._write_lock, self._write_lock_pid = threading.Lock(), pid
        return self._write_lock

    def read(self, work: Work[T]) -> T:
        """Run ``work`` (a single SELECT or a few independent ones) without a write lock."""
        return self._retry(lambda: work(self.connection()))

    def _retry(self, attempt: Callable[[], T]) -> T:
        for number in range(MAX_ATTEMPTS):
            try:
                return attempt()
            except sqlite3.OperationalError as exc:
                if not is_locked(exc):
                    raise
                if number == MAX_ATTEMPTS - 1:
                    raise BackendError(
                        f"SQLite database '{self.path}' stayed locked after {MAX_ATTEMPTS} "
                        f"tries ({exc}). Raise sqlite_busy_timeout_ms, or move heavy writers "
                        "to another file."
                    ) from exc
                delay = min(_BACKOFF_SEC * 2**number, _MAX_BACKOFF_SEC)
                time.sleep(delay * (0.5 + random.random()))
        raise AssertionError("unreachable")


def fetch_by_ids(
    conn: sqlite3.Connection, sql: str, params: Sequence[Any], ids: Sequence[str]
) -> list[Any]:
    """Rows of ``sql`` whose ``{ids}`` placeholder is replaced by the set ``ids``.

    ``sql`` ends its parameter list with the ids, e.g.
    ``"SELECT ... WHERE app_id = ? AND invocation_id IN {ids}"``.
    """
    if not ids:
        return []
    if HAS_JSON:
        query = sql.format(ids="(SELECT value FROM json_each(?))")
        return conn.execute(query, (*params, json.dumps(list(ids)))).fetchall()
    rows: list[Any] = []
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start : start + _IN_CHUNK]
        query = sql.format(ids=f"({','.join('?' * len(chunk))})")
        rows += conn.execute(query, (*params, *chunk)).fetchall()
    return rows


def _create_tables(conn: sqlite3.Connection) -> None:
    try:
        conn.executescript(f"BEGIN IMMEDIATE;{SCHEMA}COMMIT;")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


# weak: a database object (and its connections) lives as long as components use it
_databases: weakref.WeakValueDictionary[tuple[int, str, int], SQLiteDatabase] = (
    weakref.WeakValueDictionary()
)
_databases_lock = threading.Lock()


def database_for(app: Pynenc) -> SQLiteDatabase:
    """The database object this process shares among the components of ``app``."""
    conf = ConfigSQLite(app.config_values, app.config_filepath)
    raw = conf.db_path()
    if raw == ":memory:" or raw.startswith("file:"):
        raise ConfigError(
            f"sqlite_db_path '{raw}' is not a file several processes can share. Give a file "
            "path, or use PynencBuilder().memory() for in-process components."
        )
    path = os.path.abspath(raw)
    key = (os.getpid(), path, conf.sqlite_busy_timeout_ms)
    with _databases_lock:
        db = _databases.get(key)
        if db is None:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            db = _databases[key] = SQLiteDatabase(path, conf.sqlite_busy_timeout_ms)
        return db
