"""Logging through the standard module; records carry runner, invocation and task ids."""

from __future__ import annotations

import json
import logging
import sys
from typing import TYPE_CHECKING

from pynenc.context import current_invocation, current_runner_id

if TYPE_CHECKING:
    from pynenc.conf.config_pynenc import ConfigPynenc

_installed = False


def _install_record_factory() -> None:
    """Every record, from any logger, gets the ids of the code that logged it."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        ctx = current_invocation.get()
        runner = current_runner_id.get()
        record.runner_id = runner or (ctx.runner.runner_id if ctx and ctx.runner else "-")
        record.invocation_id = ctx.invocation_id if ctx else "-"
        record.task_id = ctx.task_id if ctx else "-"
        return record

    logging.setLogRecordFactory(factory)
    _installed = True


class TextFormatter(logging.Formatter):
    def __init__(self, colors: bool) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s "
            "[runner=%(runner_id)s task=%(task_id)s invocation=%(invocation_id)s] %(message)s"
        )
        self.colors = colors

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        if not self.colors:
            return line
        color = {"WARNING": 33, "ERROR": 31, "CRITICAL": 31, "DEBUG": 90}.get(record.levelname)
        return f"\x1b[{color}m{line}\x1b[0m" if color else line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "runner_id": getattr(record, "runner_id", "-"),
            "task_id": getattr(record, "task_id", "-"),
            "invocation_id": getattr(record, "invocation_id", "-"),
        }
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload)


class StdStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stdout``/``sys.stderr`` is at emit time (survives capture
    and redirection by test runners and CLIs)."""

    def __init__(self, stream_name: str) -> None:
        super().__init__()
        self.stream_name = stream_name

    @property
    def stream(self) -> object:
        return sys.stdout if self.stream_name == "stdout" else sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        """The base class assigns a stream; ours is always looked up."""


def configure_logging(conf: ConfigPynenc) -> logging.Logger:
    """Set up the ``pynenc`` logger from config; returns the app's logger."""
    _install_record_factory()
    root = logging.getLogger("pynenc")
    root.setLevel(conf.logging_level.upper())
    formatter: logging.Formatter = (
        JsonFormatter() if conf.logging_format == "json" else TextFormatter(conf.logging_colors)
    )
    handler = next((h for h in root.handlers if isinstance(h, StdStreamHandler)), None)
    if handler is None:
        handler = StdStreamHandler(conf.logging_stream)
        root.addHandler(handler)
        root.propagate = False
    handler.stream_name = conf.logging_stream
    handler.setFormatter(formatter)
    return logging.getLogger(f"pynenc.app.{conf.app_id}")
