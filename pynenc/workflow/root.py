"""``wf.root``: what only the workflow-defining invocation may do.

Values that must replay on retry (``random``, ``utc_now``, ``uuid``) are recorded in the
run's data, keyed by kind and a per-execution counter: a retry (a new execution of the same
invocation, so the same workflow id) draws the same sequence. ``execute_task`` records the
sub-invocation of each task-and-arguments: on retry, or when the same call is made again,
the recorded one is returned unless it failed.
"""

from __future__ import annotations

import hashlib
import random as _random
import uuid as _uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from pynenc.call import serialize_arguments
from pynenc.context import InvocationContext
from pynenc.exceptions import InvocationNotFoundError
from pynenc.invocation.status import InvocationStatus
from pynenc.workflow.context import running_context
from pynenc.workflow.exceptions import DeterministicOperationScopeError

if TYPE_CHECKING:
    from pynenc.invocation.base import BaseInvocation
    from pynenc.task import Task

T = TypeVar("T")

# internal keys of the workflow data; user keys never start with NUL
_DET = "\x00pynenc:det:"
_SUB = "\x00pynenc:sub:"


@dataclass(slots=True)
class _Counters:
    context: InvocationContext
    drawn: dict[str, int] = field(default_factory=dict)


_counters: ContextVar[_Counters | None] = ContextVar("pynenc_workflow_counters", default=None)


def _next_draw(context: InvocationContext, kind: str) -> int:
    """The position of this draw of ``kind`` in this execution (a retry starts again)."""
    found = _counters.get()
    if found is None or found.context is not context:
        found = _Counters(context)
        _counters.set(found)
    n = found.drawn.get(kind, 0)
    found.drawn[kind] = n + 1
    return n


class WorkflowRootOps:
    """Deterministic values and replayed sub-invocations of a workflow task's run."""

    def __init__(self, task: Task[Any, Any]) -> None:
        self.task = task

    def _defining(self, operation: str) -> InvocationContext:
        context = running_context(self.task, f"root.{operation}")
        if not self.task.is_workflow_root_task:
            reason = f"'{self.task.task_id}' is an ordinary task, not a workflow"
        elif context.task_id != self.task.task_id:
            reason = f"the running invocation is of '{context.task_id}'"
        elif context.workflow_id != context.invocation_id:
            reason = "this invocation joined another workflow instead of defining one"
        else:
            return context
        raise DeterministicOperationScopeError.outside_root(context.task_id, operation, reason)

    # --- deterministic values -------------------------------------------------------------

    def _replayed(self, kind: str, make: Any) -> Any:
        context = self._defining(kind)
        key = f"{_DET}{kind}:{_next_draw(context, kind)}"
        app = self.task.app
        raw = app.state_backend.get_workflow_data(context.workflow_id, key)
        if raw is not None:
            return app.serializer.loads(raw)
        value = make()
        app.state_backend.set_workflow_data(context.workflow_id, key, app.serializer.dumps(value))
        return value

    def random(self) -> float:
        """A float in [0, 1); the same sequence when the workflow is retried."""
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
        """Invoke ``task`` once per workflow run and arguments: when this run already made
        that call (an earlier attempt, or earlier in this one) and it did not fail, that
        invocation is returned instead of running the task again."""
        context = self._defining("execute_task")
        app = self.task.app
        key = _SUB + _call_key(task, args, kwargs)
        backend = app.state_backend
        raw = backend.get_workflow_data(context.workflow_id, key)
        if raw is not None:
            previous = _reusable(task, raw.decode())
            if previous is not None:
                return previous
        invocation = task(*args, **kwargs)
        invocation_id = getattr(invocation, "invocation_id", "")
        backend.set_workflow_data(context.workflow_id, key, str(invocation_id).encode())
        return invocation


def _call_key(task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    values = serialize_arguments(task.app.serializer, task.task_id, task.bind(args, kwargs))
    digest = hashlib.sha256()
    for name in sorted(values):
        digest.update(name.encode() + b"\x00" + values[name] + b"\x00")
    return f"{task.task_id}:{digest.hexdigest()}"


def _reusable(task: Task[Any, T], invocation_id: str) -> BaseInvocation[T] | None:
    """The recorded sub-invocation unless it failed or is gone (then the call runs again)."""
    if not invocation_id:
        return None
    from pynenc.invocation.dist import DistributedInvocation

    previous: DistributedInvocation[T] = DistributedInvocation(task, invocation_id)
    try:
        status = previous.status
    except InvocationNotFoundError:
        return None
    return None if status is InvocationStatus.FAILED else previous
