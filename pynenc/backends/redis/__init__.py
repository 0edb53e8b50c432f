"""Redis backends: many hosts share one server. Needs ``pip install 'pynenc[redis]'``.

``keys`` documents the key schema, ``scripts`` holds the Lua scripts (one atomic round trip
per batch) and ``connection`` the per-process client with its retry policy.
"""

from pynenc.backends.redis.broker import RedisBroker
from pynenc.backends.redis.orchestrator import RedisOrchestrator
from pynenc.backends.redis.state_backend import RedisStateBackend

__all__ = ["RedisBroker", "RedisOrchestrator", "RedisStateBackend"]
