# cython: language_level=3, boundscheck=False, wraparound=False
"""Compiled twin of _status_py: statuses numbered once, each check is bit tests on C ints."""

from cpython.dict cimport PyDict_GetItem
from cpython.list cimport PyList_GET_ITEM, PyList_New, PyList_SET_ITEM
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF
from libc.stdint cimport uint64_t

cdef extern from "Python.h":
    dict _PyDict_NewPresized(Py_ssize_t minused)

DEF MAX_STATUSES = 63  # one bit per status in a uint64, plus the "not stored" row

# what _verdict found; the owner after the move is decided by the caller from the bit
DEF ALLOWED = 0
DEF INVALID = 1
DEF NOT_OWNER = 2
DEF UNKNOWN_CURRENT = 3


cdef class TransitionTable:
    cdef readonly tuple statuses
    cdef dict _codes
    cdef uint64_t _next[MAX_STATUSES + 1]
    cdef uint64_t _takes, _drops, _owner_only
    cdef Py_ssize_t _none_row
    cdef PyObject* _members[MAX_STATUSES]  # borrowed from ``statuses``, which keeps them
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
        for row in range(self._none_row):
            self._members[row] = <PyObject*>self.statuses[row]
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

    cdef inline Py_ssize_t _code(self, object status):
        """The status's number, -1 if it is none of them: members by identity first (no
        hashing), then by equality through the dict (e.g. the plain string value)."""
        cdef Py_ssize_t code
        cdef PyObject* found
        for code in range(self._none_row):
            if self._members[code] is <PyObject*>status:
                return code
        found = PyDict_GetItem(self._codes, status)
        return -1 if found is NULL else <Py_ssize_t><object>found

    cdef inline int _verdict(self, object current, object new, object owner, object runner_id,
                             uint64_t* bit):
        """ALLOWED (``bit`` set to new's bit), INVALID, NOT_OWNER or UNKNOWN_CURRENT."""
        cdef Py_ssize_t row, code
        if current is None:
            row = self._none_row
        else:
            row = self._code(current)
            if row < 0:
                return UNKNOWN_CURRENT
        code = self._code(new)
        if code < 0:
            return INVALID
        bit[0] = (<uint64_t>1) << code
        if not (self._next[row] & bit[0]):
            return INVALID
        if (
            (self._owner_only & bit[0])
            and owner is not None
            and not (runner_id is None and new is self._admin_kill)
            and owner != runner_id
        ):
            return NOT_OWNER
        return ALLOWED

    cdef inline object _owner_after(self, uint64_t bit, object owner, object runner_id):
        if self._takes & bit:
            return runner_id
        if self._drops & bit:
            return None
        return owner

    def check(self, current, new, owner, runner_id, invocation_id=None):
        cdef uint64_t bit = 0
        cdef int verdict = self._verdict(current, new, owner, runner_id, &bit)
        if verdict == ALLOWED:
            return self._owner_after(bit, owner, runner_id)
        if verdict == UNKNOWN_CURRENT:
            raise KeyError(current)  # as the reference twin's table lookup does
        if verdict == INVALID:
            raise self._invalid_error(invocation_id, current, new)
        raise self._ownership_error(invocation_id, new, owner, runner_id)

    def check_many(self, rows, runner_id):
        cdef list items = rows if type(rows) is list else list(rows)
        cdef Py_ssize_t count = len(items), index
        cdef list verdicts = PyList_New(count)
        # invocation id -> index of its last allowed row (small ints: no allocation)
        cdef dict moved = _PyDict_NewPresized(count)  # no resizing on the way
        cdef tuple item
        cdef object invocation_id, current, new, owner, answer
        cdef PyObject* found
        cdef uint64_t bit = 0
        cdef int verdict
        for index in range(count):
            item = items[index]  # a tuple (TypeError otherwise): read again for chained rows
            invocation_id, current, new, owner = item
            found = PyDict_GetItem(moved, invocation_id)
            if found is not NULL:
                current = (<tuple>items[<Py_ssize_t><object>found])[2]
                owner = <object>PyList_GET_ITEM(verdicts, <Py_ssize_t><object>found)
            verdict = self._verdict(current, new, owner, runner_id, &bit)
            if verdict == ALLOWED:
                answer = self._owner_after(bit, owner, runner_id)
                moved[invocation_id] = index
            elif verdict == UNKNOWN_CURRENT:
                raise KeyError(current)
            elif verdict == INVALID:
                answer = self._invalid_error(invocation_id, current, new)
            else:
                answer = self._ownership_error(invocation_id, new, owner, runner_id)
            Py_INCREF(answer)  # PyList_SET_ITEM steals it
            PyList_SET_ITEM(verdicts, index, answer)
        return verdicts
