"""Settings of the client data store, which keeps large arguments out of the broker messages."""

from __future__ import annotations

from pynenc.conf.config_base import ConfigBase


class ConfigClientDataStore(ConfigBase):
    min_size_to_cache: int = 1024  # serialized size (bytes) from which an argument is stored
    max_size_to_cache: int = 0  # 0 = no upper limit
    local_cache_size: int = 1024  # entries kept in the in-process cache
    disable_client_data_store: bool = False
