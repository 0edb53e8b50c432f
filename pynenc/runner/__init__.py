"""Runners: processes that take invocations from the broker and execute them."""

from pynenc.runner.base import BaseRunner

__all__ = ["BaseRunner"]
