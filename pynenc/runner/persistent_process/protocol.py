"""The messages between a dispatcher (ROUTER) and its workers (DEALER).

Every ZeroMQ message is one frame holding one msgpack array:

- dispatcher -> worker: ``[CALLS, [call, ...]]`` (work sent against the worker's credits)
  or ``[STOP]`` (hand back what has not started, finish the rest, exit).
- worker -> dispatcher: ``[grant, event, ...]``: ``grant`` new credits (calls the worker
  asks for), then status events in the order they happened, each ``[kind, invocation_id,
  ...]``; see the event kinds below.
"""

from __future__ import annotations

from typing import Any

import msgpack

from pynenc.invocation.record import InvocationRecord
from pynenc.invocation.status import InvocationStatus

# dispatcher -> worker
CALLS = 0
STOP = 1

# worker -> dispatcher events
HELLO = 0  # [HELLO, pid]: the worker is up
STARTED = 1  # [STARTED, id]: the call began (PENDING -> RUNNING)
DONE = 2  # [DONE, id, status, result, exception, retry_delay]: the call ended
PAUSED = 3  # [PAUSED, id]: the call waits on sub-invocations (its credit is free meanwhile)
RESUMED = 4  # [RESUMED, id]: the wait ended
RETURNED = 5  # [RETURNED, id]: handed back unstarted (waited too long, or stopping)

# a call on the wire: the InvocationRecord's fields, then num_retries and the seconds it
# may still wait in the worker before it must be handed back instead of started
Call = list[Any]

STATUS_BY_VALUE: dict[str, InvocationStatus] = {s.value: s for s in InvocationStatus}

_packb = msgpack.packb
_unpackb = msgpack.unpackb


def encode(message: list[Any]) -> bytes:
    return _packb(message, use_bin_type=True)  # type: ignore[no-any-return]


def decode(frame: bytes) -> list[Any]:
    return _unpackb(frame, raw=False)  # type: ignore[no-any-return]


def to_call(record: InvocationRecord, num_retries: int, start_within_sec: float) -> Call:
    return [
        record.invocation_id,
        record.task_id,
        record.arguments,
        record.parent_invocation_id,
        record.workflow_id,
        record.workflow_task_id,
        record.created_at,
        num_retries,
        start_within_sec,
    ]


def from_call(call: Call) -> tuple[InvocationRecord, int, float]:
    """(record, num_retries, start_within_sec) of a call."""
    return InvocationRecord(*call[:7]), call[7], call[8]
