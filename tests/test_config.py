"""Configuration resolution: defaults < config_values < file < environment, per class and task."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from pynenc.conf import (
    ArgumentPrintMode,
    ConcurrencyControlType,
    ConfigBase,
    ConfigClientDataStore,
    ConfigMultiThreadRunner,
    ConfigPersistentProcessRunner,
    ConfigProcessRunner,
    ConfigPynenc,
    ConfigRedis,
    ConfigRunner,
    ConfigSQLite,
    ConfigTask,
    ConfigThreadRunner,
    worker_count,
)
from pynenc.exceptions import ConfigError, InvalidTaskOptionError, RetryError


class CustomError(Exception):
    """Referenced by dotted path from config values."""


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No stray PYNENC__ variables, and a cwd without a pyproject.toml."""
    for name in list(os.environ):
        if name.upper().startswith("PYNENC__"):
            monkeypatch.delenv(name)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    return workdir


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


# --- defaults and fields ----------------------------------------------------------------


def test_defaults_are_plain_attributes_with_default_source() -> None:
    cfg = ConfigPynenc()
    assert cfg.app_id == "pynenc"
    assert cfg.runner_cls == "ThreadRunner"
    assert cfg.argument_print_mode is ArgumentPrintMode.TRUNCATED
    assert "app_id" in vars(cfg)  # a real instance attribute, no lookup on access
    assert set(cfg.sources().values()) == {"default"}


def test_float_default_declared_as_int_expression_is_a_float() -> None:
    value = ConfigPynenc().result_retention_sec
    assert value == 7 * 24 * 3600
    assert isinstance(value, float)


def test_field_names_include_inherited_fields_in_order() -> None:
    names = ConfigThreadRunner.field_names()
    assert names[:2] == ("runner_batch_size", "graceful_shutdown_timeout_sec")
    assert set(names) == {
        "runner_batch_size",
        "graceful_shutdown_timeout_sec",
        "claim_linger_sec",
        "claim_linger_max_sec",
        "min_threads",
        "max_threads",
    }
    assert "section_name" not in ConfigPynenc.field_names()


def test_as_dict_matches_attributes() -> None:
    cfg = ConfigRedis({"redis_port": 7000})
    assert cfg.as_dict()["redis_port"] == 7000
    assert cfg.as_dict().keys() == set(ConfigRedis.field_names())


def test_setting_unknown_attribute_raises() -> None:
    cfg = ConfigRunner()
    with pytest.raises(AttributeError, match="runner_batch_size"):
        cfg.runner_batch_sise = 3  # type: ignore[attr-defined]


def test_assigning_a_field_coerces_and_records_source() -> None:
    cfg = ConfigRunner()
    cfg.runner_batch_size = "8"  # type: ignore[assignment]
    assert cfg.runner_batch_size == 8
    assert cfg.sources()["runner_batch_size"] == "assigned"
    with pytest.raises(ConfigError, match="runner_batch_size"):
        cfg.runner_batch_size = "many"  # type: ignore[assignment]


def test_mutable_defaults_are_not_shared() -> None:
    class ConfigWithDict(ConfigBase):
        extra: dict[str, Any] = {}
        tags: list[str] = []

    first, second = ConfigWithDict(), ConfigWithDict()
    first.extra["a"] = 1
    first.tags.append("x")
    assert second.extra == {}
    assert second.tags == []


# --- config_values ----------------------------------------------------------------------


def test_config_values_override_defaults_and_unknown_keys_are_ignored() -> None:
    values = {"app_id": "shop", "redis_port": 1234, "max_threads": 7}
    cfg = ConfigPynenc(values)
    assert cfg.app_id == "shop"
    assert cfg.sources()["app_id"] == "config_values"
    assert cfg.sources()["broker_cls"] == "default"
    assert ConfigRedis(values).redis_port == 1234
    assert ConfigThreadRunner(values).max_threads == 7


