"""In-process trigger storage (one process; tests and development)."""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING

from pynenc.trigger.base_trigger import MAX_CONDITION_RECORDS, BaseTrigger, StoredEvent

if TYPE_CHECKING:
    from pynenc.app import Pynenc


class MemTrigger(BaseTrigger):
    def __init__(self, app: Pynenc) -> None:
        super().__init__(app)
        self._lock = threading.Lock()
        self._events: deque[StoredEvent] = deque()
        self._seq = 0
        self._claims: dict[str, float] = {}  # key -> claimed at
        self._conditions: dict[tuple[str, int], deque[tuple[float, bytes]]] = {}
        self._cron_mark: float | None = None

    def store_event(self, event_id: str, code: str, payload: bytes, timestamp: float) -> None:
        with self._lock:
            self._seq += 1
            self._events.append(StoredEvent(str(self._seq), event_id, code, payload, timestamp))

    def events_after(self, cursor: str, limit: int = 500) -> list[StoredEvent]:
        after = int(cursor or 0)
        with self._lock:
            found = [e for e in self._events if int(e.cursor) > after]
        return found[:limit]

    def claim(self, key: str) -> bool:
        with self._lock:
            if key in self._claims:
                return False
            self._claims[key] = self.clock()
            return True

    def add_condition_record(
        self, trigger_id: str, index: int, record: bytes, timestamp: float, window_start: float
    ) -> None:
        with self._lock:
            records = self._conditions.setdefault((trigger_id, index), deque())
            _drop_older(records, window_start)
            records.append((timestamp, record))
            while len(records) > MAX_CONDITION_RECORDS:
                records.popleft()

    def take_condition_records(
        self, trigger_id: str, count: int, window_start: float
    ) -> list[bytes] | None:
        with self._lock:
            queues = [self._conditions.get((trigger_id, n)) for n in range(count)]
            for records in queues:
                if records is not None:
                    _drop_older(records, window_start)
            ready = [records for records in queues if records]
            if len(ready) < count:
                return None
            return [records.popleft()[1] for records in ready]

    def cron_watermark(self) -> float | None:
        return self._cron_mark

    def set_cron_watermark(self, until: float) -> None:
        with self._lock:
            self._cron_mark = max(until, self._cron_mark or until)

    def trim(self, before: float) -> None:
        with self._lock:
            self._events = deque(e for e in self._events if e.timestamp >= before)
            self._claims = {k: t for k, t in self._claims.items() if t >= before}
            for records in self._conditions.values():
                _drop_older(records, before)

    def purge(self) -> None:
        with self._lock:
            self._events.clear()
            self._claims.clear()
            self._conditions.clear()
            self._cron_mark = None


def _drop_older(records: deque[tuple[float, bytes]], start: float) -> None:
    while records and records[0][0] < start:
        records.popleft()
