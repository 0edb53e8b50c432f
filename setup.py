"""Build the Cython speedups when Cython and a C compiler are there; else a pure install."""

from __future__ import annotations

import glob
import os
import sys

from setuptools import setup


def _extensions() -> list:  # type: ignore[type-arg]
    if os.environ.get("PYNENC_NO_EXTENSIONS"):
        print("pynenc build: pure Python (PYNENC_NO_EXTENSIONS set)", file=sys.stderr)
        return []
    sources = sorted(glob.glob("pynenc/_speedups/_*_c.pyx"))
    if not sources:
        print("pynenc build: pure Python (no extension sources)", file=sys.stderr)
        return []
    try:
        from Cython.Build import cythonize
        from setuptools import Extension
        from setuptools.command.build_ext import new_compiler  # type: ignore[attr-defined]
        from distutils.sysconfig import customize_compiler

        compiler = new_compiler()
        customize_compiler(compiler)
        if not compiler.executables.get("compiler_so"):
            raise RuntimeError("no C compiler")
    except Exception as exc:  # noqa: BLE001 - any failure means the pure build
        print(f"pynenc build: pure Python ({exc})", file=sys.stderr)
        return []
    modules = [
        Extension(path[:-4].replace("/", "."), [path], extra_compile_args=["-O2"])
        for path in sources
    ]
    print(f"pynenc build: compiled ({len(modules)} Cython extensions)", file=sys.stderr)
    return cythonize(modules, language_level=3, quiet=True)


setup(ext_modules=_extensions())
