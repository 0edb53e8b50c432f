"""Reference twin: content keys and size checks for serialized arguments."""

from __future__ import annotations

from hashlib import blake2b

from pynenc._speedups._envelope_py import pack_arguments


def content_key(data: bytes) -> str:
    """Stable key for a serialized value (the client data store's storage key)."""
    return blake2b(data, digest_size=16).hexdigest()


def oversized(values: dict[str, bytes], min_size: int, max_size: int = 0) -> list[str]:
    """Names of values of at least ``min_size`` bytes (and at most ``max_size``, if set)."""
    return [
        name
        for name, data in values.items()
        if len(data) >= min_size and (max_size <= 0 or len(data) <= max_size)
    ]


def oversized_keys(values: dict[str, bytes], min_size: int, max_size: int = 0) -> dict[str, str]:
    """``oversized`` and ``content_key`` in one pass: name -> key of each value to store."""
    return {name: content_key(values[name]) for name in oversized(values, min_size, max_size)}


def arguments_key(values: dict[str, bytes], names: tuple[str, ...] | None = None) -> str:
    """Digest of the (name, value) pairs, by sorted name; only ``names`` when given (a
    missing name counts as an empty value)."""
    selected = {name: values.get(name, b"") for name in sorted(values if names is None else names)}
    return blake2b(pack_arguments(selected), digest_size=16).hexdigest()
