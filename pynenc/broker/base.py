"""Broker contract: a FIFO queue of invocation ids, popped in batches by runners."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pynenc.app import Pynenc


class BaseBroker(ABC):
    """Queue of invocation ids for one app (namespaced by ``app.app_id``).

    Implementations must be safe to call from several threads; multi-process ones from
    several processes. Waiting is done by blocking (condition, notification), never by a
    loop of sleeps.
    """

    def __init__(self, app: Pynenc) -> None:
        self.app = app

    @abstractmethod
    def route_invocations(self, invocation_ids: Sequence[str], delay_sec: float = 0.0) -> None:
        """Append ids to the queue, in order; with ``delay_sec`` they become visible later."""

    @abstractmethod
    def retrieve_invocations(self, max_count: int, timeout_sec: float) -> list[str]:
        """Pop up to ``max_count`` visible ids, oldest first.

        Returns at once when some are available; otherwise blocks up to ``timeout_sec`` for
        the first to arrive and returns an empty list if none did.
        """

    @abstractmethod
    def count_invocations(self) -> int:
        """Number of ids waiting (visible or delayed)."""

    @abstractmethod
    def purge(self) -> None:
        """Drop every queued id of this app."""

    def close(self) -> None:
        """Release connections; the broker may be used again afterwards (reconnects)."""
