"""What calling a task returns: a handle on one invocation."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pynenc.invocation.status import InvocationStatus

if TYPE_CHECKING:
    from pynenc.task import Task

R = TypeVar("R")


class BaseInvocation(ABC, Generic[R]):
    """Handle on an invocation; ``result`` blocks until it is final."""

    __slots__ = ("invocation_id", "task")

    def __init__(self, task: Task[Any, R], invocation_id: str) -> None:
        self.task = task
        self.invocation_id = invocation_id

    @property
    @abstractmethod
    def status(self) -> InvocationStatus: ...

    @property
    @abstractmethod
    def result(self) -> R:
        """The task's return value; re-raises the task's exception if it failed."""

    @property
    @abstractmethod
    def num_retries(self) -> int: ...

    async def async_result(self) -> R:
        """Await the result without blocking the event loop."""
        return await asyncio.to_thread(lambda: self.result)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.task.task_id}, {self.invocation_id})"
