"""Find component classes by the names config uses, without scanning subclasses.

Built-in names map to import paths; third-party packages add theirs through the
``pynenc.plugins`` entry-point group (each entry point loads a ``dict[str, str]`` of
component name -> "module:Class", or a callable returning one).
"""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from pynenc.exceptions import ConfigError, MissingExtraError

BUILTIN_COMPONENTS: dict[str, str] = {
    "MemBroker": "pynenc.backends.memory.broker:MemBroker",
    "MemStateBackend": "pynenc.backends.memory.state_backend:MemStateBackend",
    "MemOrchestrator": "pynenc.backends.memory.orchestrator:MemOrchestrator",
    "SQLiteBroker": "pynenc.backends.sqlite.broker:SQLiteBroker",
    "SQLiteStateBackend": "pynenc.backends.sqlite.state_backend:SQLiteStateBackend",
    "SQLiteOrchestrator": "pynenc.backends.sqlite.orchestrator:SQLiteOrchestrator",
    "RedisBroker": "pynenc.backends.redis.broker:RedisBroker",
    "RedisStateBackend": "pynenc.backends.redis.state_backend:RedisStateBackend",
    "RedisOrchestrator": "pynenc.backends.redis.orchestrator:RedisOrchestrator",
    "MemClientDataStore": "pynenc.backends.memory.client_data_store:MemClientDataStore",
    "SQLiteClientDataStore": "pynenc.backends.sqlite.client_data_store:SQLiteClientDataStore",
    "RedisClientDataStore": "pynenc.backends.redis.client_data_store:RedisClientDataStore",
    "DisabledClientDataStore": "pynenc.client_data_store.base:DisabledClientDataStore",
    "MemTrigger": "pynenc.backends.memory.trigger:MemTrigger",
    "SQLiteTrigger": "pynenc.backends.sqlite.trigger:SQLiteTrigger",
    "RedisTrigger": "pynenc.backends.redis.trigger:RedisTrigger",
    "ThreadRunner": "pynenc.runner.thread_runner:ThreadRunner",
    "MultiThreadRunner": "pynenc.runner.multi_thread_runner:MultiThreadRunner",
    "ProcessRunner": "pynenc.runner.process_runner:ProcessRunner",
    "PersistentProcessRunner": "pynenc.runner.persistent_process:PersistentProcessRunner",
    "DummyRunner": "pynenc.runner.thread_runner:ThreadRunner",
}

# The optional package each backend family needs, and the extra that installs it.
_EXTRAS = {
    "pynenc.backends.redis": ("redis", "redis"),
    "pynenc.backends.rabbitmq": ("pika", "rabbitmq"),
}


@cache
def _plugin_components() -> dict[str, str]:
    found: dict[str, str] = {}
    for ep in entry_points(group="pynenc.plugins"):
        loaded = ep.load()
        found.update(loaded() if callable(loaded) else loaded)
    return found


def component_names() -> list[str]:
    return sorted({**BUILTIN_COMPONENTS, **_plugin_components()})


def load_component(name: str) -> type[Any]:
    """The class registered under ``name`` (a plain name or a "module:Class" path)."""
    path = BUILTIN_COMPONENTS.get(name) or _plugin_components().get(name)
    if path is None and ":" in name:
        path = name
    if path is None:
        raise ConfigError(
            f"Unknown component '{name}'. Known components: {', '.join(component_names())}."
        )
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        for prefix, (package, extra) in _EXTRAS.items():
            if module_name.startswith(prefix) and exc.name and exc.name.startswith(package):
                raise MissingExtraError(name, package, extra) from exc
        raise
    return getattr(module, attr)  # type: ignore[no-any-return]
