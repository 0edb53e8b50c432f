"""Workflows: invocation trees sharing data and replaying deterministic values on retry."""

from pynenc.workflow.context import (
    WorkflowContext,
    WorkflowError,
    WorkflowIdentity,
    WorkflowNode,
    get_workflow_invocations,
)

__all__ = [
    "WorkflowContext",
    "WorkflowError",
    "WorkflowIdentity",
    "WorkflowNode",
    "get_workflow_invocations",
]
