"""Read-ahead of results for calls made one at a time and read back in the same order.

A client that calls a task N times and then reads each result in turn (``[inv.result
for inv in invocations]``) would pay one backend round trip per result. Like a file
read-ahead, a read that follows the previous one in call order also fetches the results
of the next calls in the same round trip, in a window that doubles while the reads stay
in order; a read out of order fetches only its own result. Only successes are kept (a
stored result never changes: it is written once, by the run that succeeded), small ones
only, and the bookkeeping is bounded, so a client that never reads costs a few MB at
most.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Sequence

GetResults = Callable[[Sequence[str]], dict[str, bytes]]

MAX_WINDOW = 128  # ids read in one round trip, at most
TRACKED_CALLS = 16_384  # the most recent calls whose order is remembered
MAX_KEPT = 4_096  # results fetched ahead and not read yet, at most
MAX_KEPT_VALUE_BYTES = 64 * 1024  # a larger result is left for its own read


class ResultReadAhead:
    """The order of this client's single calls and the results fetched ahead of reads."""

    __slots__ = (
        "__weakref__",
        "_by_seq",
        "_kept",
        "_last_seq",
        "_lock",
        "_next_seq",
        "_seq_of",
        "_window",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        _instances.add(self)
        self._seq_of: dict[str, int] = {}  # calls whose result was not read yet
        self._by_seq: dict[int, str] = {}
        self._next_seq = 0
        self._last_seq = -2  # the call read last (-2: none; never followed by 0)
        self._window = 1
        self._kept: dict[str, bytes] = {}  # fetched ahead, oldest first

    def called(self, invocation_id: str) -> None:
        """Note a call made with ``task(...)``, in call order."""
        with self._lock:
            seq = self._next_seq
            self._next_seq = seq + 1
            self._seq_of[invocation_id] = seq
            self._by_seq[seq] = invocation_id
            forgotten = self._by_seq.pop(seq - TRACKED_CALLS, None)
            if forgotten is not None:
                del self._seq_of[forgotten]

    def result(self, invocation_id: str, get_results: GetResults) -> bytes | None:
        """The stored result of ``invocation_id`` (None: not stored, so not succeeded yet),
        read with ``get_results`` together with the next calls' when reads follow calls."""
        with self._lock:
            kept = self._kept.pop(invocation_id, None)
            ahead = self._follow(invocation_id)
            if kept is not None:
                return kept
            ahead = [i for i in ahead if i not in self._kept]
        found = get_results([invocation_id, *ahead])
        if ahead:
            self._keep(found, ahead)
        return found.get(invocation_id)

    def clear(self) -> None:
        """Forget everything (the backend was purged)."""
        with self._lock:
            self._seq_of.clear()
            self._by_seq.clear()
            self._kept.clear()
            self._last_seq, self._window = -2, 1

    def _follow(self, invocation_id: str) -> list[str]:
        """Record a read; the calls after it to fetch as well (lock held)."""
        seq = self._seq_of.pop(invocation_id, None)
        if seq is None:
            return []
        self._by_seq.pop(seq, None)
        in_order = seq == self._last_seq + 1
        self._last_seq = seq
        self._window = min(self._window * 2, MAX_WINDOW) if in_order else 1
        by_seq = self._by_seq
        return [by_seq[s] for s in range(seq + 1, seq + self._window) if s in by_seq]

    def _keep(self, found: dict[str, bytes], ahead: list[str]) -> None:
        with self._lock:
            kept, tracked = self._kept, self._seq_of
            for invocation_id in ahead:
                raw = found.get(invocation_id)
                # a call read meanwhile (another thread) is not tracked any more
                if raw is None or len(raw) > MAX_KEPT_VALUE_BYTES:
                    continue
                if invocation_id in tracked:
                    kept[invocation_id] = raw
            while len(kept) > MAX_KEPT:
                del kept[next(iter(kept))]


_instances: weakref.WeakSet[ResultReadAhead] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """A forked child starts with fresh locks (another thread of the parent may have held
    one at the fork) and nothing fetched: its calls are its own."""
    for ahead in list(_instances):
        ahead._lock = threading.Lock()
        ahead.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
