"""Argument providers: what a triggered task is called with.

A trigger may have several providers (``with_args_static``, ``with_args_from_event`` ...);
their keyword arguments are merged in the order they were added. A typed provider
(``from_event``, ``from_status``, ``from_result``, ``from_exception``) is called with the
context of its kind only, and only when the trigger fired with one: with OR logic, the
event provider runs when an event fired it and the result provider when a result did; with
AND logic over an event and a result, both run, each on its own context.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pynenc.invocation.status import InvocationStatus
from pynenc.trigger.conditions import TriggerContext

ProviderFunc = Callable[[TriggerContext], dict[str, Any]]


def _event(ctx: TriggerContext) -> bool:
    return ctx.kind == "event"


def _invocation(ctx: TriggerContext) -> bool:
    return ctx.kind == "invocation"


def _result(ctx: TriggerContext) -> bool:
    return _invocation(ctx) and ctx.status == InvocationStatus.SUCCESS


def _exception(ctx: TriggerContext) -> bool:
    return _invocation(ctx) and ctx.exception is not None


CONTEXT_KINDS: dict[str, Callable[[TriggerContext], bool]] = {
    "event": _event,
    "status": _invocation,
    "result": _result,
    "exception": _exception,
}


@dataclass(frozen=True)
class ArgumentProvider:
    """Static keyword arguments, or a function of the trigger's context; ``kind`` (a key of
    ``CONTEXT_KINDS``) limits the function to contexts of that kind."""

    static: dict[str, Any] | None = None
    func: ProviderFunc | None = None
    kind: str | None = None

    def arguments(self, ctx: TriggerContext) -> dict[str, Any]:
        if self.func is None:
            return dict(self.static or {})
        if self.kind is None:
            return _as_kwargs(self.func, self.func(ctx))
        wanted = CONTEXT_KINDS[self.kind]
        own = [c for c in (ctx.contexts or [ctx]) if wanted(c)]
        return _as_kwargs(self.func, self.func(own[-1])) if own else {}


def merged_arguments(providers: list[ArgumentProvider], ctx: TriggerContext) -> dict[str, Any]:
    """The keyword arguments of every provider, later ones overriding earlier ones."""
    kwargs: dict[str, Any] = {}
    for provider in providers:
        kwargs.update(provider.arguments(ctx))
    return kwargs


def _as_kwargs(func: ProviderFunc, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        name = getattr(func, "__qualname__", repr(func))
        raise TypeError(
            f"Argument provider {name} returned {type(value).__name__}; it must return a dict "
            "of the triggered task's keyword arguments."
        )
    return dict(value)
