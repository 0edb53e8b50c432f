"""When a runner's next claim should wait a moment, so single calls arriving one after
another are claimed (and written back) in batches instead of one round trip each."""

from __future__ import annotations

# Most claims skipped after lingers that caught nothing more (the caller waits on each
# result before its next call: lingering only adds latency there).
MAX_BACKOFF = 512
# A linger that caught this many calls doubles the next one (up to the configured most):
# a sustained stream is claimed in bigger batches, a third of the CPU per task at 5,000
# calls/s (measured on 2 vCPUs, Redis, PersistentProcessRunner).
GROW_AT = 4


class ClaimPacer:
    """Lingers before a claim while calls arrive as a stream of few at a time, longer while
    each linger catches several, and backs off exponentially while lingering does not pay.

    A stream: a claim found a few calls at once, or a claim that had to wait for work got
    it sooner than the shortest linger. Lingering paid when the claim after it took two or
    more."""

    __slots__ = ("_backoff", "_current", "_linger_sec", "_lingered", "_max_sec", "_skip", "_stream")

    def __init__(self, linger_sec: float, max_linger_sec: float | None = None) -> None:
        self._linger_sec = linger_sec
        self._max_sec = max(linger_sec, max_linger_sec or 0.0)
        self._current = linger_sec
        self._stream = False
        self._lingered = False
        self._skip = 0
        self._backoff = 1

    def linger_sec(self) -> float:
        """How long to wait before the next claim (0: claim at once)."""
        self._lingered = False
        if not self._stream or self._linger_sec <= 0:
            return 0.0
        if self._skip > 0:
            self._skip -= 1
            return 0.0
        self._lingered = True
        return self._current

    def claimed(self, count: int, max_count: int, waited_sec: float | None) -> None:
        """Report a claim: ``count`` calls of at most ``max_count``; ``waited_sec`` is how
        long it waited for work (None: it found work at once, without waiting)."""
        if self._lingered:
            if count >= 2:
                self._backoff = 1
                if count >= GROW_AT:
                    self._current = min(self._current * 2, self._max_sec)
            else:
                self._skip = self._backoff
                self._backoff = min(self._backoff * 2, MAX_BACKOFF)
                self._current = self._linger_sec
        few = 0 < count < max_count // 2
        self._stream = few and (waited_sec is None or waited_sec < self._linger_sec)
        if waited_sec is not None and waited_sec >= self._linger_sec:
            self._current = self._linger_sec  # the stream paused: start short again
