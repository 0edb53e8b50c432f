"""Dead-runner and stuck-invocation recovery, run by every live runner each heartbeat.

A runner silent for ``runner_recovery_timeout`` is dead: its RUNNING (and PAUSED/RESUMED)
invocations go RUNNING_RECOVERY -> REROUTED, its PENDING ones PENDING_RECOVERY -> REROUTED,
and all are routed back to the broker. PENDING invocations older than
``max_pending_seconds`` are recovered the same way whoever owns them. The status machine
makes each step atomic, so several runners recovering at once never double-route.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pynenc.invocation.status import InvocationStatus

if TYPE_CHECKING:
    from pynenc.app import Pynenc

_RUNNING_LIKE = (InvocationStatus.RUNNING, InvocationStatus.PAUSED, InvocationStatus.RESUMED)


def _reroute(app: Pynenc, ids: Sequence[str], via: InvocationStatus, runner_id: str) -> list[str]:
    """Take ``ids`` over through ``via`` then REROUTED; returns the ids routed."""
    if not ids:
        return []
    orchestrator = app.orchestrator
    refused = orchestrator.set_statuses([(i, via) for i in ids], runner_id)
    taken = [i for i in ids if i not in refused]
    refused = orchestrator.set_statuses([(i, InvocationStatus.REROUTED) for i in taken], runner_id)
    routed = [i for i in taken if i not in refused]
    if routed:
        app.broker.route_invocations(routed)
    return routed


def recover_runner(app: Pynenc, dead_runner_id: str, runner_id: str) -> list[str]:
    """Re-queue everything ``dead_runner_id`` owned and forget it; returns the ids routed.

    Called on a stale heartbeat, or at once by a supervisor that saw the process die."""
    orchestrator = app.orchestrator
    running = orchestrator.find_invocations(statuses=_RUNNING_LIKE, owner=dead_runner_id)
    pending = orchestrator.find_invocations(
        statuses=(InvocationStatus.PENDING,), owner=dead_runner_id
    )
    routed = _reroute(
        app, [s.invocation_id for s in running], InvocationStatus.RUNNING_RECOVERY, runner_id
    )
    routed += _reroute(
        app, [s.invocation_id for s in pending], InvocationStatus.PENDING_RECOVERY, runner_id
    )
    app.state_backend.remove_runner(dead_runner_id)
    return routed


def recover_dead_runners(app: Pynenc, runner_id: str, now: float | None = None) -> list[str]:
    """Re-queue the work of every runner whose heartbeat is too old; returns ids routed."""
    now = time.time() if now is None else now
    limit = now - app.conf.runner_recovery_timeout
    routed: list[str] = []
    for info in app.state_backend.get_runners():
        if info.runner_id == runner_id or info.last_heartbeat >= limit:
            continue
        recovered = recover_runner(app, info.runner_id, runner_id)
        routed += recovered
        app.logger.warning(
            "Runner %s silent since %.1fs: recovered %d invocations",
            info.runner_id,
            now - info.last_heartbeat,
            len(recovered),
        )
    return routed


def recover_stuck_pending(app: Pynenc, runner_id: str, now: float | None = None) -> list[str]:
    """Re-queue PENDING invocations older than ``max_pending_seconds``."""
    now = time.time() if now is None else now
    stuck = app.orchestrator.find_invocations(
        statuses=(InvocationStatus.PENDING,),
        updated_before=now - app.conf.max_pending_seconds,
    )
    routed = _reroute(
        app, [s.invocation_id for s in stuck], InvocationStatus.PENDING_RECOVERY, runner_id
    )
    if routed:
        app.logger.warning("Recovered %d invocations stuck in PENDING", len(routed))
    return routed
