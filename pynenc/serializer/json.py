"""Plain JSON via orjson: JSON natives, Enums, exceptions and ``JsonSerializable`` objects.

Other types are refused at ``dumps``, so a value never comes back as a different type.
Decoding only builds Enums, exceptions and classes with ``from_json``: no pickle-style code.
"""

from __future__ import annotations

import builtins
import pickle
import threading
from collections.abc import Callable
from enum import Enum
from typing import Any, NoReturn, Protocol, Self, TypeVar, runtime_checkable
from uuid import UUID

import orjson

from pynenc.exceptions import SerializationError
from pynenc.serializer.base import BaseSerializer, class_path, import_class

# Single-key objects with these keys are type markers. Reserved: a user dict shaped like
# one would be decoded as the marked type.
ENUM_KEY = "__pynenc__enum__"
JSON_SERIALIZABLE_KEY = "__pynenc__json_serializable__"
STD_EXCEPTION_KEY = "__pynenc__std_py_exc__"
CLIENT_EXCEPTION_KEY = "__pynenc__client_exception__"
_MARKER_PREFIX = b'"__pynenc__'

_T = TypeVar("_T")

_SCALARS = frozenset({str, int, float, bool, type(None)})
# Without these, orjson would write datetimes and dataclasses as strings/objects that
# decode as str/dict; passing them through lets the hook refuse them.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class _NotPlain(Exception):
    """Raised by the probe at the first value that is not an exact builtin."""


class _Discard:
    def write(self, chunk: bytes) -> int:
        return len(chunk)


class _BuiltinsOnlyProbe(pickle.Pickler):
    """Pickles into nowhere to learn, at C speed, whether a value holds only builtins.

    The C pickler saves exact None/bool/int/float/str/bytes/list/tuple/dict/set itself and
    calls ``reducer_override`` for anything else, Enum members included.
    """

    def reducer_override(self, obj: Any) -> Any:
        raise _NotPlain


# A Pickler is not thread-safe, and building one costs more than probing a small value.
_probes = threading.local()


def _needs_tagging(obj: Any) -> bool:
    """Whether ``obj`` may hold a value orjson would write without calling ``default``."""
    kind = type(obj)
    if kind in _SCALARS:
        return False
    # One level of scalars is the common case, and cheaper to check than to probe.
    if kind is dict:
        if _SCALARS.issuperset(map(type, obj.values())):
            return False
    elif kind is list or kind is tuple:
        if _SCALARS.issuperset(map(type, obj)):
            return False
    else:
        return True
    probe = getattr(_probes, "probe", None)
    if probe is None:
        probe = _probes.probe = _BuiltinsOnlyProbe(_Discard(), protocol=5)
    try:
        probe.dump(obj)
    except (_NotPlain, RecursionError):
        return True
    finally:
        probe.clear_memo()  # the memo would otherwise keep the value alive
    return False


@runtime_checkable
class JsonSerializable(Protocol):
    """A class that ``JsonSerializer`` round-trips through these two methods."""

    def to_json(self) -> Any:
        """A JSON-able value (may hold Enums or other ``JsonSerializable`` objects)."""
        ...

    @classmethod
    def from_json(cls, data: Any) -> Self:
        """Rebuild the instance from what ``to_json`` returned."""
        ...


class JsonSerializer(BaseSerializer):
    """Small, readable, safe-to-decode JSON; custom classes opt in via ``JsonSerializable``.

    Tuples come back as lists, and NaN/infinity as ``None`` (JSON has no such numbers).
    """

    name = "json"

    def dumps(self, obj: Any) -> bytes:
        try:
            # The Python-level walk runs only for values that are not plain JSON natives.
            payload = _tag_enums(obj) if _needs_tagging(obj) else obj
            return orjson.dumps(payload, default=_encode_other, option=_OPTIONS)
        except SerializationError:
            raise
        except TypeError as exc:  # orjson.JSONEncodeError; it wraps what the hook raised
            cause = exc.__cause__
            if isinstance(cause, SerializationError):
                raise cause from None
            raise SerializationError(
                f"JsonSerializer cannot encode {type(obj)!r}: {cause or exc}"
            ) from exc
        except RecursionError as exc:
            raise SerializationError(
                "JsonSerializer cannot encode a cyclic or too deeply nested value."
            ) from exc

    def loads(self, data: bytes) -> Any:
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise SerializationError(f"JsonSerializer cannot decode the payload: {exc}") from exc
        # Plain JSON skips the Python-level walk; orjson never escapes ASCII letters,
        # so any marker shows up literally.
        if _MARKER_PREFIX not in data:
            return value
        try:
            return _revive(value)
        except SerializationError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise SerializationError(f"JsonSerializer found a malformed marker: {exc!r}") from exc


