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

cdef extern from "Python.h":
    object PyUnicode_New(Py_ssize_t size, Py_UCS4 maxchar)
    void* PyUnicode_DATA(object text)

DEF BLOCK = 128
DEF DIGEST = 16
# from here on hashlib's optimised loop wins over this one despite its call overhead
DEF HASHLIB_FROM = 1024

cdef uint64_t[8] IV = [
    0x6a09e667f3bcc908, 0xbb67ae8584caa73b, 0x3c6ef372fe94f82b, 0xa54ff53a5f1d36f1,
    0x510e527fade682d1, 0x9b05688c2b3e6c1f, 0x1f83d9abfb41bd6b, 0x5be0cd19137e2179,
]
cdef const char* HEX = b"0123456789abcdef"


cdef struct Hasher:
    uint64_t h[8]
    uint64_t counter  # bytes hashed so far (inputs stay far below 2**64)
    uint8_t buf[BLOCK]
    Py_ssize_t buflen


cdef inline uint64_t _load64(const uint8_t* p) noexcept nogil:
    return (
        <uint64_t>p[0] | (<uint64_t>p[1] << 8) | (<uint64_t>p[2] << 16)
        | (<uint64_t>p[3] << 24) | (<uint64_t>p[4] << 32) | (<uint64_t>p[5] << 40)
        | (<uint64_t>p[6] << 48) | (<uint64_t>p[7] << 56)
    )


cdef extern from *:
    """
    /* BLAKE2b's compression with every round spelled out: the message-word indices are
       compile-time constants, so the sixteen words and the state stay in registers
       (a loop over a sigma table reloads them, at about twice the cost). */
    #include <stdint.h>
    #define PYNENC_ROTR64(x, n) (((x) >> (n)) | ((x) << (64 - (n))))
    #define PYNENC_G(a, b, c, d, x, y) do {             \
            a = a + b + (x); d = PYNENC_ROTR64(d ^ a, 32); \
            c = c + d; b = PYNENC_ROTR64(b ^ c, 24);       \
            a = a + b + (y); d = PYNENC_ROTR64(d ^ a, 16); \
            c = c + d; b = PYNENC_ROTR64(b ^ c, 63);       \
        } while (0)
    #define PYNENC_ROUND(s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14, s15) \
        do {                                                                                    \
            PYNENC_G(v0, v4, v8, v12, m[s0], m[s1]);                                            \
            PYNENC_G(v1, v5, v9, v13, m[s2], m[s3]);                                            \
            PYNENC_G(v2, v6, v10, v14, m[s4], m[s5]);                                           \
            PYNENC_G(v3, v7, v11, v15, m[s6], m[s7]);                                           \
            PYNENC_G(v0, v5, v10, v15, m[s8], m[s9]);                                           \
            PYNENC_G(v1, v6, v11, v12, m[s10], m[s11]);                                         \
            PYNENC_G(v2, v7, v8, v13, m[s12], m[s13]);                                          \
            PYNENC_G(v3, v4, v9, v14, m[s14], m[s15]);                                          \
        } while (0)

    static void pynenc_blake2b_compress(uint64_t h[8], const uint64_t m[16],
                                        const uint64_t iv[8], uint64_t counter, int last) {
        uint64_t v0 = h[0], v1 = h[1], v2 = h[2], v3 = h[3];
        uint64_t v4 = h[4], v5 = h[5], v6 = h[6], v7 = h[7];
        uint64_t v8 = iv[0], v9 = iv[1], v10 = iv[2], v11 = iv[3];
        uint64_t v12 = iv[4] ^ counter, v13 = iv[5];
        uint64_t v14 = last ? ~iv[6] : iv[6], v15 = iv[7];
        PYNENC_ROUND(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        PYNENC_ROUND(14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3);
        PYNENC_ROUND(11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4);
        PYNENC_ROUND(7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8);
        PYNENC_ROUND(9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13);
        PYNENC_ROUND(2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9);
        PYNENC_ROUND(12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11);
        PYNENC_ROUND(13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10);
        PYNENC_ROUND(6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5);
        PYNENC_ROUND(10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0);
        PYNENC_ROUND(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        PYNENC_ROUND(14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3);
        h[0] ^= v0 ^ v8; h[1] ^= v1 ^ v9; h[2] ^= v2 ^ v10; h[3] ^= v3 ^ v11;
        h[4] ^= v4 ^ v12; h[5] ^= v5 ^ v13; h[6] ^= v6 ^ v14; h[7] ^= v7 ^ v15;
    }
    """
    void pynenc_blake2b_compress(uint64_t* h, const uint64_t* m, const uint64_t* iv,
                                 uint64_t counter, int last) noexcept nogil


cdef inline void _compress(Hasher* s, const uint8_t* block, bint last) noexcept nogil:
    cdef uint64_t m[16]
    cdef int i
    for i in range(16):
        m[i] = _load64(block + 8 * i)
    pynenc_blake2b_compress(s.h, m, IV, s.counter, last)


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
    cdef int i
    cdef uint8_t byte
    s.counter += s.buflen
    memset(s.buf + s.buflen, 0, BLOCK - s.buflen)
    _compress(s, s.buf, True)
    key = PyUnicode_New(2 * DIGEST, 127)  # written in place: no copy, no ASCII scan
    cdef char* out = <char*>PyUnicode_DATA(key)
    for i in range(DIGEST):
        byte = (s.h[i >> 3] >> (8 * (i & 7))) & 0xFF
        out[2 * i] = HEX[byte >> 4]
        out[2 * i + 1] = HEX[byte & 0xF]
    return key


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
