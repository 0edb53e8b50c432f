"""The Trigger component: trigger definitions, evaluation, and the storage contract.

Backends store emitted events (an ordered log) and claims: ``claim(key)`` is an atomic
"first one wins" insert, so a cron due time, an event or an outcome fires a trigger once
however many runners evaluate it. Claims are persistent (runner restarts never double)."""

from __future__ import annotations

import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pynenc.arguments import Arguments
from pynenc.invocation.status import InvocationStatus
from pynenc.trigger.conditions import TriggerContext
from pynenc.trigger.trigger_builder import TriggerBuilder, TriggerDefinition

if TYPE_CHECKING:
    from pynenc.app import Pynenc
    from pynenc.runner.execution import Outcome

_REPORTED = frozenset(
    {
        InvocationStatus.SUCCESS,
        InvocationStatus.FAILED,
        InvocationStatus.RETRY,
        InvocationStatus.RUNNING,
        InvocationStatus.PAUSED,
        InvocationStatus.RESUMED,
    }
)


class BaseTrigger(ABC):
    def __init__(self, app: Pynenc) -> None:
        self.app = app
        self.clock: Callable[[], float] = time.time

    # --- storage contract ---------------------------------------------------------------

    @abstractmethod
    def store_event(self, event_id: str, code: str, payload: bytes, timestamp: float) -> None:
        """Append an event to the log."""

    @abstractmethod
    def events_after(
        self, cursor: int, limit: int = 500
    ) -> list[tuple[int, str, str, bytes, float]]:
        """(seq, event_id, code, payload, timestamp) with seq > cursor, oldest first."""

    @abstractmethod
    def claim(self, key: str) -> bool:
        """True for the first caller with ``key`` ever (atomic across processes)."""

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
        event_id = uuid.uuid4().hex
        data = self.app.serializer.dumps(dict(payload or {}))
        self.store_event(event_id, event_code, data, self.clock())
        return event_id

    # --- firing -------------------------------------------------------------------------

    def fire(self, definition: TriggerDefinition, ctx: TriggerContext, claim_key: str) -> bool:
        """Run the definition's task once per ``claim_key``."""
        if not self.claim(f"{definition.trigger_id}|{claim_key}"):
            return False
        task = self.app.get_task(definition.task_id)
        kwargs = definition.provider.arguments(ctx)
        self.app.submitter.submit(task, [task.bind((), kwargs)])
        return True

    def run_cron(self, after: float, until: float) -> int:
        fired = 0
        for definition in self.definitions:
            for cond in definition.cron_conditions:
                for due in cond.due_times(after, until):
                    ctx = TriggerContext("cron", timestamp=due)
                    if definition.matches(ctx) and self.fire(definition, ctx, f"cron:{due:.3f}"):
                        fired += 1
        return fired

    def run_events(self, cursor: int) -> tuple[int, int]:
        """Evaluate event triggers on events after ``cursor``: (new cursor, fired)."""
        fired = 0
        defs = [d for d in self.definitions if "event" in d.kinds]
        for seq, event_id, code, payload, ts in self.events_after(cursor):
            cursor = seq
            if not defs:
                continue
            ctx = TriggerContext(
                "event",
                timestamp=ts,
                event_code=code,
                event_id=event_id,
                payload=self.app.serializer.loads(payload),
            )
            for definition in defs:
                if definition.matches(ctx) and self.fire(definition, ctx, f"event:{event_id}"):
                    fired += 1
        return cursor, fired

    def report_outcomes(self, batch: Sequence[Outcome]) -> None:
        """Called by runners after writing outcomes: status/result/exception triggers."""
        defs = [d for d in self.definitions if "invocation" in d.kinds]
        if not defs:
            return
        watched = {getattr(c, "task_id", None) for d in defs for c in d.conditions}
        outcomes = [o for o in batch if o.status in _REPORTED]
        if not outcomes:
            return
        records = self.app.state_backend.get_invocations([o.invocation_id for o in outcomes])
        from pynenc.call import deserialize_arguments
        from pynenc.invocation.errors import decode_exception

        for o in outcomes:
            record = records.get(o.invocation_id)
            if record is None or record.task_id not in watched:
                continue
            ctx = TriggerContext(
                "invocation",
                timestamp=self.clock(),
                task_id=record.task_id,
                invocation_id=o.invocation_id,
                status=o.status,
                arguments=Arguments(deserialize_arguments(self.app.serializer, record.arguments)),
                result=self.app.serializer.loads(o.result) if o.result is not None else None,
                exception=(
                    decode_exception(o.invocation_id, o.exception)
                    if o.exception is not None
                    else None
                ),
            )
            for definition in defs:
                if definition.matches(ctx):
                    self.fire(definition, ctx, f"inv:{o.invocation_id}:{o.status.value}")

    # --- programmatic builder (Pynenc's ``app.trigger.on_success(...)...``) ---------------

    def __getattr__(self, name: str) -> Any:
        if name.startswith("on_"):
            return getattr(TriggerBuilder(), name)
        raise AttributeError(name)