def _tag_enums(obj: Any) -> Any:
    """Replace Enum members with markers before orjson sees them.

    orjson writes Enums as their bare value without calling ``default``, so only a walk
    can catch them. Containers of scalars only are passed through uncopied.
    """
    kind = type(obj)
    if kind in _SCALARS:
        return obj
    if kind is dict:
        if _SCALARS.issuperset(map(type, obj.values())):
            return obj
        return {key: _tag_enums(value) for key, value in obj.items()}
    if kind is list or kind is tuple:
        if _SCALARS.issuperset(map(type, obj)):
            return obj
        return [_tag_enums(item) for item in obj]
    if isinstance(obj, Enum):
        return _enum_marker(obj)
    if isinstance(obj, dict):
        return {key: _tag_enums(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [_tag_enums(item) for item in obj]
    if isinstance(obj, UUID):  # orjson would write it as a str, which decodes as str
        _refuse(obj)
    return obj  # anything else reaches _encode_other through orjson's default hook


def _enum_marker(member: Enum) -> dict[str, Any]:
    module, qualname = class_path(type(member))
    body: dict[str, Any] = {"module": module, "qualname": qualname}
    if member.name is not None and type(member).__members__.get(member.name) is member:
        body["name"] = member.name  # names survive values JSON cannot hold (tuples, ...)
    else:
        body["value"] = _tag_enums(member.value)  # Flag combinations have no member name
    return {ENUM_KEY: body}


def _encode_other(obj: Any) -> Any:
    """orjson ``default`` hook: markers for the supported non-native types, else refuse."""
    if isinstance(obj, JsonSerializable) and not isinstance(obj, type):
        module, qualname = class_path(type(obj))
        data = _tag_enums(obj.to_json())
        return {JSON_SERIALIZABLE_KEY: {"module": module, "qualname": qualname, "data": data}}
    if isinstance(obj, BaseException):
        return _exception_marker(obj)
    _refuse(obj)


def _exception_marker(exc: BaseException) -> dict[str, Any]:
    args = _tag_enums(list(exc.args))
    cls = type(exc)
    if cls.__module__ == "builtins":
        return {STD_EXCEPTION_KEY: {"type": cls.__name__, "args": args, "message": str(exc)}}
    module, qualname = class_path(cls)
    body = {"module": module, "qualname": qualname, "args": args, "message": str(exc)}
    return {CLIENT_EXCEPTION_KEY: body}


def _refuse(obj: Any) -> NoReturn:
    cls = type(obj)
    type_name = (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )
    raise SerializationError(
        f"Object of type '{type_name}' is not JSON serializable by JsonSerializer. "
        f"Give the class to_json()/from_json() (the JsonSerializable protocol), or choose "
        f"JsonPickleSerializer, MsgpackSerializer or PickleSerializer."
    )


def _revive(node: Any) -> Any:
    """Rebuild marked values, bottom-up, in decoded JSON."""
    kind = type(node)
    if kind is list:
        return [_revive(item) for item in node]
    if kind is dict:
        if len(node) == 1:
            ((key, body),) = node.items()
            reviver = _REVIVERS.get(key)
            if reviver is not None:
                return reviver(body)
        return {key: _revive(value) for key, value in node.items()}
    return node


def _revive_enum(body: dict[str, Any]) -> Enum:
    cls = _import_subclass(body, Enum)
    if "name" in body:
        return cls[body["name"]]
    return cls(_revive(body["value"]))


def _revive_json_serializable(body: dict[str, Any]) -> Any:
    cls = import_class(body["module"], body["qualname"])
    if not callable(getattr(cls, "from_json", None)):
        raise SerializationError(f"{cls!r} has no from_json(); cannot decode its JSON data.")
    return cls.from_json(_revive(body["data"]))  # type: ignore[attr-defined]


def _revive_std_exception(body: dict[str, Any]) -> BaseException:
    cls = getattr(builtins, body["type"], None)
    if not (isinstance(cls, type) and issubclass(cls, BaseException)):
        raise SerializationError(f"'{body['type']}' is not a built-in exception.")
    return _build_exception(cls, _revive(body["args"]))


def _revive_client_exception(body: dict[str, Any]) -> BaseException:
    cls = _import_subclass(body, BaseException)
    return _build_exception(cls, _revive(body["args"]))


def _import_subclass(body: dict[str, Any], base: type[_T]) -> type[_T]:
    # Checking the base keeps a crafted payload from calling arbitrary importable classes.
    cls = import_class(body["module"], body["qualname"])
    if not issubclass(cls, base):
        raise SerializationError(
            f"{cls!r} is not a subclass of {base.__name__}; the payload is corrupt."
        )
    return cls


def _build_exception(cls: type[BaseException], args: list[Any]) -> BaseException:
    try:
        return cls(*args)
    # A custom __init__ may not accept its own args back; keep the type and args anyway.
    except Exception:
        exc = cls.__new__(cls, *args)
        exc.args = tuple(args)
        return exc


_REVIVERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    ENUM_KEY: _revive_enum,
    JSON_SERIALIZABLE_KEY: _revive_json_serializable,
    STD_EXCEPTION_KEY: _revive_std_exception,
    CLIENT_EXCEPTION_KEY: _revive_client_exception,
}
