# cython: language_level=3, wraparound=False
"""Compiled twin of _dispatch_py: same frames, same API, the per-call loops in C.

The frames are written and read here for the types they normally hold (str, bytes,
None, int, float), byte for byte as msgpack does; anything else (or a malformed frame)
takes msgpack's path, so the result, or the error raised, is the pure twin's. Records
and outcomes are built through their slots, without a Python ``__init__`` frame each.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_SetItem
from cpython.list cimport PyList_GET_SIZE, PyList_New, PyList_SET_ITEM
from cpython.mem cimport PyMem_Calloc, PyMem_Free, PyMem_Realloc
from cpython.set cimport PySet_Add, PySet_Discard
from cpython.object cimport PyObject, PyTypeObject
from cpython.ref cimport Py_INCREF, Py_XDECREF
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.unicode cimport PyUnicode_DecodeASCII, PyUnicode_DecodeUTF8
from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.string cimport memcmp, memcpy

import dataclasses

import msgpack

DEF CALLS = 0
DEF HELLO = 0
DEF STARTED = 1
DEF DONE = 2
DEF RESUMED = 4
DEF RETURNED = 5

cdef object _packb = msgpack.packb
cdef object _unpackb = msgpack.unpackb
cdef tuple _NO_ARGS = ()

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object text, Py_ssize_t* size) except NULL
    object PyFloat_FromDouble(double value)
    object PyUnicode_New(Py_ssize_t size, Py_UCS4 maxchar)
    bint PyUnicode_IS_COMPACT_ASCII(object text)
    Py_ssize_t PyUnicode_GET_LENGTH(object text)
    void* PyUnicode_DATA(object text)
    const char* _utf8_or_null "PyUnicode_AsUTF8AndSize"(object text, Py_ssize_t* size)
    void PyErr_Clear()


# --- a slots dataclass read and built through its slots ----------------------------------

cdef extern from "structmember.h":
    ctypedef struct PyMemberDef:
        int type
        Py_ssize_t offset
    ctypedef struct PyMemberDescrObject:
        PyMemberDef* d_member
    int T_OBJECT_EX

DEF MAX_FIELDS = 16


cdef class _Slots:
    """Fields of a ``@dataclass(slots=True)`` read and set at their slots' offsets, the
    way its own descriptors do, minus a Python frame or lookup per field. Any other class
    (or one with ``__post_init__``, factories, ...) goes through getattr and ``cls(*args)``."""

    cdef type cls
    cdef tuple names
    cdef tuple defaults  # each field's default (dataclasses.MISSING: required)
    cdef Py_ssize_t count
    cdef Py_ssize_t required  # fields without a default come first in a dataclass
    cdef Py_ssize_t offsets[MAX_FIELDS]
    cdef readonly bint direct

    def __init__(self, type cls):
        self.cls = cls
        fields = dataclasses.fields(cls) if dataclasses.is_dataclass(cls) else ()
        self.names = tuple(f.name for f in fields)
        self.defaults = tuple(f.default for f in fields)
        self.count = len(fields)
        self.required = sum(1 for f in fields if f.default is dataclasses.MISSING)
        self.direct = (
            0 < self.count <= MAX_FIELDS
            and cls.__dataclass_params__.init
            and not hasattr(cls, "__post_init__")
            and all(
                f.default_factory is dataclasses.MISSING and f.init and not f.kw_only
                for f in fields
            )
        )
        cdef Py_ssize_t i
        cdef PyMemberDef* member
        for i in range(self.count if self.direct else 0):
            slot = cls.__dict__.get(self.names[i])
            if type(slot).__name__ != "member_descriptor":
                self.direct = False
                return
            member = (<PyMemberDescrObject*><PyObject*>slot).d_member
            if member.type != T_OBJECT_EX:
                self.direct = False
                return
            self.offsets[i] = member.offset

    cdef object make(self, PyObject** args, Py_ssize_t given):
        """``cls(*args[:given])``."""
        cdef Py_ssize_t i
        cdef PyObject** slot
        if not self.direct or given > self.count or self.required > given:
            return self.cls(*[<object>args[i] for i in range(given)])
        obj = (<PyTypeObject*>self.cls).tp_new(self.cls, <PyObject*>_NO_ARGS, NULL)
        for i in range(self.count):
            value = <object>args[i] if i < given else self.defaults[i]
            slot = <PyObject**>((<char*><PyObject*>obj) + self.offsets[i])
            Py_INCREF(value)
            Py_XDECREF(slot[0])
            slot[0] = <PyObject*>value
        return obj


cdef inline object _field(_Slots fields, object obj, Py_ssize_t index):
    """``obj``'s field number ``index``, read at its slot when the class allows it."""
    cdef PyObject* value
    if fields.direct and type(obj) is fields.cls:
        value = (<PyObject**>((<char*><PyObject*>obj) + fields.offsets[index]))[0]
        if value is not NULL:
            return <object>value
    return getattr(obj, fields.names[index])  # unset: the usual AttributeError


