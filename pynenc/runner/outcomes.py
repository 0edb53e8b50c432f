"""Write finished invocations in batches: results, exceptions, statuses, retries."""

from __future__ import annotations

import queue
import threading
from collections import defaultdict
from typing import TYPE_CHECKING

from pynenc.invocation.status import InvocationStatus
from pynenc.runner.execution import Outcome

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pynenc.app import Pynenc

MAX_BATCH = 500
# outcomes that hand the invocation back to the broker once recorded
ROUTED = frozenset({InvocationStatus.RETRY, InvocationStatus.REROUTED})


class OutcomeBatch:
    """Status changes as the columns ``finish_invocations`` takes, with no object per
    change: ``ids[i]`` moves to ``statuses[i]``; ``results`` / ``exceptions`` are the
    (id, bytes) pairs to store; ``retries`` the (id, delay_sec) to hand back to the broker.

    A result, exception or delay belongs to its id's last change in the batch (an
    invocation ends, or goes back to the broker, at most once per batch: the broker gets
    it again only after the batch is written)."""

    __slots__ = ("exceptions", "ids", "results", "retries", "statuses")

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.statuses: list[InvocationStatus] = []
        self.results: list[tuple[str, bytes]] = []
        self.exceptions: list[tuple[str, bytes]] = []
        self.retries: list[tuple[str, float]] = []

    @classmethod
    def of(cls, outcomes: Iterable[Outcome]) -> OutcomeBatch:
        batch = cls()
        for outcome in outcomes:
            batch.add(outcome)
        return batch

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, outcome: Outcome) -> None:
        invocation_id = outcome.invocation_id
        self.ids.append(invocation_id)
        self.statuses.append(outcome.status)
        if outcome.result is not None:
            self.results.append((invocation_id, outcome.result))
        if outcome.exception is not None:
            self.exceptions.append((invocation_id, outcome.exception))
        if outcome.status in ROUTED:
            self.retries.append((invocation_id, outcome.retry_delay))

    def extend(self, other: OutcomeBatch) -> None:
        self.ids += other.ids
        self.statuses += other.statuses
        self.results += other.results
        self.exceptions += other.exceptions
        self.retries += other.retries

    def changes(self) -> list[tuple[str, InvocationStatus]]:
        return list(zip(self.ids, self.statuses, strict=True))

    def outcomes(self) -> list[Outcome]:
        """One Outcome per change (built only for those who need objects: triggers)."""
        last = {invocation_id: index for index, invocation_id in enumerate(self.ids)}
        results, exceptions = dict(self.results), dict(self.exceptions)
        delays = dict(self.retries)
        outcomes = []
        for index, (invocation_id, status) in enumerate(zip(self.ids, self.statuses, strict=True)):
            if last[invocation_id] == index:
                outcomes.append(
                    Outcome(
                        invocation_id,
                        status,
                        results.get(invocation_id),
                        exceptions.get(invocation_id),
                        delays.get(invocation_id, 0.0),
                    )
                )
            else:
                outcomes.append(Outcome(invocation_id, status))
        return outcomes


class OutcomeWriter:
    """A thread that drains finished outcomes and writes each batch in a few calls.

    Under load many outcomes share one write; a lone outcome is written at once (the
    thread blocks on the queue, it never sleeps)."""

    def __init__(self, app: Pynenc, runner_id: str) -> None:
        self.app = app
        self.runner_id = runner_id
        self._queue: queue.SimpleQueue[Outcome | OutcomeBatch | None] = queue.SimpleQueue()
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
        if outcomes:
            self.put_batch(OutcomeBatch.of(outcomes))

    def put_batch(self, batch: OutcomeBatch) -> None:
        """Queue a whole batch of changes (the caller hands it over: no copy is made)."""
        if not batch:
            return
        with self._idle:
            self._pending += len(batch)
        self._queue.put(batch)

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
            stopping = item is None
            batch = OutcomeBatch()
            while item is not None:
                if isinstance(item, Outcome):
                    batch.add(item)
                elif batch:
                    batch.extend(item)
                else:
                    batch = item  # the usual case: one reader's batch, taken as it is
                if len(batch) >= MAX_BATCH:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                stopping = item is None
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

    def write(self, batch: OutcomeBatch) -> None:
        errors = self.app.orchestrator.finish_invocations(
            batch.changes(), batch.results, batch.exceptions, self.runner_id
        )
        for invocation_id, error in errors.items():
            self.app.logger.warning("Outcome of %s not recorded: %s", invocation_id, error)
        retries: dict[float, list[str]] = defaultdict(list)  # RETRY and REROUTED go back
        for invocation_id, delay in batch.retries:
            if invocation_id not in errors:
                retries[delay].append(invocation_id)
        for delay, ids in retries.items():
            self.app.broker.route_invocations(ids, delay_sec=delay)
        if self.app.trigger_definitions:  # costless when no triggers are defined
            try:
                self.app.trigger.report_outcomes(
                    [o for o in batch.outcomes() if o.invocation_id not in errors]
                )
            except Exception:
                self.app.logger.exception("Trigger evaluation of %d outcomes failed", len(batch))
