"""pynenc: distributed task orchestration with a compiled, batched hot path."""

from pynenc.app import Pynenc
from pynenc.arguments import Arguments
from pynenc.builder import PynencBuilder
from pynenc.conf.config_task import ConcurrencyControlType
from pynenc.invocation.status import InvocationStatus
from pynenc.task import Task

__version__ = "0.1.0"

__all__ = [
    "Arguments",
    "ConcurrencyControlType",
    "InvocationStatus",
    "Pynenc",
    "PynencBuilder",
    "Task",
    "__version__",
]