cdef dict _slots_of = {}


cdef _Slots _slots(type cls):
    found = _slots_of.get(cls)
    if found is None:
        found = _slots_of[cls] = _Slots(cls)
    return <_Slots>found


# --- writing ----------------------------------------------------------------------------

cdef struct Writer:
    char* data
    Py_ssize_t size
    Py_ssize_t capacity


cdef inline int _reserve(Writer* w, Py_ssize_t extra) except -1:
    if w.size + extra <= w.capacity:
        return 0
    return _grow(w, extra)


cdef int _grow(Writer* w, Py_ssize_t extra) except -1:
    cdef Py_ssize_t capacity = w.capacity
    cdef char* grown
    while w.size + extra > capacity:
        capacity = capacity * 2 if capacity else 4096
    grown = <char*>PyMem_Realloc(w.data, capacity)
    if grown is NULL:
        raise MemoryError()
    w.data, w.capacity = grown, capacity
    return 0


cdef inline int _put_be(Writer* w, uint8_t marker, uint64_t value, int width) except -1:
    """A marker byte then ``value`` in ``width`` big-endian bytes."""
    cdef int i
    _reserve(w, 1 + width)
    w.data[w.size] = <char>marker
    for i in range(width):
        w.data[w.size + 1 + i] = <char>((value >> (8 * (width - 1 - i))) & 0xFF)
    w.size += 1 + width
    return 0


cdef inline int _put_byte(Writer* w, uint8_t byte) except -1:
    _reserve(w, 1)
    w.data[w.size] = <char>byte
    w.size += 1
    return 0


cdef int _put_array(Writer* w, Py_ssize_t count) except -1:
    if count < 16:
        return _put_byte(w, 0x90 | count)
    if count < 0x10000:
        return _put_be(w, 0xDC, count, 2)
    return _put_be(w, 0xDD, count, 4)


cdef inline int _put_raw(Writer* w, const char* data, Py_ssize_t size) except -1:
    _reserve(w, size)
    memcpy(w.data + w.size, data, size)
    w.size += size
    return 0


cdef inline int _put_double(Writer* w, double real) except -1:
    cdef uint64_t bits
    memcpy(&bits, &real, 8)
    return _put_be(w, 0xCB, bits, 8)


# C constants: a literal beyond a C int would be compared as a Python int
cdef int64_t _MAX_UINT32 = 0xFFFFFFFF
cdef int64_t _MIN_INT32 = -0x80000000


