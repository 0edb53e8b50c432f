"""Large arguments, results and exceptions through the client data store."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pynenc import Pynenc
from pynenc.call import unpack_with_references
from pynenc.client_data_store.base import RESULT_MARKER
from pynenc.exceptions import MissingStoredValueError
from tests.apps import cds_tasks as t
from tests.conftest import running
from tests.runner_support import SQLITE

BASE = dict(t.app.config_values)


def configure(tmp_path: Path, **extra: Any) -> Pynenc:
    app = t.app
    app.config_values.clear()
    app.config_values.update(BASE)
    config: dict[str, Any] = {
        **SQLITE,
        "sqlite_db_path": str(tmp_path / "cds.db"),
        "runner_cls": "ThreadRunner",
        "dev_mode_force_sync_tasks": False,
        **extra,
    }
    app.reconfigure(**config)
    app.purge()
    return app


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Pynenc]:
    yield configure(tmp_path)
    t.app.close()


def count(app: Pynenc) -> int:
    return app.client_data_store.count()


def references(app: Pynenc, invocation_id: str) -> frozenset[str]:
    record = app.state_backend.get_invocation(invocation_id)
    assert record is not None
    return unpack_with_references(record.arguments)[1]


def test_fifty_megabyte_argument_round_trip(app: Pynenc) -> None:
    blob = os.urandom(50 * 1024 * 1024)
    with running(app):
        inv = t.size(blob)
        assert inv.result == len(blob)
    assert references(app, inv.invocation_id) == {"data"}
    assert count(app) == 1


def test_identical_arguments_stored_once(app: Pynenc) -> None:
    blob = os.urandom(100_000)
    group = t.size.parallelize([(blob,) for _ in range(20)])
    singles = [t.size(blob) for _ in range(5)]
    assert count(app) == 1
    with running(app):
        assert group.results == [len(blob)] * 20
        assert [i.result for i in singles] == [len(blob)] * 5


def test_small_arguments_stay_inline(app: Pynenc) -> None:
    inv = t.size(b"small")
    assert references(app, inv.invocation_id) == frozenset()
    assert count(app) == 0


def test_max_size_to_cache(tmp_path: Path) -> None:
    app = configure(tmp_path, max_size_to_cache=10_000)
    inv_big = t.size(os.urandom(20_000))
    inv_mid = t.size(os.urandom(5_000))
    assert references(app, inv_big.invocation_id) == frozenset()
    assert references(app, inv_mid.invocation_id) == {"data"}
    with running(app):
        assert inv_big.result == 20_000
        assert inv_mid.result == 5_000


def test_disable_cache_args(app: Pynenc) -> None:
    inv = t.both(os.urandom(5000), os.urandom(5000))
    assert references(app, inv.invocation_id) == {"stored"}
    with running(app):
        assert inv.result == 10_000


def test_disable_client_data_store(tmp_path: Path) -> None:
    app = configure(
        tmp_path, client_data_store_cls="DisabledClientDataStore", disable_client_data_store=True
    )
    inv = t.size(os.urandom(100_000))
    assert references(app, inv.invocation_id) == frozenset()
    with running(app):
        assert inv.result == 100_000
        assert t.make(50_000).result == b"x" * 50_000


def test_large_result_and_exception(app: Pynenc) -> None:
    with running(app):
        inv = t.make(2_000_000)
        assert inv.result == b"x" * 2_000_000
        failing = t.fail(10_000)
        with pytest.raises(Exception, match="yyyy"):
            failing.result
        small = t.make(3)
        assert small.result == b"xxx"
    raw = app.state_backend.get_results([inv.invocation_id])[inv.invocation_id]
    assert raw.startswith(RESULT_MARKER)
    encoded = app.state_backend.get_exception(failing.invocation_id)
    assert encoded is not None and encoded.startswith(RESULT_MARKER)
    inline = app.state_backend.get_results([small.invocation_id])[small.invocation_id]
    assert not inline.startswith(RESULT_MARKER)


def test_missing_key_gives_clear_error(app: Pynenc) -> None:
    store = app.client_data_store
    with pytest.raises(MissingStoredValueError, match="not in the client data store"):
        store.fetch(["0" * 32])
    t.make(1)  # nothing stored
    blob = os.urandom(10_000)
    values, refs = store.externalize(t.size, {"data": blob})
    store.purge()
    with pytest.raises(MissingStoredValueError) as info:
        store.resolve(values, refs)
    assert info.value.key == values["data"].decode()


def test_local_cache_is_bounded(tmp_path: Path) -> None:
    app = configure(tmp_path, local_cache_size=3)
    store = app.client_data_store
    keys = []
    for _ in range(10):
        values, _ = store.externalize(t.size, {"data": os.urandom(2000)})
        keys.append(values["data"].decode())
    found = store.fetch(keys)
    assert len(found) == 10
    assert len(store._cache) == 3
    assert len(store._stored) == 3
