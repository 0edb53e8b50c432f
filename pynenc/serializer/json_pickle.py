"""jsonpickle: JSON text that still rebuilds Python types; the default serializer."""

from __future__ import annotations

import math
from typing import Any

import jsonpickle
import orjson
from jsonpickle.errors import ClassNotFoundError

from pynenc.exceptions import SerializationError
from pynenc.serializer.base import BaseSerializer

_BIG = 2**63  # orjson's integer range
# first bytes of JSON scalars (not "[", "{" or NaN/Infinity, which jsonpickle must read)
_TEXT_STARTS = frozenset(bytes([c]) for c in b'"tfn')
_NUMBER_STARTS = frozenset(bytes([c]) for c in b"-0123456789")


class JsonPickleSerializer(BaseSerializer):
    """Readable JSON keeping sets, tuples, bytes, datetimes, Decimals, Enums and objects.

    Decoding imports and builds the classes named in the payload: trusted data only.
    """

    name = "json_pickle"

    def dumps(self, obj: Any) -> bytes:
        kind = type(obj)
        # scalars are the same JSON either way; orjson writes them ~20x faster
        if kind is str or kind is bool or obj is None or (kind is int and -_BIG < obj < _BIG):
            return orjson.dumps(obj)
        if kind is float and math.isfinite(obj):
            return orjson.dumps(obj)
        # keys=True keeps non-str dict keys (ints, tuples) instead of stringifying them.
        try:
            text: str = jsonpickle.encode(obj, keys=True)
            return text.encode("utf-8")
        except (TypeError, ValueError, AttributeError) as exc:
            raise SerializationError(
                f"JsonPickleSerializer cannot encode {type(obj)!r}: {exc}"
            ) from exc

    def loads(self, data: bytes) -> Any:
        first = data[:1]
        if first in _TEXT_STARTS or (first in _NUMBER_STARTS and len(data) <= 18):
            # a JSON scalar (short numbers only: orjson reads huge integers as floats)
            return orjson.loads(data)
        # on_missing="error": an unimportable class must fail, not come back as a dict.
        try:
            return jsonpickle.decode(data.decode("utf-8"), keys=True, on_missing="error")
        # ClassNotFoundError derives from BaseException, so it is named explicitly.
        except (ValueError, TypeError, ClassNotFoundError) as exc:
            raise SerializationError(
                f"JsonPickleSerializer cannot decode the payload: {exc}"
            ) from exc
