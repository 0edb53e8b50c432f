"""Reference twin: the argument envelopes of a batch of calls in one pass.

A call is encoded here only when every argument serializes to bytes shorter than
``min_size`` (nothing for the client data store to take). Any other call is left to the
caller's generic path, which externalizes large values and names the argument that failed:
with its serialized values when there are some to reuse, with None when the serializer
refused a value (or returned something other than bytes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pynenc._speedups._envelope_py import pack_arguments


def encode_calls(
    calls: list[dict[str, Any]], dumps: Callable[[Any], bytes], min_size: int
) -> tuple[list[bytes | None], dict[int, dict[str, bytes] | None]]:
    """(envelope per call, None where not encoded; index -> serialized values (or None) of
    each call not encoded)."""
    envelopes: list[bytes | None] = []
    left: dict[int, dict[str, bytes] | None] = {}
    for index, kwargs in enumerate(calls):
        values = _serialized(kwargs, dumps)
        if values is None or any(len(data) >= min_size for data in values.values()):
            envelopes.append(None)
            left[index] = values
        else:
            envelopes.append(pack_arguments(values))
    return envelopes, left


def _serialized(kwargs: dict[str, Any], dumps: Callable[[Any], bytes]) -> dict[str, bytes] | None:
    values: dict[str, bytes] = {}
    for name, value in kwargs.items():
        try:
            data = dumps(value)
        except Exception:
            return None
        if type(data) is not bytes:
            return None
        values[name] = data
    return values
