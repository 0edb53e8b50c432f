"""What only the SQLite backends promise: several processes on one file, WAL, reuse of
per-thread connections, wake-ups across processes."""

from __future__ import annotations

import multiprocessing
import os
import socket
import threading
import time
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import pytest

from pynenc import Pynenc, PynencBuilder
from pynenc.backends.sqlite.broker import SQLiteBroker
from pynenc.backends.sqlite.connection import SQLiteDatabase
from pynenc.backends.sqlite.orchestrator import SQLiteOrchestrator
from pynenc.backends.sqlite.state_backend import SQLiteStateBackend

from .conftest import new_ids, register

SPAWN = multiprocessing.get_context("spawn")


def sqlite_app(db_path: str, app_id: str = "contract") -> Pynenc:
    return PynencBuilder().app_id(app_id).sqlite(sqlite_db_path=db_path).build()


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "pynenc.db")


@pytest.fixture
def app(db_path: str) -> Pynenc:
    return sqlite_app(db_path)


def database(app: Pynenc) -> SQLiteDatabase:
    broker = app.broker
    assert isinstance(broker, SQLiteBroker)
    return broker.db


# --- run in child processes (module level, so spawn can import them) --------------------


def _claim_in_child(db_path: str, ids: list[str], runner_id: str, go: Any, out: Any) -> None:
    app = sqlite_app(db_path)
    go.wait(30)
    claimed: list[str] = []
    for start in range(0, len(ids), 100):
        claimed += app.orchestrator.claim_invocations(ids[start : start + 100], runner_id).claimed
    out.put(claimed)


def _route_in_child(db_path: str, ids: list[str], go: Event) -> None:
    app = sqlite_app(db_path)
    app.broker.count_invocations()  # connect before the parent starts the clock
    go.wait(30)
    app.broker.route_invocations(ids)


# --- tests ------------------------------------------------------------------------------


def test_the_three_components_share_one_database(app: Pynenc) -> None:
    assert isinstance(app.orchestrator, SQLiteOrchestrator)
    assert isinstance(app.state_backend, SQLiteStateBackend)
    assert app.orchestrator.db is app.state_backend.db is database(app)


def test_the_database_is_in_wal_mode(app: Pynenc, db_path: str) -> None:
    app.broker.route_invocations(new_ids(1))
    conn = database(app).connection()

    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert os.path.exists(db_path + "-wal")


def test_connections_are_reused_per_thread(app: Pynenc) -> None:
    db = database(app)
    mine = db.connection()
    app.broker.route_invocations(new_ids(1))
    app.orchestrator.count_by_status()
    theirs: list[object] = []
    thread = threading.Thread(target=lambda: theirs.extend([db.connection(), db.connection()]))
    thread.start()
    thread.join()

    assert db.connection() is mine
    assert theirs[0] is theirs[1]
    assert theirs[0] is not mine


def test_two_processes_claim_each_id_exactly_once(app: Pynenc, db_path: str) -> None:
    ids = register(app, 2000)
    go, out = SPAWN.Event(), SPAWN.Queue()
    children = [
        SPAWN.Process(target=_claim_in_child, args=(db_path, ids, f"runner-{n}", go, out))
        for n in range(2)
    ]
    for child in children:
        child.start()
    go.set()
    claimed = [out.get(timeout=60), out.get(timeout=60)]
    for child in children:
        child.join(30)

    assert all(child.exitcode == 0 for child in children)
    assert sorted(claimed[0] + claimed[1]) == sorted(ids)
    owners = {s.owner for s in app.orchestrator.get_states(ids).values()}
    assert owners <= {"runner-0", "runner-1"}


def test_a_route_in_another_process_wakes_a_blocked_retrieve(app: Pynenc, db_path: str) -> None:
    ids = new_ids(2)
    go = SPAWN.Event()
    child = SPAWN.Process(target=_route_in_child, args=(db_path, ids, go))
    child.start()
    got: list[str] = []
    waiting = threading.Event()

    def consumer() -> None:
        waiting.set()
        got.extend(app.broker.retrieve_invocations(10, 30.0))

    thread = threading.Thread(target=consumer)
    thread.start()
    assert waiting.wait(5)
    go.set()
    started = time.monotonic()
    thread.join(30)
    elapsed = time.monotonic() - started
    child.join(30)

    assert got == ids
    assert elapsed < 5.0  # the child's start-up dominates; the safety net alone would be 30 s


def test_stale_wakeup_sockets_are_removed(app: Pynenc) -> None:
    notifier = database(app).notifier
    os.makedirs(notifier.directory, exist_ok=True)
    stale = os.path.join(notifier.directory, "queue-0000000000.dead")
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dead.bind(stale)
    dead.close()  # the file stays, nobody listens: like a process that was killed

    notifier.notify("queue-0000000000")

    assert not os.path.exists(stale)


def test_a_forked_child_opens_its_own_connection(app: Pynenc) -> None:
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    db = database(app)
    parent_conn_id = id(db.connection())
    ids = register(app, 3)
    fork = multiprocessing.get_context("fork")
    out = fork.Queue()

    def child() -> None:
        own = db.connection()
        claimed = app.orchestrator.claim_invocations(ids, "forked").claimed
        out.put((id(own) != parent_conn_id, claimed))

    process = fork.Process(target=child)
    process.start()
    fresh, claimed = out.get(timeout=30)
    process.join(30)

    assert fresh
    assert claimed == ids
    assert app.orchestrator.get_states(ids)[ids[0]].owner == "forked"


def test_history_goes_to_another_state_backend_when_not_in_the_same_file(db_path: str) -> None:
    app = (
        PynencBuilder()
        .app_id("mixed")
        .sqlite(sqlite_db_path=db_path)
        .custom_config(state_backend_cls="MemStateBackend")
        .build()
    )
    (invocation_id,) = register(app)
    app.orchestrator.claim_invocations([invocation_id], "runner-1")

    history = app.state_backend.get_history(invocation_id)

    assert [(h.status, h.runner_id) for h in history] == [
        ("registered", None),
        ("pending", "runner-1"),
    ]
