"""Errors of the workflow API (Pynenc's names)."""

from __future__ import annotations

from pynenc.exceptions import PynencError


class WorkflowError(PynencError):
    """Workflow features used where they cannot work."""


class WorkflowMembershipError(WorkflowError):
    """Workflow data or identity asked for by an invocation that is not in a workflow."""

    @classmethod
    def outside(cls, task_id: str, operation: str) -> WorkflowMembershipError:
        return cls(
            f"Task '{task_id}' is not running inside a workflow, so it cannot use "
            f"'{operation}'. Start the run from a task decorated with @app.workflow (or "
            "@app.task(force_new_workflow=True)); tasks it calls join its workflow."
        )


class DeterministicOperationScopeError(WorkflowError):
    """A root-only operation (``wf.root.*``) used from a task that does not define the
    workflow (an ordinary task, or another task than the running one)."""

    @classmethod
    def outside_root(
        cls, task_id: str, operation: str, reason: str
    ) -> DeterministicOperationScopeError:
        return cls(
            f"wf.root.{operation}() of task '{task_id}' can only be used by the invocation "
            f"that defines the workflow ({reason}). Decorate the orchestrating function with "
            "@app.workflow, call wf.root from its own code, and pass the values it draws "
            "to the tasks it calls."
        )
