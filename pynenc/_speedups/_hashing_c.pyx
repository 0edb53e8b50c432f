# cython: language_level=3, boundscheck=False, wraparound=False
"""Compiled twin of _hashing_py: same keys, same API."""

from cpython.bytes cimport PyBytes_GET_SIZE
from hashlib import blake2b

from pynenc._speedups._envelope_c import pack_arguments


def content_key(bytes data):
    return blake2b(data, digest_size=16).hexdigest()


def oversized(dict values, Py_ssize_t min_size, Py_ssize_t max_size=0):
    cdef list found = []
    cdef Py_ssize_t size
    cdef object name
    cdef bytes data
    for name, data in values.items():
        size = PyBytes_GET_SIZE(data)
        if size >= min_size and (max_size <= 0 or size <= max_size):
            found.append(name)
    return found


def arguments_key(dict values, tuple names=None):
    cdef dict selected = {}
    cdef object name
    for name in sorted(values if names is None else names):
        selected[name] = values.get(name, b"")
    return blake2b(pack_arguments(selected), digest_size=16).hexdigest()
