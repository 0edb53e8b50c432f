"""Build the Cython speedups when Cython and a C compiler work; else install pure Python.

Either way the package works: each compiled module has a pure-Python twin. The build says
which one ran ("pynenc build: ..."). PYNENC_NO_EXTENSIONS=1 forces the pure build.
"""

from __future__ import annotations

import glob
import os
import sys
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext


def _say(message: str) -> None:
    print(f"pynenc build: {message}", file=sys.stderr)


class OptionalBuildExt(build_ext):
    """A failed compile leaves that module to its pure twin instead of failing the install."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler at all, broken toolchain, ...
            _say(f"pure Python (compiling failed: {exc})")

    def build_extension(self, ext: Any) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            _say(f"pure Python for {ext.name} (compiling failed: {exc})")
        else:
            _say(f"compiled {ext.name}")


def _extensions() -> list[Any]:
    if os.environ.get("PYNENC_NO_EXTENSIONS"):
        _say("pure Python (PYNENC_NO_EXTENSIONS set)")
        return []
    sources = sorted(glob.glob("pynenc/_speedups/_*_c.pyx"))
    try:
        from Cython.Build import cythonize
    except ImportError:
        _say("pure Python (Cython not installed)")
        return []
    from setuptools import Extension

    modules = [
        Extension(path[:-4].replace("/", "."), [path], extra_compile_args=["-O3"])
        for path in sources
    ]
    _say(f"compiling {len(modules)} Cython extensions")
    return cythonize(modules, language_level=3, quiet=True)  # type: ignore[no-any-return]


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
