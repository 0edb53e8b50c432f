"""Redis broker: a list of ready ids, a sorted set of delayed ones, a wake-up token list.

Routing and popping are one script each (popping first promotes the delayed ids that are
due, by the server's clock). A popper that finds nothing blocks in BLPOP on the wake-up
list, which every route fills, until work arrives, the next delayed id is due or a
one-second safety re-check.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from pynenc.backends.redis import scripts
from pynenc.backends.redis.connection import SAFETY_RECHECK_SEC, client_for
from pynenc.backends.redis.keys import BROKER_KINDS, Keys
from pynenc.broker.base import BaseBroker

if TYPE_CHECKING:
    from redis.client import Pipeline

    from pynenc.app import Pynenc

T = TypeVar("T")

_MIN_BLOCK_SEC = 0.001  # BLPOP's timeout 0 would mean "forever"


class RedisBroker(BaseBroker):
    def __init__(self, app: Pynenc) -> None:
        super().__init__(app)
        self.client, self.prefix = client_for(app)
        self.keys = Keys(self.prefix)

    def route_invocations(self, invocation_ids: Sequence[str], delay_sec: float = 0.0) -> None:
        if invocation_ids:
            args = [repr(max(delay_sec, 0.0)), *invocation_ids]
            self.client.call(scripts.ROUTE, self.prefix, args)

    def retrieve_invocations(self, max_count: int, timeout_sec: float) -> list[str]:
        if max_count <= 0:
            return []
        return self.wait_for(lambda: self._pop(max_count), timeout_sec) or []

    def _pop(self, max_count: int) -> tuple[list[str] | None, float]:
        ids, next_due = json.loads(self.client.call(scripts.POP, self.prefix, [max_count]))
        return (scripts.as_list(ids) or None), next_due

    def wait_for(
        self, attempt: Callable[[], tuple[T | None, float]], timeout_sec: float
    ) -> T | None:
        """Run ``attempt`` (one script: returns a result, or None and the seconds until the
        next delayed id is due, -1 for none) until it returns something or the timeout
        passes, blocking on the wake-up list between tries. The orchestrator pops and
        claims through this too."""
        deadline = time.monotonic() + timeout_sec
        while True:
            found, next_due = attempt()
            if found is not None:
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            wait = min(remaining, SAFETY_RECHECK_SEC)
            if next_due >= 0:
                wait = min(wait, next_due)
            self._block(max(wait, _MIN_BLOCK_SEC))

    def _block(self, timeout_sec: float) -> None:
        """Wait on the wake-up list (taking the token, if any, that a route left)."""
        self.client.execute("BLPOP", self.keys.wake, round(timeout_sec, 3))

    def count_invocations(self) -> int:
        def build(pipe: Pipeline) -> None:
            pipe.llen(self.keys.queue)
            pipe.zcard(self.keys.delayed)

        ready, delayed = self.client.pipeline(build)
        return int(ready) + int(delayed)

    def purge(self) -> None:
        keys = [self.prefix + kind for kind in BROKER_KINDS]  # fixed names: no SCAN needed
        self.client.run(lambda r: r.unlink(*keys))

    def close(self) -> None:
        self.client.close()
