"""App-wide settings: which components to build, logging, and the timing of the main loops.

Field names are flat and shared with ``PynencBuilder``, which feeds them in as ``config_values``.
"""

from __future__ import annotations

from enum import StrEnum, auto
from typing import ClassVar

from pynenc.conf.config_base import ConfigBase

LOGGING_LEVELS = ("debug", "info", "warning", "error", "critical")
LOGGING_FORMATS = ("text", "json")
LOGGING_STREAMS = ("stderr", "stdout")


class ArgumentPrintMode(StrEnum):
    """How task arguments appear in logs."""

    HIDDEN = auto()  # never shown
    KEYS = auto()  # argument names only
    FULL = auto()  # names and complete values
    TRUNCATED = auto()  # names and values cut to ``truncate_arguments_length``


class ConfigPynenc(ConfigBase):
    """Settings of one Pynenc app (component classes are named by their class name)."""

    field_choices: ClassVar[dict[str, tuple[str, ...]]] = {
        "logging_level": LOGGING_LEVELS,
        "logging_format": LOGGING_FORMATS,
        "logging_stream": LOGGING_STREAMS,
    }

    app_id: str = "pynenc"
    orchestrator_cls: str = "SQLiteOrchestrator"
    broker_cls: str = "SQLiteBroker"
    state_backend_cls: str = "SQLiteStateBackend"
    trigger_cls: str = "SQLiteTrigger"
    client_data_store_cls: str = "SQLiteClientDataStore"
    serializer_cls: str = "JsonPickleSerializer"
    runner_cls: str = "ThreadRunner"
    dev_mode_force_sync_tasks: bool = False  # run tasks inline in the caller (for tests)
    logging_level: str = "info"
    logging_format: str = "text"
    logging_stream: str = "stderr"
    logging_colors: bool = False
    print_arguments: bool = True
    argument_print_mode: ArgumentPrintMode = ArgumentPrintMode.TRUNCATED
    truncate_arguments_length: int = 32
    max_pending_seconds: float = 5.0  # a PENDING invocation older than this is re-queued
    cycle_control: bool = True  # refuse calls that would make a task wait on itself
    blocking_control: bool = False  # let a waiting invocation release its runner slot
    queue_timeout_sec: float = 0.1
    runner_loop_sleep_time_sec: float = 0.01
    invocation_wait_results_sleep_time_sec: float = 0.01
    min_parallel_slots: int = 1
    trigger_task_modules: tuple[str, ...] = ()  # modules imported so their triggers register
    trigger_retention_sec: float = 24 * 3600  # emitted events and trigger claims kept this long
    runner_heartbeat_interval: float = 2.0
    runner_recovery_timeout: float = 10.0  # a runner silent this long is presumed dead
    result_retention_sec: float = 7 * 24 * 3600
    config_filepath: str | None = None
