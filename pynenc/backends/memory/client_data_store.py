"""Memory client data store: a dict of one process (for tests and development)."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from pynenc.client_data_store.base import BaseClientDataStore

if TYPE_CHECKING:
    from pynenc.app import Pynenc


class MemClientDataStore(BaseClientDataStore):
    def __init__(self, app: Pynenc) -> None:
        super().__init__(app)
        self._values: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def store(self, values: Mapping[str, bytes]) -> None:
        with self._lock:
            for key, data in values.items():
                self._values.setdefault(key, data)

    def get(self, keys: Sequence[str]) -> dict[str, bytes]:
        with self._lock:
            return {k: self._values[k] for k in keys if k in self._values}

    def count(self) -> int:
        with self._lock:
            return len(self._values)

    def purge(self) -> None:
        with self._lock:
            self._values.clear()
        self.forget_local()