def test_values_are_coerced_from_strings() -> None:
    cfg = ConfigPynenc(
        {
            "dev_mode_force_sync_tasks": "yes",
            "truncate_arguments_length": "10",
            "queue_timeout_sec": "0.5",
            "argument_print_mode": "full",
            "trigger_task_modules": "a.tasks, b.tasks",
        }
    )
    assert cfg.dev_mode_force_sync_tasks is True
    assert cfg.truncate_arguments_length == 10
    assert cfg.queue_timeout_sec == 0.5
    assert cfg.argument_print_mode is ArgumentPrintMode.FULL
    assert cfg.trigger_task_modules == ("a.tasks", "b.tasks")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("FALSE", False), ("1", True), ("0", False), ("Yes", True), ("no", False)],
)
def test_bool_words(raw: str, expected: bool) -> None:
    assert ConfigPynenc({"cycle_control": raw}).cycle_control is expected


def test_sequence_accepts_json_array() -> None:
    cfg = ConfigTask("m.t", {"key_arguments": '["a", "b"]'})
    assert cfg.key_arguments == ("a", "b")


def test_enum_accepts_member_name_any_case_or_value() -> None:
    for raw in (ConcurrencyControlType.KEYS, "KEYS", "Keys", "keys"):
        cfg = ConfigTask("m.t", {"running_concurrency": raw})
        assert cfg.running_concurrency is ConcurrencyControlType.KEYS


def test_optional_fields_accept_null_words() -> None:
    cfg = ConfigRedis({"redis_url": "redis://h:1/0", "redis_password": "null"})
    assert cfg.redis_url == "redis://h:1/0"
    assert cfg.redis_password is None


@pytest.mark.parametrize(
    ("cls", "field", "raw"),
    [
        (ConfigRunner, "runner_batch_size", "lots"),
        (ConfigRunner, "graceful_shutdown_timeout_sec", "soon"),
        (ConfigPynenc, "cycle_control", "maybe"),
        (ConfigPynenc, "argument_print_mode", "loud"),
        (ConfigRedis, "redis_port", True),
        (ConfigTask, "retry_for", "builtins.NoSuchError"),
        (ConfigTask, "retry_for", "no_such_module_xyz.Error"),
        (ConfigTask, "retry_for", "builtins.int"),
    ],
)
def test_bad_values_raise_config_error_naming_field_source_and_type(
    cls: type[ConfigBase], field: str, raw: Any
) -> None:
    with pytest.raises(ConfigError) as info:
        if cls is ConfigTask:
            ConfigTask("m.t", {field: raw})
        else:
            cls({field: raw})
    message = str(info.value)
    assert field in message
    assert "config_values" in message
    assert repr(raw) in message
    assert "expected" in message


# --- app-level validation ---------------------------------------------------------------


def test_logging_level_is_case_insensitive_and_stored_lower() -> None:
    assert ConfigPynenc({"logging_level": "WARNING"}).logging_level == "warning"


def test_invalid_logging_level_lists_valid_values() -> None:
    with pytest.raises(ConfigError, match="debug, info, warning, error, critical"):
        ConfigPynenc({"logging_level": "verbose"})


def test_invalid_logging_format_lists_valid_values() -> None:
    with pytest.raises(ConfigError, match="text, json"):
        ConfigPynenc({"logging_format": "xml"})


def test_sqlite_default_db_path_is_in_current_directory() -> None:
    assert ConfigSQLite().db_path() == "pynenc.db"
    assert ConfigSQLite({"sqlite_db_path": "/tmp/x.db"}).db_path() == "/tmp/x.db"


def test_client_data_store_and_runner_defaults() -> None:
    assert ConfigClientDataStore().max_size_to_cache == 0
    assert ConfigMultiThreadRunner().max_threads == 1
    assert ConfigProcessRunner().max_processes == 0
    assert ConfigPersistentProcessRunner().num_processes == 0
    assert worker_count(3) == 3
    assert worker_count(0) >= 1


# --- config files -----------------------------------------------------------------------


def test_yaml_file_overrides_config_values(tmp_path: Path) -> None:
    path = write(tmp_path / "pynenc.yaml", "app_id: from_yaml\nlogging_level: debug\n")
    cfg = ConfigPynenc({"app_id": "from_values", "runner_cls": "ProcessRunner"}, path)
    assert cfg.app_id == "from_yaml"
    assert cfg.runner_cls == "ProcessRunner"
    assert cfg.sources()["app_id"] == f"file:{path}"
    assert cfg.sources()["runner_cls"] == "config_values"


