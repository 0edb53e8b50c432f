"""ProcessRunner over SQLite: a fresh process per invocation, nested waits, crashes, drain."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from pynenc import InvocationStatus, Pynenc
from pynenc.exceptions import ConfigError, RetryError
from pynenc.invocation.base import BaseInvocation
from pynenc.invocation.dist import DistributedInvocation
from pynenc.runner.process_runner import ProcessExitedError, ProcessRunner
from tests.apps import core_tasks as t
from tests.conftest import running
from tests.runner_support import ROOT, SQLITE, runner_env, stop_runner_process, wait_until

R = TypeVar("R")


@pytest.fixture
def backend() -> str:
    """Children are other processes: only a shared backend can reach them."""
    return "sqlite"


@pytest.fixture
def process_app(app: Pynenc) -> Iterator[Pynenc]:
    """The core app served by a ProcessRunner (2 processes) from a thread of this process."""
    app.reconfigure(runner_cls="ProcessRunner", max_processes=2)
    with running(app):
        yield app


def result_of(invocation: BaseInvocation[R], timeout_sec: float = 60) -> R:
    """``.result``, bounded: a broken runner fails the test instead of hanging it."""
    assert isinstance(invocation, DistributedInvocation)
    value: R = invocation.get_result(timeout_sec)
    return value


def statuses(app: Pynenc, invocation_id: str) -> list[InvocationStatus]:
    return [h.status for h in app.state_backend.get_history(invocation_id)]


def test_round_trip(process_app: Pynenc) -> None:
    assert t.add(1, 2).result == 3
    assert t.add.parallelize([(i, i) for i in range(10)]).results == [2 * i for i in range(10)]
    assert t.async_double(21).result == 42  # type: ignore[comparison-overlap]


def test_each_invocation_runs_in_a_fresh_process(process_app: Pynenc) -> None:
    pids = t.nap_pid.parallelize([(0.0,) for _ in range(6)]).results
    assert len(set(pids)) == len(pids)
    assert os.getpid() not in pids


def test_task_exception_keeps_its_type(process_app: Pynenc) -> None:
    with pytest.raises(t.CustomError) as raised:
        t.fail(7).result
    assert (raised.value.code, raised.value.detail) == (7, "it failed")


def test_retries_run_again_in_new_processes(process_app: Pynenc, tmp_path: Path) -> None:
    invocation = t.flaky_on_disk(str(tmp_path / "attempts"), 2)
    assert invocation.result == 3
    assert invocation.num_retries == 2

    exhausted = t.always_retry("key")
    with pytest.raises(RetryError):
        exhausted.result
    assert statuses(process_app, exhausted.invocation_id).count(InvocationStatus.RETRY) == 3


def test_nested_calls_deeper_than_max_processes(process_app: Pynenc) -> None:
    invocation = t.fib(6)
    assert result_of(invocation, 120) == 8
    history = statuses(process_app, invocation.invocation_id)
    paused = history.index(InvocationStatus.PAUSED)
    assert InvocationStatus.RESUMED in history[paused:]
    assert history[-2:] == [InvocationStatus.RESUMED, InvocationStatus.SUCCESS]


def test_killed_child_fails_its_invocation_only(process_app: Pynenc, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    victim = t.nap_after_writing_pid(str(pid_file), 60)
    wait_until(pid_file.exists, 30, "the task to start")
    os.kill(int(pid_file.read_text()), signal.SIGKILL)
    with pytest.raises(ProcessExitedError, match="exited with code -9 \\(killed by SIGKILL\\)"):
        result_of(victim, 30)
    assert victim.status is InvocationStatus.FAILED

    with pytest.raises(ProcessExitedError, match="exited with code 3 before finishing"):
        result_of(t.exit_abruptly(3), 30)
    assert t.add(2, 3).result == 5  # the runner keeps serving


def test_child_killed_while_paused_fails(process_app: Pynenc, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    victim = t.wait_on_nap_after_writing_pid(str(pid_file), 0.5)
    wait_until(lambda: victim.status is InvocationStatus.PAUSED, 30, "the task to wait")
    os.kill(int(pid_file.read_text()), signal.SIGKILL)
    with pytest.raises(ProcessExitedError, match="killed by SIGKILL"):
        result_of(victim, 30)
    history = statuses(process_app, victim.invocation_id)
    assert history[-3:] == [
        InvocationStatus.PAUSED,
        InvocationStatus.RESUMED,
        InvocationStatus.FAILED,
    ]


def test_drain_timeout_terminates_children_and_requeues(app: Pynenc, tmp_path: Path) -> None:
    app.reconfigure(runner_cls="ProcessRunner", max_processes=2, graceful_shutdown_timeout_sec=0.2)
    pid_file = tmp_path / "pid"
    with running(app):
        stuck = t.nap_after_writing_pid(str(pid_file), 60)
        wait_until(pid_file.exists, 30, "the task to start")
    state = app.orchestrator.get_state(stuck.invocation_id)
    assert state is not None and state.status == InvocationStatus.REROUTED
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)  # terminated, not left behind


def test_memory_backend_is_refused(app: Pynenc) -> None:
    app.reconfigure(broker_cls="MemBroker", orchestrator_cls="MemOrchestrator")
    with pytest.raises(ConfigError, match="in-memory backend"):
        ProcessRunner(app).serve()


# --- a real runner process ------------------------------------------------------------


@pytest.fixture
def env(app: Pynenc) -> dict[str, str]:
    """What a ``pynenc runner start`` process needs to serve ``app`` with a ProcessRunner."""
    config: dict[str, object] = {
        **SQLITE,
        "sqlite_db_path": app.config_values["sqlite_db_path"],
        "runner_cls": "ProcessRunner",
        "max_processes": 2,
        "runner_heartbeat_interval": 0.2,
    }
    return runner_env(config)


def start_runner(
    app: Pynenc, env: dict[str, str], log: Path
) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``pynenc runner start``; returns the process and its runner id."""
    before = {r.runner_id for r in app.state_backend.get_runners()}
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pynenc",
                "--app",
                "tests.apps.core_tasks.app",
                "runner",
                "start",
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )

    def new_runners() -> set[str]:
        return {r.runner_id for r in app.state_backend.get_runners()} - before

    wait_until(lambda: bool(new_runners()) or proc.poll() is not None, 30, "a heartbeat")
    assert proc.poll() is None, log.read_text()
    return proc, new_runners().pop()


