"""Memory state backend: dicts under one lock."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pynenc.invocation.record import InvocationRecord
from pynenc.invocation.status import StatusRecord
from pynenc.state_backend.base import BaseStateBackend, RunnerInfo

if TYPE_CHECKING:
    from pynenc.app import Pynenc


class MemStateBackend(BaseStateBackend):
    def __init__(self, app: Pynenc) -> None:
        super().__init__(app)
        self._lock = threading.Lock()
        self._records: dict[str, InvocationRecord] = {}
        self._history: dict[str, list[StatusRecord]] = {}
        self._results: dict[str, bytes] = {}
        self._exceptions: dict[str, bytes] = {}
        self._runners: dict[str, RunnerInfo] = {}
        self._workflow_data: dict[tuple[str, str], bytes] = {}

    def store_invocations(self, records: Sequence[InvocationRecord]) -> None:
        with self._lock:
            for record in records:
                self._records.setdefault(record.invocation_id, record)

    def get_invocations(self, invocation_ids: Sequence[str]) -> dict[str, InvocationRecord]:
        with self._lock:
            return {i: self._records[i] for i in invocation_ids if i in self._records}

    def add_history(self, entries: Sequence[tuple[str, StatusRecord]]) -> None:
        with self._lock:
            for invocation_id, record in entries:
                self._history.setdefault(invocation_id, []).append(record)

    def get_history(self, invocation_id: str) -> list[StatusRecord]:
        with self._lock:
            return list(self._history.get(invocation_id, ()))

    def store_results(self, results: Sequence[tuple[str, bytes]]) -> None:
        with self._lock:
            self._results.update(results)

    def get_results(self, invocation_ids: Sequence[str]) -> dict[str, bytes]:
        with self._lock:
            return {i: self._results[i] for i in invocation_ids if i in self._results}

    def store_exceptions(self, exceptions: Sequence[tuple[str, bytes]]) -> None:
        with self._lock:
            self._exceptions.update(exceptions)

    def get_exceptions(self, invocation_ids: Sequence[str]) -> dict[str, bytes]:
        with self._lock:
            return {i: self._exceptions[i] for i in invocation_ids if i in self._exceptions}

    def store_runner_heartbeat(self, info: RunnerInfo) -> None:
        with self._lock:
            self._runners[info.runner_id] = info

    def get_runners(self) -> list[RunnerInfo]:
        with self._lock:
            return sorted(self._runners.values(), key=lambda r: -r.last_heartbeat)

    def remove_runner(self, runner_id: str) -> None:
        with self._lock:
            self._runners.pop(runner_id, None)

    def set_workflow_data(self, workflow_id: str, key: str, value: bytes) -> None:
        with self._lock:
            self._workflow_data[(workflow_id, key)] = value

    def get_workflow_data(self, workflow_id: str, key: str) -> bytes | None:
        with self._lock:
            return self._workflow_data.get((workflow_id, key))

    def get_workflow_invocations(self, workflow_id: str) -> list[InvocationRecord]:
        with self._lock:
            found = [r for r in self._records.values() if r.workflow_id == workflow_id]
        return sorted(found, key=lambda r: r.created_at)

    def purge(self) -> None:
        with self._lock:
            self._workflow_data.clear()
            for store in (self._records, self._history, self._results, self._exceptions):
                store.clear()
            self._runners.clear()
