"""Where the current code runs: which runner and which invocation (per thread / task)."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pynenc.runner.base import BaseRunner


@dataclass(slots=True, frozen=True)
class InvocationContext:
    """The invocation whose code is executing; sub-invocations inherit its workflow."""

    invocation_id: str
    task_id: str
    workflow_id: str
    workflow_task_id: str
    runner: BaseRunner | None
    num_retries: int = 0


current_invocation: ContextVar[InvocationContext | None] = ContextVar(
    "pynenc_current_invocation", default=None
)
current_runner_id: ContextVar[str | None] = ContextVar("pynenc_current_runner_id", default=None)
