"""What a backend stores about one invocation, independent of any backend."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class InvocationRecord:
    """The immutable facts of an invocation: what to run and where it sits in a workflow.

    ``arguments`` is the serialized call: a msgpack map of argument name to the bytes the
    app's serializer produced for it. Mutable state (status, owner, retries) lives in the
    orchestrator; results and history in the state backend.
    """

    invocation_id: str
    task_id: str
    arguments: bytes
    parent_invocation_id: str | None
    workflow_id: str
    workflow_task_id: str
    created_at: float


@dataclass(slots=True)
class Registration:
    """A request to the orchestrator to track a new invocation.

    ``registration_key`` groups invocations that registration concurrency treats as the same
    (None = no registration control); ``running_key`` the same for running concurrency.
    """

    invocation_id: str
    task_id: str
    registration_key: str | None = None
    running_key: str | None = None
    non_key_arguments: str | None = None
    reroute_on_control: bool = True


@dataclass(slots=True)
class InvocationState:
    """The orchestrator's mutable view of an invocation."""

    invocation_id: str
    task_id: str
    status: str
    owner: str | None
    num_retries: int
    updated_at: float
