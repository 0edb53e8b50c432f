"""The builder surface: every method sets what its name says; build() refuses bad combos."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from pynenc import ConcurrencyControlType, Pynenc, PynencBuilder
from pynenc.arguments import format_arguments
from pynenc.conf.config_pynenc import ArgumentPrintMode
from pynenc.conf.config_runner import ConfigThreadRunner
from pynenc.exceptions import ConfigError


def test_backend_selection() -> None:
    mem = PynencBuilder().memory().build().conf
    assert (mem.broker_cls, mem.state_backend_cls, mem.orchestrator_cls) == (
        "MemBroker",
        "MemStateBackend",
        "MemOrchestrator",
    )
    sql = PynencBuilder().sqlite("/tmp/x.db").build()
    assert sql.conf.broker_cls == "SQLiteBroker"
    assert sql.config_values["sqlite_db_path"] == "/tmp/x.db"


def test_sqlite_is_the_default() -> None:
    conf = Pynenc().conf
    assert conf.broker_cls == "SQLiteBroker" and conf.runner_cls == "ThreadRunner"


def test_thread_runner_settings() -> None:
    app = PynencBuilder().memory().thread_runner(min_threads=2, max_threads=8).build()
    conf = ConfigThreadRunner(app.config_values)
    assert (conf.min_threads, conf.max_threads) == (2, 8)
    assert app.runner.max_threads == 8


def test_serializer_methods() -> None:
    for method, name in [
        ("serializer_json_pickle", "JsonPickleSerializer"),
        ("serializer_json", "JsonSerializer"),
        ("serializer_pickle", "PickleSerializer"),
        ("serializer_msgpack", "MsgpackSerializer"),
    ]:
        app = getattr(PynencBuilder().memory(), method)().build()
        assert type(app.serializer).__name__ == name
    assert type(PynencBuilder().serializer("pickle").build().serializer).__name__ == (
        "PickleSerializer"
    )


def test_concurrency_control_defaults_reach_tasks() -> None:
    app = (
        PynencBuilder()
        .memory()
        .concurrency_control(running_concurrency="task", registration_concurrency="ARGUMENTS")
        .build()
    )
    from pynenc.conf.config_task import ConfigTask
    from tests.apps.core_tasks import add

    conf = ConfigTask(add.task_id, app.config_values)
    assert conf.running_concurrency is ConcurrencyControlType.TASK
    assert conf.registration_concurrency is ConcurrencyControlType.ARGUMENTS
    with pytest.raises(ConfigError, match="DISABLED, TASK, ARGUMENTS, KEYS"):
        PynencBuilder().concurrency_control(running_concurrency="sometimes")


def test_logging_settings_are_validated() -> None:
    with pytest.raises(ConfigError, match="debug, info"):
        PynencBuilder().logging_level("loud")
    with pytest.raises(ConfigError, match="text"):
        PynencBuilder().logging_format("xml")
    app = PynencBuilder().memory().logging_level("DEBUG").logging_format("json").build()
    assert app.conf.logging_level == "debug" and app.conf.logging_format == "json"


def test_json_logging_writes_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    app = (
        PynencBuilder()
        .app_id("json-log")
        .memory()
        .logging_format("json")
        .logging_stream("stdout")
        .build()
    )
    app.logger.info("hello %s", "there")
    line = capsys.readouterr().out.strip().splitlines()[-1]
    payload = json.loads(line)
    assert payload["message"] == "hello there" and payload["level"] == "INFO"
    assert {"runner_id", "invocation_id", "task_id"} <= payload.keys()
    PynencBuilder().memory().build()  # restore the default text/stderr handler


def test_argument_print_modes() -> None:
    kwargs = {"name": "x" * 50, "n": 3}
    assert format_arguments(kwargs, "HIDDEN", 8) == "<arguments hidden>"
    assert format_arguments(kwargs, "KEYS", 8) == "args(name, n)"
    assert format_arguments(kwargs, "FULL", 8) == f"args(name={'x' * 50!r}, n=3)"
    assert format_arguments(kwargs, "TRUNCATED", 8) == "args(name='xxxxxxx..., n=3)"
    app = PynencBuilder().memory().show_truncated_arguments(12).build()
    assert app.conf.argument_print_mode is ArgumentPrintMode.TRUNCATED
    assert app.conf.truncate_arguments_length == 12
    assert PynencBuilder().hide_arguments().build().conf.print_arguments is False
    assert PynencBuilder().show_argument_keys().config["argument_print_mode"] is (
        ArgumentPrintMode.KEYS
    )
    with pytest.raises(ConfigError):
        PynencBuilder().show_truncated_arguments(0)


def test_tuning_and_misc_methods_set_config() -> None:
    config = (
        PynencBuilder()
        .app_id("misc")
        .runner_tuning(runner_loop_sleep_time_sec=0.5, min_parallel_slots=3)
        .task_control(cycle_control=False, blocking_control=True, queue_timeout_sec=0.2)
        .max_pending_seconds(9)
        .mem_client_data_store()
        .mem_trigger()
        .trigger_task_modules(["a.b"])
        .logging_colors(True)
        .dev_mode()
        .custom_config(runner_heartbeat_interval=0.5)
        .build()
        .conf
    )
    assert config.app_id == "misc"
    assert config.runner_loop_sleep_time_sec == 0.5 and config.min_parallel_slots == 3
    assert config.cycle_control is False and config.blocking_control is True
    assert config.queue_timeout_sec == 0.2 and config.max_pending_seconds == 9
    assert config.client_data_store_cls == "MemClientDataStore"
    assert config.trigger_cls == "MemTrigger" and config.trigger_task_modules == ("a.b",)
    assert config.logging_colors is True and config.dev_mode_force_sync_tasks is True
    assert config.runner_heartbeat_interval == 0.5
    assert PynencBuilder().disable_client_data_store().build().conf.client_data_store_cls == (
        "DisabledClientDataStore"
    )


def test_memory_refuses_multi_process_runners_with_advice() -> None:
    with pytest.raises(ConfigError) as info:
        PynencBuilder().memory().custom_config(runner_cls="PersistentProcessRunner").build()
    assert ".sqlite()" in str(info.value) and ".thread_runner()" in str(info.value)


def test_env_beats_file_beats_builder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "pynenc.yaml"
    path.write_text("app_id: from-file\nlogging_level: warning\n")
    app = Pynenc(
        config_values={"app_id": "from-builder", "logging_level": "error"},
        config_filepath=str(path),
    )
    assert app.app_id == "from-file"
    monkeypatch.setenv("PYNENC__APP_ID", "from-env")
    app = Pynenc(config_values={"app_id": "from-builder"}, config_filepath=str(path))
    assert app.app_id == "from-env"
    assert app.conf.sources()["app_id"] == "env:PYNENC__APP_ID"
    assert app.conf.logging_level == "warning"
    logging.getLogger("pynenc").setLevel(logging.INFO)
