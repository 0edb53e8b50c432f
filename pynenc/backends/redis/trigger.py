"""Redis trigger storage: ``P trig-events`` LIST of events, ``P trig-claim:<key>`` SET NX."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgpack

from pynenc.backends.redis.connection import client_for
from pynenc.trigger.base_trigger import BaseTrigger

if TYPE_CHECKING:
    from pynenc.app import Pynenc

CLAIM_TTL_SEC = 30 * 24 * 3600


class RedisTrigger(BaseTrigger):
    def __init__(self, app: Pynenc) -> None:
        super().__init__(app)
        self.client, self.prefix = client_for(app)
        self._events_key = self.prefix + "trig-events"

    def store_event(self, event_id: str, code: str, payload: bytes, timestamp: float) -> None:
        item = msgpack.packb([event_id, code, payload, timestamp])
        self.client.run(lambda r: r.rpush(self._events_key, item))

    def events_after(
        self, cursor: int, limit: int = 500
    ) -> list[tuple[int, str, str, bytes, float]]:
        raw: list[Any] = self.client.run(
            lambda r: r.lrange(self._events_key, cursor, cursor + limit - 1)
        )
        found = []
        for n, item in enumerate(raw, start=cursor + 1):
            event_id, code, payload, ts = msgpack.unpackb(item)
            found.append((n, event_id, code, bytes(payload), float(ts)))
        return found

    def claim(self, key: str) -> bool:
        full = self.prefix + "trig-claim:" + key
        return bool(self.client.run(lambda r: r.set(full, b"1", nx=True, ex=CLAIM_TTL_SEC)))

    def purge(self) -> None:
        self.client.run(lambda r: r.unlink(self._events_key))
        self.client.unlink_kinds(self.prefix, ["trig-claim"])

    def close(self) -> None:
        self.client.close()
