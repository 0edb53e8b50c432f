"""``pynenc show_config``: every effective setting of the app and where each came from."""

from __future__ import annotations

import argparse
import enum
import os
from collections.abc import Iterable
from typing import Any

from rich.table import Table
from rich.text import Text

from pynenc.app import Pynenc
from pynenc.backends.registry import load_component
from pynenc.cli.app_loader import AppRef
from pynenc.cli.console import EXIT_OK, stdout_console
from pynenc.conf.config_base import ConfigBase
from pynenc.conf.config_client_data_store import ConfigClientDataStore
from pynenc.conf.config_redis import ConfigRedis
from pynenc.conf.config_runner import ConfigRunner
from pynenc.conf.config_sqlite import ConfigSQLite

# Settings classes of the backend families, keyed by the prefix of their component names.
_BACKEND_CONFIGS: dict[str, type[ConfigBase]] = {"SQLite": ConfigSQLite, "Redis": ConfigRedis}

_SOURCE_STYLES = {"default": "dim", "config_values": "green", "task_options": "green"}


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "show_config",
        help="show every effective setting of the app and its source",
        description="Show every effective setting of the app (app, runner and backend "
        "settings) with where each value came from: default, config_values (builder), "
        "a config file or a PYNENC__* environment variable.",
    )
    parser.add_argument(
        "--tasks", action="store_true", help="also show the settings of every registered task"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, ref: AppRef) -> int:
    app = ref.app
    sections = app_config_sections(app)
    if args.tasks:
        sections += [task.conf for task in app.tasks.values()]
    print_config(app, ref.spec, sections)
    return EXIT_OK


def runner_config(app: Pynenc) -> ConfigRunner:
    """The settings of the app's runner class, resolved the way the runner resolves them."""
    if app._runner is not None:  # an app that was handed a runner instance
        return app._runner.conf
    runner_cls = load_component(app.conf.runner_cls)
    config_cls: type[ConfigRunner] = getattr(runner_cls, "config_cls", ConfigRunner)
    return config_cls(app.config_values, app.config_filepath)


def backend_configs(app: Pynenc) -> list[ConfigBase]:
    """Settings of the backend families the app's components come from."""
    conf = app.conf
    components = (
        conf.broker_cls,
        conf.orchestrator_cls,
        conf.state_backend_cls,
        conf.trigger_cls,
        conf.client_data_store_cls,
    )
    return [
        config_cls(app.config_values, app.config_filepath)
        for prefix, config_cls in _BACKEND_CONFIGS.items()
        if any(name.startswith(prefix) for name in components)
    ]


def describe_backend(app: Pynenc) -> str:
    """One line naming where the app keeps its invocations, e.g. ``SQLite (/srv/pynenc.db)``."""
    conf = app.conf
    names = (conf.broker_cls, conf.orchestrator_cls, conf.state_backend_cls)
    if all(name.startswith("SQLite") for name in names):
        path = ConfigSQLite(app.config_values, app.config_filepath).db_path()
        return f"SQLite ({os.path.abspath(path)})"
    if all(name.startswith("Mem") for name in names):
        return "memory (this process only)"
    if all(name.startswith("Redis") for name in names):
        redis = ConfigRedis(app.config_values, app.config_filepath)
        where = redis.redis_url or f"{redis.redis_host}:{redis.redis_port}/{redis.redis_db}"
        return f"Redis ({_without_password(where)})"
    return ", ".join(names)


def _without_password(url: str) -> str:
    scheme, sep, rest = url.rpartition("://")
    credentials, at, host = rest.rpartition("@")
    if not at:
        return url
    user = credentials.partition(":")[0]
    return f"{scheme}{sep}{user}:***@{host}" if user else f"{scheme}{sep}***@{host}"


def app_config_sections(app: Pynenc) -> list[ConfigBase]:
    client_data_store = ConfigClientDataStore(app.config_values, app.config_filepath)
    return [app.conf, runner_config(app), *backend_configs(app), client_data_store]


def print_config(app: Pynenc, app_spec: str, sections: Iterable[ConfigBase]) -> None:
    console = stdout_console()
    console.print(Text.assemble("App ", (app_spec, "bold"), f" (app_id '{app.app_id}')"))
    if app.config_filepath:
        console.print(f"Config file: {app.config_filepath}", markup=False)
    for conf in sections:
        console.print(config_table(conf))


def config_table(conf: ConfigBase) -> Table:
    title = type(conf).__name__
    task_id = getattr(conf, "task_id", None)
    if task_id:
        title += f" [{task_id}]"
    table = Table(title=Text(title, style="bold"), title_justify="left", expand=False)
    table.add_column("setting", style="cyan", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_column("source", overflow="fold")
    sources = conf.sources()
    for name, value in conf.as_dict().items():
        source = sources.get(name, "default")
        style = _SOURCE_STYLES.get(source, "yellow")
        table.add_row(name, Text(_shown_value(name, value)), Text(source, style=style))
    return table


def _shown_value(name: str, value: Any) -> str:
    """Secrets are masked: config output ends up in bug reports and CI logs."""
    if "password" in name and value:
        return "***"
    if name.endswith("_url") and isinstance(value, str):
        return _without_password(value)
    return format_value(value)


def format_value(value: Any) -> str:
    """A setting's value as a user would write it in a config file."""
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(format_value(item) for item in value) + "]"
    if value is None:
        return "null"
    return str(value)
