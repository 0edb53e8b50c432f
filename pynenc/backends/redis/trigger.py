"""Redis trigger storage (``P`` is the app's key prefix, see ``keys.py``):

``P trig-events``           STREAM  events (fields e, c, p, t); an entry's id is the
                                    emitter's clock in ms (never going back), so trimming
                                    by MINID follows the clock the other backends use;
                                    the id is the loops' cursor
``P trig-claim:<key>``      STRING  SET NX, expires after ``trigger_retention_sec``
``P trig-cond:<trigger>:<n>`` ZSET  records of condition n of an AND trigger -> time met;
                                    consumed atomically by a script when all are there
``P trig-cond-seq``         STRING  counter ordering condition records of equal times
``P trig-cron-mark``        STRING  the time up to which cron due times were evaluated
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pynenc.backends.redis.connection import client_for
from pynenc.trigger.base_trigger import MAX_CONDITION_RECORDS, BaseTrigger, StoredEvent

if TYPE_CHECKING:
    from pynenc.app import Pynenc

_KINDS = ("trig-events", "trig-claim", "trig-cond", "trig-cond-seq", "trig-cron-mark")

# KEYS[1]: the watermark; ARGV[1]: time, ARGV[2]: ttl ms. Only ever moves forward.
_RAISE_MARK = """
local current = redis.call('GET', KEYS[1])
if current == false or tonumber(current) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
"""

# KEYS[1]: the event stream; ARGV: event ms, trim below ms, e, c, p, t.
# The id is "<ms>-*" with ms never below the stream's last id (emitters' clocks may differ).
_APPEND = """
local ms = ARGV[1]
if redis.call('EXISTS', KEYS[1]) == 1 then
  local info = redis.call('XINFO', 'STREAM', KEYS[1])
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then
      local last = string.match(info[i + 1], '^(%d+)')
      if tonumber(last) > tonumber(ms) then ms = last end
    end
  end
end
return redis.call('XADD', KEYS[1], 'MINID', '~', ARGV[2], ms .. '-*',
  'e', ARGV[3], 'c', ARGV[4], 'p', ARGV[5], 't', ARGV[6])
"""

# KEYS: the condition zset, the sequence counter;
# ARGV: window start, time met, record, max records, ttl ms.
_ADD = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
local seq = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], ARGV[2], string.format('%016d', seq) .. ARGV[3])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[4]) + 1))
redis.call('PEXPIRE', KEYS[1], ARGV[5])
"""

# KEYS: the condition zsets in condition order; ARGV[1]: window start.
# A member is a 16-digit sequence number + the record: members of a zset must be unique,
# and equal times keep their insertion order (ties sort by member).
_TAKE = """
for _, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. ARGV[1])
end
local taken = {}
for n, key in ipairs(KEYS) do
  local oldest = redis.call('ZRANGE', key, 0, 0)
  if #oldest == 0 then return false end
  taken[n] = oldest[1]
end
for n, key in ipairs(KEYS) do redis.call('ZREM', key, taken[n]) end
return taken
"""


class RedisTrigger(BaseTrigger):
    def __init__(self, app: Pynenc) -> None:
        super().__init__(app)
        self.client, self.prefix = client_for(app)
        self._events_key = self.prefix + "trig-events"

    @property
    def _retention_ms(self) -> int:
        return max(int(self.retention_sec * 1000), 1)

    def _condition_key(self, trigger_id: str, index: int) -> str:
        return f"{self.prefix}trig-cond:{trigger_id}:{index}"

    def store_event(self, event_id: str, code: str, payload: bytes, timestamp: float) -> None:
        min_ms = max(int((timestamp - self.retention_sec) * 1000), 0)
        args: list[Any] = [int(timestamp * 1000), min_ms, event_id, code, payload, repr(timestamp)]
        script = self.client.script(_APPEND)
        self.client.run(lambda r: script(keys=[self._events_key], args=args, client=r))

    def events_after(self, cursor: str, limit: int = 500) -> list[StoredEvent]:
        start = f"({cursor}" if cursor else "-"
        raw: Any = self.client.run(
            lambda r: r.xrange(self._events_key, min=start, max="+", count=limit)
        )
        return [
            StoredEvent(
                stream_id.decode(),
                f[b"e"].decode(),
                f[b"c"].decode(),
                bytes(f[b"p"]),
                float(f[b"t"]),
            )
            for stream_id, f in raw or ()
        ]

    def claim(self, key: str) -> bool:
        full = self.prefix + "trig-claim:" + key
        ttl = self._retention_ms
        return bool(self.client.run(lambda r: r.set(full, b"1", nx=True, px=ttl)))

    def add_condition_record(
        self, trigger_id: str, index: int, record: bytes, timestamp: float, window_start: float
    ) -> None:
        keys = [self._condition_key(trigger_id, index), self.prefix + "trig-cond-seq"]
        args: list[Any] = [
            repr(window_start),
            repr(timestamp),
            record,
            MAX_CONDITION_RECORDS,
            self._retention_ms,
        ]
        script = self.client.script(_ADD)
        self.client.run(lambda r: script(keys=keys, args=args, client=r))

    def take_condition_records(
        self, trigger_id: str, count: int, window_start: float
    ) -> list[bytes] | None:
        keys = [self._condition_key(trigger_id, n) for n in range(count)]
        script = self.client.script(_TAKE)
        taken = self.client.run(lambda r: script(keys=keys, args=[repr(window_start)], client=r))
        if not taken:
            return None
        return [bytes(member)[16:] for member in taken]

    def cron_watermark(self) -> float | None:
        raw = self.client.run(lambda r: r.get(self.prefix + "trig-cron-mark"))
        return None if raw is None else float(raw)

    def set_cron_watermark(self, until: float) -> None:
        script = self.client.script(_RAISE_MARK)
        keys = [self.prefix + "trig-cron-mark"]
        args: list[Any] = [repr(until), self._retention_ms]
        self.client.run(lambda r: script(keys=keys, args=args, client=r))

    def trim(self, before: float) -> None:
        # claims and condition records expire by TTL; the stream is trimmed by id (ms)
        min_id = max(int(before * 1000), 0)
        self.client.run(lambda r: r.xtrim(self._events_key, minid=min_id, approximate=False))

    def purge(self) -> None:
        self.client.unlink_kinds(self.prefix, _KINDS)

    def close(self) -> None:
        self.client.close()
