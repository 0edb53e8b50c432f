"""Arguments of one call, as Pynenc's ``task.args(...)`` builds them."""

from __future__ import annotations

from typing import Any


class Arguments:
    """Keyword view of a call's arguments (positional ones already bound to names)."""

    __slots__ = ("kwargs",)

    def __init__(self, kwargs: dict[str, Any] | None = None, **more: Any) -> None:
        self.kwargs: dict[str, Any] = {**(kwargs or {}), **more}

    def __repr__(self) -> str:
        return f"Arguments({self.kwargs!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Arguments) and other.kwargs == self.kwargs

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.kwargs)))


def format_arguments(kwargs: dict[str, Any], mode: str, truncate_length: int) -> str:
    """Arguments as logs show them, by ``argument_print_mode`` (HIDDEN/KEYS/FULL/TRUNCATED)."""
    mode = mode.upper()
    if mode == "HIDDEN":
        return "<arguments hidden>"
    if mode == "KEYS":
        return f"args({', '.join(kwargs)})"
    parts = []
    for name, value in kwargs.items():
        text = repr(value)
        if mode == "TRUNCATED" and len(text) > truncate_length:
            text = text[:truncate_length] + "..."
        parts.append(f"{name}={text}")
    return f"args({', '.join(parts)})"
