"""Typed settings declared as annotated class attributes, resolved once at construction.

Lowest to highest: class defaults < ``config_values`` < config file < ``PYNENC__*`` environment.
After construction every setting is a plain instance attribute (no lookup on access).
"""

from __future__ import annotations

import builtins
import difflib
import enum
import functools
import importlib
import json
import os
import re
import tomllib
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml

from pynenc.exceptions import ConfigError

ENV_PREFIX = "PYNENC__"
ENV_SEPARATOR = "__"
FILEPATH_ENV_VAR = "PYNENC__FILEPATH"
PYPROJECT_FILENAME = "pyproject.toml"

_TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
_FALSE_WORDS = frozenset({"false", "0", "no", "off"})
_NULL_WORDS = frozenset({"", "none", "null"})

# (field name, raw value, source label), applied in order: later entries win.
Assignment = tuple[str, Any, str]


class _BadValue(ValueError):
    """A converter rejected a value; ConfigBase re-raises it as a ConfigError naming the field."""


@dataclass(frozen=True, slots=True)
class Converter:
    """Turns a raw value (often a string from a file or env var) into the declared type."""

    convert: Callable[[Any], Any]
    expected: str


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    default: Any
    converter: Converter


# --- converters -------------------------------------------------------------------------


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise _BadValue


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise _BadValue
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise _BadValue from None
    raise _BadValue


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise _BadValue
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise _BadValue from None
    raise _BadValue


def _to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        return str(os.fspath(value))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # e.g. ``app_id: 2024`` in YAML
    raise _BadValue


def _to_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise _BadValue from None
    if isinstance(value, Mapping):
        return {str(key): item for key, item in value.items()}
    raise _BadValue


