"""Runner settings; a ``runner`` file section or ``PYNENC__CONFIGRUNNER__*`` apply to all runners.

Worker counts of 0 mean "one per CPU" (see ``worker_count``).
"""

from __future__ import annotations

import os

from pynenc.conf.config_base import ConfigBase


def worker_count(configured: int) -> int:
    """A configured thread/process count, with 0 (or less) meaning the machine's CPU count."""
    return configured if configured > 0 else (os.cpu_count() or 1)


class ConfigRunner(ConfigBase):
    """Settings shared by every runner."""

    runner_batch_size: int = 64  # invocations taken from the broker per loop
    graceful_shutdown_timeout_sec: float = 30.0
    # While single calls stream in (claims find a few waiting, or wait less than this for
    # the next one), wait this long before the next claim, so it takes a batch: fewer round
    # trips per task for at most this much latency. Lingering that catches no more than one
    # call backs off exponentially (a caller waiting on each result); 0 = off.
    claim_linger_sec: float = 0.001
    # Each linger that catches several calls doubles the next, up to this: a sustained
    # stream is claimed in bigger batches (less CPU per task) for at most this latency.
    claim_linger_max_sec: float = 0.004


class ConfigThreadRunner(ConfigRunner):
    min_threads: int = 1
    max_threads: int = 0  # 0 = CPU count


class ConfigMultiThreadRunner(ConfigRunner):
    """Several processes, each running tasks on its own threads."""

    min_threads: int = 1
    max_threads: int = 1  # per process
    min_processes: int = 1
    max_processes: int = 0  # 0 = CPU count
    idle_timeout_process_sec: float = 4.0  # an idle process above min_processes stops after this
    enforce_max_processes: bool = False  # True: keep max_processes children, whatever the load


class ConfigProcessRunner(ConfigRunner):
    """One process per running invocation."""

    max_processes: int = 0  # 0 = CPU count


class ConfigPersistentProcessRunner(ConfigRunner):
    """A fixed pool of long-lived worker processes."""

    num_processes: int = 0  # 0 = CPU count
