"""Selector: the compiled dispatch twin unless disabled or unavailable."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pynenc._speedups import NO_EXTENSIONS

USING_EXTENSION = False
if TYPE_CHECKING or NO_EXTENSIONS:
    from pynenc._speedups._dispatch_py import EventReader, decode_calls, encode_calls
else:
    try:
        from pynenc._speedups._dispatch_c import (  # type: ignore[import-not-found]
            EventReader,
            decode_calls,
            encode_calls,
        )

        USING_EXTENSION = True
    except ImportError:
        from pynenc._speedups._dispatch_py import EventReader, decode_calls, encode_calls

__all__ = ["USING_EXTENSION", "EventReader", "decode_calls", "encode_calls"]
