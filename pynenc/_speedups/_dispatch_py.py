"""Reference twin: the per-message work of the PersistentProcessRunner's dispatcher.

``encode_calls`` turns claimed records into the frame sent to a worker; ``EventReader``
turns a worker's frame into outcomes while keeping the dispatcher's view of that worker.
The frame layout is in ``pynenc.runner.persistent_process.protocol``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

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
) -> tuple[int, list[tuple[Any, int, float]]]:
    """A dispatcher's frame: (kind, [(record, num_retries, start_within_sec), ...]); the
    list is empty for a frame that carries no calls."""
    message = _unpackb(frame, raw=False)
    if message[0] != CALLS:
        return message[0], []
    return CALLS, [(make_record(*call[:7]), call[7], call[8]) for call in message[1]]


class EventReader:
    """``read(frame, in_flight, started, running, lost_runs, outcomes)`` -> (grant, hello).

    Applies a worker's frame to the dispatcher's sets for that worker and appends an
    outcome per status event; ``hello`` says the worker announced it is up.
    ``make_outcome(invocation_id, status, result=None, exception=None, retry_delay=0.0)``
    builds an outcome; ``statuses`` maps a DONE event's status value to the status.
    """

    def __init__(
        self,
        make_outcome: Callable[..., Any],
        statuses: dict[str, Any],
        running: Any,
        resumed: Any,
        paused: Any,
        rerouted: Any,
    ) -> None:
        self._make = make_outcome
        self._statuses = statuses
        self._running, self._resumed = running, resumed
        self._paused, self._rerouted = paused, rerouted

    def read(
        self,
        frame: bytes,
        in_flight: dict[str, None],
        started: set[str],
        running: set[str],
        lost_runs: dict[str, int],
        outcomes: list[Any],
    ) -> tuple[int, bool]:
        message = _unpackb(frame, raw=False)
        make, put = self._make, outcomes.append
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
                status = self._statuses[event[2]]
                put(make(invocation_id, status, event[3], event[4], event[5]))
            elif kind == STARTED:
                started.add(event[1])
                running.add(event[1])
                put(make(event[1], self._running))
            elif kind == RESUMED:
                running.add(event[1])
                put(make(event[1], self._resumed))
            elif kind == RETURNED:
                in_flight.pop(event[1], None)
                put(make(event[1], self._rerouted))
            elif kind == HELLO:
                hello = True
            else:  # PAUSED
                running.discard(event[1])
                put(make(event[1], self._paused))
        return message[0], hello
