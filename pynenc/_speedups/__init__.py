"""Compiled hot paths, each with a pure-Python twin.

Each hot spot ``x`` has ``_x_py.py`` (the reference), ``_x_c.pyx`` (Cython, same API) and a
selector ``x.py``. Set ``PYNENC_NO_EXTENSIONS=1`` to force the pure twins.
"""

from __future__ import annotations

import os
import platform

NO_EXTENSIONS: bool = bool(os.environ.get("PYNENC_NO_EXTENSIONS")) or (
    platform.python_implementation() != "CPython"
)


def active_twins() -> dict[str, str]:
    """Which twin ('compiled' or 'pure') each hot spot is using in this process."""
    from pynenc._speedups import batch, dispatch, envelope, hashing, status_machine

    modules = {
        "batch": batch,
        "envelope": envelope,
        "hashing": hashing,
        "status": status_machine,
        "dispatch": dispatch,
    }
    return {
        name: "compiled" if module.USING_EXTENSION else "pure" for name, module in modules.items()
    }


def extensions_active() -> bool:
    return all(v == "compiled" for v in active_twins().values())
