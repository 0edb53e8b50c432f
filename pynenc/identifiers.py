"""Ids: random, sortable enough for humans, cheap to make."""

from __future__ import annotations

import os
import socket
import time
import uuid


def new_invocation_id() -> str:
    """32 hex digits: the time in ms, then 80 random bits. Ids made close in time sort
    close together, so a batch of them touches few pages of the backends' indexes (random
    ids scatter every batch write across the whole table)."""
    return f"{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"


def new_invocation_ids(count: int, now: float) -> list[str]:
    """``count`` ids of the form ``new_invocation_id`` makes, all stamped with ``now`` (a
    ``time.time()``), their random bits read in one system call."""
    stamp = f"{int(now * 1000):012x}"
    random_hex = os.urandom(10 * count).hex()
    return [stamp + random_hex[i : i + 20] for i in range(0, 20 * count, 20)]


def new_runner_id(kind: str) -> str:
    return f"{kind}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
