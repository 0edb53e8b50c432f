"""PersistentProcessRunner over SQLite: a dispatcher and two long-lived worker processes.

Most tests serve from a thread of this process (the workers are real processes either
way); SIGTERM and whole-runner SIGKILL use a real ``pynenc runner start`` process.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pynenc import InvocationStatus, Pynenc
from pynenc.exceptions import RetryError, RunnerError
from pynenc.runner.child_app import AppReference
from pynenc.runner.persistent_process import PersistentProcessRunner, WorkerExitedError
from pynenc.runner.persistent_process import dispatcher as dispatcher_module
from tests.apps import core_tasks as t
from tests.conftest import BASE_CONFIG, running
from tests.runner_support import (
    SQLITE,
    runner_env,
    start_runner_process,
    stop_runner_process,
    wait_until,
)

WORKERS = 2


def _configure(app: Pynenc, **config: object) -> None:
    app.config_values.clear()
    app.config_values.update(BASE_CONFIG)
    app.reconfigure(**config)


@pytest.fixture
def config(tmp_path: Path) -> dict[str, object]:
    """What both the client and the runner see: SQLite in tmp_path, a PPR of 2 workers."""
    return {
        **SQLITE,
        "sqlite_db_path": str(tmp_path / "ppr.db"),
        "runner_cls": "PersistentProcessRunner",
        "num_processes": WORKERS,
        "dev_mode_force_sync_tasks": False,
    }


@pytest.fixture
def ppr_app(config: dict[str, object]) -> Iterator[Pynenc]:
    app = t.app
    _configure(app, **config)
    app.purge()
    yield app
    app.purge()
    _configure(app)
    app.close()


@pytest.fixture
def served(ppr_app: Pynenc) -> Iterator[PersistentProcessRunner]:
    """The runner serving ``ppr_app`` from a thread, once its workers are up."""
    with running(ppr_app):
        runner = ppr_app.runner
        assert isinstance(runner, PersistentProcessRunner)
        wait_until(lambda: len(runner.worker_pids()) == WORKERS, 30, "the workers to start")
        yield runner


def _runs(app: Pynenc, invocation_id: str) -> int:
    history = app.state_backend.get_history(invocation_id)
    return sum(h.status is InvocationStatus.RUNNING for h in history)


def test_round_trip_runs_in_worker_processes(served: PersistentProcessRunner) -> None:
    assert t.add(1, 2).result == 3
    assert t.echo(t.Point(1, 2)).result == t.Point(1, 2)
    pids = set(t.nap_pid.parallelize([(0.05,) for _ in range(8)]).results)
    assert pids <= set(served.worker_pids()) and os.getpid() not in pids
    inv = t.add(2, 2)
    assert inv.result == 4
    statuses = [h.status for h in inv.history]
    assert statuses == [
        InvocationStatus.REGISTERED,
        InvocationStatus.PENDING,
        InvocationStatus.RUNNING,
        InvocationStatus.SUCCESS,
    ]


def test_exception_type_and_retries_propagate(
    served: PersistentProcessRunner, tmp_path: Path
) -> None:
    with pytest.raises(t.CustomError) as raised:
        t.fail(7).result
    assert (raised.value.code, raised.value.detail) == (7, "it failed")
    flaky = t.flaky_on_disk(str(tmp_path / "attempts"), 2)
    assert flaky.get_result(timeout_sec=30) == 3
    assert flaky.num_retries == 2
    doomed = t.always_retry("ppr")
    with pytest.raises(RetryError):
        doomed.get_result(timeout_sec=30)
    assert doomed.num_retries == 3


def test_parallelize_2000(served: PersistentProcessRunner) -> None:
    group = t.add.parallelize([(i, i) for i in range(2000)])
    assert group.get_results(timeout_sec=60) == [2 * i for i in range(2000)]


def test_calls_queued_behind_a_slow_one_are_handed_back(
    served: PersistentProcessRunner,
) -> None:
    t.add.parallelize([(i, 1) for i in range(300)]).get_results(timeout_sec=30)  # prefetching
    slow = t.nap(1.5)
    fast = t.add.parallelize([(i, 1) for i in range(100)])
    assert fast.get_results(timeout_sec=30) == [i + 1 for i in range(100)]
    assert not slow.status.is_final, "fast calls waited for the slow one"
    assert all(_runs(served.app, inv.invocation_id) == 1 for inv in fast)  # none ran twice
    assert slow.get_result(timeout_sec=30) == 1.5


def test_nested_waits_deeper_than_the_workers_complete(served: PersistentProcessRunner) -> None:
    # fib(15) waits ~15 deep and ~1000 calls wide on 2 workers of 1 credit each: every
    # waiting call must give its credit back or this deadlocks
    inv = t.fib(15)
    assert inv.get_result(timeout_sec=60) == 610
    statuses = [h.status for h in inv.history]
    assert InvocationStatus.PAUSED in statuses and InvocationStatus.RESUMED in statuses


def test_async_tasks_share_one_loop_and_overlap(served: PersistentProcessRunner) -> None:
    # each worker asks for one call at a time: an async call awaiting gives its credit back
    seconds, count = 0.2, 50
    group = t.async_nap_span.parallelize([(seconds,) for _ in range(count)])
    runs = group.get_results(timeout_sec=60)
    spans = [(start, end) for start, end, _, _ in runs]
    window = max(end for _, end in spans) - min(start for start, _ in spans)
    assert window < count * seconds / 5, f"{count} async naps took {window:.2f}s: no overlap"
    busiest = max(sum(s <= start < e for s, e in spans) for start, _ in spans)
    assert busiest >= 10, f"at most {busiest} async tasks overlapped"
    loops = {(pid, loop) for _, _, pid, loop in runs}
    assert len(loops) <= WORKERS, "a new event loop per invocation"


def test_sigkilled_workers_are_replaced_and_lose_nothing(
    served: PersistentProcessRunner, ppr_app: Pynenc
) -> None:
    count, kills = 5000, 10
    group = t.nap.parallelize([(0.001,) for _ in range(count)])
    ids = [inv.invocation_id for inv in group]
    killed: list[int] = []

    def pending() -> int:
        done = ppr_app.orchestrator.count_by_status().get(InvocationStatus.SUCCESS, 0)
        return count - done

    while len(killed) < kills:
        wait_until(lambda: bool(set(served.worker_pids()) - set(killed)), 30, "a worker")
        assert pending() > 0, f"the run ended after only {len(killed)} kills"
        victim = next(pid for pid in served.worker_pids() if pid not in killed)
        os.kill(victim, signal.SIGKILL)
        killed.append(victim)
        wait_until(lambda v=victim: v not in served.worker_pids(), 1, "the dispatcher to notice")
    assert group.get_results(timeout_sec=60) == [0.001] * count
    states = ppr_app.orchestrator.get_states(ids)
    assert {s.status for s in states.values()} == {InvocationStatus.SUCCESS}
    twice = sum(_runs(ppr_app, i) > 1 for i in ids)
    print(f"\n{kills} worker kills: {twice} of {count} invocations ran twice")
    assert twice <= kills * 5
    wait_until(lambda: len(served.worker_pids()) == WORKERS, 30, "the workers to be back")


def test_a_call_that_kills_its_worker_fails_after_three_tries(
    served: PersistentProcessRunner,
) -> None:
    inv = t.exit_abruptly(3)
    with pytest.raises(WorkerExitedError, match="exited \\(code 3\\), 3 times"):
        inv.get_result(timeout_sec=30)
    assert inv.status is InvocationStatus.FAILED
    assert t.add(1, 1).get_result(timeout_sec=30) == 2  # the workers were replaced


def test_workers_that_cannot_start_stop_the_runner(
    ppr_app: Pynenc, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = AppReference("tests.apps.no_such_module", "app")
    monkeypatch.setattr(dispatcher_module, "reference_to", lambda _app: missing)
    runner = PersistentProcessRunner(ppr_app)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            runner.run()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], RunnerError)
    assert "exit before starting" in str(errors[0])


def test_sigterm_drains_and_leaves_nothing_owned(
    ppr_app: Pynenc, config: dict[str, object]
) -> None:
    proc = start_runner_process(ppr_app, runner_env(config))
    group = t.nap.parallelize([(0.5,) for _ in range(12)])
    ids = [inv.invocation_id for inv in group]

    def started() -> bool:
        return ppr_app.orchestrator.count_by_status().get(InvocationStatus.RUNNING, 0) > 0

    wait_until(started, 30, "a task to start")
    assert stop_runner_process(proc) == 0
    states = ppr_app.orchestrator.get_states(ids)
    held = {InvocationStatus.PENDING, InvocationStatus.RUNNING}
    assert not [s for s in states.values() if s.status in held]
    finished = sum(s.status is InvocationStatus.SUCCESS for s in states.values())
    assert 1 <= finished < len(ids)  # running calls finished; the rest went back
    assert ppr_app.broker.count_invocations() == len(ids) - finished


def _descendants(pid: int) -> list[int]:
    """Child processes, their children...: the workers hang from a forkserver."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as file:
            children = [int(child) for child in file.read().split()]
    except OSError:
        return []
    return children + [grandchild for child in children for grandchild in _descendants(child)]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_killed_runner_is_recovered_by_another(ppr_app: Pynenc, config: dict[str, object]) -> None:
    timing = {"runner_recovery_timeout": 1.5, "runner_heartbeat_interval": 0.2}
    _configure(ppr_app, **config, **timing)
    env = runner_env({**config, **timing})
    first = start_runner_process(ppr_app, env)
    group = t.nap.parallelize([(0.1,) for _ in range(40)])

    def progressed() -> bool:
        counts = ppr_app.orchestrator.count_by_status()
        return counts.get(InvocationStatus.SUCCESS, 0) >= 4

    try:
        wait_until(progressed, 30, "the first runner to make progress")
        workers = _descendants(first.pid)
        assert len(workers) >= WORKERS or not os.path.isdir("/proc")
        first.kill()
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    second = start_runner_process(ppr_app, env)
    try:
        assert group.get_results(timeout_sec=30) == [0.1] * 40
    finally:
        assert stop_runner_process(second) == 0
    # orphaned workers notice their dispatcher is gone and exit
    wait_until(lambda: not any(_alive(pid) for pid in workers), 10, "orphaned workers to exit")
    recovered = [
        h.status
        for inv in group
        for h in inv.history
        if h.status in (InvocationStatus.RUNNING_RECOVERY, InvocationStatus.PENDING_RECOVERY)
    ]
    assert recovered, "nothing was recovered from the killed runner"
    assert all(inv.status is InvocationStatus.SUCCESS for inv in group)
