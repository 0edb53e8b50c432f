"""Serializers for task arguments and results, and ``get_serializer`` to pick one by name."""

from __future__ import annotations

from pynenc.exceptions import ConfigError
from pynenc.serializer.base import BaseSerializer
from pynenc.serializer.json import JsonSerializable, JsonSerializer
from pynenc.serializer.json_pickle import JsonPickleSerializer
from pynenc.serializer.msgpack import MsgpackSerializer
from pynenc.serializer.pickle import PickleSerializer

__all__ = [
    "BaseSerializer",
    "JsonPickleSerializer",
    "JsonSerializable",
    "JsonSerializer",
    "MsgpackSerializer",
    "PickleSerializer",
    "get_serializer",
]

_SERIALIZERS: tuple[type[BaseSerializer], ...] = (
    JsonPickleSerializer,
    JsonSerializer,
    PickleSerializer,
    MsgpackSerializer,
)
# Keys are lower-case: lookups are case-insensitive.
_BY_NAME: dict[str, type[BaseSerializer]] = {
    **{cls.__name__.lower(): cls for cls in _SERIALIZERS},
    **{cls.name: cls for cls in _SERIALIZERS},
    "jsonpickle": JsonPickleSerializer,
}


def get_serializer(name: str) -> type[BaseSerializer]:
    """The serializer class for a class name or short name, e.g. ``"json_pickle"``."""
    try:
        return _BY_NAME[name.strip().lower()]
    except KeyError:
        valid = ", ".join(f"{cls.__name__} ('{cls.name}')" for cls in _SERIALIZERS)
        raise ConfigError(
            f"Unknown serializer '{name}'. Use one of: {valid}; 'jsonpickle' is also accepted."
        ) from None
