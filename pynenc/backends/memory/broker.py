"""Memory broker: a deque guarded by a condition, plus a heap of delayed ids."""

from __future__ import annotations

import heapq
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pynenc.broker.base import BaseBroker

if TYPE_CHECKING:
    from pynenc.app import Pynenc


class MemBroker(BaseBroker):
    def __init__(self, app: Pynenc) -> None:
        super().__init__(app)
        self._queue: deque[str] = deque()
        self._delayed: list[tuple[float, int, str]] = []
        self._seq = 0
        self._cond = threading.Condition()

    def route_invocations(self, invocation_ids: Sequence[str], delay_sec: float = 0.0) -> None:
        with self._cond:
            if delay_sec > 0:
                due = time.monotonic() + delay_sec
                for invocation_id in invocation_ids:
                    self._seq += 1
                    heapq.heappush(self._delayed, (due, self._seq, invocation_id))
            else:
                self._queue.extend(invocation_ids)
            self._cond.notify_all()

    def _promote_due(self, now: float) -> float | None:
        """Move due delayed ids to the queue; return seconds until the next one is due."""
        while self._delayed and self._delayed[0][0] <= now:
            self._queue.append(heapq.heappop(self._delayed)[2])
        return self._delayed[0][0] - now if self._delayed else None

    def retrieve_invocations(self, max_count: int, timeout_sec: float) -> list[str]:
        deadline = time.monotonic() + timeout_sec
        with self._cond:
            while True:
                now = time.monotonic()
                next_due = self._promote_due(now)
                if self._queue:
                    count = min(max_count, len(self._queue))
                    return [self._queue.popleft() for _ in range(count)]
                remaining = deadline - now
                if remaining <= 0:
                    return []
                self._cond.wait(remaining if next_due is None else min(remaining, next_due))

    def count_invocations(self) -> int:
        with self._cond:
            return len(self._queue) + len(self._delayed)

    def purge(self) -> None:
        with self._cond:
            self._queue.clear()
            self._delayed.clear()
