"""``TriggerBuilder``: declare when a task runs by itself (Pynenc's call shapes)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pynenc.invocation.status import InvocationStatus
from pynenc.trigger.arguments import ArgumentProvider, ProviderFunc
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
    logic: str = "or"
    provider: ArgumentProvider = field(default_factory=ArgumentProvider)
    window_sec: float = DEFAULT_WINDOW_SEC

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
    """Chain ``on_*`` conditions, ``with_logic("and"|"or")`` and one ``with_args_*``."""

    def __init__(self) -> None:
        self.conditions: list[TriggerCondition] = []
        self.logic = "or"
        self.provider = ArgumentProvider()
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

    def with_args_static(self, arguments: dict[str, Any]) -> TriggerBuilder:
        self.provider = ArgumentProvider(static=dict(arguments))
        return self

    def with_args_provider(self, func: ProviderFunc) -> TriggerBuilder:
        self.provider = ArgumentProvider(func=func)
        return self

    with_args_from_event = with_args_provider
    with_args_from_status = with_args_provider
    with_args_from_result = with_args_provider
    with_args_from_exception = with_args_provider
    with_arguments = with_args_provider

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
            self.provider,
            self.window_sec,
        )