cdef bint _put_value(Writer* w, object value) except -1:
    """Write ``value`` as msgpack does; False for a type this writer leaves to msgpack."""
    cdef Py_ssize_t size
    cdef const char* utf8
    cdef int64_t number
    cdef double real
    cdef uint64_t bits
    cdef int overflow
    if value is None:
        _put_byte(w, 0xC0)
    elif type(value) is str:
        if PyUnicode_IS_COMPACT_ASCII(value):  # ids, task names: the data is the UTF-8
            size = PyUnicode_GET_LENGTH(value)
            utf8 = <const char*>PyUnicode_DATA(value)
        else:
            utf8 = _utf8_or_null(value, &size)
            if utf8 is NULL:  # e.g. a lone surrogate: msgpack raises it, as the pure twin
                PyErr_Clear()
                return False
        if size > _MAX_UINT32:
            return False
        if size < 32:
            _put_byte(w, 0xA0 | size)
        elif size < 0x100:
            _put_be(w, 0xD9, size, 1)
        elif size < 0x10000:
            _put_be(w, 0xDA, size, 2)
        else:
            _put_be(w, 0xDB, size, 4)
        _put_raw(w, utf8, size)
    elif type(value) is bytes:
        size = PyBytes_GET_SIZE(value)
        if size > _MAX_UINT32:
            return False
        if size < 0x100:
            _put_be(w, 0xC4, size, 1)
        elif size < 0x10000:
            _put_be(w, 0xC5, size, 2)
        else:
            _put_be(w, 0xC6, size, 4)
        _put_raw(w, PyBytes_AS_STRING(value), size)
    elif type(value) is float:
        _put_double(w, value)
    elif type(value) is int:
        number = PyLong_AsLongLongAndOverflow(value, &overflow)
        if overflow or number < _MIN_INT32 or number > _MAX_UINT32:
            return False  # 64-bit ints: left to msgpack
        if 0 <= number < 0x80:
            _put_byte(w, <uint8_t>number)
        elif number >= 0:
            if number < 0x100:
                _put_be(w, 0xCC, number, 1)
            elif number < 0x10000:
                _put_be(w, 0xCD, number, 2)
            else:
                _put_be(w, 0xCE, number, 4)
        elif number >= -32:
            _put_byte(w, <uint8_t>(number & 0xFF))
        elif number >= -0x80:
            _put_be(w, 0xD0, <uint64_t>number, 1)
        elif number >= -0x8000:
            _put_be(w, 0xD1, <uint64_t>number, 2)
        else:
            _put_be(w, 0xD2, <uint64_t>number, 4)
    else:
        return False
    return True


# a call on the wire: these fields of the record, then num_retries and start_within_sec
cdef tuple CALL_FIELDS = (
    "invocation_id",
    "task_id",
    "arguments",
    "parent_invocation_id",
    "workflow_id",
    "workflow_task_id",
    "created_at",
)


cdef int _write_call(Writer* w, _Slots fields, object record, object num_retries,
                     double start_within) except -1:
    """One call of the frame: 1 written, 0 for a value this writer leaves to msgpack."""
    cdef Py_ssize_t i
    cdef PyObject* value
    cdef bint at_slots = fields.direct and type(record) is fields.cls
    _put_array(w, 9)
    for i in range(7):
        if at_slots:
            value = (<PyObject**>((<char*><PyObject*>record) + fields.offsets[i]))[0]
            if value is NULL or not _put_value(w, <object>value):
                return 0  # an unset slot raises its AttributeError on msgpack's path
        elif not _put_value(w, getattr(record, fields.names[i])):
            return 0
    if not _put_value(w, num_retries):
        return 0
    _put_double(w, start_within)
    return 1


cdef object _frame(Writer* w):
    return PyBytes_FromStringAndSize(w.data, w.size)


DEF KEPT_MAX = 1 << 20
cdef Writer _kept  # encode_calls' buffer, kept between calls: grown once, then reused
cdef bint _kept_busy = False  # a record's own code (getattr) could call encode_calls again


