"""The client data store: large serialized values stored once by content hash, passed by key."""

from pynenc.client_data_store.base import (
    RESULT_MARKER,
    BaseClientDataStore,
    DisabledClientDataStore,
)

__all__ = ["RESULT_MARKER", "BaseClientDataStore", "DisabledClientDataStore"]
