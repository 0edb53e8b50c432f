"""Invocations run inline by ``dev_mode(force_sync_tasks=True)``: no backend touched."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from pynenc.identifiers import new_invocation_id
from pynenc.invocation.base import BaseInvocation
from pynenc.invocation.status import InvocationStatus

if TYPE_CHECKING:
    from pynenc.task import Task

R = TypeVar("R")


class SyncInvocation(BaseInvocation[R]):
    __slots__ = ("_exception", "_num_retries", "_status", "_value")

    def __init__(
        self,
        task: Task[Any, R],
        value: Any,
        exception: BaseException | None,
        num_retries: int,
    ) -> None:
        # the id is made on first use: most inline calls only ever read .result
        self.task = task
        self._value = value
        self._exception = exception
        self._num_retries = num_retries
        self._status = InvocationStatus.FAILED if exception else InvocationStatus.SUCCESS

    def __getattr__(self, name: str) -> Any:
        if name == "invocation_id":
            self.invocation_id = new_invocation_id()
            return self.invocation_id
        raise AttributeError(name)

    @property
    def status(self) -> InvocationStatus:
        return self._status

    @property
    def result(self) -> R:
        if self._exception is not None:
            raise self._exception
        return self._value  # type: ignore[no-any-return]

    @property
    def num_retries(self) -> int:
        return self._num_retries
