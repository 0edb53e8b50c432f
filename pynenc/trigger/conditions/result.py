"""Pynenc-compatible import path; see ``pynenc.trigger.conditions``."""

from pynenc.trigger.conditions import *  # noqa: F403
from pynenc.trigger.conditions import (  # noqa: F401
    CronContext,
    EventContext,
    ExceptionContext,
    ResultContext,
    StatusContext,
    TriggerContext,
)
