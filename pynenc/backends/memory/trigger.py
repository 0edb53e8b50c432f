"""In-process trigger storage (one process; tests and development)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from pynenc.trigger.base_trigger import BaseTrigger

if TYPE_CHECKING:
    from pynenc.app import Pynenc


class MemTrigger(BaseTrigger):
    def __init__(self, app: Pynenc) -> None:
        super().__init__(app)
        self._lock = threading.Lock()
        self._events: list[tuple[int, str, str, bytes, float]] = []
        self._claims: set[str] = set()

    def store_event(self, event_id: str, code: str, payload: bytes, timestamp: float) -> None:
        with self._lock:
            self._events.append((len(self._events) + 1, event_id, code, payload, timestamp))

    def events_after(
        self, cursor: int, limit: int = 500
    ) -> list[tuple[int, str, str, bytes, float]]:
        with self._lock:
            return self._events[cursor : cursor + limit]

    def claim(self, key: str) -> bool:
        with self._lock:
            if key in self._claims:
                return False
            self._claims.add(key)
            return True

    def purge(self) -> None:
        with self._lock:
            self._events.clear()
            self._claims.clear()
