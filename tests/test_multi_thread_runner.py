"""MultiThreadRunner over SQLite: a supervisor keeping ThreadRunner child processes.

The supervisor runs in a thread of this test process (``running``) or, where signals to it
matter, as a real ``pynenc runner start`` process; its children are real processes either way.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from pynenc import InvocationStatus, Pynenc
from pynenc.runner.multi_thread_runner import MultiThreadRunner
from pynenc.state_backend.base import RunnerInfo
from tests.apps import core_tasks as t
from tests.conftest import BASE_CONFIG, running
from tests.runner_support import (
    SQLITE,
    runner_env,
    start_runner_process,
    stop_runner_process,
    wait_until,
)


class Setup:
    """Configures the core app for a MultiThreadRunner on a fresh SQLite file."""

    def __init__(self, tmp_path: Path) -> None:
        self.db = str(tmp_path / "multi.db")
        self.app = t.app
        self.config: dict[str, object] = {}

    def __call__(self, **options: object) -> Pynenc:
        self.config = {
            **SQLITE,
            "sqlite_db_path": self.db,
            "runner_cls": "MultiThreadRunner",
            "runner_heartbeat_interval": 0.2,
            "dev_mode_force_sync_tasks": False,
            "max_threads": 1,
            **options,
        }
        self.app.config_values.clear()
        self.app.config_values.update(BASE_CONFIG)
        self.app.reconfigure(**self.config)
        self.app.purge()
        return self.app

    def children(self) -> list[RunnerInfo]:
        """Child runners that heartbeat (the supervisor's own entry excluded)."""
        return [
            r for r in self.app.state_backend.get_runners() if r.runner_cls == "ChildThreadRunner"
        ]

    def wait_for_children(self, count: int, timeout_sec: float = 60) -> list[RunnerInfo]:
        wait_until(lambda: len(self.children()) == count, timeout_sec, f"{count} child runners")
        return self.children()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    setup = Setup(tmp_path)
    yield setup
    setup.app.purge()
    setup.app.close()
    setup.app.config_values.clear()
    setup.app.config_values.update(BASE_CONFIG)
    setup.app.reconfigure()


def test_round_trip_from_a_runner_process(setup: Setup) -> None:
    app = setup(min_processes=2, max_processes=2)
    # PYNENC__RUNNER_CLS=MultiThreadRunner is inherited by the children: they still serve
    proc = start_runner_process(app, runner_env(setup.config))
    try:
        children = setup.wait_for_children(2)
        assert proc.pid not in {c.pid for c in children}
        assert t.add(20, 22).result == 42
        with pytest.raises(t.CustomError):
            t.fail(7).result
        supervisors = [r for r in app.state_backend.get_runners() if r.pid == proc.pid]
        assert [r.runner_cls for r in supervisors] == ["MultiThreadRunner"]
    finally:
        assert stop_runner_process(proc) == 0
    assert app.state_backend.get_runners() == []


def test_work_spreads_over_the_children(setup: Setup) -> None:
    app = setup(min_processes=2, max_processes=2)
    with running(app):
        children = {c.pid for c in setup.wait_for_children(2)}
        pids = set(t.nap_pid.parallelize([(0.05,) for _ in range(20)]).get_results(60))
    assert pids == children
    assert os.getpid() not in pids  # the supervisor runs no task


def test_scales_up_under_a_backlog_then_down_when_idle(setup: Setup) -> None:
    app = setup(min_processes=1, max_processes=3, idle_timeout_process_sec=0.5)
    with running(app) as served:
        supervisor = served.runner
        assert isinstance(supervisor, MultiThreadRunner)
        setup.wait_for_children(1)
        group = t.nap_pid.parallelize([(0.5,) for _ in range(16)])
        most = 0

        def three_children() -> bool:
            nonlocal most
            most = max(most, len(supervisor.child_pids))
            return len(setup.children()) == 3

        wait_until(three_children, 60, "three children under the backlog")
        assert len(set(group.get_results(60))) > 1
        assert most <= 3
        # idle children above min_processes leave by themselves; the supervisor keeps one
        wait_until(lambda: len(supervisor.child_pids) == 1, 30, "idle children to exit")
        assert len(setup.wait_for_children(1, 10)) == 1
        assert t.add(1, 1).result == 2  # the one left still serves


def test_enforce_max_processes_keeps_the_maximum(setup: Setup) -> None:
    app = setup(
        min_processes=1, max_processes=2, idle_timeout_process_sec=0.2, enforce_max_processes=True
    )
    with running(app) as served:
        supervisor = served.runner
        assert isinstance(supervisor, MultiThreadRunner)
        setup.wait_for_children(2)
        assert t.add(2, 3).result == 5
        assert supervisor.min_processes == 2  # so none exits when idle
        assert len(supervisor.child_pids) == 2


def test_nested_calls_deeper_than_the_threads(setup: Setup) -> None:
    app = setup(min_processes=2, max_processes=2)
    with running(app):
        assert t.fib(8).get_result(60) == 21


def test_killed_child_work_is_recovered_and_the_child_replaced(setup: Setup) -> None:
    app = setup(min_processes=2, max_processes=2, runner_recovery_timeout=1.5)
    with running(app):
        setup.wait_for_children(2)
        inv = t.nap_pid(1.0)

        def owner() -> str | None:
            state = app.orchestrator.get_state(inv.invocation_id)
            running_now = state is not None and state.status == InvocationStatus.RUNNING
            return state.owner if running_now and state else None

        wait_until(lambda: owner() is not None, 30, "the task to start")
        victim = next(c.pid for c in setup.children() if c.runner_id == owner())
        os.kill(victim, signal.SIGKILL)
        result = inv.get_result(60)
        assert result != victim
        statuses = [h.status for h in inv.history]
        assert InvocationStatus.RUNNING_RECOVERY in statuses
        assert statuses.count(InvocationStatus.RUNNING) == 2
        wait_until(
            lambda: len(setup.children()) == 2 and victim not in {c.pid for c in setup.children()},
            60,
            "a new child in place of the killed one",
        )


def test_sigterm_to_the_supervisor_drains_the_children(setup: Setup) -> None:
    app = setup(min_processes=2, max_processes=2)
    proc = start_runner_process(app, runner_env(setup.config))
    group = t.nap.parallelize([(0.3,) for _ in range(12)])
    ids = [inv.invocation_id for inv in group]
    setup.wait_for_children(2)
    wait_until(
        lambda: app.orchestrator.count_by_status().get(InvocationStatus.RUNNING, 0) > 0,
        30,
        "a task to start",
    )
    assert stop_runner_process(proc) == 0
    assert app.state_backend.get_runners() == []  # children stopped and deregistered too
    states = app.orchestrator.get_states(ids).values()
    held = {InvocationStatus.PENDING, InvocationStatus.RUNNING}
    assert not [s for s in states if s.status in held], "work left owned by a stopped runner"
    assert 1 <= sum(s.status == InvocationStatus.SUCCESS for s in states) < len(ids)

    second = start_runner_process(app, runner_env(setup.config))
    try:
        assert group.get_results(timeout_sec=60) == [0.3] * len(ids)
    finally:
        assert stop_runner_process(second) == 0
    for invocation_id in ids:
        statuses = [h.status for h in app.state_backend.get_history(invocation_id)]
        assert statuses.count(InvocationStatus.RUNNING) == 1, "ran twice or never"


def test_children_stop_when_the_supervisor_is_killed(setup: Setup) -> None:
    app = setup(min_processes=2, max_processes=2)
    proc = start_runner_process(app, runner_env(setup.config))
    try:
        setup.wait_for_children(2)
        proc.kill()
        proc.wait(10)
        # each child sees its supervisor gone, drains and deregisters: no orphans serving
        wait_until(lambda: not setup.children(), 30, "the orphaned children to stop")
    finally:
        stop_runner_process(proc)
