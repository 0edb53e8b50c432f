"""Reference twin: the status-transition check over tables built once from the status table.

Knows nothing of ``pynenc.invocation.status``: that module passes its table (and the two
error types) in at import, so this layer stays below it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar

ErrorT = TypeVar("ErrorT", bound=Exception)


class TransitionTable(Generic[ErrorT]):
    """``check(current, new, owner, runner_id, invocation_id)`` -> the resulting owner;
    ``check_many(rows, runner_id)`` checks a batch of moves by one runner in one call.

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
        invalid_error: type[ErrorT],
        ownership_error: type[ErrorT],
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

    def check_many(
        self,
        rows: Iterable[tuple[str, Any, Any, str | None]],
        runner_id: str | None,
    ) -> list[str | ErrorT | None]:
        """Per ``(invocation_id, current, new, owner)`` row: the owner after the move, or
        the error ``check`` would raise (returned, not raised, so one bad row never stops
        the others). As when applying the moves one by one, a row of an id moved earlier in
        the batch starts from that move (its ``current`` and ``owner`` are not read). An
        unknown ``current`` still raises ``KeyError``."""
        verdicts: list[str | ErrorT | None] = []
        moved: dict[str, tuple[Any, str | None]] = {}
        for invocation_id, current, new, owner in rows:
            if invocation_id in moved:
                current, owner = moved[invocation_id]
            try:
                owner = self.check(current, new, owner, runner_id, invocation_id)
            except (self._invalid_error, self._ownership_error) as error:
                verdicts.append(error)
                continue
            moved[invocation_id] = (new, owner)
            verdicts.append(owner)
        return verdicts
