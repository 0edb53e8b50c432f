"""``task.wf``: the workflow facade of the invocation that is running.

A workflow run is the tree of invocations sharing one ``workflow_id`` (the id of its root
invocation). Its data lives in the state backend under that id, serialized with the app's
serializer. Values that must replay on retry (``random``, ``utc_now``, ``uuid``) and the
sub-invocations started by ``execute_task`` are recorded in the same data, keyed by the
drawing invocation and a per-execution call counter: a retry of that invocation draws the
same values and reuses the sub-invocations that already succeeded.
"""

from __future__ import annotations

import random as _random
import uuid as _uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from pynenc.context import InvocationContext, current_invocation
from pynenc.exceptions import PynencError
from pynenc.invocation.status import InvocationStatus

if TYPE_CHECKING:
    from pynenc.app import Pynenc
    from pynenc.invocation.base import BaseInvocation
    from pynenc.task import Task

T = TypeVar("T")

# internal keys of the workflow data; user keys never start with NUL
_DET = "\x00pynenc:det:"
_SUB = "\x00pynenc:sub:"


class WorkflowError(PynencError):
    """Workflow features used where no invocation is running."""


@dataclass(slots=True)
class _Counters:
    context: InvocationContext
    deterministic: int = 0
    sub_invocations: int = 0


_counters: ContextVar[_Counters | None] = ContextVar("pynenc_workflow_counters", default=None)


def _counters_for(context: InvocationContext) -> _Counters:
    """Counters of this execution (a retry is a new context, so counting starts again)."""
    found = _counters.get()
    if found is None or found.context is not context:
        found = _Counters(context)
        _counters.set(found)
    return found


@dataclass(slots=True, frozen=True)
class WorkflowIdentity:
    """Which workflow run an invocation belongs to."""

    workflow_id: str
    workflow_type: str
    """Task id of the workflow's root."""
    parent_workflow_id: str | None = None
    """For a sub-workflow (``@app.workflow`` called from another workflow), the caller's."""


@dataclass(slots=True)
class WorkflowContext:
    """Workflow data and deterministic helpers for the running invocation."""

    app: Pynenc
    context: InvocationContext
    _identity: WorkflowIdentity | None = field(default=None, repr=False)

    @classmethod
    def current(cls, app: Pynenc) -> WorkflowContext:
        context = current_invocation.get()
        if context is None:
            raise WorkflowError(
                "task.wf is only available inside a running invocation (call it from the "
                "task's code while a runner executes it)."
            )
        return cls(app, context)

    # --- identity -----------------------------------------------------------------------

    @property
    def workflow_id(self) -> str:
        return self.context.workflow_id

    @property
    def invocation_id(self) -> str:
        return self.context.invocation_id

    @property
    def identity(self) -> WorkflowIdentity:
        if self._identity is None:
            parent_workflow = None
            if self.workflow_id == self.invocation_id:
                backend = self.app.state_backend
                record = backend.get_invocation(self.invocation_id)
                if record is not None and record.parent_invocation_id:
                    parent = backend.get_invocation(record.parent_invocation_id)
                    parent_workflow = parent.workflow_id if parent else None
            self._identity = WorkflowIdentity(
                self.workflow_id, self.context.workflow_task_id, parent_workflow
            )
        return self._identity

    @property
    def root(self) -> WorkflowContext:
        """The workflow-level helpers (``execute_task``, ``random``, ``utc_now``, ``uuid``).

        Here they replay per drawing invocation, so ``wf.root.x`` and ``wf.x`` are the same.
        """
        return self

    @property
    def root_invocation_id(self) -> str:
        return self.workflow_id

    @property
    def root_task_id(self) -> str:
        return self.context.workflow_task_id

    # --- data ---------------------------------------------------------------------------

    def set_data(self, key: str, value: Any) -> None:
        """Store ``value`` for every invocation of this workflow run."""
        raw = self.app.serializer.dumps(value)
        self.app.state_backend.set_workflow_data(self.workflow_id, key, raw)

    def get_data(self, key: str, default: Any = None) -> Any:
        raw = self.app.state_backend.get_workflow_data(self.workflow_id, key)
        return default if raw is None else self.app.serializer.loads(raw)

    # --- deterministic values -------------------------------------------------------------

    def _replayed(self, kind: str, make: Any) -> Any:
        counters = _counters_for(self.context)
        key = f"{_DET}{self.invocation_id}:{counters.deterministic}:{kind}"
        counters.deterministic += 1
        backend = self.app.state_backend
        raw = backend.get_workflow_data(self.workflow_id, key)
        if raw is not None:
            return self.app.serializer.loads(raw)
        value = make()
        backend.set_workflow_data(self.workflow_id, key, self.app.serializer.dumps(value))
        return value

    def random(self) -> float:
        """A float in [0, 1); the same sequence when this invocation is retried."""
        return float(self._replayed("random", _random.random))

    def utc_now(self) -> datetime:
        """The current UTC time; on retry, the times the first attempt saw."""
        stamp = self._replayed("utc_now", lambda: datetime.now(UTC).timestamp())
        return datetime.fromtimestamp(float(stamp), UTC)

    def uuid(self) -> str:
        """A new uuid4 string; on retry, the ones the first attempt drew."""
        return str(self._replayed("uuid", lambda: str(_uuid.uuid4())))

    # --- sub-invocations ----------------------------------------------------------------

    def execute_task(self, task: Task[Any, T], *args: Any, **kwargs: Any) -> BaseInvocation[T]:
        """Invoke ``task``; on a retry of this invocation, the sub-invocation made at the same
        point by an earlier attempt is returned instead when it succeeded."""
        counters = _counters_for(self.context)
        key = f"{_SUB}{self.invocation_id}:{counters.sub_invocations}"
        counters.sub_invocations += 1
        backend = self.app.state_backend
        raw = backend.get_workflow_data(self.workflow_id, key)
        if raw is not None:
            previous_id = raw.decode()
            if previous_id:
                previous = self.app.get_invocation(previous_id)
                if previous.status is InvocationStatus.SUCCESS:
                    return previous
        invocation = task(*args, **kwargs)
        invocation_id = getattr(invocation, "invocation_id", "")
        backend.set_workflow_data(self.workflow_id, key, str(invocation_id).encode())
        return invocation


def get_workflow_invocations(app: Pynenc, workflow_id: str) -> list[WorkflowNode]:
    """The invocations of one workflow run with their parents, oldest first."""
    return [
        WorkflowNode(r.invocation_id, r.task_id, r.parent_invocation_id, r.workflow_id)
        for r in app.state_backend.get_workflow_invocations(workflow_id)
    ]


@dataclass(slots=True, frozen=True)
class WorkflowNode:
    """One invocation in a workflow run's tree."""

    invocation_id: str
    task_id: str
    parent_invocation_id: str | None
    workflow_id: str
