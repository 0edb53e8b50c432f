"""A real runner process over SQLite: it serves other processes and drains on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pynenc import InvocationStatus, Pynenc
from tests.apps import core_tasks as t

ROOT = Path(__file__).resolve().parents[1]


def wait_until(condition: Callable[[], bool], timeout_sec: float, what: str) -> None:
    """Bounded wait on a condition that lives in another process's writes."""
    deadline = time.monotonic() + timeout_sec
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def sqlite_app(tmp_path: Path) -> Iterator[tuple[Pynenc, dict[str, str]]]:
    db = str(tmp_path / "runner.db")
    app = t.app
    app.reconfigure(
        broker_cls="SQLiteBroker",
        state_backend_cls="SQLiteStateBackend",
        orchestrator_cls="SQLiteOrchestrator",
        sqlite_db_path=db,
        dev_mode_force_sync_tasks=False,
    )
    app.purge()
    env = dict(
        os.environ,
        PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        PYNENC__BROKER_CLS="SQLiteBroker",
        PYNENC__STATE_BACKEND_CLS="SQLiteStateBackend",
        PYNENC__ORCHESTRATOR_CLS="SQLiteOrchestrator",
        PYNENC__SQLITE_DB_PATH=db,
        PYNENC__MAX_THREADS="2",
        PYNENC__RUNNER_HEARTBEAT_INTERVAL="0.2",
    )
    yield app, env
    app.purge()
    app.close()


def start_runner(app: Pynenc, env: dict[str, str]) -> subprocess.Popen[bytes]:
    before = {r.runner_id for r in app.state_backend.get_runners()}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pynenc", "--app", "tests.apps.core_tasks.app", "runner", "start"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wait_until(
        lambda: (
            bool({r.runner_id for r in app.state_backend.get_runners()} - before)
            or proc.poll() is not None
        ),
        30,
        "the runner's first heartbeat",
    )
    assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
    return proc


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_runner_process_serves_other_processes(
    sqlite_app: tuple[Pynenc, dict[str, str]],
) -> None:
    app, env = sqlite_app
    proc = start_runner(app, env)
    try:
        assert t.add.parallelize([(i, 1) for i in range(200)]).results == [
            i + 1 for i in range(200)
        ]
        with pytest.raises(t.CustomError):
            t.fail(3).result
    finally:
        assert stop(proc) == 0


def test_sigterm_drains_and_loses_nothing(sqlite_app: tuple[Pynenc, dict[str, str]]) -> None:
    app, env = sqlite_app
    proc = start_runner(app, env)
    group = t.nap.parallelize([(0.3,) for _ in range(12)])
    ids = [inv.invocation_id for inv in group]

    def running() -> bool:
        return app.orchestrator.count_by_status().get(InvocationStatus.RUNNING, 0) > 0

    wait_until(running, 30, "a task to start")
    assert stop(proc) == 0  # drained: running tasks finished, the rest left queued
    states = app.orchestrator.get_states(ids)
    held = {InvocationStatus.PENDING, InvocationStatus.RUNNING}
    assert not [s for s in states.values() if s.status in held], "work left owned by a dead runner"
    done_first = sum(s.status == InvocationStatus.SUCCESS for s in states.values())
    assert 1 <= done_first < len(ids)

    second = start_runner(app, env)
    try:
        assert group.get_results(timeout_sec=60) == [0.3] * len(ids)
    finally:
        assert stop(second) == 0
    for invocation_id in ids:
        history = app.state_backend.get_history(invocation_id)
        runs = [h for h in history if h.status is InvocationStatus.RUNNING]
        assert len(runs) == 1, "an invocation ran twice or never"
