# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled twin of _hashing_py: same keys, same API.

Keys are BLAKE2b-128 (RFC 7693) as hashlib computes them. Small inputs are hashed by the
C code below, which streams an argument envelope into the hash without building it and
skips hashlib's object and keyword handling (most of the cost under ~1 KB); large inputs
go to hashlib, whose hash loop is faster than this portable one.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem
from cpython.object cimport PyObject
from cpython.unicode cimport PyUnicode_DecodeASCII
from libc.stdint cimport uint8_t, uint64_t
from libc.string cimport memcpy, memset
from hashlib import blake2b

DEF BLOCK = 128
DEF DIGEST = 16
# from here on hashlib's optimised loop wins over this one despite its call overhead
DEF HASHLIB_FROM = 1024

cdef uint64_t[8] IV = [
    0x6a09e667f3bcc908, 0xbb67ae8584caa73b, 0x3c6ef372fe94f82b, 0xa54ff53a5f1d36f1,
    0x510e527fade682d1, 0x9b05688c2b3e6c1f, 0x1f83d9abfb41bd6b, 0x5be0cd19137e2179,
]
cdef uint8_t[12][16] SIGMA = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
    [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4],
    [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8],
    [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13],
    [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9],
    [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11],
    [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10],
    [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5],
    [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0],
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
]
cdef const char* HEX = b"0123456789abcdef"


cdef struct Hasher:
    uint64_t h[8]
    uint64_t counter  # bytes hashed so far (inputs stay far below 2**64)
    uint8_t buf[BLOCK]
    Py_ssize_t buflen


cdef inline uint64_t _rotr(uint64_t x, int n) noexcept nogil:
    return (x >> n) | (x << (64 - n))


cdef inline uint64_t _load64(const uint8_t* p) noexcept nogil:
    return (
        <uint64_t>p[0] | (<uint64_t>p[1] << 8) | (<uint64_t>p[2] << 16)
        | (<uint64_t>p[3] << 24) | (<uint64_t>p[4] << 32) | (<uint64_t>p[5] << 40)
        | (<uint64_t>p[6] << 48) | (<uint64_t>p[7] << 56)
    )


cdef inline void _mix(uint64_t* v, int a, int b, int c, int d, uint64_t x, uint64_t y) noexcept nogil:
    v[a] = v[a] + v[b] + x
    v[d] = _rotr(v[d] ^ v[a], 32)
    v[c] = v[c] + v[d]
    v[b] = _rotr(v[b] ^ v[c], 24)
    v[a] = v[a] + v[b] + y
    v[d] = _rotr(v[d] ^ v[a], 16)
    v[c] = v[c] + v[d]
    v[b] = _rotr(v[b] ^ v[c], 63)


cdef void _compress(Hasher* s, const uint8_t* block, bint last) noexcept nogil:
    cdef uint64_t m[16]
    cdef uint64_t v[16]
    cdef int i
    cdef const uint8_t* r
    for i in range(16):
        m[i] = _load64(block + 8 * i)
    for i in range(8):
        v[i] = s.h[i]
        v[i + 8] = IV[i]
    v[12] ^= s.counter
    if last:
        v[14] = ~v[14]
    for i in range(12):
        r = SIGMA[i]
        _mix(v, 0, 4, 8, 12, m[r[0]], m[r[1]])
        _mix(v, 1, 5, 9, 13, m[r[2]], m[r[3]])
        _mix(v, 2, 6, 10, 14, m[r[4]], m[r[5]])
        _mix(v, 3, 7, 11, 15, m[r[6]], m[r[7]])
        _mix(v, 0, 5, 10, 15, m[r[8]], m[r[9]])
        _mix(v, 1, 6, 11, 12, m[r[10]], m[r[11]])
        _mix(v, 2, 7, 8, 13, m[r[12]], m[r[13]])
        _mix(v, 3, 4, 9, 14, m[r[14]], m[r[15]])
    for i in range(8):
        s.h[i] ^= v[i] ^ v[i + 8]


