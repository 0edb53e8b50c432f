"""Settings of the Redis backends."""

from __future__ import annotations

from pynenc.conf.config_base import ConfigBase


class ConfigRedis(ConfigBase):
    """Connection settings; ``redis_url``, when set, takes precedence over host/port/db/password."""

    redis_url: str | None = None
    redis_host: str = "localhost"
    redis_port: int = 6379
    redis_db: int = 0
    redis_password: str | None = None
    redis_max_connection_retry_sec: float = 30.0  # give up (BackendError) after this long
    redis_key_prefix: str = "pynenc"  # keys are "<prefix>:{<app_id>}:..." (tenants, tests)
