"""Write finished invocations in batches: results, exceptions, statuses, retries."""

from __future__ import annotations

import queue
import threading
from collections import defaultdict
from typing import TYPE_CHECKING

from pynenc.invocation.status import InvocationStatus

if TYPE_CHECKING:
    from pynenc.app import Pynenc
    from pynenc.runner.execution import Outcome

MAX_BATCH = 500
# outcomes that hand the invocation back to the broker once recorded
_ROUTED = frozenset({InvocationStatus.RETRY, InvocationStatus.REROUTED})


class OutcomeWriter:
    """A thread that drains finished outcomes and writes each batch in a few calls.

    Under load many outcomes share one write; a lone outcome is written at once (the
    thread blocks on the queue, it never sleeps)."""

    def __init__(self, app: Pynenc, runner_id: str) -> None:
        self.app = app
        self.runner_id = runner_id
        self._queue: queue.SimpleQueue[Outcome | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="pynenc-outcomes", daemon=True)
        self._pending = 0
        self._idle = threading.Condition()

    def start(self) -> None:
        self._thread.start()

    def put(self, outcome: Outcome) -> None:
        with self._idle:
            self._pending += 1
        self._queue.put(outcome)

    def put_many(self, outcomes: list[Outcome]) -> None:
        """``put`` each, in order, for the price of one."""
        if not outcomes:
            return
        with self._idle:
            self._pending += len(outcomes)
        for outcome in outcomes:
            self._queue.put(outcome)

    def stop(self) -> None:
        """Write everything queued so far, then end the thread."""
        self._queue.put(None)
        self._thread.join()

    def wait_idle(self, timeout_sec: float | None = None) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout_sec)

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            batch = [] if item is None else [item]
            stopping = item is None
            while not stopping and len(batch) < MAX_BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                else:
                    batch.append(more)
            if batch:
                try:
                    self.write(batch)
                except Exception:
                    self.app.logger.exception("Could not write %d outcomes", len(batch))
                with self._idle:
                    self._pending -= len(batch)
                    self._idle.notify_all()
            if stopping:
                return

    def write(self, batch: list[Outcome]) -> None:
        results = [(o.invocation_id, o.result) for o in batch if o.result is not None]
        exceptions = [(o.invocation_id, o.exception) for o in batch if o.exception is not None]
        errors = self.app.orchestrator.finish_invocations(
            [(o.invocation_id, o.status) for o in batch], results, exceptions, self.runner_id
        )
        for invocation_id, error in errors.items():
            self.app.logger.warning("Outcome of %s not recorded: %s", invocation_id, error)
        retries: dict[float, list[str]] = defaultdict(list)  # RETRY and REROUTED go back
        for o in batch:
            if o.status in _ROUTED and o.invocation_id not in errors:
                retries[o.retry_delay].append(o.invocation_id)
        for delay, ids in retries.items():
            self.app.broker.route_invocations(ids, delay_sec=delay)
        if self.app.trigger_definitions:  # costless when no triggers are defined
            try:
                self.app.trigger.report_outcomes(
                    [o for o in batch if o.invocation_id not in errors]
                )
            except Exception:
                self.app.logger.exception("Trigger evaluation of %d outcomes failed", len(batch))
