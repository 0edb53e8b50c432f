"""Client side of the hot path: bind, serialize, then one write per batch per component."""

from __future__ import annotations

import contextvars
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, NamedTuple

from pynenc._speedups.batch import encode_calls
from pynenc.call import pack_arguments, serialize_arguments
from pynenc.context import current_invocation
from pynenc.identifiers import new_invocation_id, new_invocation_ids
from pynenc.invocation.dist import DistributedInvocation
from pynenc.invocation.plan import SubmitPlan
from pynenc.invocation.readahead import ResultReadAhead
from pynenc.invocation.record import InvocationRecord, Registration

if TYPE_CHECKING:
    from pynenc.app import Pynenc
    from pynenc.client_data_store.base import BaseClientDataStore
    from pynenc.orchestrator.base import BaseOrchestrator
    from pynenc.serializer.base import BaseSerializer
    from pynenc.task import Task

SUBMIT_BATCH = 2000  # invocations per backend write; bounds memory of one write

Batch = tuple[list[Registration], list[InvocationRecord]]
# what ``encode_calls`` returns: envelopes, and the calls left to the generic path
Encoded = tuple[list[bytes | None], dict[int, dict[str, bytes] | None]]


class _Components(NamedTuple):
    serializer: BaseSerializer
    dumps: Callable[[Any], bytes]
    store: BaseClientDataStore
    orchestrator: BaseOrchestrator


class _BatchBuilder:
    """Turns the calls of one ``submit`` into registrations and records, batch by batch.

    Calls whose arguments are all small and whose registration does not depend on them (no
    ARGUMENTS/KEYS concurrency, no ``common_args``) take the fused path: envelopes of a
    whole batch encoded in one pass. Any other call takes the generic one."""

    def __init__(
        self, parts: _Components, task: Task[Any, Any], plan: SubmitPlan, common: dict[str, Any]
    ) -> None:
        self.task = task
        self.plan = plan
        self.serializer = parts.serializer
        self.store = parts.store
        self.pending: dict[str, bytes] = {}  # blobs to store before the batch is written
        self.common_values: dict[str, bytes] = {}
        self.common_refs: frozenset[str] = frozenset()
        if common:
            values = serialize_arguments(self.serializer, task.task_id, common)
            self.common_values, self.common_refs = self.store.externalize(
                task, values, self.pending
            )
        self.parent = current_invocation.get()

    def build(self, calls: list[dict[str, Any]], encoded: Encoded | None = None) -> Batch:
        """Registrations and records of ``calls``; ``encoded`` is ``encode_calls`` of them
        when the caller already ran it."""
        now = time.time()
        ids = new_invocation_ids(len(calls), now)
        if encoded is not None:
            envelopes, left = encoded
        elif self.common_values or self.plan.fixed_keys is None:
            envelopes, left = [None] * len(calls), dict.fromkeys(range(len(calls)))
        else:
            envelopes, left = encode_calls(calls, self.serializer.dumps, self.store.min_size)
        registrations: list[Registration | None] = [None] * len(calls) if left else []
        for index, values in left.items():
            envelopes[index], registrations[index] = self._generic(ids[index], calls[index], values)
        return self._registrations(ids, registrations), self._records(ids, envelopes, now)

    def _generic(
        self, invocation_id: str, kwargs: dict[str, Any], values: dict[str, bytes] | None
    ) -> tuple[bytes, Registration]:
        """Envelope and registration of one call: large values externalized, errors named
        (``values``: its arguments already serialized, if they are)."""
        if values is None:
            values = serialize_arguments(self.serializer, self.task.task_id, kwargs)
        values, references = self.store.externalize(self.task, values, self.pending)
        if self.common_values:
            values = {**self.common_values, **values}
            references = self.common_refs | references if references else self.common_refs
        registration = self.plan.registration(invocation_id, values)
        return pack_arguments(values, references), registration

    def _registrations(
        self, ids: list[str], built: list[Registration | None]
    ) -> list[Registration]:
        fixed = self.plan.fixed_registrations(ids)
        if not built:  # every call took the fused path
            return fixed
        return [r if r is not None else f for f, r in zip(fixed, built, strict=True)]

    def _records(
        self, ids: list[str], envelopes: list[bytes | None], now: float
    ) -> list[InvocationRecord]:
        # every None envelope was filled in by ``_generic`` in ``build``
        return self.plan.records(ids, envelopes, self.parent, now)  # type: ignore[arg-type]


