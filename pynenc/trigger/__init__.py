"""Triggers: run tasks on cron schedules, events, and other tasks' statuses/results/errors."""

from pynenc.trigger.trigger_builder import TriggerBuilder, TriggerDefinition

__all__ = ["TriggerBuilder", "TriggerDefinition"]
