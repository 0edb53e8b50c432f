# cython: language_level=3, boundscheck=False, wraparound=False
"""Compiled twin of _status_py: statuses numbered once, each check is bit tests on C ints."""

from cpython.dict cimport PyDict_GetItem
from cpython.object cimport PyObject
from libc.stdint cimport uint64_t

DEF MAX_STATUSES = 63  # one bit per status in a uint64, plus the "not stored" row


cdef class TransitionTable:
    cdef readonly tuple statuses
    cdef dict _codes
    cdef uint64_t _next[MAX_STATUSES + 1]
    cdef uint64_t _takes, _drops, _owner_only
    cdef Py_ssize_t _none_row
    cdef object _admin_kill, _invalid_error, _ownership_error

    def __init__(self, statuses, allowed_next, takes, drops, owner_only, admin_kill,
                 invalid_error, ownership_error):
        self.statuses = tuple(statuses)
        if len(self.statuses) > MAX_STATUSES:
            raise ValueError(f"at most {MAX_STATUSES} statuses fit the compiled table")
        self._codes = {status: code for code, status in enumerate(self.statuses)}
        self._none_row = len(self.statuses)
        cdef Py_ssize_t row
        for row in range(MAX_STATUSES + 1):
            self._next[row] = 0
        for current, targets in allowed_next.items():
            row = self._none_row if current is None else self._codes[current]
            self._next[row] = self._mask(targets)
        self._takes = self._mask(takes)
        self._drops = self._mask(drops)
        self._owner_only = self._mask(owner_only)
        self._admin_kill = admin_kill
        self._invalid_error = invalid_error
        self._ownership_error = ownership_error

    cdef uint64_t _mask(self, statuses) except? 0:
        cdef uint64_t mask = 0
        for status in statuses:
            mask |= (<uint64_t>1) << <Py_ssize_t>self._codes[status]
        return mask

    def check(self, current, new, owner, runner_id, invocation_id=None):
        cdef Py_ssize_t row
        cdef PyObject* found
        if current is None:
            row = self._none_row
        else:
            found = PyDict_GetItem(self._codes, current)
            if found is NULL:
                raise KeyError(current)  # as the reference twin's table lookup does
            row = <Py_ssize_t><object>found
        found = PyDict_GetItem(self._codes, new)
        if found is NULL:
            raise self._invalid_error(invocation_id, current, new)
        cdef uint64_t bit = (<uint64_t>1) << <Py_ssize_t><object>found
        if not (self._next[row] & bit):
            raise self._invalid_error(invocation_id, current, new)
        if (
            (self._owner_only & bit)
            and owner is not None
            and not (runner_id is None and new is self._admin_kill)
            and owner != runner_id
        ):
            raise self._ownership_error(invocation_id, new, owner, runner_id)
        if self._takes & bit:
            return runner_id
        if self._drops & bit:
            return None
        return owner