cdef inline void _init(Hasher* s) noexcept nogil:
    cdef int i
    for i in range(8):
        s.h[i] = IV[i]
    s.h[0] ^= 0x01010000 ^ DIGEST  # fanout 1, depth 1, no key
    s.counter = 0
    s.buflen = 0


cdef void _update(Hasher* s, const uint8_t* data, Py_ssize_t size) noexcept nogil:
    """The last block is compressed by _final only, so a full buffer waits for more."""
    cdef Py_ssize_t take
    while size > 0:
        if s.buflen == BLOCK:
            s.counter += BLOCK
            _compress(s, s.buf, False)
            s.buflen = 0
        if s.buflen == 0:
            while size > BLOCK:  # whole blocks straight from the input
                s.counter += BLOCK
                _compress(s, data, False)
                data += BLOCK
                size -= BLOCK
        take = BLOCK - s.buflen
        if take > size:
            take = size
        memcpy(s.buf + s.buflen, data, take)
        s.buflen += take
        data += take
        size -= take


cdef inline void _update_byte(Hasher* s, uint8_t byte) noexcept nogil:
    _update(s, &byte, 1)


cdef inline void _update_u32(Hasher* s, Py_ssize_t value) noexcept nogil:
    cdef uint8_t raw[4]
    raw[0] = value & 0xFF
    raw[1] = (value >> 8) & 0xFF
    raw[2] = (value >> 16) & 0xFF
    raw[3] = (value >> 24) & 0xFF
    _update(s, raw, 4)


cdef str _hexdigest(Hasher* s):
    cdef char out[2 * DIGEST]
    cdef int i
    cdef uint8_t byte
    s.counter += s.buflen
    memset(s.buf + s.buflen, 0, BLOCK - s.buflen)
    _compress(s, s.buf, True)
    for i in range(DIGEST):
        byte = (s.h[i >> 3] >> (8 * (i & 7))) & 0xFF
        out[2 * i] = HEX[byte >> 4]
        out[2 * i + 1] = HEX[byte & 0xF]
    return PyUnicode_DecodeASCII(out, 2 * DIGEST, NULL)


cdef str _key_of(bytes data):
    cdef Hasher s
    cdef Py_ssize_t size = PyBytes_GET_SIZE(data)
    if size >= HASHLIB_FROM:
        return blake2b(data, digest_size=DIGEST).hexdigest()
    _init(&s)
    _update(&s, <const uint8_t*>PyBytes_AS_STRING(data), size)
    return _hexdigest(&s)


def content_key(data):
    return _key_of(data if type(data) is bytes else bytes(data))


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


def oversized_keys(dict values, Py_ssize_t min_size, Py_ssize_t max_size=0):
    cdef dict found = {}
    cdef Py_ssize_t size
    cdef object name
    cdef bytes data
    for name, data in values.items():
        size = PyBytes_GET_SIZE(data)
        if size >= min_size and (max_size <= 0 or size <= max_size):
            found[name] = _key_of(data)
    return found


def arguments_key(dict values, tuple names=None):
    """The key of the envelope of the selected values, hashed as it is laid out."""
    cdef list ordered = sorted(values if names is None else names)
    cdef Py_ssize_t count = len(ordered)
    cdef Py_ssize_t i
    if names is not None:
        for i in range(count - 1, 0, -1):  # a name given twice is one entry, as in a dict
            if ordered[i] == ordered[i - 1]:
                del ordered[i]
    cdef Hasher s
    cdef bytes encoded, value
    cdef PyObject* found
    cdef Py_ssize_t size
    _init(&s)
    _update_byte(&s, 1)  # envelope version
    _update_u32(&s, len(ordered))
    for name in ordered:
        encoded = (<str>name).encode()
        size = PyBytes_GET_SIZE(encoded)
        _update_byte(&s, size & 0xFF)
        _update_byte(&s, (size >> 8) & 0xFF)
        _update(&s, <const uint8_t*>PyBytes_AS_STRING(encoded), size)
        found = PyDict_GetItem(values, name)
        value = b"" if found is NULL else <bytes>found
        _update_byte(&s, 0)  # inline value
        _update_u32(&s, PyBytes_GET_SIZE(value))
        _update(&s, <const uint8_t*>PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value))
    return _hexdigest(&s)
