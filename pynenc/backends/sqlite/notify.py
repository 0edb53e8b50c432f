"""Cross-process wake-ups: Unix datagram sockets in a directory beside the database.

A waiter binds one socket per (thread, channel) *before* it checks the database, then
blocks on it; a writer, after its COMMIT, sends a byte to every socket of the channel. A
lost wake-up costs at most one safety re-check (``SAFETY_RECHECK_SEC``), never a hang.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import select
import socket
import tempfile
import threading
import time
import weakref

SAFETY_RECHECK_SEC = 1.0  # waiters look at the database at least this often

_MAX_SOCKET_PATH = 100  # sun_path holds 104 (BSD) to 108 (Linux) bytes
_NAME_ROOM = 32  # "/" + channel + "." + token
_LISTING_MAX_AGE_SEC = 1.0
# Directory mtimes come from a coarse clock; a listing taken this long after the last
# change is sure to see a later change as a different mtime.
_MTIME_MARGIN_SEC = 0.05


def channel_name(kind: str, app_id: str) -> str:
    """A channel per kind of event and app, so apps sharing a file don't wake each other."""
    return f"{kind}-{hashlib.sha1(app_id.encode()).hexdigest()[:10]}"


def notify_directory(db_path: str) -> str:
    """``<db>.notify`` when socket paths fit in it, else a short one derived from the path."""
    beside = db_path + ".notify"
    if len(os.fsencode(beside)) + _NAME_ROOM <= _MAX_SOCKET_PATH:
        return beside
    digest = hashlib.sha256(os.fsencode(db_path)).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), f"pynenc-{digest}.notify")


def _release(sock: socket.socket, path: str, owner_pid: int) -> None:
    sock.close()
    if os.getpid() == owner_pid:  # a forked child must not remove its parent's socket
        with contextlib.suppress(OSError):
            os.unlink(path)


class Waiter:
    """One thread's bound socket for one channel."""

    def __init__(self, directory: str, channel: str) -> None:
        os.makedirs(directory, exist_ok=True)
        self.path = os.path.join(directory, f"{channel}.{secrets.token_hex(4)}")
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self._sock.bind(self.path)
        except BaseException:
            self._sock.close()
            raise
        self._sock.setblocking(False)
        self._poll = select.poll()
        self._poll.register(self._sock.fileno(), select.POLLIN)
        self._finalizer = weakref.finalize(self, _release, self._sock, self.path, os.getpid())

    def clear(self) -> None:
        """Drop wake-ups already received (the caller is about to look at the database)."""
        while True:
            try:
                self._sock.recv(64)
            except OSError:  # nothing left (BlockingIOError), or closed at exit
                return

    def wait(self, timeout_sec: float) -> bool:
        """Block until a wake-up arrives (True) or ``timeout_sec`` passes (False)."""
        if timeout_sec <= 0:
            return False
        if self._sock.fileno() == -1:
            # closed by the interpreter's exit while a daemon thread still waits: nothing
            # can wake us any more, so behave as a timeout without spinning
            time.sleep(timeout_sec)
            return False
        if not self._poll.poll(timeout_sec * 1000):
            return False
        self.clear()
        return True

    def close(self) -> None:
        self._finalizer()


class Notifier:
    """Waiters and the sender for the channels of one database file."""

    def __init__(self, db_path: str) -> None:
        self.directory = notify_directory(db_path)
        self._local = threading.local()
        self._sender: socket.socket | None = None
        self._sender_pid = 0
        self._sender_lock = threading.Lock()
        # (directory mtime in ns, wall time of the listing, monotonic time, socket names)
        self._listing: tuple[int, float, float, tuple[str, ...]] = (-1, 0.0, 0.0, ())

    def waiter(self, channel: str) -> Waiter:
        """This thread's waiter for ``channel``, bound on first use and emptied."""
        waiters = self._thread_waiters()
        waiter = waiters.get(channel)
        if waiter is None:
            waiter = waiters[channel] = Waiter(self.directory, channel)
        waiter.clear()
        return waiter

    def _thread_waiters(self) -> dict[str, Waiter]:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            local.waiters, local.pid = {}, os.getpid()
        waiters: dict[str, Waiter] = local.waiters
        return waiters

    def close(self) -> None:
        """Unbind the calling thread's waiters."""
        for waiter in self._thread_waiters().values():
            waiter.close()
        self._local.waiters = {}

    def notify(self, channel: str) -> None:
        """Wake every waiter of ``channel`` (call after the COMMIT that they wait for)."""
        prefix = channel + "."
        targets = [name for name in self._names() if name.startswith(prefix)]
        if not targets:
            return
        sender = self._get_sender()
        for name in targets:
            path = os.path.join(self.directory, name)
            try:
                sender.sendto(b"!", path)
            except (BlockingIOError, InterruptedError):
                continue  # its queue is full: that waiter has wake-ups pending already
            except (ConnectionRefusedError, FileNotFoundError):
                self._remove_stale(path)
            except OSError:
                continue

    def _names(self) -> tuple[str, ...]:
        try:
            mtime_ns = os.stat(self.directory).st_mtime_ns
        except FileNotFoundError:
            return ()
        cached_mtime, listed_wall, listed_mono, names = self._listing
        fresh = time.monotonic() - listed_mono < _LISTING_MAX_AGE_SEC
        settled = listed_wall - mtime_ns / 1e9 > _MTIME_MARGIN_SEC
        if mtime_ns == cached_mtime and fresh and settled:
            return names
        wall, mono = time.time(), time.monotonic()
        try:
            names = tuple(os.listdir(self.directory))
        except FileNotFoundError:
            names = ()
        self._listing = (mtime_ns, wall, mono, names)
        return names

    def _remove_stale(self, path: str) -> None:
        """A socket file nobody listens on (its process died): delete it."""
        with contextlib.suppress(OSError):
            os.unlink(path)
        self._listing = (-1, 0.0, 0.0, ())

    def _get_sender(self) -> socket.socket:
        sender = self._sender
        if sender is not None and self._sender_pid == os.getpid():
            return sender
        with self._sender_lock:
            if self._sender is None or self._sender_pid != os.getpid():
                self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sender.setblocking(False)
                self._sender_pid = os.getpid()
            return self._sender
