"""Reference twin: the argument envelopes of a batch of calls in one pass.

A call is encoded here only when every argument serializes to bytes shorter than
``min_size`` (nothing for the client data store to take); any other call (a value too
large, or one the serializer refuses) is left to the caller's generic path, which
externalizes large values and names the argument that failed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pynenc._speedups._envelope_py import pack_arguments


def encode_calls(
    calls: list[dict[str, Any]], dumps: Callable[[Any], bytes], min_size: int
) -> tuple[list[bytes | None], list[int]]:
    """(envelope per call, None where not encoded; indexes of the calls not encoded)."""
    envelopes: list[bytes | None] = []
    left: list[int] = []
    for index, kwargs in enumerate(calls):
        values = _inline_values(kwargs, dumps, min_size)
        if values is None:
            envelopes.append(None)
            left.append(index)
        else:
            envelopes.append(pack_arguments(values))
    return envelopes, left


def _inline_values(
    kwargs: dict[str, Any], dumps: Callable[[Any], bytes], min_size: int
) -> dict[str, bytes] | None:
    values: dict[str, bytes] = {}
    for name, value in kwargs.items():
        try:
            data = dumps(value)
        except Exception:
            return None
        if type(data) is not bytes or len(data) >= min_size:
            return None
        values[name] = data
    return values