def test_toml_file(tmp_path: Path) -> None:
    path = write(
        tmp_path / "pynenc.toml", 'app_id = "from_toml"\n[runner]\nrunner_batch_size = 9\n'
    )
    assert ConfigPynenc(config_filepath=path).app_id == "from_toml"
    assert ConfigThreadRunner(config_filepath=path).runner_batch_size == 9


def test_json_file(tmp_path: Path) -> None:
    path = write(tmp_path / "pynenc.json", json.dumps({"redis_port": 6390}))
    cfg = ConfigRedis(config_filepath=path)
    assert cfg.redis_port == 6390
    assert cfg.sources()["redis_port"] == f"file:{path}"


def test_file_path_from_config_values(tmp_path: Path) -> None:
    path = write(tmp_path / "conf.yml", "redis_db: 3\n")
    assert ConfigRedis({"config_filepath": path}).redis_db == 3


def test_file_path_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "conf.yml", "redis_db: 4\n")
    monkeypatch.setenv("PYNENC__FILEPATH", path)
    cfg = ConfigRedis()
    assert cfg.redis_db == 4
    assert cfg.sources()["redis_db"] == f"file:{path}"


def test_explicit_file_path_beats_env_file_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYNENC__FILEPATH", write(tmp_path / "env.yml", "redis_db: 4\n"))
    assert ConfigRedis(config_filepath=write(tmp_path / "arg.yml", "redis_db: 5\n")).redis_db == 5


def test_pyproject_in_cwd_is_read(isolated: Path) -> None:
    write(
        isolated / "pyproject.toml",
        '[project]\nname = "x"\n\n[tool.pynenc]\napp_id = "from_pyproject"\n\n'
        "[tool.pynenc.thread_runner]\nmax_threads = 3\n",
    )
    cfg = ConfigPynenc()
    assert cfg.app_id == "from_pyproject"
    assert cfg.sources()["app_id"] == "pyproject.toml"
    assert ConfigThreadRunner().max_threads == 3


def test_pyproject_without_pynenc_table_is_ignored(isolated: Path) -> None:
    write(isolated / "pyproject.toml", '[project]\nname = "x"\n')
    assert ConfigPynenc().sources()["app_id"] == "default"


def test_pyproject_is_not_read_when_a_file_is_given(isolated: Path, tmp_path: Path) -> None:
    write(isolated / "pyproject.toml", '[tool.pynenc]\napp_id = "from_pyproject"\n')
    path = write(tmp_path / "c.yaml", "runner_cls: ProcessRunner\n")
    cfg = ConfigPynenc(config_filepath=path)
    assert cfg.app_id == "pynenc"
    assert cfg.runner_cls == "ProcessRunner"


def test_sections_by_class_and_parent_class_most_specific_wins(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.yaml",
        "runner_batch_size: 1\n"
        "max_threads: 2\n"
        "runner:\n  runner_batch_size: 10\n  max_threads: 20\n"
        "thread_runner:\n  max_threads: 30\n",
    )
    thread = ConfigThreadRunner(config_filepath=path)
    assert thread.runner_batch_size == 10  # parent section beats top level
    assert thread.max_threads == 30  # own section beats parent section
    assert ConfigRunner(config_filepath=path).runner_batch_size == 10
    assert ConfigMultiThreadRunner(config_filepath=path).max_threads == 20
    assert ConfigPynenc(config_filepath=path).app_id == "pynenc"  # other sections ignored


def test_file_values_are_coerced_and_errors_name_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "redis_port: not-a-port\n")
    with pytest.raises(ConfigError, match=r"redis_port.*file:.*c\.yaml.*integer"):
        ConfigRedis(config_filepath=path)


def test_missing_file_and_bad_extension_raise_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Cannot read"):
        ConfigRedis(config_filepath=str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match="extension"):
        ConfigRedis(config_filepath=write(tmp_path / "c.ini", "x=1"))


def test_malformed_file_raises_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid"):
        ConfigRedis(config_filepath=write(tmp_path / "c.json", "{nope"))


def test_edited_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    write(path, "redis_db: 1\n")
    assert ConfigRedis(config_filepath=str(path)).redis_db == 1
    write(path, "redis_db: 2\n")
    assert ConfigRedis(config_filepath=str(path)).redis_db == 2


# --- environment ------------------------------------------------------------------------


