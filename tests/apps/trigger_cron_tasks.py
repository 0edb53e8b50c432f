"""A second-resolution cron task for the one real-time cron test."""

from __future__ import annotations

from pynenc import Pynenc
from pynenc.trigger.trigger_builder import TriggerBuilder

app = Pynenc(app_id="trigger-cron-tests")


@app.task(triggers=TriggerBuilder().on_cron("* * * * * *"))  # croniter: 6th field = seconds
def every_second() -> str:
    return "tick"
