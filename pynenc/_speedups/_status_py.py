"""Reference twin: the status-transition check over tables built once from the status table.

Knows nothing of ``pynenc.invocation.status``: that module passes its table (and the two
error types) in at import, so this layer stays below it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any


class TransitionTable:
    """``check(current, new, owner, runner_id, invocation_id)`` -> the resulting owner.

    ``statuses``: every status, in a fixed order (the compiled twin numbers them by it).
    ``allowed_next``: status -> statuses it may move to; ``None`` is "not stored yet".
    ``takes`` / ``drops``: statuses whose setter becomes the owner / that clear the owner.
    ``owner_only``: statuses refused when someone else owns the invocation, except
    ``admin_kill`` set by ``runner_id`` None (an operator).
    """

    def __init__(
        self,
        statuses: Sequence[Any],
        allowed_next: Mapping[Any, Iterable[Any]],
        takes: Iterable[Any],
        drops: Iterable[Any],
        owner_only: Iterable[Any],
        admin_kill: Any,
        invalid_error: Callable[..., Exception],
        ownership_error: Callable[..., Exception],
    ) -> None:
        self.statuses = tuple(statuses)
        self._next = {status: frozenset(allowed_next[status]) for status in allowed_next}
        self._takes = frozenset(takes)
        self._drops = frozenset(drops)
        self._owner_only = frozenset(owner_only)
        self._admin_kill = admin_kill
        self._invalid_error = invalid_error
        self._ownership_error = ownership_error

    def check(
        self,
        current: Any,
        new: Any,
        owner: str | None,
        runner_id: str | None,
        invocation_id: str | None = None,
    ) -> str | None:
        """Raise ``invalid_error`` / ``ownership_error`` or return the owner after the move."""
        if new not in self._next[current]:
            raise self._invalid_error(invocation_id, current, new)
        if (
            owner is not None
            and owner != runner_id
            and new in self._owner_only
            and not (runner_id is None and new is self._admin_kill)
        ):
            raise self._ownership_error(invocation_id, new, owner, runner_id)
        if new in self._takes:
            return runner_id
        if new in self._drops:
            return None
        return owner
