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


def configure_logging(conf: ConfigPynenc) -> logging.Logger:
    """Set up the ``pynenc`` logger from config; returns the app's logger."""
    _install_record_factory()
    root = logging.getLogger("pynenc")
    root.setLevel(conf.logging_level.upper())
    stream = sys.stdout if conf.logging_stream == "stdout" else sys.stderr
    formatter: logging.Formatter = (
        JsonFormatter() if conf.logging_format == "json" else TextFormatter(conf.logging_colors)
    )
    handler = next((h for h in root.handlers if getattr(h, "_pynenc", False)), None)
    if handler is None:
        handler = logging.StreamHandler(stream)
        handler._pynenc = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        root.propagate = False
    elif isinstance(handler, logging.StreamHandler):
        handler.setStream(stream)
    handler.setFormatter(formatter)
    return logging.getLogger(f"pynenc.app.{conf.app_id}")
