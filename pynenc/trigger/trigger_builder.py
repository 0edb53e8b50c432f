"""``TriggerBuilder``: declare when a task runs by itself (Pynenc's call shapes)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pynenc.invocation.status import InvocationStatus
from pynenc.trigger.arguments import ArgumentProvider, ProviderFunc, merged_arguments
from pynenc.trigger.conditions import (
    _NO_FILTER,
    AnyResultCondition,
    ArgumentsFilter,
    CronCondition,
    EventCondition,
    ExceptionCondition,
    ResultCondition,
    StatusCondition,
    TriggerCondition,
    TriggerContext,
    _task_id,
    as_exception_names,
    as_statuses,
)

if TYPE_CHECKING:
    from pynenc.task import Task

DEFAULT_WINDOW_SEC = 3600.0
"""How long a condition of an AND trigger stays satisfied while it waits for the others."""


@dataclass
class TriggerDefinition:
    """Conditions, how they combine, and the arguments of the task they run."""

    task_id: str
    trigger_id: str
    conditions: list[TriggerCondition]
    logic: str = "and"
    providers: list[ArgumentProvider] = field(default_factory=list)
    window_sec: float = DEFAULT_WINDOW_SEC

    def arguments(self, ctx: TriggerContext) -> dict[str, Any]:
        """The triggered task's keyword arguments for ``ctx``."""
        return merged_arguments(self.providers, ctx)

    def matches(self, ctx: TriggerContext) -> bool:
        """Whether this one context fires the trigger by itself."""
        found = (c.matches(ctx) for c in self.conditions)
        return all(found) if self.logic == "and" else any(found)

    def matched(self, ctx: TriggerContext) -> list[int]:
        """Indexes of the conditions ``ctx`` satisfies."""
        return [n for n, c in enumerate(self.conditions) if c.matches(ctx)]

    @property
    def cron_conditions(self) -> list[CronCondition]:
        return [c for c in self.conditions if isinstance(c, CronCondition)]

    @property
    def kinds(self) -> set[str]:
        return {c.kind for c in self.conditions}


class TriggerBuilder:
    """Chain ``on_*`` conditions, ``with_logic("and"|"or")`` (AND by default, as in
    Pynenc) and ``with_args_*`` providers (merged in order)."""

    def __init__(self) -> None:
        self.conditions: list[TriggerCondition] = []
        self.logic = "and"
        self.providers: list[ArgumentProvider] = []
        self.window_sec = DEFAULT_WINDOW_SEC

    def _add(self, condition: TriggerCondition) -> TriggerBuilder:
        self.conditions.append(condition)
        return self

    # --- conditions ---------------------------------------------------------------------

    def on_cron(self, cron_expression: str) -> TriggerBuilder:
        return self._add(CronCondition(cron_expression))

    def on_event(
        self,
        event_code: str,
        payload_filter: dict[str, Any] | Callable[[dict[str, Any]], bool] | None = None,
    ) -> TriggerBuilder:
        return self._add(EventCondition(event_code, payload_filter))

    def on_status(
        self,
        task: Task[Any, Any] | str,
        statuses: Sequence[str | InvocationStatus] | str | InvocationStatus = (
            InvocationStatus.SUCCESS,
        ),
        call_arguments: ArgumentsFilter = None,
    ) -> TriggerBuilder:
        return self._add(StatusCondition(_task_id(task), as_statuses(statuses), call_arguments))

    def on_success(
        self, task: Task[Any, Any] | str, call_arguments: ArgumentsFilter = None
    ) -> TriggerBuilder:
        return self.on_status(task, [InvocationStatus.SUCCESS], call_arguments)

    def on_failure(
        self, task: Task[Any, Any] | str, call_arguments: ArgumentsFilter = None
    ) -> TriggerBuilder:
        return self.on_status(task, [InvocationStatus.FAILED], call_arguments)

    def on_any_result(
        self, task: Task[Any, Any] | str, call_arguments: ArgumentsFilter = None
    ) -> TriggerBuilder:
        return self._add(AnyResultCondition(_task_id(task), call_arguments))

    def on_result(
        self,
        task: Task[Any, Any] | str,
        filter_result: Any = _NO_FILTER,
        call_arguments: ArgumentsFilter = None,
    ) -> TriggerBuilder:
        return self._add(ResultCondition(_task_id(task), filter_result, call_arguments))

    def on_exception(
        self,
        task: Task[Any, Any] | str,
        exception_types: Sequence[str | type[BaseException]] | str | type | None = None,
        call_arguments: ArgumentsFilter = None,
    ) -> TriggerBuilder:
        names = as_exception_names(exception_types)
        return self._add(ExceptionCondition(_task_id(task), names, call_arguments))

    def with_logic(self, logic: str) -> TriggerBuilder:
        value = str(getattr(logic, "value", logic)).lower()
        if value not in ("and", "or"):
            raise ValueError(f"with_logic takes 'and' or 'or', not {logic!r}")
        self.logic = value
        return self

    def with_window(self, seconds: float) -> TriggerBuilder:
        """With AND logic: how long a satisfied condition waits for the others (each
        occurrence counts once; older ones are forgotten)."""
        if not seconds > 0:
            raise ValueError(f"with_window takes a positive number of seconds, not {seconds!r}")
        self.window_sec = float(seconds)
        return self

    # --- arguments ----------------------------------------------------------------------

    def _provide(self, provider: ArgumentProvider) -> TriggerBuilder:
        if provider.func is not None and not callable(provider.func):
            raise ValueError(
                f"Argument providers are functions of the trigger context, not "
                f"{provider.func!r}: pass a module-level function returning a dict."
            )
        self.providers.append(provider)
        return self

    def with_args_static(self, arguments: dict[str, Any]) -> TriggerBuilder:
        """Fixed keyword arguments."""
        return self._provide(ArgumentProvider(static=dict(arguments)))

    with_arguments = with_args_static

    def with_args_provider(self, func: ProviderFunc) -> TriggerBuilder:
        """Arguments from the context that fired the trigger (for an AND trigger met by
        several occurrences, the combined context, each one in ``ctx.contexts``)."""
        return self._provide(ArgumentProvider(func=func))

    with_args_from_trigger_context = with_args_provider

    def with_args_from_event(self, func: ProviderFunc) -> TriggerBuilder:
        """Arguments from the event that fired it (skipped when no event did)."""
        return self._provide(ArgumentProvider(func=func, kind="event"))

    def with_args_from_status(self, func: ProviderFunc) -> TriggerBuilder:
        """Arguments from the invocation whose status fired it."""
        return self._provide(ArgumentProvider(func=func, kind="status"))

    def with_args_from_result(self, func: ProviderFunc) -> TriggerBuilder:
        """Arguments from the invocation that succeeded (``ctx.result``)."""
        return self._provide(ArgumentProvider(func=func, kind="result"))

    def with_args_from_exception(self, func: ProviderFunc) -> TriggerBuilder:
        """Arguments from the invocation that failed (``ctx.exception``)."""
        return self._provide(ArgumentProvider(func=func, kind="exception"))

    def build(self, task_id: str, index: int = 0) -> TriggerDefinition:
        if not self.conditions:
            raise ValueError(
                f"Trigger of task '{task_id}' has no conditions: add one with on_cron, "
                "on_event, on_status, on_result, on_any_result or on_exception."
            )
        return TriggerDefinition(
            task_id,
            f"{task_id}#{index}",
            list(self.conditions),
            self.logic,
            list(self.providers),
            self.window_sec,
        )