def test_env_beats_file_and_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "c.yaml", "app_id: from_file\n")
    monkeypatch.setenv("PYNENC__APP_ID", "from_env")
    cfg = ConfigPynenc({"app_id": "from_values"}, path)
    assert cfg.app_id == "from_env"
    assert cfg.sources()["app_id"] == "env:PYNENC__APP_ID"


def test_generic_env_applies_to_every_class_with_the_field(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYNENC__MAX_THREADS", "5")
    assert ConfigThreadRunner().max_threads == 5
    assert ConfigMultiThreadRunner().max_threads == 5


def test_class_specific_env_beats_generic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYNENC__MAX_THREADS", "5")
    monkeypatch.setenv("PYNENC__CONFIGTHREADRUNNER__MAX_THREADS", "8")
    cfg = ConfigThreadRunner()
    assert cfg.max_threads == 8
    assert cfg.sources()["max_threads"] == "env:PYNENC__CONFIGTHREADRUNNER__MAX_THREADS"
    assert ConfigMultiThreadRunner().max_threads == 5


def test_parent_class_env_applies_to_subclass_and_own_class_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYNENC__CONFIGRUNNER__RUNNER_BATCH_SIZE", "11")
    assert ConfigProcessRunner().runner_batch_size == 11
    monkeypatch.setenv("PYNENC__CONFIGPROCESSRUNNER__RUNNER_BATCH_SIZE", "12")
    assert ConfigProcessRunner().runner_batch_size == 12
    assert ConfigThreadRunner().runner_batch_size == 11


def test_env_for_other_class_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYNENC__CONFIGPROCESSRUNNER__RUNNER_BATCH_SIZE", "12")
    assert ConfigThreadRunner().runner_batch_size == 64


def test_env_is_read_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    before = ConfigRedis()
    monkeypatch.setenv("PYNENC__REDIS_HOST", "cache.internal")
    assert before.redis_host == "localhost"
    assert ConfigRedis().redis_host == "cache.internal"


def test_bad_env_value_names_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYNENC__CONFIGREDIS__REDIS_PORT", "eighty")
    with pytest.raises(ConfigError, match=r"redis_port.*env:PYNENC__CONFIGREDIS__REDIS_PORT"):
        ConfigRedis()


def test_env_sequence_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYNENC__TRIGGER_TASK_MODULES", "app.jobs,app.reports")
    assert ConfigPynenc().trigger_task_modules == ("app.jobs", "app.reports")


# --- task configuration -----------------------------------------------------------------


def test_task_defaults() -> None:
    cfg = ConfigTask("mymod.mytask")
    assert cfg.task_id == "mymod.mytask"
    assert cfg.max_retries == 0
    assert cfg.retry_for == (RetryError,)
    assert cfg.running_concurrency is ConcurrencyControlType.DISABLED
    assert cfg.registration_concurrency is ConcurrencyControlType.DISABLED
    assert cfg.parallel_batch_size == 100
    assert cfg.reroute_on_concurrency_control is True


def test_task_options_beat_config_values() -> None:
    cfg = ConfigTask("m.t", {"max_retries": 1, "parallel_batch_size": 5}, None, {"max_retries": 2})
    assert cfg.max_retries == 2
    assert cfg.parallel_batch_size == 5
    assert cfg.sources()["max_retries"] == "task_options"


def test_file_and_env_beat_task_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "c.yaml", "parallel_batch_size: 7\n")
    monkeypatch.setenv("PYNENC__CONFIGTASK__MAX_RETRIES", "4")
    options = {"max_retries": 2, "parallel_batch_size": 3}
    cfg = ConfigTask("m.t", config_filepath=path, task_options=options)
    assert cfg.max_retries == 4
    assert cfg.parallel_batch_size == 7


def test_unknown_task_option_lists_valid_options() -> None:
    with pytest.raises(InvalidTaskOptionError) as info:
        ConfigTask("m.t", task_options={"max_retry": 3})
    message = str(info.value)
    assert "max_retry" in message
    assert "Did you mean 'max_retries'" in message
    assert ", ".join(sorted(ConfigTask.option_names())) in message


def test_option_names_are_the_task_fields() -> None:
    assert "max_retries" in ConfigTask.option_names()
    assert "key_arguments" in ConfigTask.option_names()
    assert ConfigTask.option_names() == ConfigTask.field_names()


