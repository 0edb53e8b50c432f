"""What every call of one task shares when it is submitted, derived once from its config."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pynenc._speedups.hashing import arguments_key
from pynenc.conf.config_task import ConcurrencyControlType
from pynenc.invocation.record import InvocationRecord, Registration

if TYPE_CHECKING:
    from pynenc.conf.config_task import ConfigTask
    from pynenc.context import InvocationContext

_VALUE_FREE = (ConcurrencyControlType.DISABLED, ConcurrencyControlType.TASK)


class SubmitPlan:
    """Registration rules of a task's calls; ``fixed_keys`` is (registration key, running
    key) when neither depends on the arguments, else None."""

    __slots__ = ("conf", "fixed_keys", "force_new_workflow", "reroute", "task_id")

    def __init__(self, task_id: str, conf: ConfigTask) -> None:
        self.task_id = task_id
        self.conf = conf  # the config this plan was derived from
        self.force_new_workflow = bool(conf.force_new_workflow)
        self.reroute = conf.reroute_on_concurrency_control
        modes = (conf.registration_concurrency, conf.running_concurrency)
        self.fixed_keys: tuple[str | None, str | None] | None = None
        if all(mode in _VALUE_FREE for mode in modes):
            registration, running = (self._fixed_key(mode) for mode in modes)
            self.fixed_keys = (registration, running)

    def _fixed_key(self, mode: ConcurrencyControlType) -> str | None:
        return self.task_id if mode is ConcurrencyControlType.TASK else None

    def fixed_registration(self, invocation_id: str) -> Registration:
        """Registration of a call whose keys do not depend on its arguments."""
        registration_key, running_key = self.fixed_keys or (None, None)
        return Registration(
            invocation_id, self.task_id, registration_key, running_key, None, self.reroute
        )

    def fixed_registrations(self, invocation_ids: list[str]) -> list[Registration]:
        """``fixed_registration`` of each id, made in one pass."""
        registration_key, running_key = self.fixed_keys or (None, None)
        task_id, reroute = self.task_id, self.reroute
        return [
            Registration(i, task_id, registration_key, running_key, None, reroute)
            for i in invocation_ids
        ]

    def record(
        self, invocation_id: str, envelope: bytes, parent: InvocationContext | None, now: float
    ) -> InvocationRecord:
        """The record of a call made from ``parent`` (None: from outside any invocation)."""
        task_id = self.task_id
        if parent is None:
            return InvocationRecord(
                invocation_id, task_id, envelope, None, invocation_id, task_id, now
            )
        if self.force_new_workflow:
            workflow_id, workflow_task_id = invocation_id, task_id
        else:
            workflow_id, workflow_task_id = parent.workflow_id, parent.workflow_task_id
        return InvocationRecord(
            invocation_id,
            task_id,
            envelope,
            parent.invocation_id,
            workflow_id,
            workflow_task_id,
            now,
        )

    def records(
        self,
        ids: list[str],
        envelopes: list[bytes],
        parent: InvocationContext | None,
        now: float,
    ) -> list[InvocationRecord]:
        """``record`` of each (id, envelope) pair, made in one pass."""
        task_id = self.task_id
        if parent is None:
            return [
                InvocationRecord(i, task_id, e, None, i, task_id, now)
                for i, e in zip(ids, envelopes, strict=True)
            ]
        if self.force_new_workflow:
            return [self.record(i, e, parent, now) for i, e in zip(ids, envelopes, strict=True)]
        parent_id, workflow_id, workflow_task_id = (
            parent.invocation_id,
            parent.workflow_id,
            parent.workflow_task_id,
        )
        return [
            InvocationRecord(i, task_id, e, parent_id, workflow_id, workflow_task_id, now)
            for i, e in zip(ids, envelopes, strict=True)
        ]

    def registration(self, invocation_id: str, values: dict[str, bytes]) -> Registration:
        """Registration of a call from its serialized arguments (keys as stored)."""
        conf, task_id = self.conf, self.task_id
        keys = conf.key_arguments
        registration_mode = conf.registration_concurrency
        non_key = None
        if conf.on_diff_non_key_args_raise and registration_mode is ConcurrencyControlType.KEYS:
            non_key = arguments_key(values, tuple(n for n in values if n not in keys))
        return Registration(
            invocation_id,
            task_id,
            concurrency_key(registration_mode, task_id, values, keys),
            concurrency_key(conf.running_concurrency, task_id, values, keys),
            non_key,
            conf.reroute_on_concurrency_control,
        )


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