def encode_calls(backlog, Py_ssize_t count, dict in_flight, double now, double within):
    """One pass over the claimed records: each marked in flight and written; a record
    this writer cannot write sends the whole frame down msgpack's path."""
    global _kept_busy
    cdef list claimed
    cdef tuple item
    cdef Py_ssize_t i = -1  # the record being handled
    cdef _Slots fields = None
    cdef bint id_first = False, writing = True, taken_all = count == len(backlog)
    cdef Writer own
    cdef Writer* w = &own
    own.data, own.size, own.capacity = NULL, 0, 0
    if not _kept_busy:
        _kept_busy = True
        w = &_kept
        w.size = 0
    if taken_all:  # the usual case: one C call each, not a popleft per record
        claimed = list(backlog)
        backlog.clear()
    else:
        claimed = []
    try:
        _put_array(w, 2)
        _put_byte(w, CALLS)
        _put_array(w, count)
        for i in range(count):
            if taken_all:
                item = claimed[i]
            else:
                item = backlog.popleft()
                claimed.append(item)
            record = item[0]
            if fields is None or type(record) is not fields.cls:
                fields = _slots(type(record))
                id_first = fields.count > 0 and fields.names[0] == "invocation_id"
                writing = writing and fields.names[:7] == CALL_FIELDS
            invocation_id = _field(fields, record, 0) if id_first else record.invocation_id
            PyDict_SetItem(in_flight, invocation_id, None)
            if writing:
                writing = _write_call(w, fields, record, item[1],
                                      within - (now - <double>item[2]))
        if writing:
            return _frame(w)
    except BaseException:
        if taken_all:  # as if popped one by one: the records after the failing one stay
            backlog.extend(claimed[i + 1:])
        raise
    finally:
        if w is not &_kept:
            PyMem_Free(own.data)
        else:
            _kept_busy = False
            if _kept.capacity > KEPT_MAX:  # a frame of huge calls: not kept for ever
                PyMem_Free(_kept.data)
                _kept.data, _kept.size, _kept.capacity = NULL, 0, 0
    calls = []
    for item in claimed:
        record = item[0]
        calls.append([
            record.invocation_id,
            record.task_id,
            record.arguments,
            record.parent_invocation_id,
            record.workflow_id,
            record.workflow_task_id,
            record.created_at,
            item[1],
            within - (now - <double>item[2]),
        ])
    return _packb([CALLS, calls], use_bin_type=True)


# --- reading ----------------------------------------------------------------------------

class _Malformed(Exception):
    """Internal: this reader stops here; msgpack's path decides what the frame is."""


cdef struct Reader:
    const uint8_t* at
    const uint8_t* end
    # sticky: a malformed frame, or a value this reader leaves to msgpack. Every read after
    # it fails too (and returns 0 / None), so loops end; callers check it once per value
    # they act on, instead of an exception check after every byte they take.
    bint bad


cdef inline void _fail(Reader* r) noexcept:
    r.bad = True
    r.at = r.end


cdef inline uint64_t _take_be(Reader* r, int width) noexcept:
    cdef uint64_t value = 0
    cdef int i
    if r.end - r.at < width:
        _fail(r)
        return 0
    for i in range(width):
        value = (value << 8) | r.at[i]
    r.at += width
    return value


cdef inline uint8_t _take_marker(Reader* r) noexcept:
    if r.at >= r.end:
        _fail(r)
        return 0xC1  # never used by msgpack
    cdef uint8_t marker = r.at[0]
    r.at += 1
    return marker


cdef inline Py_ssize_t _take_array(Reader* r) noexcept:
    cdef uint8_t marker = _take_marker(r)
    if 0x90 <= marker <= 0x9F:
        return marker & 0x0F
    if marker == 0xDC:
        return <Py_ssize_t>_take_be(r, 2)
    if marker == 0xDD:
        return <Py_ssize_t>_take_be(r, 4)
    _fail(r)
    return 0


cdef int64_t _take_int(Reader* r) noexcept:
    cdef uint8_t marker = _take_marker(r)
    if marker < 0x80:
        return marker
    if marker >= 0xE0:
        return <int64_t>marker - 0x100
    if marker == 0xCC:
        return <int64_t>_take_be(r, 1)
    if marker == 0xCD:
        return <int64_t>_take_be(r, 2)
    if marker == 0xCE:
        return <int64_t>_take_be(r, 4)
    if marker == 0xD0:
        return <int64_t>(<signed char>_take_be(r, 1))
    if marker == 0xD1:
        return <int64_t>(<short>_take_be(r, 2))
    if marker == 0xD2:
        return <int64_t>(<int>_take_be(r, 4))
    _fail(r)  # 64-bit ints: left to msgpack
    return 0