def test_retry_for_from_dotted_paths() -> None:
    cfg = ConfigTask("m.t", {"retry_for": f"builtins.ValueError, {__name__}.CustomError"})
    assert cfg.retry_for == (ValueError, CustomError)
    assert ConfigTask("m.t", {"retry_for": '["KeyError"]'}).retry_for == (KeyError,)


def test_retry_for_accepts_classes_and_a_single_class() -> None:
    assert ConfigTask("m.t", task_options={"retry_for": ValueError}).retry_for == (ValueError,)
    both = ConfigTask("m.t", task_options={"retry_for": [ValueError, "builtins.OSError"]})
    assert both.retry_for == (ValueError, OSError)


def test_retry_for_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYNENC__CONFIGTASK__RETRY_FOR", "builtins.TimeoutError")
    assert ConfigTask("m.t").retry_for == (TimeoutError,)


def test_task_file_sections(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.yaml",
        "max_retries: 1\n"
        "task:\n"
        "  max_retries: 2\n"
        "  parallel_batch_size: 50\n"
        "  mymod.mytask:\n"
        "    max_retries: 3\n",
    )
    mine = ConfigTask("mymod.mytask", config_filepath=path)
    other = ConfigTask("mymod.other", config_filepath=path)
    assert (mine.max_retries, mine.parallel_batch_size) == (3, 50)
    assert (other.max_retries, other.parallel_batch_size) == (2, 50)


def test_unknown_setting_in_task_file_section_raises(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "task:\n  mymod.mytask:\n    max_retires: 3\n")
    with pytest.raises(ConfigError, match="max_retries"):
        ConfigTask("mymod.mytask", config_filepath=path)


def test_per_task_env_affects_only_that_task(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYNENC__CONFIGTASK__MAX_RETRIES", "1")
    monkeypatch.setenv("PYNENC__CONFIGTASK__MYMOD#MYTASK__MAX_RETRIES", "5")
    mine = ConfigTask("mymod.mytask")
    assert mine.max_retries == 5
    assert mine.sources()["max_retries"] == "env:PYNENC__CONFIGTASK__MYMOD#MYTASK__MAX_RETRIES"
    assert ConfigTask("mymod.other").max_retries == 1
    assert ConfigTask("other.mytask").max_retries == 1


def test_per_task_env_with_nested_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYNENC__CONFIGTASK__APP.JOBS#SEND_MAIL__RUNNING_CONCURRENCY", "task")
    cfg = ConfigTask("app.jobs.send_mail")
    assert cfg.running_concurrency is ConcurrencyControlType.TASK
    assert ConfigTask("app.jobs.other").running_concurrency is ConcurrencyControlType.DISABLED


def test_generic_env_applies_to_tasks_below_class_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYNENC__MAX_RETRIES", "2")
    assert ConfigTask("m.t").max_retries == 2
    monkeypatch.setenv("PYNENC__CONFIGTASK__MAX_RETRIES", "3")
    assert ConfigTask("m.t").max_retries == 3


def test_bad_task_option_value_is_config_error() -> None:
    with pytest.raises(ConfigError, match=r"max_retries.*task_options"):
        ConfigTask("m.t", task_options={"max_retries": "often"})


def test_retry_delay_backoff_and_cap() -> None:
    cfg = ConfigTask(
        "m.t", task_options={"retry_delay_sec": 1.5, "retry_backoff": 2, "retry_max_delay_sec": 10}
    )
    assert [cfg.retry_delay(n) for n in (1, 2, 3, 4)] == [1.5, 3.0, 6.0, 10.0]
    assert cfg.retry_delay(5000) == 10.0


def test_retry_delay_defaults_to_zero_and_zero_cap_means_uncapped() -> None:
    assert ConfigTask("m.t").retry_delay(3) == 0.0
    cfg = ConfigTask(
        "m.t", task_options={"retry_delay_sec": 1, "retry_backoff": 10, "retry_max_delay_sec": 0}
    )
    assert cfg.retry_delay(4) == 1000.0


def test_configs_survive_pickling_for_process_runners() -> None:
    import pickle

    cfg = ConfigTask("m.t", task_options={"retry_for": [ValueError], "max_retries": 2})
    copy = pickle.loads(pickle.dumps(cfg))
    assert copy.as_dict() == cfg.as_dict()
    assert copy.task_id == "m.t"
    assert copy.sources() == cfg.sources()
