"""Pickle (protocol 5): every picklable Python type, compact, trusted data only."""

from __future__ import annotations

import pickle
from typing import Any

from pynenc.exceptions import SerializationError
from pynenc.serializer.base import BaseSerializer


class PickleSerializer(BaseSerializer):
    """Keeps every Python type pickle can; loading runs code, so only read trusted data."""

    name = "pickle"

    def dumps(self, obj: Any) -> bytes:
        try:
            return pickle.dumps(obj, protocol=5)
        # Unpicklable values surface as any of these, depending on the object.
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise SerializationError(
                f"PickleSerializer cannot encode {type(obj)!r}: {exc}"
            ) from exc

    def loads(self, data: bytes) -> Any:
        try:
            return pickle.loads(data)
        except (pickle.UnpicklingError, EOFError, ImportError, AttributeError) as exc:
            raise SerializationError(f"PickleSerializer cannot decode the payload: {exc}") from exc
