"""What every runner shares: identity, heartbeats, claiming, outcomes, graceful stop."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from types import FrameType
from typing import TYPE_CHECKING

from pynenc.conf.config_runner import ConfigRunner
from pynenc.context import InvocationContext, current_runner_id
from pynenc.identifiers import new_runner_id
from pynenc.invocation.record import InvocationRecord
from pynenc.invocation.status import InvocationStatus
from pynenc.runner.outcomes import OutcomeWriter
from pynenc.runner.pacing import ClaimPacer
from pynenc.runner.recovery import recover_dead_runners, recover_stuck_pending
from pynenc.state_backend.base import RunnerInfo

if TYPE_CHECKING:
    from pynenc.app import Pynenc


class BaseRunner(ABC):
    """A runner process (or, for tests, a thread) serving one app."""

    kind = "runner"
    config_cls: type[ConfigRunner] = ConfigRunner
    # claim_next moves claims straight to RUNNING; a runner that queues claimed work and
    # reports each start itself sets this False (its claims stay PENDING until then)
    start_on_claim = True

    def __init__(self, app: Pynenc) -> None:
        self.app = app
        self.conf = self.config_cls(app.config_values, app.config_filepath)
        self.runner_id = new_runner_id(self.kind)
        self.started_at = time.time()
        self.stop_event = threading.Event()
        self.started_event = threading.Event()
        self.outcomes = OutcomeWriter(app, self.runner_id)
        self._heartbeat_thread: threading.Thread | None = None
        self._pacer = ClaimPacer(self.conf.claim_linger_sec, self.conf.claim_linger_max_sec)

    # --- lifecycle ----------------------------------------------------------------------

    def run(self) -> None:
        """Serve until ``stop()`` or SIGTERM/SIGINT; then drain and return."""
        current_runner_id.set(self.runner_id)
        # build components here, so a bad config fails at once and not in a thread
        _ = (self.app.broker, self.app.orchestrator, self.app.state_backend)
        self._start_triggers()  # a trigger module that does not import fails here, at once
        self._install_signal_handlers()
        self.outcomes.start()
        self._heartbeat_thread = threading.Thread(
            target=self._heartbeat_loop, name="pynenc-heartbeat", daemon=True
        )
        self._heartbeat_thread.start()
        self.app.logger.info("Runner %s started (%s)", self.runner_id, type(self).__name__)
        self.started_event.set()
        try:
            self.serve()
        finally:
            self._shutdown()

    def stop(self) -> None:
        self.stop_event.set()

    def _start_triggers(self) -> None:
        """Import ``trigger_task_modules`` and, when the app has triggers, start the loop."""
        import importlib

        for module in self.app.conf.trigger_task_modules:
            importlib.import_module(module)
        if not self.app.trigger_definitions:
            return
        from pynenc.trigger.loop import TriggerLoop

        TriggerLoop(self.app, self.stop_event).start()

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def handle(signum: int, _frame: FrameType | None) -> None:
            self.app.logger.info("Runner %s got signal %d: draining", self.runner_id, signum)
            self.stop()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    def _shutdown(self) -> None:
        self.drain(self.conf.graceful_shutdown_timeout_sec)
        self.outcomes.stop()
        self._requeue_owned()
        self.app.state_backend.remove_runner(self.runner_id)
        self.app.logger.info("Runner %s stopped", self.runner_id)

    def _requeue_owned(self) -> None:
        """Send back to the queue whatever this runner still owns (did not finish)."""
        owned = self.app.orchestrator.find_invocations(
            statuses=(
                InvocationStatus.PENDING,
                InvocationStatus.RUNNING,
                InvocationStatus.PAUSED,
                InvocationStatus.RESUMED,
            ),
            owner=self.runner_id,
        )
        if not owned:
            return
        ids = [s.invocation_id for s in owned]
        errors = self.app.orchestrator.set_statuses(
            [(i, InvocationStatus.REROUTED) for i in ids], self.runner_id
        )
        rerouted = [i for i in ids if i not in errors]
        self.app.broker.route_invocations(rerouted)
        self.app.logger.warning(
            "Runner %s re-queued %d unfinished invocations", self.runner_id, len(rerouted)
        )

    def _heartbeat_loop(self) -> None:
        info = RunnerInfo(
            self.runner_id,
            socket.gethostname(),
            os.getpid(),
            type(self).__name__,
            self.started_at,
            time.time(),
        )
        interval = self.app.conf.runner_heartbeat_interval
        while True:
            info.last_heartbeat = time.time()
            try:
                self.app.state_backend.store_runner_heartbeat(info)
                recover_dead_runners(self.app, self.runner_id)
                recover_stuck_pending(self.app, self.runner_id)
            except Exception:  # a missed beat is retried next interval
                self.app.logger.exception("Heartbeat of %s failed", self.runner_id)
            if self.stop_event.wait(interval):
                return

    # --- claiming -----------------------------------------------------------------------

    def claim_next(self, max_count: int, timeout_sec: float) -> list[tuple[InvocationRecord, int]]:
        """Take up to ``max_count`` invocations from the broker into RUNNING (PENDING when
        ``start_on_claim`` is off); returns (record, num_retries) pairs to execute."""
        orchestrator, start, pacer = self.app.orchestrator, self.start_on_claim, self._pacer
        linger = pacer.linger_sec()
        if linger:
            self.stop_event.wait(linger)
        claim = orchestrator.claim_next(max_count, 0, self.runner_id, start=start)  # no wait
        waited: float | None = None
        if not claim.claimed:
            began = time.monotonic()
            claim = orchestrator.claim_next(max_count, timeout_sec, self.runner_id, start=start)
            waited = time.monotonic() - began
        pacer.claimed(len(claim.claimed), max_count, waited)
        if not claim.claimed:
            return []
        records = claim.records
        if records is None:
            records = self.app.state_backend.get_invocations(claim.claimed)
        if self.start_on_claim and self.app.trigger_definitions:  # claimed straight to RUNNING
            self.app.trigger.report_started([records[i] for i in claim.claimed if i in records])
        return [(records[i], claim.num_retries[i]) for i in claim.claimed if i in records]

    # --- what each runner defines -------------------------------------------------------

    @abstractmethod
    def serve(self) -> None:
        """The main loop: until ``stop_event`` is set, take work and execute it."""

    @abstractmethod
    def drain(self, timeout_sec: float) -> None:
        """Let running work finish, up to ``timeout_sec``."""

    @abstractmethod
    def wait_for_invocations(
        self, ctx: InvocationContext, invocation_ids: Sequence[str], timeout_sec: float | None
    ) -> bool:
        """A running task waits on sub-invocations: free its slot while it waits."""
