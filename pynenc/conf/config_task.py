"""Per-task settings: retries, concurrency control and argument caching.

Each task gets its own ``ConfigTask``; decorator options, a per-task file section and per-task
environment variables (``PYNENC__CONFIGTASK__<MODULE>#<TASK>__<FIELD>``) refine the app values.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from enum import StrEnum, auto
from typing import Any

from pynenc.conf.config_base import (
    ENV_PREFIX,
    ENV_SEPARATOR,
    Assignment,
    ConfigBase,
    unknown_name_hint,
)
from pynenc.exceptions import ConfigError, InvalidTaskOptionError, RetryError


class ConcurrencyControlType(StrEnum):
    """How many invocations of a task may be registered or running at the same time."""

    DISABLED = auto()  # no control
    TASK = auto()  # one at a time per task
    ARGUMENTS = auto()  # one per task and identical arguments
    KEYS = auto()  # one per task and identical values of ``key_arguments``


def task_env_id(task_id: str) -> str:
    """``"module.sub.func"`` -> ``"module.sub#func"``, the task's spelling in env var names."""
    if "#" in task_id:
        return task_id
    module, _, function = task_id.rpartition(".")
    return f"{module}#{function}" if module else function


class ConfigTask(ConfigBase):
    """Settings of one task.

    Lowest to highest: defaults < app ``config_values`` < ``task_options`` (decorator) < file
    (top level, ``task`` section, then ``task: {<task_id>: {...}}``) < ``PYNENC__<FIELD>`` <
    ``PYNENC__CONFIGTASK__<FIELD>`` < ``PYNENC__CONFIGTASK__<MODULE>#<TASK>__<FIELD>``.
    """

    max_retries: int = 0
    retry_for: tuple[type[BaseException], ...] = (RetryError,)
    running_concurrency: ConcurrencyControlType = ConcurrencyControlType.DISABLED
    registration_concurrency: ConcurrencyControlType = ConcurrencyControlType.DISABLED
    key_arguments: tuple[str, ...] = ()
    on_diff_non_key_args_raise: bool = False
    parallel_batch_size: int = 100
    disable_cache_args: tuple[str, ...] = ()
    force_new_workflow: bool = False
    reroute_on_concurrency_control: bool = True
    retry_delay_sec: float = 0.0
    retry_backoff: float = 2.0
    retry_max_delay_sec: float = 300.0  # 0 means no cap

    def __init__(
        self,
        task_id: str,
        config_values: Mapping[str, Any] | None = None,
        config_filepath: str | None = None,
        task_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.task_id = task_id
        self._task_options = self.check_options(task_id, task_options or {})
        super().__init__(config_values, config_filepath)

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """Every option ``@app.task(...)`` accepts."""
        return cls.field_names()

    @classmethod
    def check_options(cls, task_id: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """Fail at decoration time on an option name this class does not know."""
        valid = cls.option_names()
        for name in options:
            if name not in valid:
                raise InvalidTaskOptionError(
                    f"Unknown option '{name}' for task '{task_id}'."
                    + unknown_name_hint(name, valid).replace("Valid names", "Valid options")
                )
        return dict(options)

    def retry_delay(self, num_retry: int) -> float:
        """Seconds to wait before retry number ``num_retry`` (1 for the first retry)."""
        if self.retry_delay_sec <= 0:
            return 0.0
        try:
            delay = self.retry_delay_sec * self.retry_backoff ** max(num_retry - 1, 0)
        except OverflowError:
            delay = float("inf")
        if self.retry_max_delay_sec > 0:
            delay = min(delay, self.retry_max_delay_sec)
        return delay

    def _extra_assignments(self) -> list[Assignment]:
        return [(name, value, "task_options") for name, value in self._task_options.items()]

    def _file_sections(self, data: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
        yield from super()._file_sections(data)
        tasks = data.get(ConfigTask.section_name)
        own = tasks.get(self.task_id) if isinstance(tasks, Mapping) else None
        if isinstance(own, Mapping):
            unknown = [name for name in own if name not in self.fields()]
            if unknown:
                raise ConfigError(
                    f"Config file section for task '{self.task_id}' has unknown setting "
                    f"'{unknown[0]}'." + unknown_name_hint(unknown[0], self.option_names())
                )
            yield own

    def _env_assignments(self, environ: Mapping[str, tuple[str, str]]) -> list[Assignment]:
        assignments = super()._env_assignments(environ)
        task_prefix = f"{ENV_PREFIX}CONFIGTASK{ENV_SEPARATOR}{task_env_id(self.task_id).upper()}"
        assignments += self._env_lookup(environ, task_prefix + ENV_SEPARATOR)
        return assignments
