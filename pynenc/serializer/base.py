"""Serializer contract: turn task arguments and results into bytes and back.

Also holds the two helpers the type-tagging serializers share: naming a class by its
import path, and importing it again from that path.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from pynenc.exceptions import SerializationError


class BaseSerializer(ABC):
    """Encodes values for the broker, state backend and client data store.

    Serializers are stateless and cheap to construct; one instance may be shared by any
    number of threads. Both methods raise ``SerializationError`` for what they cannot do.
    """

    name: ClassVar[str]
    """Short name accepted by ``get_serializer`` and the configuration."""

    @abstractmethod
    def dumps(self, obj: Any) -> bytes:
        """Encode ``obj``; ``loads`` of the result gives an equal value."""

    @abstractmethod
    def loads(self, data: bytes) -> Any:
        """Decode bytes produced by ``dumps`` of the same serializer."""


def class_path(cls: type) -> tuple[str, str]:
    """``(module, qualname)`` of ``cls``, refusing classes that cannot be imported back."""
    qualname = cls.__qualname__
    if "<locals>" in qualname:
        raise SerializationError(
            f"Class '{qualname}' is defined inside a function, so the receiving side "
            f"cannot import it. Move it to module level."
        )
    return cls.__module__, qualname


def import_class(module: str, qualname: str) -> type:
    """Import the class ``class_path`` named; ``SerializationError`` if it is gone."""
    try:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise SerializationError(
            f"Cannot import '{module}.{qualname}' to decode a value: {exc}. "
            f"Make the class importable wherever the value is read."
        ) from exc
    if not isinstance(found, type):
        raise SerializationError(f"'{module}.{qualname}' is not a class; the payload is corrupt.")
    return found
