"""The trigger loop a runner runs in its own thread: cron and event triggers."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pynenc.app import Pynenc
    from pynenc.trigger.base_trigger import BaseTrigger

LOOP_INTERVAL_SEC = 0.5
TRIM_INTERVAL_SEC = 60.0
MAX_EVENT_BATCHES = 20
CRON_CATCHUP_SEC = 600.0
"""A starting loop also runs due times missed while no runner evaluated cron triggers
(a restart), back to the last evaluation but at most this far back."""


class TriggerLoop:
    """Evaluates cron due times and new events every ``LOOP_INTERVAL_SEC``, and trims what
    is older than ``trigger_retention_sec`` every ``TRIM_INTERVAL_SEC``.

    ``step()`` is one evaluation (tests call it with a fake clock set on the trigger)."""

    def __init__(
        self,
        app: Pynenc,
        stop_event: threading.Event | None = None,
        trigger: BaseTrigger | None = None,
    ) -> None:
        self.app = app
        self.trigger = trigger or app.trigger
        self.stop_event = stop_event or threading.Event()
        self.last_time = self.trigger.clock()
        self.cursor = ""
        self.last_trim: float | None = None
        self._resumed = False
        self._thread: threading.Thread | None = None

    def step(self) -> int:
        trigger = self.trigger
        now = trigger.clock()
        fired = 0
        if not self._resumed:
            self._resumed = True
            mark = trigger.cron_watermark()
            if mark is not None:
                self.last_time = min(self.last_time, max(mark, now - CRON_CATCHUP_SEC))
        if now > self.last_time:
            fired += trigger.run_cron(self.last_time, now)
            self.last_time = now
        more = 0
        for _ in range(MAX_EVENT_BATCHES):  # a backlog is read at once, not 500 per pass,
            cursor, fired_now = trigger.run_events(self.cursor)  # but cron is not starved
            more += fired_now
            if cursor == self.cursor:
                break
            self.cursor = cursor
        if self.last_trim is None or now - self.last_trim >= TRIM_INTERVAL_SEC:
            trigger.trim(now - trigger.retention_sec)
            self.last_trim = now
        return fired + more

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pynenc-triggers", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.step()
            except Exception:
                self.app.logger.exception("Trigger evaluation failed")
            self.stop_event.wait(LOOP_INTERVAL_SEC)

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
