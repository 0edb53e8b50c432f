"""State backend contract: what was asked, what happened, and what came out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pynenc.invocation.record import InvocationRecord
from pynenc.invocation.status import StatusRecord

if TYPE_CHECKING:
    from pynenc.app import Pynenc


@dataclass(slots=True)
class RunnerInfo:
    """A runner's last heartbeat."""

    runner_id: str
    hostname: str
    pid: int
    runner_cls: str
    started_at: float
    last_heartbeat: float


class BaseStateBackend(ABC):
    """Durable facts about invocations of one app. Every method takes or returns batches
    where a runner needs them, so a batch costs one round trip."""

    def __init__(self, app: Pynenc) -> None:
        self.app = app

    @abstractmethod
    def store_invocations(self, records: Sequence[InvocationRecord]) -> None:
        """Insert records (ids are new; storing an existing id again is a no-op)."""

    @abstractmethod
    def get_invocations(self, invocation_ids: Sequence[str]) -> dict[str, InvocationRecord]:
        """Records by id; unknown ids are absent from the result."""

    @abstractmethod
    def add_history(self, entries: Sequence[tuple[str, StatusRecord]]) -> None:
        """Append (invocation_id, status record) entries to the invocations' histories."""

    @abstractmethod
    def get_history(self, invocation_id: str) -> list[StatusRecord]:
        """An invocation's status history, oldest first."""

    @abstractmethod
    def store_results(self, results: Sequence[tuple[str, bytes]]) -> None:
        """Store serialized results by invocation id (overwrites)."""

    @abstractmethod
    def get_results(self, invocation_ids: Sequence[str]) -> dict[str, bytes]:
        """Serialized results by id; ids without a result are absent."""

    @abstractmethod
    def store_exceptions(self, exceptions: Sequence[tuple[str, bytes]]) -> None:
        """Store encoded exceptions by invocation id (overwrites)."""

    @abstractmethod
    def get_exceptions(self, invocation_ids: Sequence[str]) -> dict[str, bytes]:
        """Encoded exceptions by id; ids without one are absent."""

    @abstractmethod
    def store_runner_heartbeat(self, info: RunnerInfo) -> None:
        """Create or refresh a runner's heartbeat."""

    @abstractmethod
    def get_runners(self) -> list[RunnerInfo]:
        """Every runner that ever beat (and was not removed), most recent first."""

    @abstractmethod
    def remove_runner(self, runner_id: str) -> None:
        """Forget a runner (it stopped cleanly or was recovered)."""

    @abstractmethod
    def set_workflow_data(self, workflow_id: str, key: str, value: bytes) -> None:
        """Store a serialized value under ``key`` in the data of one workflow run."""

    @abstractmethod
    def get_workflow_data(self, workflow_id: str, key: str) -> bytes | None:
        """A value stored with ``set_workflow_data``; None when the key was never set."""

    @abstractmethod
    def get_workflow_invocations(self, workflow_id: str) -> list[InvocationRecord]:
        """Every stored record of one workflow run (its root included), oldest first."""

    @abstractmethod
    def purge(self) -> None:
        """Drop everything this app stored."""

    def get_result(self, invocation_id: str) -> bytes | None:
        return self.get_results([invocation_id]).get(invocation_id)

    def get_exception(self, invocation_id: str) -> bytes | None:
        return self.get_exceptions([invocation_id]).get(invocation_id)

    def get_invocation(self, invocation_id: str) -> InvocationRecord | None:
        return self.get_invocations([invocation_id]).get(invocation_id)

    def close(self) -> None:
        """Release connections."""
