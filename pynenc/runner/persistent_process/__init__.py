"""PersistentProcessRunner: one dispatcher per host feeding long-lived worker processes
over ZeroMQ (credit-based ROUTER/DEALER), with batched claims and outcomes."""

from pynenc.runner.persistent_process.dispatcher import (
    PersistentProcessRunner,
    WorkerExitedError,
)

__all__ = ["PersistentProcessRunner", "WorkerExitedError"]