cdef uint64_t _HIGH_BITS = 0x8080808080808080  # a C constant (a literal would be a Python int)


cdef inline bint _is_ascii(const char* data, Py_ssize_t size) noexcept:
    """No byte with its high bit set; eight bytes at a time."""
    cdef uint64_t word, high = 0
    cdef Py_ssize_t i = 0
    while i + 8 <= size:
        memcpy(&word, data + i, 8)
        high |= word
        i += 8
    while i < size:
        high |= <uint8_t>data[i]
        i += 1
    return (high & _HIGH_BITS) == 0


cdef object _decode_utf8(Reader* r, const char* data, Py_ssize_t size):
    """The str; for invalid UTF-8 the reader fails (msgpack's path then raises its error).
    ASCII (ids, task names) cannot fail: no try block and its exception-state saving."""
    if _is_ascii(data, size):
        text = PyUnicode_New(size, 127)  # checked ASCII already: no second scan
        memcpy(PyUnicode_DATA(text), data, size)
        return text
    try:
        return PyUnicode_DecodeUTF8(data, size, NULL)
    except UnicodeDecodeError:
        _fail(r)
        return None


cdef inline object _take_object(Reader* r):
    """None, str, bytes, float or int; anything else fails the reader (msgpack's)."""
    cdef uint8_t marker = r.at[0] if r.at < r.end else 0xC1
    cdef Py_ssize_t size
    cdef uint64_t bits
    cdef double real
    if marker == 0xC0:
        r.at += 1
        return None
    if 0xA0 <= marker <= 0xBF or 0xD9 <= marker <= 0xDB:
        r.at += 1
        if marker <= 0xBF:
            size = marker & 0x1F
        else:
            size = <Py_ssize_t>_take_be(r, 1 << (marker - 0xD9))
        if r.end - r.at < size:
            _fail(r)
            return None
        r.at += size
        return _decode_utf8(r, <const char*>r.at - size, size)
    if 0xC4 <= marker <= 0xC6:
        r.at += 1
        size = <Py_ssize_t>_take_be(r, 1 << (marker - 0xC4))
        if r.end - r.at < size:
            _fail(r)
            return None
        r.at += size
        return PyBytes_FromStringAndSize(<const char*>r.at - size, size)
    if marker == 0xCB:
        r.at += 1
        bits = _take_be(r, 8)
        memcpy(&real, &bits, 8)
        return PyFloat_FromDouble(real)
    return _take_int(r)


cdef object _take_cached(Reader* r, PyObject** cache):
    """``_take_object`` that returns the string read last into ``cache`` when the bytes
    are the same (task ids, statuses: the same few strings arrive over and over)."""
    cdef uint8_t marker = r.at[0] if r.at < r.end else 0xC1
    cdef Py_ssize_t size, cached_size
    cdef const char* cached_utf8
    if 0xA0 <= marker <= 0xBF and cache[0] is not NULL:
        size = marker & 0x1F
        cached = <object>cache[0]  # a reference of our own while we compare
        if PyUnicode_IS_COMPACT_ASCII(cached):  # its UTF-8 is its data
            cached_size = PyUnicode_GET_LENGTH(cached)
            cached_utf8 = <const char*>PyUnicode_DATA(cached)
        else:
            cached_utf8 = PyUnicode_AsUTF8AndSize(cached, &cached_size)
        if (
            cached_size == size
            and r.end - r.at > size
            and (size == 0 or cached_utf8[size - 1] == <char>r.at[size])  # a cheap first look
            and memcmp(cached_utf8, r.at + 1, size) == 0
        ):
            r.at += 1 + size
            return cached
    value = _take_object(r)
    if type(value) is str:
        Py_INCREF(value)
        Py_XDECREF(cache[0])
        cache[0] = <PyObject*>value
    return value


