"""Ids: random, sortable enough for humans, cheap to make."""

from __future__ import annotations

import os
import socket
import uuid


def new_invocation_id() -> str:
    return uuid.uuid4().hex


def new_runner_id(kind: str) -> str:
    return f"{kind}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
