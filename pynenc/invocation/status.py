"""The invocation status machine: a declarative table and one pure transition function.

Every backend applies :func:`compute_transition` atomically; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from pynenc._speedups.status_machine import TransitionTable
from pynenc.exceptions import InvalidStatusTransitionError, StatusOwnershipError


class InvocationStatus(StrEnum):
    """Where an invocation is in its life; the string value is stored by backends."""

    REGISTERED = "registered"
    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    RESUMED = "resumed"
    RETRY = "retry"
    SUCCESS = "success"
    FAILED = "failed"
    KILLED = "killed"
    REROUTED = "rerouted"
    CONCURRENCY_CONTROLLED = "concurrency_controlled"
    CONCURRENCY_CONTROLLED_FINAL = "concurrency_controlled_final"
    PENDING_RECOVERY = "pending_recovery"
    RUNNING_RECOVERY = "running_recovery"

    @property
    def is_final(self) -> bool:
        """True when the invocation will never change status again."""
        return self in _FINAL

    @property
    def is_available_for_run(self) -> bool:
        """True when a runner may claim the invocation (moving it to PENDING)."""
        return self in _AVAILABLE_FOR_RUN

    @property
    def is_running(self) -> bool:
        """True while the task body is executing on a runner."""
        return self in _RUNNING

    @property
    def allowed_next(self) -> frozenset[InvocationStatus]:
        """The statuses this one may move to."""
        return STATUS_TABLE[self].allowed_next


@dataclass(frozen=True, slots=True)
class StatusDefinition:
    """One row of the status table: where a status may go and what it does to ownership.

    ``requires_ownership``: only the owning runner may set it.
    ``acquires_ownership``: the runner setting it becomes the owner.
    ``releases_ownership``: setting it clears the owner (only the owner may, if there is one).
    ``overrides_ownership``: any runner may set it and becomes the owner (recovery).
    """

    allowed_next: frozenset[InvocationStatus]
    requires_ownership: bool = False
    acquires_ownership: bool = False
    releases_ownership: bool = False
    overrides_ownership: bool = False
    description: str = ""


def _row(*allowed_next: InvocationStatus, description: str, **flags: bool) -> StatusDefinition:
    return StatusDefinition(frozenset(allowed_next), description=description, **flags)


_S = InvocationStatus

STATUS_TABLE: Mapping[InvocationStatus, StatusDefinition] = MappingProxyType(
    {
        _S.REGISTERED: _row(
            _S.PENDING,
            _S.CONCURRENCY_CONTROLLED,
            _S.CONCURRENCY_CONTROLLED_FINAL,
            _S.KILLED,
            description="Stored and routed to the broker; waiting for a runner to claim it.",
        ),
        _S.PENDING: _row(
            _S.RUNNING,
            _S.REROUTED,
            _S.CONCURRENCY_CONTROLLED,
            _S.PENDING_RECOVERY,
            _S.KILLED,
            acquires_ownership=True,
            description="Claimed by a runner that is about to start it.",
        ),
        _S.RUNNING: _row(
            _S.SUCCESS,
            _S.FAILED,
            _S.RETRY,
            _S.PAUSED,
            _S.REROUTED,
            _S.KILLED,
            _S.RUNNING_RECOVERY,
            requires_ownership=True,
            description="The task body is executing on the owning runner.",
        ),
        _S.PAUSED: _row(
            _S.RESUMED,
            _S.KILLED,
            _S.RUNNING_RECOVERY,
            _S.REROUTED,
            requires_ownership=True,
            description="Suspended by its runner, usually while waiting on other invocations.",
        ),
        _S.RESUMED: _row(
            _S.SUCCESS,
            _S.FAILED,
            _S.RETRY,
            _S.PAUSED,
            _S.REROUTED,
            _S.KILLED,
            _S.RUNNING_RECOVERY,
            requires_ownership=True,
            description="Executing again on the owning runner after a pause.",
        ),
        _S.RETRY: _row(
            _S.PENDING,
            _S.CONCURRENCY_CONTROLLED,
            _S.KILLED,
            releases_ownership=True,
            description="Failed with a retriable error; any runner may claim it again.",
        ),
        _S.SUCCESS: _row(
            releases_ownership=True,
            description="Finished and returned a result (final).",
        ),
        _S.FAILED: _row(
            releases_ownership=True,
            description="Finished by raising an exception (final).",
        ),
        _S.KILLED: _row(
            _S.REROUTED,
            releases_ownership=True,
            description="Stopped on request or because its runner shut down; may be rerouted.",
        ),
        _S.REROUTED: _row(
            _S.PENDING,
            _S.CONCURRENCY_CONTROLLED,
            _S.KILLED,
            releases_ownership=True,
            description="Sent back to the broker so another runner can take it.",
        ),
        _S.CONCURRENCY_CONTROLLED: _row(
            _S.PENDING,
            _S.REROUTED,
            _S.CONCURRENCY_CONTROLLED_FINAL,
            _S.KILLED,
            releases_ownership=True,
            description="Held back by a concurrency limit; will be rerouted when a slot frees.",
        ),
        _S.CONCURRENCY_CONTROLLED_FINAL: _row(
            releases_ownership=True,
            description="Refused for good by a concurrency limit (final).",
        ),
        _S.PENDING_RECOVERY: _row(
            _S.REROUTED,
            overrides_ownership=True,
            description="Stuck in PENDING too long; a recovering runner took it over.",
        ),
        _S.RUNNING_RECOVERY: _row(
            _S.REROUTED,
            overrides_ownership=True,
            description="Its runner stopped answering; a recovering runner took it over.",
        ),
    }
)

_FINAL = frozenset({_S.SUCCESS, _S.FAILED, _S.CONCURRENCY_CONTROLLED_FINAL})
_AVAILABLE_FOR_RUN = frozenset({_S.REGISTERED, _S.RETRY, _S.REROUTED, _S.CONCURRENCY_CONTROLLED})
_RUNNING = frozenset({_S.RUNNING, _S.RESUMED})

# Flattened lookups for the hot path, compiled into a transition table (a C twin unless
# PYNENC_NO_EXTENSIONS); ``None`` is "no invocation yet".
_NEXT: dict[InvocationStatus | None, frozenset[InvocationStatus]] = {
    status: row.allowed_next for status, row in STATUS_TABLE.items()
}
_NEXT[None] = frozenset({_S.REGISTERED})
_TAKES_OWNERSHIP = frozenset(
    s for s, row in STATUS_TABLE.items() if row.acquires_ownership or row.overrides_ownership
)
_DROPS_OWNERSHIP = frozenset(s for s, row in STATUS_TABLE.items() if row.releases_ownership)
# Setting these while someone else owns the invocation is refused.
_OWNER_ONLY = frozenset(
    s
    for s, row in STATUS_TABLE.items()
    if (row.requires_ownership or row.releases_ownership) and not row.overrides_ownership
)
# runner_id None is an operator (CLI, monitor): it may kill whatever it likes
_TRANSITIONS = TransitionTable(
    statuses=list(InvocationStatus),
    allowed_next=_NEXT,
    takes=_TAKES_OWNERSHIP,
    drops=_DROPS_OWNERSHIP,
    owner_only=_OWNER_ONLY,
    admin_kill=_S.KILLED,
    invalid_error=InvalidStatusTransitionError,
    ownership_error=StatusOwnershipError,
)

del _S


# compute_transition(current, new, owner, runner_id, invocation_id=None) -> the new owner.
# Checks the move ``current -> new`` by ``runner_id``; ``current`` is None for an
# invocation not stored yet (only REGISTERED is allowed). Raises
# InvalidStatusTransitionError if the table forbids the move, and StatusOwnershipError if
# ``new`` is reserved for the owner and ``runner_id`` is not it. It is the bound method
# itself, so the hot path pays no extra Python frame.
compute_transition = _TRANSITIONS.check
# check_transitions([(invocation_id, current, new, owner), ...], runner_id) -> per row the
# new owner or the StatusTransitionError (returned, not raised): a batch by one runner in
# one call, the whole loop in C in the compiled twin. A row of an id moved earlier in the
# batch starts from that move, as if the moves were applied one by one.
check_transitions = _TRANSITIONS.check_many


@dataclass(frozen=True, slots=True)
class StatusRecord:
    """One entry of an invocation's status history."""

    status: InvocationStatus
    timestamp: float
    """Epoch seconds when the status was set."""
    runner_id: str | None
