"""Client data store contract: every backend stores, returns and purges bytes by key."""

from __future__ import annotations

import os

from pynenc import Pynenc
from pynenc._speedups.hashing import content_key
from tests.contract.conftest import MakeApp


def test_store_and_get(app: Pynenc) -> None:
    store = app.client_data_store
    blob = os.urandom(5000)
    key = content_key(blob)
    store.store({key: blob})
    assert store.get([key]) == {key: blob}


def test_missing_keys_absent(app: Pynenc) -> None:
    store = app.client_data_store
    store.store({"a": b"1"})
    assert store.get(["a", "nope"]) == {"a": b"1"}
    assert store.get([]) == {}


def test_store_is_idempotent(app: Pynenc) -> None:
    store = app.client_data_store
    store.store({"k": b"first"})
    store.store({"k": b"first"})
    assert store.get(["k"]) == {"k": b"first"}


def test_batch(app: Pynenc) -> None:
    store = app.client_data_store
    values = {f"k{i}": os.urandom(100) for i in range(50)}
    store.store(values)
    assert store.get(list(values)) == values


def test_purge(app: Pynenc) -> None:
    store = app.client_data_store
    store.store({"k": b"v"})
    store.purge()
    assert store.get(["k"]) == {}


def test_apps_are_isolated(make_app: MakeApp) -> None:
    one, two = make_app("cds-one"), make_app("cds-two")
    one.client_data_store.store({"k": b"one"})
    assert two.client_data_store.get(["k"]) == {}
    two.client_data_store.store({"k": b"two"})
    two.client_data_store.purge()
    assert one.client_data_store.get(["k"]) == {"k": b"one"}


def test_count(app: Pynenc) -> None:
    store = app.client_data_store
    assert store.count() == 0
    store.store({"a": b"1", "b": b"2"})
    store.store({"a": b"1"})
    assert store.count() == 2
