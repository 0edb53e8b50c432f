"""Argument providers: what a triggered task is called with."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pynenc.trigger.conditions import TriggerContext

ProviderFunc = Callable[[TriggerContext], dict[str, Any]]


@dataclass
class ArgumentProvider:
    """Static keyword arguments, or a function of the trigger's context."""

    static: dict[str, Any] | None = None
    func: ProviderFunc | None = None

    def arguments(self, ctx: TriggerContext) -> dict[str, Any]:
        if self.func is not None:
            return dict(self.func(ctx))
        return dict(self.static or {})
