"""The serialized call: argument name -> serializer bytes, packed in one envelope."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pynenc._speedups import envelope
from pynenc.exceptions import ArgumentSerializationError

if TYPE_CHECKING:
    from pynenc.serializer.base import BaseSerializer


def serialize_arguments(
    serializer: BaseSerializer, task_id: str, kwargs: dict[str, Any]
) -> dict[str, bytes]:
    """Encode each argument on its own, so a failure names the argument at call time."""
    dumps = serializer.dumps
    try:
        return {name: dumps(value) for name, value in kwargs.items()}
    except Exception:
        for name, value in kwargs.items():
            try:
                dumps(value)
            except Exception as exc:
                raise ArgumentSerializationError(
                    task_id, name, type(serializer).__name__, exc
                ) from exc
        raise


def pack_arguments(values: dict[str, bytes], references: frozenset[str] = frozenset()) -> bytes:
    """The envelope; names in ``references`` hold a client-data-store key, not the value."""
    return envelope.pack_arguments(values, references)


def unpack_with_references(data: bytes) -> tuple[dict[str, bytes], frozenset[str]]:
    return envelope.unpack_arguments(data)


def unpack_arguments(data: bytes) -> dict[str, bytes]:
    return envelope.unpack_arguments(data)[0]


def deserialize_arguments(serializer: BaseSerializer, data: bytes) -> dict[str, Any]:
    loads = serializer.loads
    return {name: loads(value) for name, value in unpack_arguments(data).items()}
