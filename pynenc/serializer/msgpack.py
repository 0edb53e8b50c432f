"""msgpack with extension types: compact binary that keeps common Python types.

Tuples, sets, frozensets, datetimes, dates, Decimals and Enums get their own ext types;
any other non-native value is pickled into one, so decoding is for trusted data only.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from datetime import date, datetime, timezone
from decimal import Decimal
from enum import Enum
from typing import Any

import msgpack

from pynenc.exceptions import SerializationError
from pynenc.serializer.base import BaseSerializer, class_path, import_class

# Ext type codes are part of the wire format: never renumber, only add.
_TUPLE, _SET, _FROZENSET, _DATETIME, _DATE, _DECIMAL, _ENUM, _PICKLE = range(1, 9)

_ENCODE_ERRORS = (TypeError, ValueError, OverflowError, AttributeError, pickle.PicklingError)
_DECODE_ERRORS = (
    ValueError,
    TypeError,
    EOFError,
    ImportError,
    AttributeError,
    msgpack.UnpackException,
    pickle.UnpicklingError,
)


class MsgpackSerializer(BaseSerializer):
    """Fast binary encoding that round-trips Python types (``bytearray`` comes back as bytes)."""

    name = "msgpack"

    def dumps(self, obj: Any) -> bytes:
        try:
            return _pack(obj)
        except SerializationError:
            raise
        except _ENCODE_ERRORS as exc:
            raise SerializationError(
                f"MsgpackSerializer cannot encode {type(obj)!r}: {exc}"
            ) from exc

    def loads(self, data: bytes) -> Any:
        try:
            return _unpack(data)
        except SerializationError:
            raise
        except _DECODE_ERRORS as exc:
            raise SerializationError(f"MsgpackSerializer cannot decode the payload: {exc}") from exc


def _pack(obj: Any) -> bytes:
    # strict_types sends tuples and subclasses (IntEnum, OrderedDict, ...) to the hook
    # instead of packing them as plain arrays, ints and maps.
    packed: bytes = msgpack.packb(obj, default=_to_ext, strict_types=True, use_bin_type=True)
    return packed


def _unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, ext_hook=_from_ext, raw=False, use_list=True, strict_map_key=False)


def _to_ext(obj: Any) -> msgpack.ExtType:
    encode = _ENCODERS.get(type(obj))
    if encode is not None:
        return encode(obj)
    if isinstance(obj, Enum):
        module, qualname = class_path(type(obj))
        return msgpack.ExtType(_ENUM, _pack([module, qualname, obj.value]))
    return _pickled(obj)


def _pickled(obj: Any) -> msgpack.ExtType:
    return msgpack.ExtType(_PICKLE, pickle.dumps(obj, protocol=5))


def _datetime_to_ext(value: datetime) -> msgpack.ExtType:
    # ISO text is exact for naive and fixed-offset datetimes; named zones (zoneinfo) and
    # fold would be lost, so those take the pickle route.
    if value.fold == 0 and (value.tzinfo is None or type(value.tzinfo) is timezone):
        return msgpack.ExtType(_DATETIME, value.isoformat().encode("ascii"))
    return _pickled(value)


_ENCODERS: dict[type, Callable[[Any], msgpack.ExtType]] = {
    tuple: lambda value: msgpack.ExtType(_TUPLE, _pack(list(value))),
    set: lambda value: msgpack.ExtType(_SET, _pack(list(value))),
    frozenset: lambda value: msgpack.ExtType(_FROZENSET, _pack(list(value))),
    datetime: _datetime_to_ext,
    date: lambda value: msgpack.ExtType(_DATE, value.isoformat().encode("ascii")),
    Decimal: lambda value: msgpack.ExtType(_DECIMAL, str(value).encode("ascii")),
}


def _from_ext(code: int, data: bytes) -> Any:
    decode = _DECODERS.get(code)
    if decode is None:
        raise SerializationError(f"Unknown msgpack ext type {code}; the payload is corrupt.")
    return decode(data)


def _enum_from_ext(data: bytes) -> Enum:
    module, qualname, value = _unpack(data)
    cls = import_class(module, qualname)
    if not issubclass(cls, Enum):
        raise SerializationError(f"{cls!r} is not an Enum; the payload is corrupt.")
    return cls(value)


_DECODERS: dict[int, Callable[[bytes], Any]] = {
    _TUPLE: lambda data: tuple(_unpack(data)),
    _SET: lambda data: set(_unpack(data)),
    _FROZENSET: lambda data: frozenset(_unpack(data)),
    _DATETIME: lambda data: datetime.fromisoformat(data.decode("ascii")),
    _DATE: lambda data: date.fromisoformat(data.decode("ascii")),
    _DECIMAL: lambda data: Decimal(data.decode("ascii")),
    _ENUM: _enum_from_ext,
    _PICKLE: pickle.loads,
}
