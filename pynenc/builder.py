"""PynencBuilder: a chainable way to configure an app, as in Pynenc."""

from __future__ import annotations

from typing import Any

from pynenc.app import Pynenc
from pynenc.conf.config_pynenc import ArgumentPrintMode
from pynenc.conf.config_task import ConcurrencyControlType
from pynenc.exceptions import ConfigError

_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
_SINGLE_PROCESS_RUNNERS = ("ThreadRunner", "DummyRunner")
_MEMORY = {
    "broker_cls": "MemBroker",
    "state_backend_cls": "MemStateBackend",
    "orchestrator_cls": "MemOrchestrator",
    "trigger_cls": "MemTrigger",
    "client_data_store_cls": "MemClientDataStore",
}
_REDIS = {
    "broker_cls": "RedisBroker",
    "state_backend_cls": "RedisStateBackend",
    "orchestrator_cls": "RedisOrchestrator",
    "trigger_cls": "RedisTrigger",
    "client_data_store_cls": "RedisClientDataStore",
}
_SQLITE = {
    "broker_cls": "SQLiteBroker",
    "state_backend_cls": "SQLiteStateBackend",
    "orchestrator_cls": "SQLiteOrchestrator",
    "trigger_cls": "SQLiteTrigger",
    "client_data_store_cls": "SQLiteClientDataStore",
}


def _concurrency(value: str | ConcurrencyControlType) -> ConcurrencyControlType:
    if isinstance(value, ConcurrencyControlType):
        return value
    try:
        return ConcurrencyControlType[value.upper()]
    except KeyError:
        valid = ", ".join(m.name for m in ConcurrencyControlType)
        raise ConfigError(f"Unknown concurrency control '{value}'. Use one of: {valid}.") from None


