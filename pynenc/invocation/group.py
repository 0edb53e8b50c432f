"""The handle ``task.parallelize(...)`` returns: many invocations, results in input order."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pynenc.invocation.base import BaseInvocation
from pynenc.invocation.dist import DistributedInvocation, final_values, wait_for_final

if TYPE_CHECKING:
    from pynenc.task import Task

R = TypeVar("R")


class InvocationGroup(Generic[R]):
    """Handles are made on first use: a group of distributed invocations needs only their
    ids to wait for and collect the results."""

    def __init__(
        self,
        task: Task[Any, R],
        invocations: Sequence[BaseInvocation[R]] = (),
        invocation_ids: Sequence[str] | None = None,
    ) -> None:
        self.task = task
        self._invocations: list[BaseInvocation[R]] | None = list(invocations)
        self._ids = invocation_ids
        if invocation_ids is not None:
            self._invocations = None  # distributed: made from the ids when asked for

    @property
    def invocations(self) -> list[BaseInvocation[R]]:
        if self._invocations is None:
            task = self.task
            self._invocations = [DistributedInvocation(task, i) for i in self._ids or ()]
        return self._invocations

    @property
    def invocation_ids(self) -> list[str]:
        if self._ids is not None:
            return list(self._ids)
        return [inv.invocation_id for inv in self.invocations]

    def __iter__(self) -> Iterator[BaseInvocation[R]]:
        return iter(self.invocations)

    def __len__(self) -> int:
        return len(self._ids) if self._ids is not None else len(self.invocations)

    @property
    def results(self) -> list[R]:
        return self.get_results(timeout_sec=None)

    def get_results(self, timeout_sec: float | None) -> list[R]:
        if not self.task.app.conf.dev_mode_force_sync_tasks:
            ids = self.invocation_ids
            app = self.task.app
            chunk = 5000  # bounded result fetches for very large groups
            values: list[R] = []
            wait_for_final(app, ids, timeout_sec)
            for start in range(0, len(ids), chunk):
                values.extend(final_values(app, ids[start : start + chunk]))
            return values
        return [inv.result for inv in self.invocations]

    async def async_results(self) -> list[R]:
        return await asyncio.to_thread(lambda: self.results)
