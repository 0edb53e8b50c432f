"""In-process backends: one Python process, every thread of it. For tests and dev."""

from pynenc.backends.memory.broker import MemBroker
from pynenc.backends.memory.orchestrator import MemOrchestrator
from pynenc.backends.memory.state_backend import MemStateBackend

__all__ = ["MemBroker", "MemOrchestrator", "MemStateBackend"]
