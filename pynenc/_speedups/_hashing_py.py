"""Reference twin: content hashing and size checks for serialized arguments."""

from __future__ import annotations

import hashlib


def content_key(data: bytes) -> str:
    """Stable key for a serialized value (the client data store's storage key)."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def oversized(values: dict[str, bytes], threshold: int) -> list[str]:
    """Names of the values whose encoded size is at least ``threshold`` bytes."""
    return [name for name, data in values.items() if len(data) >= threshold]


def arguments_key(values: dict[str, bytes], names: tuple[str, ...] | None = None) -> str:
    """Digest of (name, value) pairs, sorted by name; only ``names`` when given."""
    digest = hashlib.blake2b(digest_size=16)
    for name in sorted(values if names is None else names):
        data = values.get(name, b"")
        digest.update(name.encode())
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()
