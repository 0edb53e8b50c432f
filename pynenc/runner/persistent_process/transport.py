"""Where the dispatcher listens: an ``ipc://`` socket in a private temp directory where
ZeroMQ supports it (fast, local only), else ``tcp://127.0.0.1`` on a free port."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile

import zmq

# sockaddr_un.sun_path holds 104 (BSD) to 108 (Linux) bytes, terminator included
_MAX_IPC_PATH = 100
_SOCKET_NAME = "d"


class Endpoint:
    """A bound address the workers connect to; ``close`` removes its socket directory."""

    def __init__(self, address: str, directory: str | None) -> None:
        self.address = address
        self._directory = directory

    def __repr__(self) -> str:
        return f"Endpoint({self.address!r})"

    def close(self) -> None:
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None


def _ipc_directory() -> str | None:
    """A new directory (mode 0700) whose socket path fits in sun_path, or None."""
    if sys.platform == "win32" or not zmq.has("ipc"):
        return None
    for parent in (tempfile.gettempdir(), "/tmp"):
        room = len(os.fsencode(parent)) + len("/pynenc-XXXXXXXX/") + len(_SOCKET_NAME)
        if room <= _MAX_IPC_PATH and os.path.isdir(parent):
            with contextlib.suppress(OSError):
                return tempfile.mkdtemp(prefix="pynenc-", dir=parent)
    return None


def bind(socket: zmq.Socket[bytes]) -> Endpoint:
    """Bind ``socket`` to a fresh local endpoint and return it."""
    directory = _ipc_directory()
    if directory is not None:
        address = f"ipc://{directory}/{_SOCKET_NAME}"
        try:
            socket.bind(address)
            return Endpoint(address, directory)
        except zmq.ZMQError:
            shutil.rmtree(directory, ignore_errors=True)
    socket.bind("tcp://127.0.0.1:*")
    address = socket.getsockopt_string(zmq.LAST_ENDPOINT)
    return Endpoint(address, None)
