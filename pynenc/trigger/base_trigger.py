"""The Trigger component: trigger definitions, evaluation, and the storage contract.

Backends keep three things, all bounded:
- the event log (``emit_event`` appends, runners' loops read it by cursor), trimmed after
  ``trigger_retention_sec``;
- claims: ``claim(key)`` is an atomic "first one wins" insert, so one cron due time, event
  or outcome fires a trigger once however many runners evaluate it; kept as long as events,
  so a restarted runner re-reading the log never fires twice;
- condition records of AND triggers whose conditions are met by different occurrences (an
  event and a task's result): each is kept for the trigger's window, and
  ``take_condition_records`` atomically consumes one per condition when all are there.
"""

from __future__ import annotations

import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from pynenc.invocation.status import InvocationStatus
from pynenc.trigger.conditions import (
    TRIGGERABLE_STATUSES,
    StatusCondition,
    TriggerContext,
    combine,
)
from pynenc.trigger.occurrence import Occurrence
from pynenc.trigger.trigger_builder import TriggerBuilder, TriggerDefinition

if TYPE_CHECKING:
    from pynenc.app import Pynenc
    from pynenc.invocation.record import InvocationRecord
    from pynenc.runner.execution import Outcome

_REPORTED = TRIGGERABLE_STATUSES

MAX_CONDITION_RECORDS = 1000
"""Per condition of an AND trigger: a flood of one kind keeps only the newest ones."""


class StoredEvent(NamedTuple):
    cursor: str
    """Opaque position in the log: pass it to ``events_after`` to read what follows."""
    event_id: str
    code: str
    payload: bytes
    timestamp: float


