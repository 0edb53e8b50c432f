# cython: language_level=3, boundscheck=False, wraparound=False
"""Compiled twin of _envelope_py: same format, same API, one allocation per pack."""

from cpython.unicode cimport PyUnicode_DecodeUTF8
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport uint8_t, uint16_t, uint32_t
from libc.string cimport memcpy

from pynenc._speedups._envelope_py import EnvelopeError

DEF HEADER = 5
DEF NAME_HEADER = 2
DEF VALUE_HEADER = 5

VERSION = 1
INLINE = 0
REFERENCE = 1


cdef inline void _put_u32(char* out, uint32_t value) noexcept:
    out[0] = <char>(value & 0xFF)
    out[1] = <char>((value >> 8) & 0xFF)
    out[2] = <char>((value >> 16) & 0xFF)
    out[3] = <char>((value >> 24) & 0xFF)


cdef inline uint32_t _get_u32(const unsigned char* data) noexcept:
    return data[0] | (data[1] << 8) | (data[2] << 16) | (<uint32_t>data[3] << 24)


def pack_arguments(dict values, frozenset references=frozenset()):
    cdef Py_ssize_t total = HEADER
    cdef list names = []
    cdef bytes encoded, value
    cdef object name
    for name, value in values.items():
        encoded = (<str>name).encode()
        names.append(encoded)
        total += NAME_HEADER + PyBytes_GET_SIZE(encoded) + VALUE_HEADER + PyBytes_GET_SIZE(value)
    cdef bytes out = PyBytes_FromStringAndSize(NULL, total)
    cdef char* buf = PyBytes_AS_STRING(out)
    cdef Py_ssize_t pos = HEADER
    cdef Py_ssize_t size
    cdef Py_ssize_t i = 0
    buf[0] = VERSION
    _put_u32(buf + 1, <uint32_t>len(values))
    for name, value in values.items():
        encoded = <bytes>names[i]
        i += 1
        size = PyBytes_GET_SIZE(encoded)
        buf[pos] = <char>(size & 0xFF)
        buf[pos + 1] = <char>((size >> 8) & 0xFF)
        memcpy(buf + pos + 2, PyBytes_AS_STRING(encoded), size)
        pos += NAME_HEADER + size
        buf[pos] = REFERENCE if name in references else INLINE
        size = PyBytes_GET_SIZE(value)
        _put_u32(buf + pos + 1, <uint32_t>size)
        memcpy(buf + pos + VALUE_HEADER, PyBytes_AS_STRING(value), size)
        pos += VALUE_HEADER + size
    return out


_NO_REFERENCES = frozenset()


def unpack_arguments(data):
    cdef bytes buffer = data if type(data) is bytes else bytes(data)
    cdef Py_ssize_t length = PyBytes_GET_SIZE(buffer)
    if length < HEADER:
        raise EnvelopeError("argument envelope too short")
    cdef const unsigned char* raw = <const unsigned char*>PyBytes_AS_STRING(buffer)
    if raw[0] != VERSION:
        raise EnvelopeError(f"argument envelope version {raw[0]}, expected {VERSION}")
    cdef uint32_t count = _get_u32(raw + 1)
    cdef Py_ssize_t pos = HEADER
    cdef Py_ssize_t name_len, value_len
    cdef uint8_t kind
    cdef dict values = {}
    cdef list references = None
    cdef uint32_t n
    cdef str name
    for n in range(count):
        if pos + NAME_HEADER > length:
            raise EnvelopeError("argument envelope truncated")
        name_len = raw[pos] | (raw[pos + 1] << 8)
        pos += NAME_HEADER
        if pos + name_len + VALUE_HEADER > length:
            raise EnvelopeError("argument envelope truncated")
        name = PyUnicode_DecodeUTF8(<const char*>raw + pos, name_len, NULL)
        pos += name_len
        kind = raw[pos]
        value_len = _get_u32(raw + pos + 1)
        pos += VALUE_HEADER
        if pos + value_len > length:
            raise EnvelopeError("argument envelope truncated")
        values[name] = PyBytes_FromStringAndSize(<const char*>raw + pos, value_len)
        pos += value_len
        if kind == REFERENCE:
            if references is None:
                references = []
            references.append(name)
    if pos != length:
        raise EnvelopeError("argument envelope has trailing bytes")
    return values, (_NO_REFERENCES if references is None else frozenset(references))
