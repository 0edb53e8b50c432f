"""jsonpickle: JSON text that still rebuilds Python types; the default serializer."""

from __future__ import annotations

from typing import Any

import jsonpickle
from jsonpickle.errors import ClassNotFoundError

from pynenc.exceptions import SerializationError
from pynenc.serializer.base import BaseSerializer


class JsonPickleSerializer(BaseSerializer):
    """Readable JSON keeping sets, tuples, bytes, datetimes, Decimals, Enums and objects.

    Decoding imports and builds the classes named in the payload: trusted data only.
    """

    name = "json_pickle"

    def dumps(self, obj: Any) -> bytes:
        # keys=True keeps non-str dict keys (ints, tuples) instead of stringifying them.
        try:
            text: str = jsonpickle.encode(obj, keys=True)
            return text.encode("utf-8")
        except (TypeError, ValueError, AttributeError) as exc:
            raise SerializationError(
                f"JsonPickleSerializer cannot encode {type(obj)!r}: {exc}"
            ) from exc

    def loads(self, data: bytes) -> Any:
        # on_missing="error": an unimportable class must fail, not come back as a dict.
        try:
            return jsonpickle.decode(data.decode("utf-8"), keys=True, on_missing="error")
        # ClassNotFoundError derives from BaseException, so it is named explicitly.
        except (ValueError, TypeError, ClassNotFoundError) as exc:
            raise SerializationError(
                f"JsonPickleSerializer cannot decode the payload: {exc}"
            ) from exc
