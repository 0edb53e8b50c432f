"""Carry a task's exception from the worker to the caller, type and traceback kept."""

from __future__ import annotations

import pickle
import traceback
from typing import Any

from pynenc.exceptions import RemoteTaskError


def encode_exception(exc: BaseException) -> bytes:
    """Pickle the exception when possible; always keep its type, message and traceback."""
    tb = "".join(traceback.format_exception(exc))
    try:
        pickled: bytes | None = pickle.dumps(exc, protocol=5)
        pickle.loads(pickled)  # type: ignore[arg-type]  # some pickle but cannot be rebuilt
    except Exception:
        pickled = None
    envelope = {
        "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "message": str(exc),
        "traceback": tb,
        "pickled": pickled,
    }
    return pickle.dumps(envelope, protocol=5)


def decode_exception(invocation_id: str, data: bytes) -> BaseException:
    """Rebuild the task's exception, with the worker's traceback attached as a note."""
    envelope: dict[str, Any] = pickle.loads(data)
    tb: str = envelope["traceback"]
    if envelope["pickled"] is not None:
        try:
            exc: BaseException = pickle.loads(envelope["pickled"])
        except Exception:
            pass
        else:
            exc.add_note(f"Remote traceback (invocation {invocation_id}):\n{tb}")
            exc.remote_traceback = tb  # type: ignore[attr-defined]
            return exc
    return RemoteTaskError(invocation_id, envelope["type"], envelope["message"], tb)


def remote_traceback(data: bytes) -> str:
    return str(pickle.loads(data)["traceback"])
