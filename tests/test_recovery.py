"""A live runner re-queues the work of a dead one, and PENDING that got stuck."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from pynenc import InvocationStatus, Pynenc
from pynenc.runner.recovery import recover_dead_runners, recover_stuck_pending
from pynenc.state_backend.base import RunnerInfo
from tests.apps import core_tasks as t
from tests.conftest import running
from tests.runner_support import (
    SQLITE,
    runner_env,
    start_runner_process,
    stop_runner_process,
    wait_until,
)


def _orphan(app: Pynenc, dead: str, status: InvocationStatus) -> str:
    """An invocation of ``add(2, 3)`` left by runner ``dead`` in ``status``."""
    inv = t.add(2, 3)
    assert app.broker.retrieve_invocations(10, 0.1) == [inv.invocation_id]
    app.orchestrator.claim_invocations([inv.invocation_id], dead)
    if status is not InvocationStatus.PENDING:
        app.orchestrator.set_status(inv.invocation_id, status, dead)
    old = time.time() - 3600
    app.state_backend.store_runner_heartbeat(RunnerInfo(dead, "h", 1, "X", old, old))
    return inv.invocation_id


def test_dead_runner_running_work_is_rerouted_and_finished(app: Pynenc) -> None:
    app.reconfigure(runner_heartbeat_interval=0.05, runner_recovery_timeout=1.0)
    invocation_id = _orphan(app, "dead-runner", InvocationStatus.RUNNING)
    with running(app):
        inv = app.get_invocation(invocation_id)
        assert inv.get_result(timeout_sec=10) == 5
    statuses = [h.status for h in inv.history]
    i = statuses.index(InvocationStatus.RUNNING_RECOVERY)
    assert statuses[i + 1] is InvocationStatus.REROUTED
    assert statuses[-1] is InvocationStatus.SUCCESS
    assert "dead-runner" not in [r.runner_id for r in app.state_backend.get_runners()]


def test_recovery_routes_once_even_if_two_runners_try(app: Pynenc) -> None:
    invocation_id = _orphan(app, "dead", InvocationStatus.RUNNING)
    first = recover_dead_runners(app, "live-1")
    second = recover_dead_runners(app, "live-2")
    assert first == [invocation_id] and second == []
    assert app.broker.retrieve_invocations(10, 0.1) == [invocation_id]


def test_live_runner_is_not_recovered(app: Pynenc) -> None:
    inv = t.add(1, 1)
    app.broker.retrieve_invocations(10, 0.1)
    app.orchestrator.claim_invocations([inv.invocation_id], "alive")
    now = time.time()
    app.state_backend.store_runner_heartbeat(RunnerInfo("alive", "h", 1, "X", now, now))
    assert recover_dead_runners(app, "other") == []
    assert app.orchestrator.get_state(inv.invocation_id).status == InvocationStatus.PENDING  # type: ignore[union-attr]


def test_stuck_pending_is_recovered_after_max_pending_seconds(app: Pynenc) -> None:
    inv = t.add(1, 1)
    app.broker.retrieve_invocations(10, 0.1)
    app.orchestrator.claim_invocations([inv.invocation_id], "slow")
    assert recover_stuck_pending(app, "live", now=time.time()) == []
    later = time.time() + app.conf.max_pending_seconds + 1
    assert recover_stuck_pending(app, "live", now=later) == [inv.invocation_id]
    statuses = [h.status for h in inv.history]
    assert statuses[-2:] == [InvocationStatus.PENDING_RECOVERY, InvocationStatus.REROUTED]


def test_sigkilled_runner_process_is_recovered_by_another(tmp_path: Path) -> None:
    timeout, interval = 1.5, 0.2
    config: dict[str, object] = {
        **SQLITE,
        "sqlite_db_path": str(tmp_path / "recovery.db"),
        "runner_recovery_timeout": timeout,
        "runner_heartbeat_interval": interval,
        "max_threads": 1,
    }
    app = t.app
    app.reconfigure(dev_mode_force_sync_tasks=False, **config)
    app.purge()
    env = runner_env(config)
    first = start_runner_process(app, env)
    second = start_runner_process(app, env)
    procs = {first.pid: first, second.pid: second}
    try:
        inv = t.nap(1.0)
        wait_until(lambda: inv.status is InvocationStatus.RUNNING, 30, "the task to start")
        owner = app.orchestrator.get_state(inv.invocation_id).owner  # type: ignore[union-attr]
        victim = next(r for r in app.state_backend.get_runners() if r.runner_id == owner)
        procs[victim.pid].send_signal(signal.SIGKILL)
        killed_at = time.time()
        procs[victim.pid].wait(10)
        assert inv.get_result(timeout_sec=30) == 1.0
        history = inv.history
        recovered = next(h for h in history if h.status is InvocationStatus.RUNNING_RECOVERY)
        assert recovered.runner_id != owner
        # dead after `timeout` of silence, noticed at the next beat of the survivor
        assert recovered.timestamp - killed_at <= timeout + interval + 0.5
        assert [h.status for h in history][-1] is InvocationStatus.SUCCESS
    finally:
        for proc in procs.values():
            stop_runner_process(proc)
        app.purge()
        app.close()
