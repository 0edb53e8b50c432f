"""Typed configuration: one class per concern, resolved from defaults, values, file and env."""

from pynenc.conf.config_base import ConfigBase, load_config_file
from pynenc.conf.config_client_data_store import ConfigClientDataStore
from pynenc.conf.config_pynenc import ArgumentPrintMode, ConfigPynenc
from pynenc.conf.config_redis import ConfigRedis
from pynenc.conf.config_runner import (
    ConfigMultiThreadRunner,
    ConfigPersistentProcessRunner,
    ConfigProcessRunner,
    ConfigRunner,
    ConfigThreadRunner,
    worker_count,
)
from pynenc.conf.config_sqlite import ConfigSQLite
from pynenc.conf.config_task import ConcurrencyControlType, ConfigTask

__all__ = [
    "ArgumentPrintMode",
    "ConcurrencyControlType",
    "ConfigBase",
    "ConfigClientDataStore",
    "ConfigMultiThreadRunner",
    "ConfigPersistentProcessRunner",
    "ConfigProcessRunner",
    "ConfigPynenc",
    "ConfigRedis",
    "ConfigRunner",
    "ConfigSQLite",
    "ConfigTask",
    "ConfigThreadRunner",
    "load_config_file",
    "worker_count",
]
