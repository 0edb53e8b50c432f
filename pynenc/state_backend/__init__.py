"""The state backend contract: invocation records, history, results, runners."""

from pynenc.state_backend.base import BaseStateBackend, RunnerInfo

__all__ = ["BaseStateBackend", "RunnerInfo"]
