"""Ids: random, sortable enough for humans, cheap to make."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid

_POOL_BYTES = 2560  # random bytes read per system call: 256 ids


class _RandomHex:
    """Hex digits of ``os.urandom`` handed out 20 at a time (80 bits), read in chunks: one
    system call per 256 ids instead of one per id. A forked child drops the chunk it
    inherited, so two processes never hand out the same bits."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hex = ""
        self._taken = 0

    def take(self) -> str:
        with self._lock:
            start = self._taken
            if start >= len(self._hex):
                self._hex, start = os.urandom(_POOL_BYTES).hex(), 0
            self._taken = start + 20
            return self._hex[start : start + 20]

    def forget(self) -> None:
        self._lock = threading.Lock()  # a forked child: the parent's lock may be held
        self._hex = ""
        self._taken = 0


_random_hex = _RandomHex()
os.register_at_fork(after_in_child=_random_hex.forget)


def new_invocation_id() -> str:
    """32 hex digits: the time in ms, then 80 random bits. Ids made close in time sort
    close together, so a batch of them touches few pages of the backends' indexes (random
    ids scatter every batch write across the whole table)."""
    return f"{time.time_ns() // 1_000_000:012x}{_random_hex.take()}"


def new_invocation_ids(count: int, now: float) -> list[str]:
    """``count`` ids for one batch of calls, in call order: the time ``now`` (a
    ``time.time()``) in ms, the call's position in the batch (4 hex digits; a batch holds
    at most 65,536 calls), then 64 random bits, read in one system call. They sort in call
    order, the order runners claim them in, so each claim's rows sit side by side in the
    backends' indexes (with random bits right after the stamp a claim of 64 calls of a
    2,000-call batch touched pages all over that batch's range: 17% slower end to end on
    SQLite at 100,000 tasks)."""
    if count > 0x10000:
        raise ValueError(f"a batch of {count} ids: at most 65,536 share one stamp")
    stamp = f"{int(now * 1000):012x}"
    random_hex = os.urandom(8 * count).hex()
    return [f"{stamp}{k:04x}{random_hex[16 * k : 16 * k + 16]}" for k in range(count)]


def new_runner_id(kind: str) -> str:
    return f"{kind}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
