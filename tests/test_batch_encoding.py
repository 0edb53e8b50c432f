"""The fused submit path: both twins of ``encode_calls`` and what a caller sees of it
(the same records, ids, errors and stored values as one call at a time)."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pynenc import Pynenc
from pynenc._speedups import _batch_py, _envelope_py
from pynenc.call import deserialize_arguments, serialize_arguments, unpack_with_references
from pynenc.exceptions import ArgumentSerializationError
from pynenc.identifiers import new_invocation_id, new_invocation_ids
from pynenc.serializer import JsonPickleSerializer, JsonSerializer
from tests.apps import core_tasks as t
from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[1]


def _compiled() -> ModuleType | None:
    try:
        return importlib.import_module("pynenc._speedups._batch_c")
    except ImportError:
        if IN_CI:
            raise  # CI installs with a compiler: the compiled twin must be there
        return None


BATCHES = [m for m in (_batch_py, _compiled()) if m is not None]


@pytest.fixture(params=BATCHES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def batch(request: pytest.FixtureRequest) -> ModuleType:
    return request.param  # type: ignore[no-any-return]


def _one_by_one(calls: list[dict[str, Any]], min_size: int) -> list[bytes | None]:
    """What the generic path writes for each call that the fused one may encode."""
    serializer = JsonPickleSerializer()
    out: list[bytes | None] = []
    for kwargs in calls:
        values = serialize_arguments(serializer, "task", kwargs)
        small = all(len(v) < min_size for v in values.values())
        out.append(_envelope_py.pack_arguments(values) if small else None)
    return out


def test_small_calls_encode_as_the_generic_envelope(batch: ModuleType) -> None:
    calls = [{"x": i, "name": "h\u00e9llo"} for i in range(3)] + [{}]
    envelopes, left = batch.encode_calls(calls, JsonPickleSerializer().dumps, 1024)
    assert envelopes == _one_by_one(calls, 1024)
    assert left == {}
    assert deserialize_arguments(JsonPickleSerializer(), envelopes[1]) == calls[1]


def test_large_values_are_left_serialized_for_the_client_data_store(batch: ModuleType) -> None:
    calls = [{"x": 1, "blob": "a" * 50}, {"x": 2, "blob": "b"}]
    envelopes, left = batch.encode_calls(calls, JsonPickleSerializer().dumps, 20)
    assert envelopes[0] is None and envelopes[1] is not None
    assert left == {0: {"x": b"1", "blob": ('"' + "a" * 50 + '"').encode()}}


def test_a_value_the_serializer_refuses_is_left_unserialized(batch: ModuleType) -> None:
    calls = [{"x": 1}, {"x": {1, 2}}, {"x": 3}]
    envelopes, left = batch.encode_calls(calls, JsonSerializer().dumps, 1024)
    assert [e is None for e in envelopes] == [False, True, False]
    assert left == {1: None}


def test_a_serializer_returning_no_bytes_is_left_to_the_generic_path(batch: ModuleType) -> None:
    envelopes, left = batch.encode_calls([{"x": 1}], lambda value: str(value), 1024)
    assert envelopes == [None] and left == {0: None}


scalars = st.one_of(
    st.integers(), st.text(max_size=30), st.booleans(), st.none(), st.floats(allow_nan=False)
)
call_lists = st.lists(
    st.dictionaries(st.text(min_size=1, max_size=8), scalars, max_size=4), max_size=12
)


@given(calls=call_lists, min_size=st.integers(1, 40))
def test_twins_agree_with_the_generic_path(calls: list[dict[str, Any]], min_size: int) -> None:
    dumps = JsonPickleSerializer().dumps
    expected = _one_by_one(calls, min_size)
    for twin in BATCHES:
        envelopes, left = twin.encode_calls(calls, dumps, min_size)
        assert envelopes == expected
        assert sorted(left) == [i for i, e in enumerate(expected) if e is None]


def test_env_var_switches_the_batch_selector_to_the_pure_twin() -> None:
    code = "import json, pynenc._speedups.batch as b; print(json.dumps(b.USING_EXTENSION))"

    def using_extension(disabled: bool) -> bool:
        env = {k: v for k, v in os.environ.items() if k != "PYNENC_NO_EXTENSIONS"}
        if disabled:
            env["PYNENC_NO_EXTENSIONS"] = "1"
        env["PYTHONPATH"] = str(ROOT)
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
        )
        return json.loads(out.stdout)  # type: ignore[no-any-return]

    assert using_extension(disabled=True) is False
    if len(BATCHES) == 2:
        assert using_extension(disabled=False) is True


def test_batch_ids_are_unique_stamped_hex() -> None:
    now = time.time()
    ids = new_invocation_ids(500, now)
    assert len(set(ids)) == 500
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert {i[:12] for i in ids} == {f"{int(now * 1000):012x}"}
    assert ids == sorted(ids)  # call order: a claim's rows sit side by side in the indexes


def test_a_forked_child_never_hands_out_the_parents_next_id() -> None:
    new_invocation_id()  # the parent now holds a partly used chunk of random bits
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its first id and leave at once
        os.write(write_end, new_invocation_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read_end, 64).decode()
    os.close(read_end)
    os.close(write_end)
    assert child[12:] != new_invocation_id()[12:]


# --- what a caller sees -----------------------------------------------------------------


def _arguments(app: Pynenc, invocation_id: str) -> tuple[dict[str, Any], frozenset[str]]:
    record = app.state_backend.get_invocation(invocation_id)
    assert record is not None
    values, references = unpack_with_references(record.arguments)
    resolved = app.client_data_store.resolve(values, references)
    return {k: app.serializer.loads(v) for k, v in resolved.items()}, references


def test_parallelize_mixes_inline_and_stored_arguments_in_order(app: Pynenc) -> None:
    app.reconfigure(min_size_to_cache=64)
    big = "x" * 200
    group = t.echo.parallelize([(1,), (big,), ("small",), (big,)])
    stored = [_arguments(app, i) for i in group.invocation_ids]
    assert [values["value"] for values, _ in stored] == [1, big, "small", big]
    assert [refs for _, refs in stored] == [frozenset(), {"value"}, frozenset(), {"value"}]
    assert app.client_data_store.count() == 1
    assert app.broker.count_invocations() == 4


def test_single_call_with_a_large_argument_stores_it_once(app: Pynenc) -> None:
    app.reconfigure(min_size_to_cache=64)
    big = "y" * 500
    inv = t.echo(big)
    assert _arguments(app, inv.invocation_id) == ({"value": big}, frozenset({"value"}))
    assert app.client_data_store.count() == 1


@pytest.mark.parametrize("parallel", [False, True], ids=["call", "parallelize"])
def test_unserializable_argument_is_named_and_nothing_is_queued(
    app: Pynenc, parallel: bool
) -> None:
    app.reconfigure(serializer_cls="JsonSerializer")
    with pytest.raises(ArgumentSerializationError, match="'value'"):
        if parallel:
            t.echo.parallelize([(1,), ({1, 2},)])
        else:
            t.echo({1, 2})
    assert app.broker.count_invocations() == 0


def test_group_handles_are_made_on_first_use(app: Pynenc) -> None:
    group = t.add.parallelize([(i, 1) for i in range(5)])
    assert len(group) == 5
    ids = group.invocation_ids
    assert [inv.invocation_id for inv in group] == ids
    assert group.invocations[2].invocation_id == ids[2]
    assert all(app.state_backend.get_invocation(i) is not None for i in ids)
