"""The messages between a dispatcher (ROUTER) and its workers (DEALER).

Every ZeroMQ message is one frame holding one msgpack array:

- dispatcher -> worker: ``[CALLS, [call, ...]]`` (work sent against the worker's credits)
  or ``[STOP]`` (hand back what has not started, finish the rest, exit).
- worker -> dispatcher: ``[grant, event, ...]``: ``grant`` new credits (calls the worker
  asks for), then status events in the order they happened, each ``[kind, invocation_id,
  ...]``; see the event kinds below.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import msgpack

from pynenc._speedups import dispatch
from pynenc.invocation.record import InvocationRecord
from pynenc.invocation.status import InvocationStatus
from pynenc.runner.outcomes import ROUTED

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


# the per-message hot path, compiled when the speedups are (pynenc._speedups.dispatch):
# encode_calls(backlog, count, in_flight, now, within) -> a CALLS frame of claimed records
encode_calls = dispatch.encode_calls


def decode_calls(
    frame: bytes,
) -> tuple[int, list[InvocationRecord], list[int], list[float]]:
    """A dispatcher frame: (CALLS or STOP, records, num_retries, start_within_sec), the
    calls as columns (empty for STOP)."""
    return dispatch.decode_calls(frame, InvocationRecord)


def event_reader(twin: ModuleType = dispatch) -> Any:
    """The dispatcher's reader of worker frames, from ``twin`` (the benchmarks pass each)."""
    return twin.EventReader(
        STATUS_BY_VALUE,
        InvocationStatus.RUNNING,
        InvocationStatus.RESUMED,
        InvocationStatus.PAUSED,
        InvocationStatus.REROUTED,
        ROUTED,
    )


# read_events(frame, in_flight, started, running, lost_runs, out) -> (grant, hello); the
# status changes go to the columns of ``out``, an OutcomeBatch (no object per change)
read_events = event_reader().read
