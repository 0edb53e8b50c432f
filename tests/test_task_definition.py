"""Errors a user meets when defining or calling tasks wrongly, and dev mode."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pynenc import Pynenc, PynencBuilder
from pynenc.exceptions import (
    ArgumentSerializationError,
    ConfigError,
    InvalidTaskOptionError,
    TaskDefinitionError,
)
from tests.apps import core_tasks as t
from tests.conftest import running


def test_unknown_option_fails_at_decoration_listing_valid_ones() -> None:
    app = PynencBuilder().memory().build()
    with pytest.raises(InvalidTaskOptionError) as info:
        app.task(max_retry=3)(t.add.func)
    message = str(info.value)
    assert "max_retry" in message and "max_retries" in message and "running_concurrency" in message


def test_task_in_main_is_refused_with_reason(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            """
            from pynenc import PynencBuilder
            app = PynencBuilder().memory().build()

            @app.task
            def job() -> int:
                return 1
            """
        )
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "TaskDefinitionError" in proc.stderr
    assert "__main__" in proc.stderr and "Move the task into a module" in proc.stderr


def test_key_arguments_must_be_parameters() -> None:
    app = PynencBuilder().memory().build()
    with pytest.raises(TaskDefinitionError, match="not parameters"):
        app.task(registration_concurrency="KEYS", key_arguments=("nope",))(t.add.func)


def test_unserializable_argument_fails_in_caller_naming_it(app: Pynenc) -> None:
    app.reconfigure(serializer_cls="JsonSerializer")
    with pytest.raises(ArgumentSerializationError) as info:
        t.echo({1, 2})
    assert "'value'" in str(info.value) and "not JSON serializable" in str(info.value)


def test_json_serializer_round_trips_enums(app: Pynenc) -> None:
    app.reconfigure(serializer_cls="JsonSerializer")
    with running(app):
        assert t.echo(t.Color.BLUE).result is t.Color.BLUE
        assert t.echo([t.Color.RED, {"k": t.Color.BLUE}]).result == [
            t.Color.RED,
            {"k": t.Color.BLUE},
        ]


def test_memory_with_multiprocess_runner_is_refused() -> None:
    builder = PynencBuilder().memory().custom_config(runner_cls="ProcessRunner")
    with pytest.raises(ConfigError, match="in-memory"):
        builder.build()


def test_dev_mode_runs_inline_without_backend(app: Pynenc) -> None:
    app.reconfigure(dev_mode_force_sync_tasks=True)
    inv = t.add(2, 2)
    assert inv.result == 4
    assert t.fib(8).result == 21
    assert t.add.parallelize([(1, 1), (2, 2)]).results == [2, 4]
    with pytest.raises(t.CustomError):
        t.fail(1).result
    assert "broker" not in app.__dict__  # no component was ever built


def test_dev_mode_from_environment(monkeypatch: pytest.MonkeyPatch, app: Pynenc) -> None:
    monkeypatch.setenv("PYNENC__DEV_MODE_FORCE_SYNC_TASKS", "true")
    app.reconfigure()
    assert t.add(1, 2).result == 3
    assert "broker" not in app.__dict__


def test_log_line_inside_task_carries_ids(runner: Pynenc) -> None:
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect()
    t.add.logger.addHandler(handler)
    try:
        inv = t.log_and_add(1, 2)
        assert inv.result == 3
    finally:
        t.add.logger.removeHandler(handler)
    mine = [r for r in records if r.getMessage() == "adding 1 and 2"]
    assert mine, "the task's log line was not seen"
    assert mine[0].invocation_id == inv.invocation_id  # type: ignore[attr-defined]
    assert mine[0].task_id == t.log_and_add.task_id  # type: ignore[attr-defined]
    assert mine[0].runner_id == runner.runner.runner_id  # type: ignore[attr-defined]
