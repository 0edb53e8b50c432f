"""Redis orchestrator: every batch is one Lua script applying the generated status table.

When the app's state backend and broker are Redis on the same server (the usual
``.redis()`` setup), a script also writes the batch's history, records, results and
exceptions, routes new and freed parked invocations, and pops from the broker and reads
the claimed records (``claim_next``), so a client's submission, a runner's claim and its
finish are one round trip each. Final transitions are published on the app's ``final``
channel, which wakes ``wait_for_final``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

import msgpack

from pynenc.backends.redis import scripts
from pynenc.backends.redis.broker import RedisBroker
from pynenc.backends.redis.connection import SAFETY_RECHECK_SEC, IdListener, client_for
from pynenc.backends.redis.keys import ORCHESTRATOR_KINDS, Keys
from pynenc.backends.redis.state_backend import (
    RedisStateBackend,
    decode_record,
    record_fields,
    workflow_parent,
)
from pynenc.exceptions import (
    InvalidStatusTransitionError,
    KeyArgumentsMismatchError,
    StatusOwnershipError,
    StatusTransitionError,
)
from pynenc.invocation.record import InvocationRecord, InvocationState, Registration
from pynenc.invocation.status import InvocationStatus
from pynenc.orchestrator.base import BaseOrchestrator, ClaimResult

if TYPE_CHECKING:
    from redis.client import Pipeline

    from pynenc.app import Pynenc

_ALL_STATUSES = [s.value for s in InvocationStatus]

Changes = Sequence[tuple[str, InvocationStatus]]
Applied = tuple[list[tuple[str, InvocationStatus]], dict[str, StatusTransitionError], list[str]]


class RedisOrchestrator(BaseOrchestrator):
    def __init__(self, app: Pynenc) -> None:
        super().__init__(app)
        self.client, self.prefix = client_for(app)
        self.keys = Keys(self.prefix)
        self._listener = IdListener(self.client, self.keys.final, self.keys.final_values)
        self._delivered = threading.local()  # this thread's last wait's delivered results

    @cached_property
    def _inline_state(self) -> bool:
        """History, results and expiry of records go in the scripts: same server, same app."""
        backend = self.app.state_backend
        return (
            isinstance(backend, RedisStateBackend)
            and backend.client is self.client
            and backend.prefix == self.prefix
        )

    @cached_property
    def _inline_broker(self) -> bool:
        broker = self.app.broker
        return (
            isinstance(broker, RedisBroker)
            and broker.client is self.client
            and broker.prefix == self.prefix
        )

    def _record(self, entries: Changes, runner_id: str | None, now: float) -> None:
        if not self._inline_state:
            super()._record(entries, runner_id, now)

    def _args(self, now: float, runner_id: str | None) -> list[Any]:
        """ARGV[5..9] of the orchestrator scripts."""
        return [
            repr(now),
            "1" if self._inline_state else "0",
            "1" if self._inline_broker else "0",
            self._retention_ms(),
            runner_id or "",
        ]

    def _retention_ms(self) -> int:
        return max(int(self.app.conf.result_retention_sec * 1000), 1)

    # --- primitives ---------------------------------------------------------------------

    def _register(self, registrations: Sequence[Registration], now: float) -> list[str]:
        if not registrations:
            return []
        args = self._args(now, None)
        for r in registrations:
            args += _registration_args(r)
        return _holders(registrations, self.client.call(scripts.REGISTER, self.prefix, args))

    def submit_invocations(
        self, registrations: Sequence[Registration], records: Sequence[InvocationRecord]
    ) -> list[str]:
        """One SUBMIT script registers, stores the fresh records and (with the broker
        inline) queues them: one round trip."""
        if not self._inline_state or not registrations:
            return super().submit_invocations(registrations, records)
        lone = len(registrations) == 1 and not registrations[0].registration_key
        if lone and self._inline_broker:
            return self._submit_one(registrations[0], records[0])
        rows: list[Any] = []
        pack = msgpack.Packer(use_bin_type=True).pack  # one packer for the batch's records
        for r, record in zip(registrations, records, strict=True):
            rows += _registration_args(r)
            rows += (pack(record_fields(record)), workflow_parent(record))
        # raw str type: the cmsgpack of Redis 7.0 reads no bin type (values stay bytes)
        args = [*self._args(time.time(), None), msgpack.packb(rows, use_bin_type=False)]
        ids = _holders(registrations, self.client.call(scripts.SUBMIT, self.prefix, args))
        if not self._inline_broker:
            fresh = [i for r, i in zip(registrations, ids, strict=True) if r.invocation_id == i]
            if fresh:
                self.app.broker.route_invocations(fresh)
        return ids

    def _submit_one(self, r: Registration, record: InvocationRecord) -> list[str]:
        """A lone fresh call: the lean SUBMIT_ONE (no batch to unpack, no reply kept)."""
        args = [
            self.prefix,
            repr(time.time()),
            self._retention_ms(),
            r.invocation_id,
            r.task_id,
            r.running_key or "",
            "" if r.non_key_arguments is None else "+" + r.non_key_arguments,
            "1" if r.reroute_on_control else "0",
            msgpack.packb(record_fields(record), use_bin_type=True),
            workflow_parent(record),
        ]
        self.client.call_repeatable(scripts.SUBMIT_ONE, args)
        return [r.invocation_id]

    def _claim(
        self, invocation_ids: Sequence[str], runner_id: str, now: float, start: bool
    ) -> ClaimResult:
        result, _, _ = self._claim_call(runner_id, now, start, 0, invocation_ids)
        return result

    def _claim_call(
        self, runner_id: str, now: float, start: bool, pop: int, ids: Sequence[str]
    ) -> tuple[ClaimResult, int, float]:
        """One CLAIM script: claim ``ids``, or first pop ``pop`` ids from the broker.
        Returns the claim, how many ids were popped and when the next delayed one is due."""
        args = [*self._args(now, runner_id), "1" if start else "0", pop, *ids]
        raw = self.client.call(scripts.CLAIM, self.prefix, args)
        values: list[bytes | None] | None = None
        if isinstance(raw, list):  # the state backend is inline: the records follow
            raw, *values = raw
        claimed, retries, controlled, final, popped, next_due = json.loads(raw)
        claimed = scripts.as_list(claimed)
        result = ClaimResult(
            claimed,
            scripts.as_list(controlled),
            scripts.as_list(final),
            {i: int(n) for i, n in zip(claimed, scripts.as_list(retries), strict=True)},
        )
        if values is not None:
            result.records = {
                i: decode_record(i, v) for i, v in zip(claimed, values, strict=True) if v
            }
        return result, int(popped), float(next_due)

    def claim_next(
        self, max_count: int, timeout_sec: float, runner_id: str, start: bool = False
    ) -> ClaimResult:
        if not self._inline_broker or max_count <= 0:
            return super().claim_next(max_count, timeout_sec, runner_id, start)
        broker: RedisBroker = self.app.broker  # type: ignore[assignment]
        claimed_at = [0.0]

        def attempt() -> tuple[ClaimResult | None, float]:
            claimed_at[0] = now = time.time()
            result, popped, next_due = self._claim_call(runner_id, now, start, max_count, ())
            return (result if popped else None), next_due

        result = broker.wait_for(attempt, timeout_sec)
        if result is None:
            return ClaimResult()
        self._claimed(result, runner_id, claimed_at[0], start)
        return result

    def _apply(self, changes: Changes, runner_id: str | None, now: float) -> Applied:
        """Unparked ids come back empty when the script routed them itself."""
        return self._apply_call(changes, (), (), runner_id, now)

    def finish_invocations(
        self,
        changes: Changes,
        results: Sequence[tuple[str, bytes]],
        exceptions: Sequence[tuple[str, bytes]],
        runner_id: str | None,
    ) -> dict[str, StatusTransitionError]:
        if not self._inline_state:
            return super().finish_invocations(changes, results, exceptions, runner_id)
        if not (changes or results or exceptions):
            return {}
        now = time.time()
        applied, errors, unparked = self._apply_call(changes, results, exceptions, runner_id, now)
        self._applied(applied, unparked, runner_id, now)
        return errors

    def _apply_call(
        self,
        changes: Changes,
        results: Sequence[tuple[str, bytes]],
        exceptions: Sequence[tuple[str, bytes]],
        runner_id: str | None,
        now: float,
    ) -> Applied:
        args = [*self._args(now, runner_id), len(results), len(exceptions)]
        for invocation_id, value in (*results, *exceptions):
            args += [invocation_id, value]
        statuses = [(i, InvocationStatus(s)) for i, s in changes]
        for invocation_id, status in statuses:
            args += [invocation_id, status.value]
        failures, unparked = json.loads(self.client.call(scripts.APPLY, self.prefix, args))
        errors: dict[str, StatusTransitionError] = {}
        failed: set[int] = set()
        for index, code, current, owner in scripts.as_list(failures):
            position = int(index) - 1
            invocation_id, status = statuses[position]
            failed.add(position)
            if code == "own":
                errors[invocation_id] = StatusOwnershipError(
                    invocation_id, status, owner or None, runner_id
                )
            else:
                previous = InvocationStatus(current) if current else None
                errors[invocation_id] = InvalidStatusTransitionError(
                    invocation_id, previous, status
                )
        applied = [change for k, change in enumerate(statuses) if k not in failed]
        return applied, errors, scripts.as_list(unparked)

    # --- queries ------------------------------------------------------------------------

    def get_states(self, invocation_ids: Sequence[str]) -> dict[str, InvocationState]:
        ids = list(dict.fromkeys(invocation_ids))
        if not ids:
            return {}
        flat = self.client.call_repeatable(scripts.STATES, [self.prefix, "", *ids])
        rows = (flat[k : k + 5] for k in range(0, len(flat), 5))
        return {i: _state(i, row) for i, row in zip(ids, rows, strict=True) if row[1]}

    def find_invocations(
        self,
        statuses: Iterable[InvocationStatus] | None = None,
        updated_before: float | None = None,
        owner: str | None = None,
        task_id: str | None = None,
        limit: int | None = None,
    ) -> list[InvocationState]:
        wanted = (
            _ALL_STATUSES
            if statuses is None
            else list(dict.fromkeys(InvocationStatus(s).value for s in statuses))
        )
        if not wanted or (limit is not None and limit <= 0):
            return []
        args = [
            self.prefix,
            "" if updated_before is None else repr(updated_before),
            "" if owner is None else "=" + owner,
            "" if task_id is None else "=" + task_id,
            limit or 0,
            *wanted,
        ]
        flat = self.client.call_repeatable(scripts.FIND, args)
        found = [_state(flat[k].decode(), flat[k + 1 : k + 6]) for k in range(0, len(flat), 6)]
        found.sort(key=lambda s: -s.updated_at)
        return found[:limit] if limit is not None else found

    def count_by_status(self) -> dict[InvocationStatus, int]:
        def count(pipe: Pipeline, status: InvocationStatus) -> object:
            key = self.keys.by_status(status.value)
            return pipe.zcard(key) if status.is_final else pipe.scard(key)

        counts = self.client.pipeline(lambda pipe: [count(pipe, s) for s in InvocationStatus])
        return {s: int(n) for s, n in zip(InvocationStatus, counts, strict=True) if n}

    # --- waiting ------------------------------------------------------------------------

    def wait_for_final(self, invocation_ids: Sequence[str], timeout_sec: float | None) -> bool:
        pending = set(invocation_ids)
        if not pending:
            return True
        if timeout_sec is not None and timeout_sec <= 0:
            return not pending - self._final_among(pending)
        deadline = None if timeout_sec is None else time.monotonic() + timeout_sec
        listener = self._listener
        # subscribed before looking: a final status set after the look still wakes us
        watch = listener.watch(pending, SAFETY_RECHECK_SEC if timeout_sec is None else timeout_sec)
        self._delivered.values = watch.values
        try:
            recheck = True
            while True:
                if recheck and listener.remove(watch, self._final_among(listener.snapshot(watch))):
                    return True
                remaining = _remaining(deadline)
                if remaining is not None and remaining <= 0:
                    return False
                wait = (
                    SAFETY_RECHECK_SEC if remaining is None else min(remaining, SAFETY_RECHECK_SEC)
                )
                woken = watch.event.wait(wait)
                watch.event.clear()
                if not listener.snapshot(watch):
                    return True
                # the safety re-check reads every pending id: only when announcements
                # stopped coming (a long wait on many ids keeps seeing progress)
                recheck = watch.recheck or (not woken and not watch.progressed)
                watch.recheck = watch.progressed = False
        finally:
            listener.unwatch(watch)

    def delivered_results(self, invocation_ids: Sequence[str]) -> dict[str, bytes]:
        values: dict[str, bytes] | None = getattr(self._delivered, "values", None)
        if not values:
            return {}
        return {i: values[i] for i in invocation_ids if i in values}

    def _final_among(self, invocation_ids: set[str]) -> set[str]:
        if not invocation_ids:
            return set()
        if len(invocation_ids) == 1:  # a plain HGET costs the server a third of a script call
            (invocation_id,) = invocation_ids
            raw = self.client.execute("HGET", self.keys.invocation(invocation_id), "s")
            final = raw is not None and InvocationStatus(raw.decode()).is_final
            return {invocation_id} if final else set()
        found = self.client.call_repeatable(scripts.FINAL_AMONG, [self.prefix, "", *invocation_ids])
        return {raw.decode() for raw in found}

    def purge(self) -> None:
        self.client.unlink_kinds(self.prefix, ORCHESTRATOR_KINDS)

    def close(self) -> None:
        self._listener.close()
        self.client.close()


def _registration_args(r: Registration) -> list[Any]:
    """The six script arguments of one registration (see ``scripts.REGISTER_LUA``)."""
    return [
        r.invocation_id,
        r.task_id,
        r.registration_key or "",
        r.running_key or "",
        "" if r.non_key_arguments is None else "+" + r.non_key_arguments,
        "1" if r.reroute_on_control else "0",
    ]


def _holders(registrations: Sequence[Registration], raw: Any) -> list[str]:
    """Per registration, the id standing for it, from a REGISTER or SUBMIT reply."""
    outcome, detail = json.loads(raw)
    if outcome == "mismatch":
        raise KeyArgumentsMismatchError(
            f"Task '{detail}' already has a pending invocation with the same key "
            "arguments but different other arguments (on_diff_non_key_args_raise=True)."
        )
    ids = [r.invocation_id for r in registrations]
    for index, holder in scripts.as_list(detail):
        ids[int(index) - 1] = holder
    return ids


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()


def _state(invocation_id: str, row: Sequence[Any]) -> InvocationState:
    task_id, status, owner, num_retries, updated_at = (
        v.decode() if isinstance(v, bytes) else v for v in row
    )
    return InvocationState(
        invocation_id,
        task_id or "",
        InvocationStatus(status),
        owner or None,
        int(num_retries or 0),
        float(updated_at or 0.0),
    )
