"""Memory orchestrator: the status machine applied under one condition variable."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pynenc.exceptions import KeyArgumentsMismatchError, StatusTransitionError
from pynenc.invocation.record import InvocationState, Registration
from pynenc.invocation.status import InvocationStatus, check_transitions, compute_transition
from pynenc.orchestrator.base import ACTIVE_STATUSES, BaseOrchestrator, ClaimResult

if TYPE_CHECKING:
    from pynenc.app import Pynenc


@dataclass(slots=True)
class _Entry:
    task_id: str
    status: InvocationStatus
    owner: str | None
    num_retries: int
    updated_at: float
    registration_key: str | None
    running_key: str | None
    non_key_arguments: str | None
    reroute_on_control: bool


class MemOrchestrator(BaseOrchestrator):
    def __init__(self, app: Pynenc) -> None:
        super().__init__(app)
        self._cond = threading.Condition()
        self._entries: dict[str, _Entry] = {}
        # registration_key -> id of the non-final invocation holding it
        self._registered: dict[str, str] = {}
        # running_key -> ids currently in an active status
        self._running: dict[str, set[str]] = {}
        # running_key -> CONCURRENCY_CONTROLLED ids waiting for the key, oldest first
        self._parked: dict[str, deque[str]] = {}

    def _register(self, registrations: Sequence[Registration], now: float) -> list[str]:
        ids: list[str] = []
        staged: dict[str, _Entry] = {}  # committed only if the whole batch is accepted
        held: dict[str, str] = {}
        with self._cond:
            for reg in registrations:
                key = reg.registration_key or ""
                holder = held.get(key) or self._registered.get(key)
                if holder is not None:
                    entry = staged.get(holder) or self._entries[holder]
                    self._check_non_key_arguments(reg, entry)
                    ids.append(holder)
                    continue
                staged[reg.invocation_id] = _Entry(
                    reg.task_id,
                    InvocationStatus.REGISTERED,
                    None,
                    0,
                    now,
                    reg.registration_key,
                    reg.running_key,
                    reg.non_key_arguments,
                    reg.reroute_on_control,
                )
                if key:
                    held[key] = reg.invocation_id
                ids.append(reg.invocation_id)
            self._entries.update(staged)
            self._registered.update(held)
        return ids

    @staticmethod
    def _check_non_key_arguments(reg: Registration, holder: _Entry) -> None:
        if reg.non_key_arguments is not None and reg.non_key_arguments != holder.non_key_arguments:
            raise KeyArgumentsMismatchError(
                f"Task '{reg.task_id}' already has a pending invocation with the same key "
                "arguments but different other arguments (on_diff_non_key_args_raise=True)."
            )

    def _set(
        self, invocation_id: str, entry: _Entry, status: InvocationStatus, now: float
    ) -> str | None:
        """Change an entry's status; returns a parked id whose running key just freed."""
        was_active = entry.status in ACTIVE_STATUSES
        entry.status, entry.updated_at = status, now
        key = entry.registration_key
        if status.is_final and key and self._registered.get(key) == invocation_id:
            del self._registered[key]
        key = entry.running_key
        if not key:
            return None
        holders = self._running.setdefault(key, set())
        if status in ACTIVE_STATUSES:
            holders.add(invocation_id)
        elif was_active:
            holders.discard(invocation_id)
            parked = self._parked.get(key)
            while not holders and parked:
                # skip ids that left CONCURRENCY_CONTROLLED some other way (e.g. KILLED)
                candidate = parked.popleft()
                if self._entries[candidate].status is InvocationStatus.CONCURRENCY_CONTROLLED:
                    return candidate
        return None

    def _claim(
        self, invocation_ids: Sequence[str], runner_id: str, now: float, start: bool
    ) -> ClaimResult:
        result = ClaimResult()
        with self._cond:
            for invocation_id in invocation_ids:
                entry = self._entries.get(invocation_id)
                if entry is None or not entry.status.is_available_for_run:
                    continue
                if entry.running_key and self._running.get(entry.running_key):
                    self._control(invocation_id, entry, result, now)
                    continue
                entry.owner = compute_transition(
                    entry.status, InvocationStatus.PENDING, entry.owner, runner_id, invocation_id
                )
                self._set(invocation_id, entry, InvocationStatus.PENDING, now)
                if start:
                    self._set(invocation_id, entry, InvocationStatus.RUNNING, now)
                result.claimed.append(invocation_id)
                result.num_retries[invocation_id] = entry.num_retries
        return result

    def _control(self, invocation_id: str, entry: _Entry, result: ClaimResult, now: float) -> None:
        entry.owner = None
        if not entry.reroute_on_control:
            self._set(invocation_id, entry, InvocationStatus.CONCURRENCY_CONTROLLED_FINAL, now)
            result.final.append(invocation_id)
            self._cond.notify_all()
            return
        entry.status, entry.updated_at = InvocationStatus.CONCURRENCY_CONTROLLED, now
        assert entry.running_key
        self._parked.setdefault(entry.running_key, deque()).append(invocation_id)
        result.controlled.append(invocation_id)

    def _apply(
        self, changes: Sequence[tuple[str, InvocationStatus]], runner_id: str | None, now: float
    ) -> tuple[list[tuple[str, InvocationStatus]], dict[str, StatusTransitionError], list[str]]:
        applied: list[tuple[str, InvocationStatus]] = []
        errors: dict[str, StatusTransitionError] = {}
        unparked: list[str] = []
        with self._cond:
            entries = self._entries
            moves = [
                (i, entry.status, InvocationStatus(s), entry.owner)
                if (entry := entries.get(i))
                else (i, None, InvocationStatus(s), None)
                for i, s in changes
            ]
            verdicts = check_transitions(moves, runner_id)
            for (invocation_id, _, status, _), owner in zip(moves, verdicts, strict=True):
                if isinstance(owner, StatusTransitionError):
                    errors[invocation_id] = owner
                    continue
                entry = entries[invocation_id]  # a transition from None is only to REGISTERED
                entry.owner = owner
                if status is InvocationStatus.RETRY:
                    entry.num_retries += 1
                if (freed := self._set(invocation_id, entry, status, now)) is not None:
                    unparked.append(freed)
                applied.append((invocation_id, status))
            if any(status.is_final for _, status in applied):
                self._cond.notify_all()
        return applied, errors, unparked

    def get_states(self, invocation_ids: Sequence[str]) -> dict[str, InvocationState]:
        with self._cond:
            return {
                i: self._state(i, e)
                for i in invocation_ids
                if (e := self._entries.get(i)) is not None
            }

    @staticmethod
    def _state(invocation_id: str, e: _Entry) -> InvocationState:
        return InvocationState(
            invocation_id, e.task_id, e.status, e.owner, e.num_retries, e.updated_at
        )

    def find_invocations(
        self,
        statuses: Iterable[InvocationStatus] | None = None,
        updated_before: float | None = None,
        owner: str | None = None,
        task_id: str | None = None,
        limit: int | None = None,
    ) -> list[InvocationState]:
        wanted = set(statuses) if statuses is not None else None
        with self._cond:
            found = [
                self._state(i, e)
                for i, e in self._entries.items()
                if (wanted is None or e.status in wanted)
                and (updated_before is None or e.updated_at < updated_before)
                and (owner is None or e.owner == owner)
                and (task_id is None or e.task_id == task_id)
            ]
        found.sort(key=lambda s: -s.updated_at)
        return found[:limit] if limit is not None else found

    def count_by_status(self) -> dict[InvocationStatus, int]:
        counts: dict[InvocationStatus, int] = {}
        with self._cond:
            for e in self._entries.values():
                counts[e.status] = counts.get(e.status, 0) + 1
        return counts

    def wait_for_final(self, invocation_ids: Sequence[str], timeout_sec: float | None) -> bool:
        deadline = None if timeout_sec is None else time.monotonic() + timeout_sec
        pending = list(invocation_ids)
        with self._cond:
            while True:
                pending = [i for i in pending if not self._is_final(i)]
                if not pending:
                    return True
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)

    def _is_final(self, invocation_id: str) -> bool:
        entry = self._entries.get(invocation_id)
        return entry is not None and entry.status.is_final

    def purge(self) -> None:
        with self._cond:
            self._entries.clear()
            self._registered.clear()
            self._running.clear()
            self._parked.clear()
            self._cond.notify_all()
