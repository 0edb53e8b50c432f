"""Reference twin: the per-message work of the PersistentProcessRunner's dispatcher.

``encode_calls`` turns claimed records into the frame sent to a worker; ``EventReader``
turns a worker's frame into columns of status changes while keeping the dispatcher's view
of that worker.
The frame layout is in ``pynenc.runner.persistent_process.protocol``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection
from typing import Any, Protocol

import msgpack

CALLS = 0
HELLO, STARTED, DONE, PAUSED, RESUMED, RETURNED = range(6)
# a call on the wire: these fields of the record, then num_retries and start_within_sec
CALL_FIELDS = (
    "invocation_id",
    "task_id",
    "arguments",
    "parent_invocation_id",
    "workflow_id",
    "workflow_task_id",
    "created_at",
)

_packb = msgpack.packb
_unpackb = msgpack.unpackb


def encode_calls(
    backlog: deque[tuple[Any, int, float]],
    count: int,
    in_flight: dict[str, None],
    now: float,
    within: float,
) -> bytes:
    """Pop ``count`` (record, num_retries, claimed_at) from ``backlog``, mark them in flight
    and return the ``[CALLS, [call, ...]]`` frame; each call may wait ``within`` seconds
    from its claim before it must be handed back."""
    calls = []
    for _ in range(count):
        record, num_retries, claimed_at = backlog.popleft()
        invocation_id = record.invocation_id
        calls.append(
            [
                invocation_id,
                record.task_id,
                record.arguments,
                record.parent_invocation_id,
                record.workflow_id,
                record.workflow_task_id,
                record.created_at,
                num_retries,
                within - (now - claimed_at),
            ]
        )
        in_flight[invocation_id] = None
    return _packb([CALLS, calls], use_bin_type=True)  # type: ignore[no-any-return]


def decode_calls(
    frame: bytes, make_record: Callable[..., Any]
) -> tuple[int, list[Any], list[int], list[float]]:
    """A dispatcher's frame: (kind, records, num_retries, start_within_sec), the calls as
    three columns (no object per call besides its record); empty for a frame without calls."""
    message = _unpackb(frame, raw=False)
    if message[0] != CALLS:
        return message[0], [], [], []
    calls = message[1]
    records = [make_record(*call[:7]) for call in calls]
    return CALLS, records, [call[7] for call in calls], [call[8] for call in calls]


class OutcomeColumns(Protocol):
    """Where ``EventReader.read`` appends a frame's status changes, as columns: one
    (id, status) per event in ``ids`` / ``statuses``; (id, bytes) pairs for the events that
    carry a result or an exception; (id, delay_sec) for those that go back to the broker."""

    ids: list[str]
    statuses: list[Any]
    results: list[tuple[str, bytes]]
    exceptions: list[tuple[str, bytes]]
    retries: list[tuple[str, float]]


class EventReader:
    """``read(frame, in_flight, started, running, lost_runs, out)`` -> (grant, hello).

    Applies a worker's frame to the dispatcher's sets for that worker and appends each
    status event to the columns of ``out``; ``hello`` says the worker announced it is up.
    ``statuses`` maps a DONE event's status value to the status; a status in ``routed``
    also adds its id (with the DONE's delay, 0.0 for others) to ``out.retries``.
    """

    def __init__(
        self,
        statuses: dict[str, Any],
        running: Any,
        resumed: Any,
        paused: Any,
        rerouted: Any,
        routed: Collection[Any],
    ) -> None:
        self._statuses = statuses
        self._running, self._resumed = running, resumed
        self._paused, self._rerouted = paused, rerouted
        # by wire value: a str is hashed once, a status enum member each time
        self._routed_values = frozenset(v for v, s in statuses.items() if s in routed)
        self._rerouted_routed = rerouted in routed

    def read(
        self,
        frame: bytes,
        in_flight: dict[str, None],
        started: set[str],
        running: set[str],
        lost_runs: dict[str, int],
        out: OutcomeColumns,
    ) -> tuple[int, bool]:
        message = _unpackb(frame, raw=False)
        add_id, add_status = out.ids.append, out.statuses.append
        hello = False
        for index in range(1, len(message)):
            event = message[index]
            kind = event[0]
            if kind == DONE:
                invocation_id = event[1]
                in_flight.pop(invocation_id, None)
                started.discard(invocation_id)
                running.discard(invocation_id)
                if lost_runs:
                    lost_runs.pop(invocation_id, None)
                value = event[2]
                status = self._statuses[value]
                add_id(invocation_id)
                add_status(status)
                if event[3] is not None:
                    out.results.append((invocation_id, event[3]))
                if event[4] is not None:
                    out.exceptions.append((invocation_id, event[4]))
                if value in self._routed_values:
                    out.retries.append((invocation_id, event[5]))
            elif kind == STARTED:
                started.add(event[1])
                running.add(event[1])
                add_id(event[1])
                add_status(self._running)
            elif kind == RESUMED:
                running.add(event[1])
                add_id(event[1])
                add_status(self._resumed)
            elif kind == RETURNED:
                in_flight.pop(event[1], None)
                add_id(event[1])
                add_status(self._rerouted)
                if self._rerouted_routed:
                    out.retries.append((event[1], 0.0))
            elif kind == HELLO:
                hello = True
            else:  # PAUSED
                running.discard(event[1])
                add_id(event[1])
                add_status(self._paused)
        return message[0], hello