cdef inline void _start(Reader* r, bytes frame):
    r.at = <const uint8_t*>PyBytes_AS_STRING(frame)
    r.end = r.at + PyBytes_GET_SIZE(frame)
    r.bad = False


DEF RECORD_FIELDS = 7


cdef inline void _set(list items, Py_ssize_t index, object value) noexcept:
    """``items[index] = value`` for a slot of a new list, still empty."""
    Py_INCREF(value)
    PyList_SET_ITEM(items, index, value)


cdef class _CallReader:
    """Reads CALLS frames for one record class, remembering the last task ids it read."""

    cdef _Slots records
    cdef PyObject* task_id
    cdef PyObject* workflow_task_id

    def __cinit__(self, type record_cls):
        self.records = _slots(record_cls)
        self.task_id = NULL
        self.workflow_task_id = NULL

    def __dealloc__(self):
        Py_XDECREF(self.task_id)
        Py_XDECREF(self.workflow_task_id)

    cdef object read(self, bytes frame):
        cdef Reader r
        cdef Py_ssize_t count, n, i
        cdef list records, retries, withins
        cdef PyObject* fields[RECORD_FIELDS]
        _start(&r, frame)
        n = _take_array(&r)
        kind = _take_int(&r)
        if n < 1 or r.bad:
            raise _Malformed()
        if kind != CALLS:
            if n != 1 or r.at != r.end:
                raise _Malformed()
            return kind, [], [], []
        count = _take_array(&r)
        if n != 2 or r.bad or count > (r.end - r.at) // (RECORD_FIELDS + 3):  # 10+ bytes each
            raise _Malformed()
        # filled in place (each slot set once below; a frame given up is dropped whole)
        records, retries, withins = PyList_New(count), PyList_New(count), PyList_New(count)
        for i in range(count):
            if _take_array(&r) != RECORD_FIELDS + 2:
                raise _Malformed()
            # locals own the values; ``fields`` borrows them for make()
            invocation_id = _take_object(&r)
            task_id = _take_cached(&r, &self.task_id)
            arguments = _take_object(&r)
            parent_id = _take_object(&r)
            workflow_id = _take_object(&r)
            workflow_task_id = _take_cached(&r, &self.workflow_task_id)
            created_at = _take_object(&r)
            if r.bad:
                raise _Malformed()
            fields[0], fields[1] = <PyObject*>invocation_id, <PyObject*>task_id
            fields[2], fields[3] = <PyObject*>arguments, <PyObject*>parent_id
            fields[4], fields[5] = <PyObject*>workflow_id, <PyObject*>workflow_task_id
            fields[6] = <PyObject*>created_at
            _set(records, i, self.records.make(fields, RECORD_FIELDS))
            _set(retries, i, _take_object(&r))
            _set(withins, i, _take_object(&r))
        if r.bad or r.at != r.end:
            raise _Malformed()
        return CALLS, records, retries, withins


cdef dict _call_readers = {}


def decode_calls(frame, make_record):
    if type(frame) is bytes and isinstance(make_record, type):
        reader = _call_readers.get(make_record)
        if reader is None:
            reader = _call_readers[make_record] = _CallReader(make_record)
        try:
            return (<_CallReader>reader).read(frame)
        except _Malformed:
            pass
    cdef list message = _unpackb(frame, raw=False)
    if message[0] != CALLS:
        return message[0], [], [], []
    calls = message[1]
    records = [make_record(*call[:7]) for call in calls]
    return CALLS, records, [call[7] for call in calls], [call[8] for call in calls]


cdef struct Event:
    int64_t kind
    # owned: the id, then for DONE the status value, result, exception and retry_delay;
    # a float retry_delay stays a double (below) until a status that is routed needs it
    PyObject* fields[5]
    double delay


cdef void _release(Event* events, Py_ssize_t count):
    cdef Py_ssize_t i
    cdef int j
    if events is NULL:
        return
    for i in range(count):
        for j in range(5):
            Py_XDECREF(events[i].fields[j])
    PyMem_Free(events)


