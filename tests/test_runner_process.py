"""A real runner process over SQLite: it serves other processes and drains on SIGTERM."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pynenc import InvocationStatus, Pynenc
from tests.apps import core_tasks as t
from tests.runner_support import (
    SQLITE,
    runner_env,
    start_runner_process,
    stop_runner_process,
    wait_until,
)


@pytest.fixture
def sqlite_app(tmp_path: Path) -> Iterator[tuple[Pynenc, dict[str, str]]]:
    config: dict[str, object] = {**SQLITE, "sqlite_db_path": str(tmp_path / "runner.db")}
    app = t.app
    app.reconfigure(dev_mode_force_sync_tasks=False, **config)
    app.purge()
    env = runner_env({**config, "max_threads": 2, "runner_heartbeat_interval": 0.2})
    yield app, env
    app.purge()
    app.close()


def start_runner(app: Pynenc, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return start_runner_process(app, env)


def stop(proc: subprocess.Popen[bytes]) -> int:
    return stop_runner_process(proc, 30)


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
