"""Orchestrator contract: every status change goes through here, atomically.

Backends implement a handful of primitives (``_register``, ``_claim``, ``_apply`` ...) that
apply :func:`pynenc.invocation.status.compute_transition` inside one atomic step; this base
adds the history records and the wake-ups of callers waiting on results.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pynenc.invocation.record import InvocationRecord, InvocationState, Registration
from pynenc.invocation.status import InvocationStatus, StatusRecord

if TYPE_CHECKING:
    from pynenc.app import Pynenc
    from pynenc.exceptions import StatusTransitionError

# Statuses during which an invocation holds its running-concurrency slot.
ACTIVE_STATUSES = frozenset(
    {
        InvocationStatus.PENDING,
        InvocationStatus.RUNNING,
        InvocationStatus.PAUSED,
        InvocationStatus.RESUMED,
    }
)


@dataclass(slots=True)
class ClaimResult:
    """Outcome of a batch claim: ids now PENDING for the runner, and ids refused by
    running concurrency control: parked (CONCURRENCY_CONTROLLED, re-routed by the
    orchestrator when the key frees) or ended (CONCURRENCY_CONTROLLED_FINAL)."""

    claimed: list[str] = field(default_factory=list)
    controlled: list[str] = field(default_factory=list)
    final: list[str] = field(default_factory=list)
    num_retries: dict[str, int] = field(default_factory=dict)  # of the claimed ids
    # the claimed ids' records, when the backend could read them in the same round trip
    records: dict[str, InvocationRecord] | None = None


class BaseOrchestrator(ABC):
    def __init__(self, app: Pynenc) -> None:
        self.app = app

    # --- primitives each backend implements atomically -------------------------------

    @abstractmethod
    def _register(self, registrations: Sequence[Registration], now: float) -> list[str]:
        """Track new invocations as REGISTERED.

        For a registration with a ``registration_key`` that a non-final invocation already
        holds, nothing is stored and the holder's id is returned in its place (raise
        ``KeyArgumentsMismatchError`` when ``non_key_arguments`` differ and the task asked
        for it — signalled by the caller via ``Registration.non_key_arguments``).
        Returns, per registration, the id that represents it.
        """

    @abstractmethod
    def _claim(
        self, invocation_ids: Sequence[str], runner_id: str, now: float, start: bool
    ) -> ClaimResult:
        """Move claimable ids (``is_available_for_run``) to PENDING owned by ``runner_id``,
        and on to RUNNING in the same step when ``start`` is set. Fills ``num_retries``.

        An id whose ``running_key`` is held by another active invocation (or an earlier id
        in the same batch) goes to CONCURRENCY_CONTROLLED and is parked on that key (or to
        CONCURRENCY_CONTROLLED_FINAL when its registration said not to reroute). Ids in any
        other status are skipped silently (another runner got them).
        """

    @abstractmethod
    def _apply(
        self, changes: Sequence[tuple[str, InvocationStatus]], runner_id: str | None, now: float
    ) -> tuple[list[tuple[str, InvocationStatus]], dict[str, StatusTransitionError], list[str]]:
        """Apply each change through ``compute_transition``; RETRY also increments
        ``num_retries``. One bad change never blocks the others.

        Returns (applied changes, errors by id, parked ids to route): when a change frees a
        running key, the oldest CONCURRENCY_CONTROLLED invocation parked on that key is
        handed back so it can run next (parked ones are not re-queued until then, so a
        controlled task never spins through the broker)."""

    @abstractmethod
    def get_states(self, invocation_ids: Sequence[str]) -> dict[str, InvocationState]:
        """Current states by id; unknown ids are absent."""

    @abstractmethod
    def find_invocations(
        self,
        statuses: Iterable[InvocationStatus] | None = None,
        updated_before: float | None = None,
        owner: str | None = None,
        task_id: str | None = None,
        limit: int | None = None,
    ) -> list[InvocationState]:
        """Invocations matching every given filter, most recently updated first."""

    @abstractmethod
    def count_by_status(self) -> dict[InvocationStatus, int]:
        """How many invocations are in each status (statuses with none are omitted)."""

    @abstractmethod
    def wait_for_final(self, invocation_ids: Sequence[str], timeout_sec: float | None) -> bool:
        """Block until every id is final (True) or the timeout passes (False).

        Must be woken by the final transitions themselves (condition, notification), not
        by a loop of sleeps; a coarse periodic re-check as a safety net is fine.
        """

    def delivered_results(self, invocation_ids: Sequence[str]) -> dict[str, bytes]:
        """Stored results of ``invocation_ids`` that came with the news of their end during
        this thread's last ``wait_for_final`` (saves reading them back); may be empty."""
        return {}

    @abstractmethod
    def purge(self) -> None:
        """Forget every invocation of this app."""

    def _after_apply(self, applied: Sequence[tuple[str, InvocationStatus]]) -> None:
        """Hook after a successful batch (backends notify waiters of final ones here)."""

    def close(self) -> None:
        """Release connections."""

    # --- the public operations, shared by every backend ------------------------------

    def register_invocations(self, registrations: Sequence[Registration]) -> list[str]:
        now = time.time()
        ids = self._register(registrations, now)
        fresh = {r.invocation_id for r in registrations}
        self._record([(i, InvocationStatus.REGISTERED) for i in ids if i in fresh], None, now)
        return ids

    def submit_invocations(
        self, registrations: Sequence[Registration], records: Sequence[InvocationRecord]
    ) -> list[str]:
        """Register, store and queue new invocations: the client's whole write for a batch.

        ``records[i]`` belongs to ``registrations[i]``. Returns, per registration, the id
        that stands for it (an existing one under registration concurrency; those records
        are dropped). Backends sharing storage with the state backend and broker override
        this to do it in one round trip."""
        ids = self.register_invocations(registrations)
        fresh = [r for r, i in zip(records, ids, strict=True) if r.invocation_id == i]
        if fresh:
            self.app.state_backend.store_invocations(fresh)
            self.app.broker.route_invocations([r.invocation_id for r in fresh])
        return ids

    def claim_invocations(
        self, invocation_ids: Sequence[str], runner_id: str, start: bool = False
    ) -> ClaimResult:
        """Claim a batch for ``runner_id`` (PENDING; RUNNING too with ``start``)."""
        if not invocation_ids:
            return ClaimResult()
        now = time.time()
        result = self._claim(invocation_ids, runner_id, now, start)
        self._claimed(result, runner_id, now, start)
        return result

    def _claimed(self, result: ClaimResult, runner_id: str, now: float, start: bool) -> None:
        entries = [(i, InvocationStatus.PENDING) for i in result.claimed]
        if start:
            entries += [(i, InvocationStatus.RUNNING) for i in result.claimed]
        entries += [(i, InvocationStatus.CONCURRENCY_CONTROLLED) for i in result.controlled]
        entries += [(i, InvocationStatus.CONCURRENCY_CONTROLLED_FINAL) for i in result.final]
        self._record(entries, runner_id, now)

    def claim_next(
        self, max_count: int, timeout_sec: float, runner_id: str, start: bool = False
    ) -> ClaimResult:
        """Pop up to ``max_count`` ids from the app's broker and claim them.

        Blocks up to ``timeout_sec`` for work. Backends that share storage with the broker
        override this to pop and claim in one atomic step."""
        ids = self.app.broker.retrieve_invocations(max_count, timeout_sec)
        return self.claim_invocations(ids, runner_id, start)

    def set_statuses(
        self, changes: Sequence[tuple[str, InvocationStatus]], runner_id: str | None
    ) -> dict[str, StatusTransitionError]:
        """Apply a batch of changes; returns the ones refused, by id."""
        if not changes:
            return {}
        now = time.time()
        applied, errors, unparked = self._apply(changes, runner_id, now)
        self._applied(applied, unparked, runner_id, now)
        return errors

    def finish_invocations(
        self,
        changes: Sequence[tuple[str, InvocationStatus]],
        results: Sequence[tuple[str, bytes]],
        exceptions: Sequence[tuple[str, bytes]],
        runner_id: str | None,
    ) -> dict[str, StatusTransitionError]:
        """Store results and exceptions, then apply the final changes of a batch.

        Results are stored first, so a caller woken by SUCCESS always finds its result.
        Backends that share storage with the state backend override this to do it all in
        one round trip."""
        state = self.app.state_backend
        if results:
            state.store_results(results)
        if exceptions:
            state.store_exceptions(exceptions)
        return self.set_statuses(changes, runner_id)

    def _applied(
        self,
        applied: Sequence[tuple[str, InvocationStatus]],
        unparked: Sequence[str],
        runner_id: str | None,
        now: float,
    ) -> None:
        """After a batch: history, hand un-parked ids to the broker, wake waiters."""
        self._record(applied, runner_id, now)
        if unparked:
            self.app.broker.route_invocations(unparked)
        self._after_apply(applied)

    def set_status(
        self, invocation_id: str, status: InvocationStatus, runner_id: str | None
    ) -> None:
        """Apply one change or raise the status machine's error."""
        errors = self.set_statuses([(invocation_id, status)], runner_id)
        if invocation_id in errors:
            raise errors[invocation_id]

    def get_state(self, invocation_id: str) -> InvocationState | None:
        return self.get_states([invocation_id]).get(invocation_id)

    def _record(
        self, entries: Sequence[tuple[str, InvocationStatus]], runner_id: str | None, now: float
    ) -> None:
        if entries:
            self.app.state_backend.add_history(
                [(i, StatusRecord(status, now, runner_id)) for i, status in entries]
            )