class PynencBuilder:
    """Collects a flat dict of config values; ``build()`` checks it and makes the app."""

    def __init__(self) -> None:
        self._config: dict[str, Any] = {}

    @property
    def config(self) -> dict[str, Any]:
        return dict(self._config)

    def _set(self, **values: Any) -> PynencBuilder:
        self._config.update(values)
        return self

    # --- identity and backends ----------------------------------------------------------

    def app_id(self, app_id: str) -> PynencBuilder:
        return self._set(app_id=app_id)

    def memory(self) -> PynencBuilder:
        """Every component in this process's memory (tests and development)."""
        return self._set(**_MEMORY)

    def sqlite(self, sqlite_db_path: str | None = None) -> PynencBuilder:
        """Every component in one SQLite file, shared by the processes of one host."""
        self._set(**_SQLITE)
        return self._set(sqlite_db_path=sqlite_db_path) if sqlite_db_path else self

    def redis(self, url: str | None = None, db: int | None = None) -> PynencBuilder:
        """Every component on one Redis server (many hosts share it)."""
        self._redis_connection(url, db)
        return self._set(**_REDIS)

    def _redis_connection(self, url: str | None, db: int | None) -> None:
        if url is not None:
            self._set(redis_url=url)
        if db is not None:
            self._set(redis_db=db)

    def redis_broker(self, url: str | None = None, db: int | None = None) -> PynencBuilder:
        self._redis_connection(url, db)
        return self._set(broker_cls="RedisBroker")

    def redis_state_backend(self, url: str | None = None, db: int | None = None) -> PynencBuilder:
        self._redis_connection(url, db)
        return self._set(state_backend_cls="RedisStateBackend")

    def redis_orchestrator(self, url: str | None = None, db: int | None = None) -> PynencBuilder:
        self._redis_connection(url, db)
        return self._set(orchestrator_cls="RedisOrchestrator")

    def redis_trigger(self, url: str | None = None, db: int | None = None) -> PynencBuilder:
        self._redis_connection(url, db)
        return self._set(trigger_cls="RedisTrigger")

    def redis_client_data_store(
        self, url: str | None = None, db: int | None = None
    ) -> PynencBuilder:
        self._redis_connection(url, db)
        return self._set(client_data_store_cls="RedisClientDataStore")

    def mem_client_data_store(self) -> PynencBuilder:
        return self._set(client_data_store_cls="MemClientDataStore")

    def disable_client_data_store(self) -> PynencBuilder:
        return self._set(
            client_data_store_cls="DisabledClientDataStore", disable_client_data_store=True
        )

    def client_data_store(
        self,
        min_size_to_cache: int = 1024,
        max_size_to_cache: int = 0,
        local_cache_size: int = 1024,
    ) -> PynencBuilder:
        return self._set(
            min_size_to_cache=min_size_to_cache,
            max_size_to_cache=max_size_to_cache,
            local_cache_size=local_cache_size,
        )

    def mem_trigger(self) -> PynencBuilder:
        return self._set(trigger_cls="MemTrigger")

    def trigger_task_modules(self, modules: list[str] | tuple[str, ...]) -> PynencBuilder:
        return self._set(trigger_task_modules=tuple(modules))

    # --- runners ------------------------------------------------------------------------

    def thread_runner(self, min_threads: int = 1, max_threads: int = 0) -> PynencBuilder:
        return self._set(
            runner_cls="ThreadRunner", min_threads=min_threads, max_threads=max_threads
        )

    def multi_thread_runner(
        self,
        min_threads: int = 1,
        max_threads: int = 1,
        min_processes: int = 1,
        max_processes: int = 0,
        idle_timeout_process_sec: float = 4.0,
        enforce_max_processes: bool = False,
    ) -> PynencBuilder:
        """ThreadRunner subprocesses, scaled with pending work (max_processes 0 = CPUs)."""
        return self._set(
            runner_cls="MultiThreadRunner",
            min_threads=min_threads,
            max_threads=max_threads,
            min_processes=min_processes,
            max_processes=max_processes,
            idle_timeout_process_sec=idle_timeout_process_sec,
            enforce_max_processes=enforce_max_processes,
        )

    def process_runner(self, max_processes: int = 0) -> PynencBuilder:
        """A fresh process per invocation (max_processes 0 = CPUs)."""
        return self._set(runner_cls="ProcessRunner", max_processes=max_processes)

    def persistent_process_runner(self, num_processes: int = 0) -> PynencBuilder:
        """A per-host dispatcher feeding long-lived workers (num_processes 0 = CPUs)."""
        return self._set(runner_cls="PersistentProcessRunner", num_processes=num_processes)

    def dummy_runner(self) -> PynencBuilder:
        return self._set(runner_cls="DummyRunner")

    # --- behaviour ----------------------------------------------------------------------

    def dev_mode(self, force_sync_tasks: bool = True) -> PynencBuilder:
        """Run tasks inline in the caller, touching no backend (unit tests)."""
        return self._set(dev_mode_force_sync_tasks=force_sync_tasks)

    def logging_level(self, level: str) -> PynencBuilder:
        if level.lower() not in _LOG_LEVELS:
            raise ConfigError(
                f"Invalid logging level '{level}'. Valid levels: {', '.join(_LOG_LEVELS)}."
            )
        return self._set(logging_level=level.lower())

    def logging_format(self, fmt: str) -> PynencBuilder:
        if fmt not in ("text", "json"):
            raise ConfigError(f"Invalid logging format '{fmt}'. Use 'text' or 'json'.")
        return self._set(logging_format=fmt)

    def logging_stream(self, stream: str) -> PynencBuilder:
        if stream not in ("stderr", "stdout"):
            raise ConfigError(f"Invalid logging stream '{stream}'. Use 'stderr' or 'stdout'.")
        return self._set(logging_stream=stream)

    def logging_colors(self, enabled: bool = True) -> PynencBuilder:
        return self._set(logging_colors=enabled)

    def serializer(self, name: str) -> PynencBuilder:
        from pynenc.serializer import get_serializer

        return self._set(serializer_cls=get_serializer(name).__name__)

    def serializer_json_pickle(self) -> PynencBuilder:
        return self._set(serializer_cls="JsonPickleSerializer")

    def serializer_json(self) -> PynencBuilder:
        return self._set(serializer_cls="JsonSerializer")

    def serializer_pickle(self) -> PynencBuilder:
        return self._set(serializer_cls="PickleSerializer")

    def serializer_msgpack(self) -> PynencBuilder:
        return self._set(serializer_cls="MsgpackSerializer")

    def concurrency_control(
        self,
        running_concurrency: str | ConcurrencyControlType | None = None,
        registration_concurrency: str | ConcurrencyControlType | None = None,
    ) -> PynencBuilder:
        """Defaults for every task; a task's own options override them."""
        if running_concurrency is not None:
            self._set(running_concurrency=_concurrency(running_concurrency))
        if registration_concurrency is not None:
            self._set(registration_concurrency=_concurrency(registration_concurrency))
        return self

    def max_pending_seconds(self, seconds: float) -> PynencBuilder:
        if seconds <= 0:
            raise ConfigError("max_pending_seconds must be greater than 0.")
        return self._set(max_pending_seconds=seconds)

    def runner_tuning(
        self,
        runner_loop_sleep_time_sec: float = 0.01,
        invocation_wait_results_sleep_time_sec: float = 0.01,
        min_parallel_slots: int = 1,
    ) -> PynencBuilder:
        """Pynenc's tuning knobs. Runners here block on events instead of sleeping, so
        the sleep times only bound how often safety re-checks happen."""
        return self._set(
            runner_loop_sleep_time_sec=runner_loop_sleep_time_sec,
            invocation_wait_results_sleep_time_sec=invocation_wait_results_sleep_time_sec,
            min_parallel_slots=min_parallel_slots,
        )

    def task_control(
        self,
        cycle_control: bool = True,
        blocking_control: bool = False,
        queue_timeout_sec: float = 0.1,
    ) -> PynencBuilder:
        return self._set(
            cycle_control=cycle_control,
            blocking_control=blocking_control,
            queue_timeout_sec=queue_timeout_sec,
        )

    def heartbeat(
        self, runner_heartbeat_interval: float = 2.0, runner_recovery_timeout: float = 10.0
    ) -> PynencBuilder:
        return self._set(
            runner_heartbeat_interval=runner_heartbeat_interval,
            runner_recovery_timeout=runner_recovery_timeout,
        )

    def argument_print_mode(
        self, mode: str | ArgumentPrintMode, truncate_length: int = 32
    ) -> PynencBuilder:
        if not isinstance(mode, ArgumentPrintMode):
            try:
                mode = ArgumentPrintMode[mode.upper()]
            except KeyError:
                valid = ", ".join(m.name for m in ArgumentPrintMode)
                raise ConfigError(f"Unknown argument print mode '{mode}'. Use: {valid}.") from None
        if mode is ArgumentPrintMode.TRUNCATED and truncate_length <= 0:
            raise ConfigError("truncate_length must be greater than 0.")
        return self._set(
            argument_print_mode=mode,
            print_arguments=mode is not ArgumentPrintMode.HIDDEN,
            truncate_arguments_length=truncate_length,
        )

    def hide_arguments(self) -> PynencBuilder:
        return self.argument_print_mode(ArgumentPrintMode.HIDDEN)

    def show_argument_keys(self) -> PynencBuilder:
        return self.argument_print_mode(ArgumentPrintMode.KEYS)

    def show_full_arguments(self) -> PynencBuilder:
        return self.argument_print_mode(ArgumentPrintMode.FULL)

    def show_truncated_arguments(self, truncate_length: int = 32) -> PynencBuilder:
        return self.argument_print_mode(ArgumentPrintMode.TRUNCATED, truncate_length)

    def custom_config(self, **kwargs: Any) -> PynencBuilder:
        return self._set(**kwargs)

    # --- build --------------------------------------------------------------------------

    def _validate(self) -> None:
        runner = self._config.get("runner_cls")
        uses_memory = any(
            self._config.get(k) == v for k, v in _MEMORY.items() if k != "trigger_cls"
        )
        if uses_memory and runner and runner not in _SINGLE_PROCESS_RUNNERS:
            raise ConfigError(
                f"{runner} runs tasks in other processes, which cannot see in-memory "
                "components. Use .thread_runner() with .memory(), or keep the runner and "
                "use .sqlite() (one host) or .redis(url=...) (many hosts)."
            )

    def build(self) -> Pynenc:
        self._validate()
        return Pynenc(config_values=self._config)
