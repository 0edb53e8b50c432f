"""Selector: the compiled batch-encoding twin unless disabled or unavailable."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pynenc._speedups import NO_EXTENSIONS

USING_EXTENSION = False
if TYPE_CHECKING or NO_EXTENSIONS:
    from pynenc._speedups._batch_py import encode_calls
else:
    try:
        from pynenc._speedups._batch_c import encode_calls  # type: ignore[import-not-found]

        USING_EXTENSION = True
    except ImportError:
        from pynenc._speedups._batch_py import encode_calls

__all__ = ["USING_EXTENSION", "encode_calls"]
