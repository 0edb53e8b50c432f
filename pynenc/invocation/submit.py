"""Client side of the hot path: bind, serialize, then one write per batch per component."""

from __future__ import annotations

import contextvars
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from pynenc._speedups.hashing import arguments_key
from pynenc.call import pack_arguments, serialize_arguments
from pynenc.conf.config_task import ConcurrencyControlType
from pynenc.context import current_invocation
from pynenc.identifiers import new_invocation_id
from pynenc.invocation.dist import DistributedInvocation
from pynenc.invocation.record import InvocationRecord, Registration

if TYPE_CHECKING:
    from pynenc.app import Pynenc
    from pynenc.task import Task

SUBMIT_BATCH = 2000  # invocations per backend write; bounds memory of one write


def concurrency_key(
    mode: ConcurrencyControlType, task_id: str, values: dict[str, bytes], keys: tuple[str, ...]
) -> str | None:
    """The key two invocations share when concurrency control treats them as the same."""
    if mode is ConcurrencyControlType.DISABLED:
        return None
    if mode is ConcurrencyControlType.TASK:
        return task_id
    if mode is ConcurrencyControlType.ARGUMENTS:
        return f"{task_id}:{arguments_key(values)}"
    return f"{task_id}:{arguments_key(values, keys)}"


class Submitter:
    def __init__(self, app: Pynenc) -> None:
        self.app = app
        self._writer: ThreadPoolExecutor | None = None
        self._writer_pid = 0

    def _background(self) -> ThreadPoolExecutor:
        """One thread that writes a batch while the caller builds the next (made again
        after a fork, which never copies threads)."""
        if self._writer is None or self._writer_pid != os.getpid():
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="pynenc-submit")
            self._writer_pid = os.getpid()
        return self._writer

    def submit(
        self,
        task: Task[Any, Any],
        calls: list[dict[str, Any]],
        common: dict[str, Any] | None = None,
    ) -> list[DistributedInvocation[Any]]:
        app = self.app
        serializer = app.serializer
        task_id = task.task_id
        store = app.client_data_store
        common_values = serialize_arguments(serializer, task_id, common) if common else {}
        common_refs: frozenset[str] = frozenset()
        pending: dict[str, bytes] = {}  # blobs to store before this batch is written
        if common_values:
            common_values, common_refs = store.externalize(task, common_values, pending)
        parent = current_invocation.get()
        conf = task.conf
        invocations: list[DistributedInvocation[Any]] = []
        # batches are written in order, each while the next one is built; at most one is
        # in flight, so the queue keeps the calls' order and a failure stops the rest
        in_flight: Future[list[str]] | None = None
        for start in range(0, len(calls), SUBMIT_BATCH):
            records: list[InvocationRecord] = []
            registrations: list[Registration] = []
            now = time.time()
            for kwargs in calls[start : start + SUBMIT_BATCH]:
                values = serialize_arguments(serializer, task_id, kwargs)
                values, references = store.externalize(task, values, pending)
                if common_values:
                    values = {**common_values, **values}
                    references = common_refs | references if references else common_refs
                invocation_id = new_invocation_id()
                if parent is None or conf.force_new_workflow:
                    workflow_id, workflow_task_id = invocation_id, task_id
                else:
                    workflow_id, workflow_task_id = parent.workflow_id, parent.workflow_task_id
                records.append(
                    InvocationRecord(
                        invocation_id,
                        task_id,
                        pack_arguments(values, references),
                        parent.invocation_id if parent else None,
                        workflow_id,
                        workflow_task_id,
                        now,
                    )
                )
                registrations.append(self._registration(task, invocation_id, values))
            if in_flight is not None:
                invocations.extend(DistributedInvocation(task, i) for i in in_flight.result())
            store.flush(pending)  # large values stored before any record points at them
            pending = {}
            write = app.orchestrator.submit_invocations
            if start + SUBMIT_BATCH >= len(calls):  # the last (often only) batch: no thread
                invocations.extend(
                    DistributedInvocation(task, i) for i in write(registrations, records)
                )
                return invocations
            context = contextvars.copy_context()
            in_flight = self._background().submit(context.run, write, registrations, records)
        return invocations

    @staticmethod
    def _registration(
        task: Task[Any, Any], invocation_id: str, values: dict[str, bytes]
    ) -> Registration:
        conf = task.conf
        keys = conf.key_arguments
        registration_mode = conf.registration_concurrency
        non_key = None
        if conf.on_diff_non_key_args_raise and registration_mode is ConcurrencyControlType.KEYS:
            non_key = arguments_key(values, tuple(n for n in values if n not in keys))
        return Registration(
            invocation_id,
            task.task_id,
            concurrency_key(registration_mode, task.task_id, values, keys),
            concurrency_key(conf.running_concurrency, task.task_id, values, keys),
            non_key,
            conf.reroute_on_concurrency_control,
        )
