"""Selector: the compiled hashing twin unless disabled or unavailable."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pynenc._speedups import NO_EXTENSIONS

USING_EXTENSION = False
if TYPE_CHECKING or NO_EXTENSIONS:
    from pynenc._speedups._hashing_py import (
        arguments_key,
        content_key,
        oversized,
        oversized_keys,
    )
else:
    try:
        from pynenc._speedups._hashing_c import (  # type: ignore[import-not-found]
            arguments_key,
            content_key,
            oversized,
            oversized_keys,
        )

        USING_EXTENSION = True
    except ImportError:
        from pynenc._speedups._hashing_py import (
            arguments_key,
            content_key,
            oversized,
            oversized_keys,
        )

__all__ = ["USING_EXTENSION", "arguments_key", "content_key", "oversized", "oversized_keys"]