class Submitter:
    """Turns calls of a task into invocations: the app's one client-side writer."""

    def __init__(self, app: Pynenc) -> None:
        self.app = app
        self._writer: ThreadPoolExecutor | None = None
        self._writer_pid = 0
        self._plans: dict[str, SubmitPlan] = {}
        self._parts: _Components | None = None
        # single calls, in order, for reading their results back in batches
        self.readahead = ResultReadAhead()

    def _background(self) -> ThreadPoolExecutor:
        """One thread that writes a batch while the caller builds the next (made again
        after a fork, which never copies threads)."""
        if self._writer is None or self._writer_pid != os.getpid():
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="pynenc-submit")
            self._writer_pid = os.getpid()
        return self._writer

    def plan(self, task: Task[Any, Any]) -> SubmitPlan:
        """The task's submission constants, derived again when its config is reloaded."""
        plan = self._plans.get(task.task_id)
        if plan is None or plan.conf is not task.conf:
            plan = self._plans[task.task_id] = SubmitPlan(task.task_id, task.conf)
        return plan

    def submit(
        self,
        task: Task[Any, Any],
        calls: list[dict[str, Any]],
        common: dict[str, Any] | None = None,
    ) -> list[DistributedInvocation[Any]]:
        return [DistributedInvocation(task, i) for i in self.submit_ids(task, calls, common)]

    def submit_ids(
        self,
        task: Task[Any, Any],
        calls: list[dict[str, Any]],
        common: dict[str, Any] | None = None,
    ) -> list[str]:
        """Ids of the invocations standing for ``calls``, in order (an existing invocation's
        id where registration concurrency reuses it)."""
        parts = self._parts or self._components()
        builder = _BatchBuilder(parts, task, self.plan(task), common or {})
        return self._write(builder, calls)

    def submit_one(
        self, task: Task[Any, Any], kwargs: dict[str, Any]
    ) -> DistributedInvocation[Any]:
        """One call (``task(...)``): the same write as ``submit``, built with less ado when
        its arguments are small and its registration does not depend on them."""
        plan = self.plan(task)
        parts = self._parts or self._components()
        encoded = None
        if plan.fixed_keys is not None:
            encoded = encode_calls([kwargs], parts.dumps, parts.store.min_size)
            envelope = encoded[0][0]
            if envelope is not None:
                invocation_id = new_invocation_id()
                now = time.time()
                record = plan.record(invocation_id, envelope, current_invocation.get(), now)
                registration = plan.fixed_registration(invocation_id)
                ids = parts.orchestrator.submit_invocations([registration], [record])
                self.readahead.called(ids[0])
                return DistributedInvocation(task, ids[0])
        builder = _BatchBuilder(parts, task, plan, {})
        (invocation_id,) = self._write(builder, [kwargs], encoded)
        self.readahead.called(invocation_id)
        return DistributedInvocation(task, invocation_id)

    def _components(self) -> _Components:
        """The app's components this submitter writes with (a reconfigured app makes a
        new submitter, so they never go stale)."""
        app = self.app
        serializer = app.serializer
        self._parts = _Components(
            serializer, serializer.dumps, app.client_data_store, app.orchestrator
        )
        return self._parts

    def _write(
        self, builder: _BatchBuilder, calls: list[dict[str, Any]], encoded: Encoded | None = None
    ) -> list[str]:
        """Build and write ``calls`` batch by batch; ``encoded`` (``encode_calls`` of
        ``calls``, already run by the caller) only for calls that fit one batch."""
        write = (self._parts or self._components()).orchestrator.submit_invocations
        ids: list[str] = []
        # batches are written in order, each while the next one is built; at most one is
        # in flight, so the queue keeps the calls' order and a failure stops the rest
        in_flight: Future[list[str]] | None = None
        for start in range(0, len(calls), SUBMIT_BATCH):
            registrations, records = builder.build(calls[start : start + SUBMIT_BATCH], encoded)
            if in_flight is not None:
                ids += in_flight.result()
            builder.store.flush(builder.pending)  # before any record points at them
            if start + SUBMIT_BATCH >= len(calls):  # the last (often only) batch: no thread
                ids += write(registrations, records)
                return ids
            context = contextvars.copy_context()
            in_flight = self._background().submit(context.run, write, registrations, records)
        return ids
