# cython: language_level=3, boundscheck=False, wraparound=False
"""Compiled twin of _batch_py: same envelopes, same API; one allocation per envelope and
argument names encoded once per batch."""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport uint32_t
from libc.string cimport memcpy

DEF HEADER = 5
DEF NAME_HEADER = 2
DEF VALUE_HEADER = 5
DEF VERSION = 1
DEF INLINE = 0


cdef inline void _put_u32(char* out, uint32_t value) noexcept:
    out[0] = <char>(value & 0xFF)
    out[1] = <char>((value >> 8) & 0xFF)
    out[2] = <char>((value >> 16) & 0xFF)
    out[3] = <char>((value >> 24) & 0xFF)


def encode_calls(list calls, object dumps, Py_ssize_t min_size):
    cdef list envelopes = []
    cdef dict left = {}
    cdef dict names = {}  # argument name -> its utf-8 bytes, shared by the whole batch
    cdef list parts = []  # (name bytes, value bytes) of the call being encoded
    cdef Py_ssize_t index = 0
    cdef Py_ssize_t total
    cdef object kwargs, name, value, data, encoded
    cdef bint serialized, small
    for kwargs in calls:
        parts.clear()
        total = HEADER
        serialized = small = True
        for name, value in (<dict>kwargs).items():
            try:
                data = dumps(value)
            except Exception:
                serialized = False
                break
            if type(data) is not bytes:
                serialized = False
                break
            if PyBytes_GET_SIZE(data) >= min_size:
                small = False
            encoded = names.get(name)
            if encoded is None:
                encoded = names[name] = (<str>name).encode()
            parts.append(encoded)
            parts.append(data)
            total += NAME_HEADER + PyBytes_GET_SIZE(encoded) + VALUE_HEADER + PyBytes_GET_SIZE(data)
        if serialized and small:
            envelopes.append(_pack(parts, total))
        else:
            envelopes.append(None)
            left[index] = _values(kwargs, parts) if serialized else None
        index += 1
    return envelopes, left


cdef dict _values(dict kwargs, list parts):
    """Name -> serialized value of a call, from the (name bytes, value bytes) parts."""
    cdef dict values = {}
    cdef Py_ssize_t i = 1
    for name in kwargs:
        values[name] = parts[i]
        i += 2
    return values


cdef bytes _pack(list parts, Py_ssize_t total):
    cdef bytes out = PyBytes_FromStringAndSize(NULL, total)
    cdef char* buf = PyBytes_AS_STRING(out)
    cdef Py_ssize_t pos = HEADER
    cdef Py_ssize_t size, i
    cdef bytes encoded, data
    buf[0] = VERSION
    _put_u32(buf + 1, <uint32_t>(len(parts) // 2))
    for i in range(0, len(parts), 2):
        encoded = <bytes>parts[i]
        size = PyBytes_GET_SIZE(encoded)
        buf[pos] = <char>(size & 0xFF)
        buf[pos + 1] = <char>((size >> 8) & 0xFF)
        memcpy(buf + pos + NAME_HEADER, PyBytes_AS_STRING(encoded), size)
        pos += NAME_HEADER + size
        data = <bytes>parts[i + 1]
        size = PyBytes_GET_SIZE(data)
        buf[pos] = INLINE
        _put_u32(buf + pos + 1, <uint32_t>size)
        memcpy(buf + pos + VALUE_HEADER, PyBytes_AS_STRING(data), size)
        pos += VALUE_HEADER + size
    return out
