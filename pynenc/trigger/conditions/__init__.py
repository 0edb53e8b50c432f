"""Trigger conditions and the contexts they hand to argument providers.

A condition is matched against one context: a cron due time, an emitted event, or a
finished (or status-changed) invocation. Several conditions combine with OR (any matches)
or AND (every condition matched, by one occurrence or by several within the trigger's
window; see ``pynenc.trigger.base_trigger``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pynenc.arguments import Arguments
from pynenc.invocation.status import InvocationStatus

if TYPE_CHECKING:
    from pynenc.task import Task


@dataclass
class TriggerContext:
    """What a trigger fired on; argument providers read the fields that apply."""

    kind: str  # "cron", "event", "invocation", or "and" for a combined context
    timestamp: float = 0.0
    event_code: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    event_id: str | None = None
    task_id: str | None = None
    invocation_id: str | None = None
    status: InvocationStatus | None = None
    arguments: Arguments = field(default_factory=lambda: Arguments({}))
    result: Any = None
    exception: BaseException | None = None
    contexts: list[TriggerContext] = field(default_factory=list)
    """For an AND trigger, the context that satisfied each condition, in declaration order."""

    @property
    def exception_type(self) -> str | None:
        return type(self.exception).__name__ if self.exception is not None else None

    @property
    def exception_message(self) -> str | None:
        return str(self.exception) if self.exception is not None else None


def combine(contexts: Sequence[TriggerContext]) -> TriggerContext:
    """One context for an AND trigger satisfied by several occurrences: the event fields
    from its event, the invocation fields from its invocation (the later one when several),
    and every condition's own context in ``contexts``."""
    combined = TriggerContext("and", contexts=list(contexts))
    for ctx in contexts:
        combined.timestamp = max(combined.timestamp, ctx.timestamp)
        if ctx.kind == "event":
            combined.event_code, combined.event_id = ctx.event_code, ctx.event_id
            combined.payload = ctx.payload
        elif ctx.kind == "invocation":
            combined.task_id, combined.invocation_id = ctx.task_id, ctx.invocation_id
            combined.status, combined.arguments = ctx.status, ctx.arguments
            combined.result, combined.exception = ctx.result, ctx.exception
    return combined


# Pynenc names one context class per condition kind; here they are one shape.
EventContext = ResultContext = ExceptionContext = StatusContext = CronContext = TriggerContext

TRIGGERABLE_STATUSES = frozenset(
    {
        InvocationStatus.RUNNING,
        InvocationStatus.PAUSED,
        InvocationStatus.RESUMED,
        InvocationStatus.RETRY,
        InvocationStatus.REROUTED,
        InvocationStatus.SUCCESS,
        InvocationStatus.FAILED,
    }
)
"""Statuses runners report to triggers (the others change inside the orchestrator)."""

ArgumentsFilter = dict[str, Any] | Callable[[dict[str, Any]], bool] | None
ResultFilter = Any


def _task_id(task: Task[Any, Any] | str) -> str:
    return task if isinstance(task, str) else task.task_id


def _match_arguments(flt: ArgumentsFilter, ctx: TriggerContext) -> bool:
    if flt is None:
        return True
    kwargs = ctx.arguments.kwargs
    if callable(flt):
        return bool(flt(kwargs))
    return all(k in kwargs and kwargs[k] == v for k, v in flt.items())


_NO_FILTER = object()


class TriggerCondition:
    """One condition of a trigger."""

    kind = "invocation"

    def matches(self, ctx: TriggerContext) -> bool:
        raise NotImplementedError


@dataclass
class CronCondition(TriggerCondition):
    expression: str
    kind = "cron"

    def __post_init__(self) -> None:
        from croniter import croniter

        if not croniter.is_valid(self.expression):
            raise ValueError(f"Invalid cron expression: {self.expression!r}")

    def due_times(self, after: float, until: float) -> list[float]:
        """Due times t with after < t <= until (at most 100, oldest first)."""
        from croniter import croniter

        it = croniter(self.expression, after)
        found: list[float] = []
        while len(found) < 100:
            t = float(it.get_next(float))
            if t > until:
                break
            found.append(t)
        return found

    def matches(self, ctx: TriggerContext) -> bool:
        return ctx.kind == "cron"


