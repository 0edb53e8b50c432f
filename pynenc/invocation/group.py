"""The handle ``task.parallelize(...)`` returns: many invocations, results in input order."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pynenc.invocation.base import BaseInvocation
from pynenc.invocation.dist import final_values, wait_for_final

if TYPE_CHECKING:
    from pynenc.task import Task

R = TypeVar("R")


class InvocationGroup(Generic[R]):
    def __init__(self, task: Task[Any, R], invocations: Sequence[BaseInvocation[R]]) -> None:
        self.task = task
        self.invocations = list(invocations)

    def __iter__(self) -> Iterator[BaseInvocation[R]]:
        return iter(self.invocations)

    def __len__(self) -> int:
        return len(self.invocations)

    @property
    def results(self) -> list[R]:
        return self.get_results(timeout_sec=None)

    def get_results(self, timeout_sec: float | None) -> list[R]:
        if not self.task.app.conf.dev_mode_force_sync_tasks:
            ids = [inv.invocation_id for inv in self.invocations]
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
