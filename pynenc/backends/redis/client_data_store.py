"""Redis client data store: ``P cds:<key>`` strings (SET NX), one round trip per batch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pynenc.backends.redis.connection import client_for
from pynenc.backends.redis.keys import CLIENT_DATA_KINDS, scan_pattern
from pynenc.client_data_store.base import BaseClientDataStore

if TYPE_CHECKING:
    from pynenc.app import Pynenc


class RedisClientDataStore(BaseClientDataStore):
    def __init__(self, app: Pynenc) -> None:
        super().__init__(app)
        self.client, self.prefix = client_for(app)
        self._key_prefix = self.prefix + "cds:"

    def store(self, values: Mapping[str, bytes]) -> None:
        if not values:
            return
        prefix = self._key_prefix

        def build(pipe: Any) -> None:
            for key, data in values.items():
                pipe.set(prefix + key, data, nx=True)

        self.client.pipeline(build)

    def get(self, keys: Sequence[str]) -> dict[str, bytes]:
        if not keys:
            return {}
        names = [self._key_prefix + k for k in keys]
        raw = self.client.execute("MGET", *names)
        return {
            k: v if isinstance(v, bytes) else str(v).encode()
            for k, v in zip(keys, raw, strict=True)
            if v is not None
        }

    def count(self) -> int:
        pattern = scan_pattern(self._key_prefix)
        return self.client.run(lambda client: sum(1 for _ in client.scan_iter(match=pattern)))

    def purge(self) -> None:
        self.client.unlink_kinds(self.prefix, CLIENT_DATA_KINDS)
        self.forget_local()

    def close(self) -> None:
        self.client.close()