@dataclass
class EventCondition(TriggerCondition):
    event_code: str
    payload_filter: dict[str, Any] | Callable[[dict[str, Any]], bool] | None = None
    kind = "event"

    def matches(self, ctx: TriggerContext) -> bool:
        if ctx.kind != "event" or ctx.event_code != self.event_code:
            return False
        flt = self.payload_filter
        if flt is None:
            return True
        if callable(flt):
            return bool(flt(ctx.payload))
        return all(k in ctx.payload and ctx.payload[k] == v for k, v in flt.items())


@dataclass
class StatusCondition(TriggerCondition):
    task_id: str
    statuses: frozenset[InvocationStatus]
    call_arguments: ArgumentsFilter = None

    def matches(self, ctx: TriggerContext) -> bool:
        return (
            ctx.kind == "invocation"
            and ctx.task_id == self.task_id
            and ctx.status in self.statuses
            and _match_arguments(self.call_arguments, ctx)
        )


@dataclass
class ResultCondition(TriggerCondition):
    task_id: str
    filter_result: ResultFilter = _NO_FILTER
    call_arguments: ArgumentsFilter = None

    def matches(self, ctx: TriggerContext) -> bool:
        if not (
            ctx.kind == "invocation"
            and ctx.task_id == self.task_id
            and ctx.status == InvocationStatus.SUCCESS
            and _match_arguments(self.call_arguments, ctx)
        ):
            return False
        flt = self.filter_result
        if flt is _NO_FILTER:
            return True
        if callable(flt):
            return bool(flt(ctx.result))
        if isinstance(flt, dict) and isinstance(ctx.result, dict):
            return all(k in ctx.result and ctx.result[k] == v for k, v in flt.items())
        return bool(ctx.result == flt)


@dataclass
class AnyResultCondition(TriggerCondition):
    """The task finished: with a result or with an exception."""

    task_id: str
    call_arguments: ArgumentsFilter = None

    def matches(self, ctx: TriggerContext) -> bool:
        return (
            ctx.kind == "invocation"
            and ctx.task_id == self.task_id
            and ctx.status in (InvocationStatus.SUCCESS, InvocationStatus.FAILED)
            and _match_arguments(self.call_arguments, ctx)
        )


@dataclass
class ExceptionCondition(TriggerCondition):
    task_id: str
    exception_types: tuple[str, ...] = ()
    call_arguments: ArgumentsFilter = None

    def matches(self, ctx: TriggerContext) -> bool:
        if not (
            ctx.kind == "invocation"
            and ctx.task_id == self.task_id
            and ctx.status == InvocationStatus.FAILED
            and ctx.exception is not None
            and _match_arguments(self.call_arguments, ctx)
        ):
            return False
        if not self.exception_types:
            return True
        names = {c.__name__ for c in type(ctx.exception).__mro__}
        names |= {f"{c.__module__}.{c.__qualname__}" for c in type(ctx.exception).__mro__}
        return any(t in names for t in self.exception_types)


def as_statuses(
    statuses: Sequence[str | InvocationStatus] | str | InvocationStatus,
) -> frozenset[InvocationStatus]:
    if isinstance(statuses, (str, InvocationStatus)):
        statuses = [statuses]
    found = frozenset(_status(s) for s in statuses)
    unseen = sorted(s.name for s in found - TRIGGERABLE_STATUSES)
    if unseen:
        names = ", ".join(sorted(s.name for s in TRIGGERABLE_STATUSES))
        raise ValueError(f"Status triggers cannot watch {', '.join(unseen)}; use {names}")
    return found


def _status(value: str | InvocationStatus) -> InvocationStatus:
    if isinstance(value, InvocationStatus):
        return value
    try:
        return InvocationStatus[str(value).upper()]
    except KeyError:
        names = ", ".join(s.name for s in InvocationStatus)
        raise ValueError(f"Unknown invocation status {value!r}; use one of {names}") from None


def as_exception_names(
    types: Sequence[str | type[BaseException]] | str | type | None,
) -> tuple[str, ...]:
    if types is None:
        return ()
    if isinstance(types, (str, type)):
        types = [types]
    for t in types:
        if not isinstance(t, str) and not (isinstance(t, type) and issubclass(t, BaseException)):
            raise ValueError(f"exception_types takes exception classes or their names, not {t!r}")
    return tuple(t if isinstance(t, str) else t.__name__ for t in types)