def test_children_log_with_runner_and_invocation_ids(
    app: Pynenc, env: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "runner.log"
    proc, runner_id = start_runner(app, env, log)
    try:
        invocation = t.log_and_add(1, 2)
        assert invocation.result == 3
    finally:
        assert stop_runner_process(proc) == 0
    lines = [line for line in log.read_text().splitlines() if "adding 1 and 2" in line]
    assert lines, log.read_text()
    assert f"runner={runner_id}" in lines[0]
    assert f"invocation={invocation.invocation_id}" in lines[0]


def test_sigterm_drains_and_loses_nothing(app: Pynenc, env: dict[str, str], tmp_path: Path) -> None:
    proc, _ = start_runner(app, env, tmp_path / "first.log")
    group = t.nap.parallelize([(0.3,) for _ in range(10)])
    ids = [inv.invocation_id for inv in group]

    def started() -> bool:
        return app.orchestrator.count_by_status().get(InvocationStatus.RUNNING, 0) > 0

    wait_until(started, 30, "a task to start")
    assert stop_runner_process(proc) == 0
    held = {InvocationStatus.PENDING, InvocationStatus.RUNNING}
    states = app.orchestrator.get_states(ids)
    assert not [s for s in states.values() if s.status in held], "work left owned by a dead runner"
    assert any(s.status == InvocationStatus.SUCCESS for s in states.values())

    second, _ = start_runner(app, env, tmp_path / "second.log")
    try:
        assert group.get_results(timeout_sec=60) == [0.3] * len(ids)
    finally:
        assert stop_runner_process(second) == 0
    for invocation_id in ids:
        assert statuses(app, invocation_id).count(InvocationStatus.RUNNING) == 1