class BaseTrigger(ABC):
    def __init__(self, app: Pynenc) -> None:
        self.app = app
        self.clock: Callable[[], float] = time.time

    @property
    def retention_sec(self) -> float:
        return float(self.app.conf.trigger_retention_sec)

    # --- storage contract ---------------------------------------------------------------

    @abstractmethod
    def store_event(self, event_id: str, code: str, payload: bytes, timestamp: float) -> None:
        """Append an event to the log."""

    @abstractmethod
    def events_after(self, cursor: str, limit: int = 500) -> list[StoredEvent]:
        """Events after ``cursor`` ("" = from the oldest kept), oldest first."""

    @abstractmethod
    def claim(self, key: str) -> bool:
        """True for the first caller with ``key`` (atomic across processes); the claim is
        kept ``retention_sec`` from ``self.clock()``."""

    @abstractmethod
    def add_condition_record(
        self, trigger_id: str, index: int, record: bytes, timestamp: float, window_start: float
    ) -> None:
        """Remember that condition ``index`` of an AND trigger was met at ``timestamp``;
        records older than ``window_start`` go, and at most ``MAX_CONDITION_RECORDS`` stay."""

    @abstractmethod
    def take_condition_records(
        self, trigger_id: str, count: int, window_start: float
    ) -> list[bytes] | None:
        """Atomically: when each of conditions ``0..count-1`` has a record not older than
        ``window_start``, remove the oldest of each and return them in condition order;
        otherwise change nothing and return None."""

    @abstractmethod
    def cron_watermark(self) -> float | None:
        """The latest time up to which some runner evaluated cron due times (None: never)."""

    @abstractmethod
    def set_cron_watermark(self, until: float) -> None:
        """Record that cron due times up to ``until`` were evaluated (kept if higher)."""

    @abstractmethod
    def trim(self, before: float) -> None:
        """Drop events, claims and condition records older than ``before``."""

    @abstractmethod
    def purge(self) -> None: ...

    def close(self) -> None:
        return None

    # --- definitions --------------------------------------------------------------------

    @property
    def definitions(self) -> list[TriggerDefinition]:
        return list(self.app.trigger_definitions)

    # --- events -------------------------------------------------------------------------

    def emit_event(self, event_code: str, payload: dict[str, Any] | None = None) -> str:
        """Record an event; event triggers fire on it from the runners' trigger loops."""
        if not isinstance(event_code, str) or not event_code:
            raise ValueError(f"emit_event needs a non-empty event code string, not {event_code!r}")
        event_id = uuid.uuid4().hex
        data = self.app.serializer.dumps(dict(payload or {}))
        self.store_event(event_id, event_code, data, self.clock())
        return event_id

    # --- firing -------------------------------------------------------------------------

    def submit(self, definition: TriggerDefinition, ctx: TriggerContext) -> None:
        task = self.app.get_task(definition.task_id)
        kwargs = definition.arguments(ctx)
        self.app.submitter.submit(task, [task.bind((), kwargs)])

    def fire(self, definition: TriggerDefinition, ctx: TriggerContext, claim_key: str) -> bool:
        """Run the definition's task once per ``claim_key``."""
        if not self.claim(f"{definition.trigger_id}|{claim_key}"):
            return False
        self.submit(definition, ctx)
        return True

    def evaluate(
        self, definition: TriggerDefinition, occurrence: Occurrence, ctx: TriggerContext
    ) -> bool:
        """Fire ``definition`` if ``occurrence`` completes it; True when it fired. A user
        filter or provider that raises is logged with the trigger's id and does not keep
        the other triggers from being evaluated."""
        try:
            return self._evaluate(definition, occurrence, ctx)
        except Exception:
            self.app.logger.exception(
                "Trigger %s failed on %s; its filters or argument providers raised",
                definition.trigger_id,
                occurrence.key,
            )
            return False

    def _evaluate(
        self, definition: TriggerDefinition, occurrence: Occurrence, ctx: TriggerContext
    ) -> bool:
        hits = definition.matched(ctx)
        if not hits:
            return False
        if definition.logic == "or" or len(hits) == len(definition.conditions):
            return self.fire(definition, ctx, occurrence.key)
        return self._evaluate_partial_and(definition, occurrence, hits)

    def _evaluate_partial_and(
        self, definition: TriggerDefinition, occurrence: Occurrence, hits: list[int]
    ) -> bool:
        # only the runner that claims this occurrence records it: each counts once
        if not self.claim(f"{definition.trigger_id}|cond:{occurrence.key}"):
            return False
        now = self.clock()
        window_start = now - definition.window_sec
        record = occurrence.pack()
        for index in hits:
            self.add_condition_record(definition.trigger_id, index, record, now, window_start)
        taken = self.take_condition_records(
            definition.trigger_id, len(definition.conditions), window_start
        )
        if taken is None:
            return False
        contexts = [Occurrence.unpack(raw).context(self.app) for raw in taken]
        self.submit(definition, combine(contexts))
        return True

    def run_cron(self, after: float, until: float) -> int:
        """Fire cron triggers due in ``(after, until]``; when any was due, record ``until``
        as the watermark a restarting runner resumes from."""
        fired = 0
        any_due = False
        for definition in self.definitions:
            for cond in definition.cron_conditions:
                for due in cond.due_times(after, until):
                    any_due = True
                    occurrence = Occurrence("cron", due, f"cron:{due:.3f}")
                    ctx = TriggerContext("cron", timestamp=due)
                    fired += self.evaluate(definition, occurrence, ctx)
        if any_due:
            self.set_cron_watermark(until)
        return fired

    def run_events(self, cursor: str) -> tuple[str, int]:
        """Evaluate event triggers on events after ``cursor``: (new cursor, fired)."""
        fired = 0
        defs = [d for d in self.definitions if "event" in d.kinds]
        for event in self.events_after(cursor):
            cursor = event.cursor
            if not defs:
                continue
            occurrence = Occurrence(
                "event",
                event.timestamp,
                f"event:{event.event_id}",
                event_code=event.code,
                event_id=event.event_id,
                payload=event.payload,
            )
            ctx = occurrence.context(self.app)
            for definition in defs:
                fired += self.evaluate(definition, occurrence, ctx)
        return cursor, fired

    def report_started(self, records: Sequence[InvocationRecord]) -> None:
        """Called by runners that claim invocations straight into RUNNING (no outcome is
        written for it): status triggers on RUNNING see them like any other status."""
        watching = any(
            isinstance(c, StatusCondition) and InvocationStatus.RUNNING in c.statuses
            for d in self.definitions
            for c in d.conditions
        )
        if watching and records:
            from pynenc.runner.execution import Outcome

            started = [Outcome(r.invocation_id, InvocationStatus.RUNNING) for r in records]
            self.report_outcomes(started, {r.invocation_id: r for r in records})

    def report_outcomes(
        self, batch: Sequence[Outcome], known: Mapping[str, InvocationRecord] | None = None
    ) -> None:
        """Called by runners after writing outcomes: status/result/exception triggers.
        ``known``: records the caller already holds (saves reading them again)."""
        defs = [d for d in self.definitions if "invocation" in d.kinds]
        if not defs:
            return
        watched = {getattr(c, "task_id", None) for d in defs for c in d.conditions}
        outcomes = [o for o in batch if o.status in _REPORTED]
        if not outcomes:
            return
        records = known or self.app.state_backend.get_invocations(
            [o.invocation_id for o in outcomes]
        )
        for o in outcomes:
            record = records.get(o.invocation_id)
            if record is None or record.task_id not in watched:
                continue
            occurrence = Occurrence(
                "invocation",
                self.clock(),
                f"inv:{o.invocation_id}:{o.status.value}",
                task_id=record.task_id,
                invocation_id=o.invocation_id,
                status=o.status.value,
                arguments=record.arguments,
                result=o.result,
                exception=o.exception,
            )
            ctx = occurrence.context(self.app)
            for definition in defs:
                self.evaluate(definition, occurrence, ctx)

    # --- programmatic builder (Pynenc's ``app.trigger.on_success(...)...``) ---------------

    def __getattr__(self, name: str) -> Any:
        if name.startswith("on_"):
            return getattr(TriggerBuilder(), name)
        raise AttributeError(name)
