"""Reference twin: the wire format of a serialized call's arguments.

Layout (little-endian): ``u8 version | u32 count`` then per argument
``u16 name_len | name (utf-8) | u8 kind | u32 value_len | value``. ``kind`` is 0 for a value
inline and 1 for a client-data-store key standing in for a large value.
"""

from __future__ import annotations

import struct

VERSION = 1
INLINE, REFERENCE = 0, 1

_HEADER = struct.Struct("<BI")
_NAME = struct.Struct("<H")
_VALUE = struct.Struct("<BI")


_NO_REFERENCES: frozenset[str] = frozenset()


class EnvelopeError(ValueError):
    """Bytes that are not a pynenc argument envelope (or of a version this build lacks)."""


def pack_arguments(values: dict[str, bytes], references: frozenset[str] = frozenset()) -> bytes:
    """Encode argument name -> bytes; names in ``references`` are marked as store keys."""
    parts = [_HEADER.pack(VERSION, len(values))]
    for name, value in values.items():
        encoded = name.encode()
        parts.append(_NAME.pack(len(encoded)))
        parts.append(encoded)
        parts.append(_VALUE.pack(REFERENCE if name in references else INLINE, len(value)))
        parts.append(value)
    return b"".join(parts)


def unpack_arguments(data: bytes) -> tuple[dict[str, bytes], frozenset[str]]:
    """Decode an envelope: (argument name -> bytes, names that are store keys)."""
    view = memoryview(data)
    if len(view) < _HEADER.size:
        raise EnvelopeError("argument envelope too short")
    version, count = _HEADER.unpack_from(view, 0)
    if version != VERSION:
        raise EnvelopeError(f"argument envelope version {version}, expected {VERSION}")
    offset = _HEADER.size
    values: dict[str, bytes] = {}
    references: list[str] = []
    try:
        for _ in range(count):
            (name_len,) = _NAME.unpack_from(view, offset)
            offset += _NAME.size
            name = bytes(view[offset : offset + name_len]).decode()
            offset += name_len
            kind, value_len = _VALUE.unpack_from(view, offset)
            offset += _VALUE.size
            if offset + value_len > len(view):
                raise EnvelopeError("argument envelope truncated")
            values[name] = bytes(view[offset : offset + value_len])
            offset += value_len
            if kind == REFERENCE:
                references.append(name)
    except struct.error as exc:
        raise EnvelopeError(f"argument envelope truncated ({exc})") from None
    if offset != len(view):
        raise EnvelopeError("argument envelope has trailing bytes")
    return values, frozenset(references) if references else _NO_REFERENCES
