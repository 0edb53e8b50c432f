"""Workflows: runs of invocations sharing data, with root-only deterministic replay."""

from pynenc.workflow.context import (
    WorkflowContext,
    WorkflowIdentity,
    WorkflowNode,
    WorkflowRootContext,
    get_workflow_invocations,
)
from pynenc.workflow.exceptions import (
    DeterministicOperationScopeError,
    WorkflowError,
    WorkflowMembershipError,
)
from pynenc.workflow.root import WorkflowRootOps

__all__ = [
    "DeterministicOperationScopeError",
    "WorkflowContext",
    "WorkflowError",
    "WorkflowIdentity",
    "WorkflowMembershipError",
    "WorkflowNode",
    "WorkflowRootContext",
    "WorkflowRootOps",
    "get_workflow_invocations",
]
