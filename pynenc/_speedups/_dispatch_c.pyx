# cython: language_level=3, wraparound=False
"""Compiled twin of _dispatch_py: same frames, same API, the per-call loops in C.

Bounds stay checked: a malformed frame raises IndexError as in the pure twin."""

from cpython.dict cimport PyDict_SetItem
from cpython.list cimport PyList_GET_SIZE

import msgpack

DEF CALLS = 0
DEF HELLO = 0
DEF STARTED = 1
DEF DONE = 2
DEF RESUMED = 4
DEF RETURNED = 5

cdef object _packb = msgpack.packb
cdef object _unpackb = msgpack.unpackb


def encode_calls(backlog, Py_ssize_t count, dict in_flight, double now, double within):
    cdef list calls = []
    cdef object popleft = backlog.popleft
    cdef object record, invocation_id
    cdef tuple claimed
    cdef Py_ssize_t i
    for i in range(count):
        claimed = <tuple>popleft()
        record = claimed[0]
        invocation_id = record.invocation_id
        calls.append([
            invocation_id,
            record.task_id,
            record.arguments,
            record.parent_invocation_id,
            record.workflow_id,
            record.workflow_task_id,
            record.created_at,
            claimed[1],
            within - (now - <double>claimed[2]),
        ])
        PyDict_SetItem(in_flight, invocation_id, None)
    return _packb([CALLS, calls], use_bin_type=True)


def decode_calls(frame, make_record):
    cdef list message = _unpackb(frame, raw=False)
    if message[0] != CALLS:
        return message[0], []
    cdef list raw_calls = message[1]
    cdef list out = []
    cdef list call
    for call in raw_calls:
        out.append((
            make_record(call[0], call[1], call[2], call[3], call[4], call[5], call[6]),
            call[7],
            call[8],
        ))
    return CALLS, out


cdef class EventReader:
    cdef object _make, _running, _resumed, _paused, _rerouted
    cdef dict _statuses

    def __init__(self, make_outcome, dict statuses, running, resumed, paused, rerouted):
        self._make = make_outcome
        self._statuses = statuses
        self._running, self._resumed = running, resumed
        self._paused, self._rerouted = paused, rerouted

    def read(self, frame, dict in_flight, set started, set running, dict lost_runs,
             list outcomes):
        cdef list message = _unpackb(frame, raw=False)
        cdef Py_ssize_t index, size = PyList_GET_SIZE(message)
        cdef list event
        cdef long kind
        cdef object invocation_id
        cdef bint hello = False
        make = self._make
        for index in range(1, size):
            event = message[index]
            kind = event[0]
            invocation_id = event[1]
            if kind == DONE:
                in_flight.pop(invocation_id, None)
                started.discard(invocation_id)
                running.discard(invocation_id)
                if lost_runs:
                    lost_runs.pop(invocation_id, None)
                outcomes.append(make(
                    invocation_id, self._statuses[event[2]], event[3], event[4], event[5]
                ))
            elif kind == STARTED:
                started.add(invocation_id)
                running.add(invocation_id)
                outcomes.append(make(invocation_id, self._running))
            elif kind == RESUMED:
                running.add(invocation_id)
                outcomes.append(make(invocation_id, self._resumed))
            elif kind == RETURNED:
                in_flight.pop(invocation_id, None)
                outcomes.append(make(invocation_id, self._rerouted))
            elif kind == HELLO:
                hello = True
            else:  # PAUSED
                running.discard(invocation_id)
                outcomes.append(make(invocation_id, self._paused))
        return message[0], hello