def import_exception_class(path: str) -> type[BaseException]:
    """Resolve ``"pkg.mod.MyError"`` (or a bare builtin name like ``"ValueError"``)."""
    parts = path.strip().split(".")
    target: Any = None
    if len(parts) == 1:
        target = getattr(builtins, parts[0], None)
    for split in range(len(parts) - 1, 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            target = getattr(target, attribute, None)
        break
    if isinstance(target, type) and issubclass(target, BaseException):
        return target
    raise _BadValue


def _to_exception_class(value: Any) -> type[BaseException]:
    if isinstance(value, type) and issubclass(value, BaseException):
        return value
    if isinstance(value, str):
        return import_exception_class(value)
    raise _BadValue


def _split_sequence(value: Any) -> list[Any]:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError:
                raise _BadValue from None
            if not isinstance(parsed, list):
                raise _BadValue
            return parsed
        return [item.strip() for item in text.split(",") if item.strip()]
    if isinstance(value, list | tuple):
        return list(value)
    return [value]  # a single item, e.g. ``retry_for=ValueError``


def _sequence_converter(container: type, item: Converter) -> Converter:
    def convert(value: Any) -> Any:
        return container(item.convert(element) for element in _split_sequence(value))

    return Converter(convert, f"a list of {item.expected} (JSON array or comma-separated)")


def _optional_converter(inner: Converter) -> Converter:
    def convert(value: Any) -> Any:
        if value is None or (isinstance(value, str) and value.strip().lower() in _NULL_WORDS):
            return None
        return inner.convert(value)

    return Converter(convert, f"{inner.expected}, or null")


def _enum_converter(enum_cls: type[enum.Enum]) -> Converter:
    by_name = {member.name.lower(): member for member in enum_cls}

    def convert(value: Any) -> Any:
        if isinstance(value, enum_cls):
            return value
        if isinstance(value, str) and value.strip().lower() in by_name:
            return by_name[value.strip().lower()]
        try:
            return enum_cls(value)
        except ValueError:
            raise _BadValue from None

    names = ", ".join(member.name for member in enum_cls)
    return Converter(convert, f"one of {names} (case-insensitive)")


def choices_converter(inner: Converter, choices: tuple[str, ...]) -> Converter:
    """Restrict a string setting to ``choices``, compared case-insensitively, stored lower case."""

    def convert(value: Any) -> Any:
        word = str(inner.convert(value)).strip().lower()
        if word not in choices:
            raise _BadValue
        return word

    return Converter(convert, "one of " + ", ".join(choices))


_SIMPLE_CONVERTERS: dict[Any, Converter] = {
    bool: Converter(_to_bool, "a boolean (true/false, 1/0, yes/no)"),
    int: Converter(_to_int, "an integer"),
    float: Converter(_to_float, "a number"),
    str: Converter(_to_str, "a string"),
    dict: Converter(_to_dict, "a mapping (or a JSON object)"),
    Any: Converter(lambda value: value, "any value"),
}


def converter_for(hint: Any) -> Converter:
    """Build the converter for one declared field type; unsupported types fail loudly."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint in _SIMPLE_CONVERTERS:
        return _SIMPLE_CONVERTERS[hint]
    if origin in (types.UnionType, typing.Union):
        present = [arg for arg in args if arg is not type(None)]
        if len(present) == 1 and len(args) == 2:
            return _optional_converter(converter_for(present[0]))
    elif origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return _sequence_converter(tuple, converter_for(args[0]))
    elif origin is list and len(args) == 1:
        return _sequence_converter(list, converter_for(args[0]))
    elif origin is dict:
        return _SIMPLE_CONVERTERS[dict]
    elif origin is type and args and issubclass(args[0], BaseException):
        expected = "an exception class or its dotted import path (e.g. 'builtins.ValueError')"
        return Converter(_to_exception_class, expected)
    elif isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _enum_converter(hint)
    raise TypeError(f"Config fields of type {hint!r} are not supported.")


# --- files and environment --------------------------------------------------------------


def _parse_yaml(text: str) -> Any:
    return yaml.safe_load(text)


_PARSERS: dict[str, Callable[[str], Any]] = {
    ".yaml": _parse_yaml,
    ".yml": _parse_yaml,
    ".toml": tomllib.loads,
    ".json": json.loads,
}


@functools.lru_cache(maxsize=32)
def _parse_settings(text: str, suffix: str, is_pyproject: bool) -> Mapping[str, Any] | None:
    """Parse a file's text; many config objects read the same file, so parse it once."""
    data = _PARSERS[suffix](text) or {}
    if is_pyproject:
        data = data.get("tool", {}).get("pynenc") if isinstance(data, Mapping) else None
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise ValueError("the top level must be a mapping of setting names to values")
    return data


def load_config_file(path: str | os.PathLike[str]) -> Mapping[str, Any] | None:
    """Read the pynenc settings in ``path`` (for a pyproject.toml, its ``[tool.pynenc]`` table)."""
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix not in _PARSERS:
        supported = ", ".join(sorted(_PARSERS))
        raise ConfigError(f"Config file '{file}' has an unsupported extension; use {supported}.")
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(
            f"Cannot read config file '{file}': {error}. Check config_filepath or "
            f"{FILEPATH_ENV_VAR}."
        ) from error
    try:
        return _parse_settings(text, suffix, file.name == PYPROJECT_FILENAME)
    except Exception as error:
        raise ConfigError(f"Config file '{file}' is not valid: {error}") from error


def _pynenc_environ() -> dict[str, tuple[str, str]]:
    """``PYNENC__*`` variables keyed by upper-case name, each with its original name and value."""
    return {
        name.upper(): (name, value)
        for name, value in os.environ.items()
        if name.upper().startswith(ENV_PREFIX)
    }


def _snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def unknown_name_hint(name: str, valid: tuple[str, ...]) -> str:
    """``Did you mean ...?`` plus the sorted list of valid names, for error messages."""
    close = difflib.get_close_matches(name, valid, n=1)
    suggestion = f" Did you mean '{close[0]}'?" if close else ""
    return f"{suggestion} Valid names: {', '.join(sorted(valid))}."


# --- the base class ---------------------------------------------------------------------


class ConfigBase:
    """Base of every config class; subclasses declare fields like ``max_retries: int = 0``.

    ``section_name`` is the key of this class's own section in a config file (defaults to the
    class name in snake case without ``Config``); ``field_choices`` restricts string fields.
    """

    section_name: ClassVar[str] = ""
    field_choices: ClassVar[Mapping[str, tuple[str, ...]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "section_name" not in cls.__dict__:
            cls.section_name = _snake_case(cls.__name__.removeprefix("Config"))

    def __init__(
        self,
        config_values: Mapping[str, Any] | None = None,
        config_filepath: str | None = None,
    ) -> None:
        values: Mapping[str, Any] = config_values or {}
        assignments: list[Assignment] = [(k, v, "config_values") for k, v in values.items()]
        assignments += self._extra_assignments()
        assignments += self._file_assignments(config_filepath, values)
        assignments += self._env_assignments(_pynenc_environ())
        self._resolve(assignments)

    # -- class-level introspection

    @classmethod
    def fields(cls) -> Mapping[str, Field]:
        """Every declared field (inherited ones first), built once per class."""
        cached: Mapping[str, Field] | None = cls.__dict__.get("_fields_cache")
        if cached is None:
            cached = cls._build_fields()
            cls._fields_cache = cached
        return cached

    @classmethod
    def _build_fields(cls) -> Mapping[str, Field]:
        choices: dict[str, tuple[str, ...]] = {}
        for klass in reversed(cls.__mro__):
            choices.update(klass.__dict__.get("field_choices", {}))
        fields: dict[str, Field] = {}
        for name, hint in typing.get_type_hints(cls).items():
            if name.startswith("_") or typing.get_origin(hint) is ClassVar:
                continue
            if not hasattr(cls, name):
                raise TypeError(f"Config field {cls.__name__}.{name} needs a default value.")
            converter = converter_for(hint)
            if name in choices:
                converter = choices_converter(converter, choices[name])
            try:  # so that e.g. ``7 * 24 * 3600`` declared as float is stored as a float
                default = converter.convert(getattr(cls, name))
            except _BadValue:
                raise TypeError(
                    f"Default of {cls.__name__}.{name} is not {converter.expected}."
                ) from None
            fields[name] = Field(name, default, converter)
        return fields

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(cls.fields())

    @classmethod
    def lineage(cls) -> tuple[type[ConfigBase], ...]:
        """Config classes this one inherits from, most generic first, itself last."""
        return tuple(
            klass
            for klass in reversed(cls.__mro__)
            if issubclass(klass, ConfigBase) and klass is not ConfigBase
        )

    # -- resolution

    def _extra_assignments(self) -> list[Assignment]:
        """Hook: values that rank between ``config_values`` and the config file."""
        return []

    def _file_sections(self, data: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
        """Parts of a config file that apply to this class, least specific first."""
        yield data
        for klass in self.lineage():
            section = data.get(klass.section_name)
            if isinstance(section, Mapping):
                yield section

    def _file_assignments(
        self, config_filepath: str | None, values: Mapping[str, Any]
    ) -> list[Assignment]:
        path = config_filepath or values.get("config_filepath") or os.environ.get(FILEPATH_ENV_VAR)
        if path:
            data, source = load_config_file(path), f"file:{path}"
        else:
            pyproject = Path.cwd() / PYPROJECT_FILENAME
            data = load_config_file(pyproject) if pyproject.is_file() else None
            source = PYPROJECT_FILENAME
        if not data:
            return []
        return [
            (name, value, source)
            for section in self._file_sections(data)
            for name, value in section.items()
        ]

    def _env_assignments(self, environ: Mapping[str, tuple[str, str]]) -> list[Assignment]:
        """``PYNENC__FIELD``, then ``PYNENC__<CLASS>__FIELD`` for each class, generic first."""
        prefixes = [ENV_PREFIX]
        prefixes += [
            f"{ENV_PREFIX}{klass.__name__.upper()}{ENV_SEPARATOR}" for klass in self.lineage()
        ]
        return [
            assignment for prefix in prefixes for assignment in self._env_lookup(environ, prefix)
        ]

    def _env_lookup(
        self, environ: Mapping[str, tuple[str, str]], prefix: str
    ) -> Iterator[Assignment]:
        for name in self.fields():
            found = environ.get(prefix + name.upper())
            if found is not None:
                yield name, found[1], f"env:{found[0]}"

    def _resolve(self, assignments: list[Assignment]) -> None:
        fields = self.fields()
        sources: dict[str, str] = {}
        for field in fields.values():
            # A fresh copy so that instances never share a mutable default.
            default = field.default.copy() if _is_mutable(field.default) else field.default
            object.__setattr__(self, field.name, default)
            sources[field.name] = "default"
        for name, raw, source in assignments:
            if name in fields:
                object.__setattr__(self, name, self._convert(fields[name], raw, source))
                sources[name] = source
        object.__setattr__(self, "_sources", sources)

    def _convert(self, field: Field, raw: Any, source: str) -> Any:
        try:
            return field.converter.convert(raw)
        except _BadValue:
            raise ConfigError(
                f"Invalid value {raw!r} for {type(self).__name__}.{field.name} "
                f"(from {source}): expected {field.converter.expected}."
            ) from None

    # -- instance API

    def sources(self) -> dict[str, str]:
        """Where each field's value came from: ``default``, ``config_values``, ``file:<path>``,
        ``pyproject.toml``, ``env:<VAR>`` (plus ``task_options`` / ``assigned`` where used)."""
        return dict(self._sources)

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.fields()}

    if not typing.TYPE_CHECKING:  # hidden from mypy so misspelt assignments stay type errors

        def __setattr__(self, name: str, value: Any) -> None:
            if "_sources" not in self.__dict__:  # still being constructed
                object.__setattr__(self, name, value)
                return
            field = self.fields().get(name)
            if field is not None:
                object.__setattr__(self, name, self._convert(field, value, "assignment"))
                self._sources[name] = "assigned"
            elif name in self.__dict__:
                object.__setattr__(self, name, value)
            else:
                hint = unknown_name_hint(name, self.field_names())
                raise AttributeError(f"{type(self).__name__} has no setting '{name}'.{hint}")

    def __repr__(self) -> str:
        settings = ", ".join(f"{name}={value!r}" for name, value in self.as_dict().items())
        return f"{type(self).__name__}({settings})"

    _sources: dict[str, str]
    _fields_cache: ClassVar[Mapping[str, Field]]


def _is_mutable(value: Any) -> bool:
    return isinstance(value, list | dict | set)
