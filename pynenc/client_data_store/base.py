"""Client data store contract (``store``/``get``/``purge``) and the logic that uses it.

Backends implement three batch methods on raw bytes keyed by content hash. The logic
(``externalize``, ``resolve``, results and exceptions) lives here, once for every backend:

- arguments whose serialized size is at least ``min_size_to_cache`` (and at most
  ``max_size_to_cache`` when set), and not listed in the task's ``disable_cache_args``, are
  replaced in the argument envelope by their key (envelope kind REFERENCE);
- each distinct value is stored once per batch, and keys stored recently by this process
  are remembered (a bounded set) so the same large value passed again is not re-sent;
- the runner side resolves keys through a bounded LRU of fetched bytes;
- results and exceptions at least ``min_size_to_cache`` long are stored too and replaced
  by ``RESULT_MARKER + key``.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pynenc._speedups.hashing import content_key, oversized
from pynenc.conf.config_client_data_store import ConfigClientDataStore
from pynenc.exceptions import MissingStoredValueError

if TYPE_CHECKING:
    from pynenc.app import Pynenc
    from pynenc.task import Task

# A stored result or exception: this marker then the key. No serializer output starts
# with it (a NUL byte, then 0xFF, which is not valid UTF-8, pickle or a lone msgpack value).
RESULT_MARKER = b"\x00\xffpynenc-cds:"

_NO_REFERENCES: frozenset[str] = frozenset()
_NEVER = 1 << 62  # threshold of a disabled store: no value is ever that long


class _BoundedLRU:
    """Thread-safe LRU of key -> value with at most ``size`` entries (0 keeps nothing)."""

    __slots__ = ("_data", "_lock", "size")

    def __init__(self, size: int) -> None:
        self.size = max(0, size)
        self._data: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: str) -> bool:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return True
            return False

    def get(self, key: str) -> Any:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: str, value: Any) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


class BaseClientDataStore(ABC):
    """Content-addressed bytes of one app (namespaced by ``app.app_id``).

    Implementations must be safe from several threads (and processes, for shared ones).
    Keys are content hashes, so ``store`` is idempotent: storing a key again is harmless.
    """

    enabled = True

    def __init__(self, app: Pynenc) -> None:
        self.app = app
        self.conf = ConfigClientDataStore(app.config_values, app.config_filepath)
        if self.conf.disable_client_data_store:
            self.enabled = False
        self.min_size = max(1, self.conf.min_size_to_cache) if self.enabled else _NEVER
        self.max_size = self.conf.max_size_to_cache
        self._stored = _BoundedLRU(self.conf.local_cache_size)  # keys known to be stored
        self._cache = _BoundedLRU(self.conf.local_cache_size)  # key -> fetched bytes

    # --- the contract -------------------------------------------------------------------

    @abstractmethod
    def store(self, values: Mapping[str, bytes]) -> None:
        """Save key -> bytes in one batch; a key already there is left as it is."""

    @abstractmethod
    def get(self, keys: Sequence[str]) -> dict[str, bytes]:
        """Bytes of the keys found, in one batch; missing keys are absent from the dict."""

    @abstractmethod
    def count(self) -> int:
        """Number of values stored for this app."""

    @abstractmethod
    def purge(self) -> None:
        """Delete every stored value of this app (and forget this process's local caches)."""

    def close(self) -> None:
        """Release connections (the next call reopens them)."""

    def forget_local(self) -> None:
        self._stored.clear()
        self._cache.clear()

    # --- arguments ----------------------------------------------------------------------

    def externalize(
        self,
        task: Task[Any, Any],
        values: dict[str, bytes],
        pending: dict[str, bytes] | None = None,
    ) -> tuple[dict[str, bytes], frozenset[str]]:
        """Replace large values by their key: (values with keys, names that are keys).

        With ``pending`` the blobs to store are added to it (the caller stores a whole
        batch with ``flush``); without, they are stored at once.
        """
        if not self.enabled:
            return values, _NO_REFERENCES
        names = oversized(values, self.min_size, self.max_size)
        if not names:
            return values, _NO_REFERENCES
        disabled = task.conf.disable_cache_args
        if disabled:
            names = [n for n in names if n not in disabled]
            if not names:
                return values, _NO_REFERENCES
        batch: dict[str, bytes] = {} if pending is None else pending
        replaced = dict(values)
        for name in names:
            data = values[name]
            key = content_key(data)
            if key not in batch and key not in self._stored:
                batch[key] = data
            replaced[name] = key.encode()
        if pending is None:
            self.flush(batch)
        return replaced, frozenset(names)

    def flush(self, pending: dict[str, bytes]) -> None:
        """Store the blobs gathered by ``externalize(..., pending)`` (one batch)."""
        if pending:
            self.store(pending)
            for key in pending:
                self._stored.put(key, True)
            pending.clear()

    def resolve(self, values: dict[str, bytes], references: Iterable[str]) -> dict[str, bytes]:
        """Values with every key in ``references`` replaced by the bytes it stands for."""
        refs = list(references)
        if not refs:
            return values
        keys = {name: values[name].decode() for name in refs}
        found = self.fetch(keys.values())
        resolved = dict(values)
        for name, key in keys.items():
            resolved[name] = found[key]
        return resolved

    def fetch(self, keys: Iterable[str]) -> dict[str, bytes]:
        """Bytes of ``keys`` from the local LRU, else one ``get``; a missing key raises."""
        found: dict[str, bytes] = {}
        missing: list[str] = []
        for key in keys:
            cached = self._cache.get(key)
            if cached is None:
                missing.append(key)
            else:
                found[key] = cached
        if missing:
            fetched = self.get(missing)
            for key in missing:
                data = fetched.get(key)
                if data is None:
                    raise MissingStoredValueError(key, type(self).__name__, self.app.app_id)
                self._cache.put(key, data)
                found[key] = data
        return found

    # --- results and exceptions ---------------------------------------------------------

    def externalize_value(self, data: bytes) -> bytes:
        """A result/exception to write: ``data`` itself, or the marker and its key.
        Callers check ``len(data) >= self.min_size`` first (the inline fast path)."""
        if not self.enabled or len(data) < self.min_size:
            return data
        if self.max_size > 0 and len(data) > self.max_size:
            return data
        key = content_key(data)
        if key not in self._stored:
            self.store({key: data})
            self._stored.put(key, True)
        return RESULT_MARKER + key.encode()

    def resolve_value(self, data: bytes) -> bytes:
        """The bytes a stored result/exception stands for (inline data as it is)."""
        if not data.startswith(RESULT_MARKER):
            return data
        key = data[len(RESULT_MARKER) :].decode()
        return self.fetch([key])[key]


class DisabledClientDataStore(BaseClientDataStore):
    """Keeps every value inline; still resolves keys left by an earlier configuration
    only to report them as missing."""

    enabled = False

    def store(self, values: Mapping[str, bytes]) -> None:
        return None

    def get(self, keys: Sequence[str]) -> dict[str, bytes]:
        return {}

    def count(self) -> int:
        return 0

    def purge(self) -> None:
        self.forget_local()
