"""A second-resolution cron task for the real-time cron tests (in this process and in
runner processes); it is called with its due time, so duplicates and gaps show."""

from __future__ import annotations

from typing import Any

from pynenc import Pynenc
from pynenc.trigger.conditions import TriggerContext
from pynenc.trigger.trigger_builder import TriggerBuilder

app = Pynenc(app_id="trigger-cron-tests")


def due_time(ctx: TriggerContext) -> dict[str, Any]:
    return {"due": ctx.timestamp}


# croniter: a 6th field gives seconds
@app.task(triggers=TriggerBuilder().on_cron("* * * * * *").with_args_provider(due_time))
def every_second(due: float) -> float:
    return due
