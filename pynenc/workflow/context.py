"""``task.wf``: the workflow of the invocation running now (Pynenc 0.4's model).

A workflow run starts at an invocation of a workflow task (``@app.workflow``); its id is
that invocation's id, and every invocation it calls, directly or through its children,
joins the run (a workflow task called from a run starts a sub-workflow of its own). Every
invocation of a run may read and write the run's data; only the workflow-defining
invocation orchestrates through ``wf.root`` (see ``pynenc.workflow.root``). An ordinary
task called at the top level is standalone: it belongs to no workflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pynenc.context import InvocationContext, current_invocation
from pynenc.workflow.exceptions import (
    DeterministicOperationScopeError,
    WorkflowError,
    WorkflowMembershipError,
)

if TYPE_CHECKING:
    from pynenc.app import Pynenc
    from pynenc.task import Task
    from pynenc.workflow.root import WorkflowRootOps


@dataclass(slots=True, frozen=True)
class WorkflowIdentity:
    """Which workflow run an invocation belongs to."""

    workflow_id: str
    """The id of the workflow-defining invocation."""
    workflow_type: str
    """Task id of the workflow task."""
    parent_workflow_id: str | None = None
    """For a sub-workflow (a workflow task called from another run), the caller's run."""


def running_context(task: Task[Any, Any], operation: str) -> InvocationContext:
    """The invocation running now, or a clear error outside one."""
    context = current_invocation.get()
    if context is None:
        raise WorkflowError(
            f"{task.task_id}.wf.{operation} is only available inside a running invocation "
            "(call it from the task's code while a runner executes it)."
        )
    return context


def is_workflow_task(app: Pynenc, task_id: str) -> bool:
    return app.get_task(task_id).is_workflow_root_task


class WorkflowContext:
    """Workflow identity and data, for every invocation inside a workflow run."""

    def __init__(self, task: Task[Any, Any]) -> None:
        self.task = task

    @property
    def app(self) -> Pynenc:
        return self.task.app

    def _member(self, operation: str) -> InvocationContext:
        context = running_context(self.task, operation)
        if not is_workflow_task(self.app, context.workflow_task_id):
            raise WorkflowMembershipError.outside(context.task_id, operation)
        return context

    # --- identity -----------------------------------------------------------------------

    @property
    def identity(self) -> WorkflowIdentity:
        context = self._member("identity")
        parent_workflow = None
        if context.workflow_id == context.invocation_id:  # a root: was it called by a run?
            backend = self.app.state_backend
            record = backend.get_invocation(context.invocation_id)
            if record is not None and record.parent_invocation_id:
                parent = backend.get_invocation(record.parent_invocation_id)
                if parent is not None and is_workflow_task(self.app, parent.workflow_task_id):
                    parent_workflow = parent.workflow_id
        return WorkflowIdentity(context.workflow_id, context.workflow_task_id, parent_workflow)

    @property
    def workflow_id(self) -> str:
        return self._member("workflow_id").workflow_id

    @property
    def root_invocation_id(self) -> str:
        """The workflow-defining invocation (its id is the workflow id)."""
        return self.workflow_id

    @property
    def invocation_id(self) -> str:
        return running_context(self.task, "invocation_id").invocation_id

    @property
    def root(self) -> WorkflowRootOps:
        context = running_context(self.task, "root")
        raise DeterministicOperationScopeError.outside_root(
            context.task_id, "*", f"'{self.task.task_id}' is an ordinary task, not a workflow"
        )

    # --- data ---------------------------------------------------------------------------

    def set_data(self, key: str, value: Any) -> None:
        """Store ``value`` for every invocation of this workflow run."""
        context = self._member("set_data")
        raw = self.app.serializer.dumps(value)
        self.app.state_backend.set_workflow_data(context.workflow_id, key, raw)

    def get_data(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key`` in this run, or ``default``."""
        context = self._member("get_data")
        raw = self.app.state_backend.get_workflow_data(context.workflow_id, key)
        return default if raw is None else self.app.serializer.loads(raw)


class WorkflowRootContext(WorkflowContext):
    """``task.wf`` of a workflow task: also ``root``, its orchestration operations."""

    def __init__(self, task: Task[Any, Any]) -> None:
        from pynenc.workflow.root import WorkflowRootOps

        super().__init__(task)
        self._root = WorkflowRootOps(task)

    @property
    def root(self) -> WorkflowRootOps:
        return self._root


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