cdef inline void _keep(PyObject** slot, object value):
    Py_INCREF(value)
    slot[0] = <PyObject*>value


cdef class EventReader:
    cdef object _running, _resumed, _paused, _rerouted
    cdef dict _statuses
    cdef frozenset _routed_values
    cdef bint _rerouted_routed
    cdef PyObject* _status_value  # the last DONE status read, as a str
    cdef PyObject* _invocation_id  # the last id read: a call's DONE often follows its STARTED
    # the last DONE status value resolved (a reference of ours), its status and routing
    cdef PyObject* _resolved_value
    cdef object _resolved_status
    cdef bint _resolved_routed
    # the columns of the ``out`` being filled, set only while ``read`` runs
    cdef list _ids, _status_column, _results, _exceptions, _retries

    def __cinit__(self):
        self._status_value = NULL
        self._invocation_id = NULL
        self._resolved_value = NULL

    def __dealloc__(self):
        Py_XDECREF(self._status_value)
        Py_XDECREF(self._invocation_id)
        Py_XDECREF(self._resolved_value)

    def __init__(self, dict statuses, running, resumed, paused, rerouted, routed):
        self._statuses = statuses
        self._running, self._resumed = running, resumed
        self._paused, self._rerouted = paused, rerouted
        self._routed_values = frozenset([v for v, s in statuses.items() if s in routed])
        self._rerouted_routed = rerouted in routed

    cdef int _resolve(self, object value) except -1:
        """The status of a DONE's value (KeyError for none) and whether it is routed."""
        status = self._statuses[value]
        self._resolved_routed = value in self._routed_values
        self._resolved_status = status
        Py_INCREF(value)
        Py_XDECREF(self._resolved_value)
        self._resolved_value = <PyObject*>value
        return 0

    cdef inline int _add(self, object invocation_id, object status) except -1:
        self._ids.append(invocation_id)
        self._status_column.append(status)
        return 0

    cdef int _apply(self, list event, dict in_flight, set started, set running,
                    dict lost_runs) except -1:
        """One event of a frame msgpack decoded: the pure twin's steps, in its order."""
        kind = event[0]
        if kind == DONE:
            invocation_id = event[1]
            in_flight.pop(invocation_id, None)
            started.discard(invocation_id)
            running.discard(invocation_id)
            if lost_runs:
                lost_runs.pop(invocation_id, None)
            value = event[2]
            self._add(invocation_id, self._statuses[value])
            if event[3] is not None:
                self._results.append((invocation_id, event[3]))
            if event[4] is not None:
                self._exceptions.append((invocation_id, event[4]))
            if value in self._routed_values:
                self._retries.append((invocation_id, event[5]))
        elif kind == STARTED:
            started.add(event[1])
            running.add(event[1])
            self._add(event[1], self._running)
        elif kind == RESUMED:
            running.add(event[1])
            self._add(event[1], self._resumed)
        elif kind == RETURNED:
            in_flight.pop(event[1], None)
            self._add(event[1], self._rerouted)
            if self._rerouted_routed:
                self._retries.append((event[1], 0.0))
        else:  # PAUSED
            running.discard(event[1])
            self._add(event[1], self._paused)
        return 0

    cdef int _apply_event(self, Event* event, dict in_flight, set started, set running,
                          dict lost_runs) except -1:
        """``_apply`` for a parsed event: the same bookkeeping, in the same order."""
        cdef int64_t kind = event.kind
        invocation_id = <object>event.fields[0]
        if kind == DONE:
            in_flight.pop(invocation_id, None)
            PySet_Discard(started, invocation_id)
            PySet_Discard(running, invocation_id)
            if lost_runs:
                lost_runs.pop(invocation_id, None)
            if event.fields[1] is not self._resolved_value:
                self._resolve(<object>event.fields[1])
            self._add(invocation_id, self._resolved_status)
            if event.fields[2] is not <PyObject*>None:
                self._results.append((invocation_id, <object>event.fields[2]))
            if event.fields[3] is not <PyObject*>None:
                self._exceptions.append((invocation_id, <object>event.fields[3]))
            if self._resolved_routed:
                if event.fields[4] is NULL:
                    delay = PyFloat_FromDouble(event.delay)
                else:
                    delay = <object>event.fields[4]
                self._retries.append((invocation_id, delay))
        elif kind == STARTED:
            PySet_Add(started, invocation_id)
            PySet_Add(running, invocation_id)
            self._add(invocation_id, self._running)
        elif kind == RESUMED:
            PySet_Add(running, invocation_id)
            self._add(invocation_id, self._resumed)
        elif kind == RETURNED:
            in_flight.pop(invocation_id, None)
            self._add(invocation_id, self._rerouted)
            if self._rerouted_routed:
                self._retries.append((invocation_id, 0.0))
        else:  # PAUSED
            PySet_Discard(running, invocation_id)
            self._add(invocation_id, self._paused)
        return 0

    cdef object _parse(self, bytes frame, Event** parsed, Py_ssize_t* count):
        """Reads the whole frame into ``parsed[0][:count[0]]`` before anything is applied;
        returns the grant. Raises _Malformed for what msgpack's path must decide."""
        cdef Reader r
        cdef Py_ssize_t n, size, index, extra
        cdef Event* event
        _start(&r, frame)
        cdef uint64_t bits
        n = _take_array(&r)
        grant = _take_int(&r)
        if n < 1 or r.bad or n > (r.end - r.at) // 3 + 1:  # an event takes 3 bytes or more
            raise _Malformed()
        parsed[0] = <Event*>PyMem_Calloc(n, sizeof(Event))
        if parsed[0] is NULL:
            raise MemoryError()
        count[0] = n - 1
        for index in range(n - 1):
            event = parsed[0] + index
            size = _take_array(&r)
            event.kind = _take_int(&r)
            if size < 2 or r.bad or (event.kind == DONE) != (size == 6):
                raise _Malformed()
            _keep(&event.fields[0], _take_cached(&r, &self._invocation_id))
            if event.kind == DONE:
                _keep(&event.fields[1], _take_cached(&r, &self._status_value))
                _keep(&event.fields[2], _take_object(&r))
                _keep(&event.fields[3], _take_object(&r))
                if r.at < r.end and r.at[0] == 0xCB:
                    r.at += 1
                    bits = _take_be(&r, 8)
                    memcpy(&event.delay, &bits, 8)
                else:
                    _keep(&event.fields[4], _take_object(&r))
            else:
                for extra in range(size - 2):
                    _take_object(&r)
        if r.bad or r.at != r.end:
            raise _Malformed()
        return grant

    def read(self, frame, dict in_flight, set started, set running, dict lost_runs, out):
        self._ids, self._status_column = out.ids, out.statuses
        self._results, self._exceptions, self._retries = out.results, out.exceptions, out.retries
        try:
            return self._read(frame, in_flight, started, running, lost_runs)
        finally:
            self._ids = self._status_column = None
            self._results = self._exceptions = self._retries = None

    cdef tuple _read(self, frame, dict in_flight, set started, set running, dict lost_runs):
        cdef bint hello = False
        cdef Event* parsed = NULL
        cdef Py_ssize_t count = 0, index
        if type(frame) is bytes:
            try:
                grant = self._parse(frame, &parsed, &count)
                for index in range(count):
                    if parsed[index].kind == HELLO:
                        hello = True
                    else:
                        self._apply_event(parsed + index, in_flight, started, running,
                                          lost_runs)
                return grant, hello
            except _Malformed:
                pass
            finally:
                _release(parsed, count)
        cdef list message = _unpackb(frame, raw=False)
        cdef list event
        for index in range(1, PyList_GET_SIZE(message)):
            event = message[index]
            if event[0] == HELLO:
                hello = True
            else:
                self._apply(event, in_flight, started, running, lost_runs)
        return message[0], hello
