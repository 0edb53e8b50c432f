"""Selector: the compiled envelope twin unless disabled or unavailable."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pynenc._speedups import NO_EXTENSIONS
from pynenc._speedups._envelope_py import INLINE, REFERENCE, VERSION, EnvelopeError

USING_EXTENSION = False
if TYPE_CHECKING or NO_EXTENSIONS:
    from pynenc._speedups._envelope_py import pack_arguments, unpack_arguments
else:
    try:
        from pynenc._speedups._envelope_c import (  # type: ignore[import-not-found]
            pack_arguments,
            unpack_arguments,
        )

        USING_EXTENSION = True
    except ImportError:
        from pynenc._speedups._envelope_py import pack_arguments, unpack_arguments

__all__ = [
    "INLINE",
    "REFERENCE",
    "USING_EXTENSION",
    "VERSION",
    "EnvelopeError",
    "pack_arguments",
    "unpack_arguments",
]
