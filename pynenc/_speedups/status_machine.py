"""Selector: the compiled status-transition twin unless disabled or unavailable."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pynenc._speedups import NO_EXTENSIONS

USING_EXTENSION = False
if TYPE_CHECKING or NO_EXTENSIONS:
    from pynenc._speedups._status_py import TransitionTable
else:
    try:
        from pynenc._speedups._status_c import (  # type: ignore[import-not-found]
            TransitionTable,
        )

        USING_EXTENSION = True
    except ImportError:
        from pynenc._speedups._status_py import TransitionTable

__all__ = ["USING_EXTENSION", "TransitionTable"]
