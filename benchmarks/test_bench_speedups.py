"""Compiled vs pure twins of each hot spot, one table per hot spot.

``extra_info["ops_per_sec"]`` carries each twin's rate; compare the two rows of a table
(the compiled twin's goal is 3x the pure one).
"""

from __future__ import annotations

import importlib
from collections import deque
from types import ModuleType
from typing import Any

import msgpack
import pytest

from pynenc._speedups import _dispatch_py, _envelope_py, _hashing_py, _status_py
from pynenc.exceptions import InvalidStatusTransitionError, StatusOwnershipError
from pynenc.invocation import status as status_module
from pynenc.invocation.record import InvocationRecord
from pynenc.invocation.status import InvocationStatus
from pynenc.runner.outcomes import OutcomeBatch, OutcomeWriter
from pynenc.runner.persistent_process import protocol


def _twins(pure: ModuleType, compiled_name: str) -> list[ModuleType]:
    try:
        return [pure, importlib.import_module(f"pynenc._speedups.{compiled_name}")]
    except ImportError:  # a pure install: only one row per table
        return [pure]


ENVELOPES = _twins(_envelope_py, "_envelope_c")
HASHINGS = _twins(_hashing_py, "_hashing_c")
STATUS_TWINS = _twins(_status_py, "_status_c")
DISPATCHES = _twins(_dispatch_py, "_dispatch_c")
ARGUMENTS = {"order_id": b"4242", "customer": b'"ann@example.com"', "amount": b"19.99"}
PACKED = _envelope_py.pack_arguments(ARGUMENTS)


def _name(module: ModuleType) -> str:
    return "compiled" if module.__name__.endswith("_c") else "pure"


def _record(benchmark: Any, module: ModuleType) -> None:
    stats = getattr(benchmark, "stats", None)
    benchmark.extra_info["twin"] = _name(module)
    if stats is not None:
        benchmark.extra_info["ops_per_sec"] = round(1 / stats.stats.median)


@pytest.mark.benchmark(group="speedups-envelope-pack")
@pytest.mark.parametrize("twin", ENVELOPES, ids=_name)
def test_envelope_pack(benchmark: Any, twin: ModuleType) -> None:
    assert benchmark(twin.pack_arguments, ARGUMENTS) == PACKED
    _record(benchmark, twin)


@pytest.mark.benchmark(group="speedups-envelope-unpack")
@pytest.mark.parametrize("twin", ENVELOPES, ids=_name)
def test_envelope_unpack(benchmark: Any, twin: ModuleType) -> None:
    assert benchmark(twin.unpack_arguments, PACKED)[0] == ARGUMENTS
    _record(benchmark, twin)


@pytest.mark.benchmark(group="speedups-arguments-key")
@pytest.mark.parametrize("twin", HASHINGS, ids=_name)
def test_arguments_key(benchmark: Any, twin: ModuleType) -> None:
    assert len(benchmark(twin.arguments_key, ARGUMENTS)) == 32
    _record(benchmark, twin)


@pytest.mark.benchmark(group="speedups-size-check")
@pytest.mark.parametrize("twin", HASHINGS, ids=_name)
def test_size_check(benchmark: Any, twin: ModuleType) -> None:
    assert benchmark(twin.oversized, ARGUMENTS, 1024) == []
    _record(benchmark, twin)


@pytest.mark.benchmark(group="speedups-content-key-64B")
@pytest.mark.parametrize("twin", HASHINGS, ids=_name)
def test_content_key_small(benchmark: Any, twin: ModuleType) -> None:
    """Mostly call overhead: one BLAKE2b block."""
    assert len(benchmark(twin.content_key, b"x" * 64)) == 32
    _record(benchmark, twin)


@pytest.mark.benchmark(group="speedups-content-key-4KB")
@pytest.mark.parametrize("twin", HASHINGS, ids=_name)
def test_content_key(benchmark: Any, twin: ModuleType) -> None:
    """A value big enough to be stored: the hash itself is the cost in both twins."""
    assert len(benchmark(twin.content_key, b"x" * 4096)) == 32
    _record(benchmark, twin)


@pytest.mark.benchmark(group="speedups-oversized-keys")
@pytest.mark.parametrize("twin", HASHINGS, ids=_name)
def test_oversized_keys(benchmark: Any, twin: ModuleType) -> None:
    """Size check + keys of a call with one value to store (1 KB threshold)."""
    values = {**ARGUMENTS, "payload": b"p" * 2048}
    assert list(benchmark(twin.oversized_keys, values, 1024)) == ["payload"]
    _record(benchmark, twin)


def _transition_table(twin: ModuleType) -> Any:
    return twin.TransitionTable(
        statuses=list(InvocationStatus),
        allowed_next=status_module._NEXT,
        takes=status_module._TAKES_OWNERSHIP,
        drops=status_module._DROPS_OWNERSHIP,
        owner_only=status_module._OWNER_ONLY,
        admin_kill=InvocationStatus.KILLED,
        invalid_error=InvalidStatusTransitionError,
        ownership_error=StatusOwnershipError,
    )


@pytest.mark.benchmark(group="speedups-status-transition")
@pytest.mark.parametrize("twin", STATUS_TWINS, ids=_name)
def test_status_transition(benchmark: Any, twin: ModuleType) -> None:
    """The claim step every backend runs: PENDING -> RUNNING by its owner."""
    check = _transition_table(twin).check
    args = (InvocationStatus.PENDING, InvocationStatus.RUNNING, "runner-a", "runner-a", "inv-1")
    assert benchmark(check, *args) == "runner-a"
    _record(benchmark, twin)


@pytest.mark.benchmark(group="speedups-status-transition-batch")
@pytest.mark.parametrize("twin", STATUS_TWINS, ids=_name)
def test_status_transition_batch(benchmark: Any, twin: ModuleType) -> None:
    """What an orchestrator checks when one runner finishes 64 invocations."""
    check_many = _transition_table(twin).check_many
    rows = [
        (f"inv-{i}", InvocationStatus.RUNNING, InvocationStatus.SUCCESS, "runner-a")
        for i in range(64)
    ]
    assert benchmark(check_many, rows, "runner-a") == [None] * 64
    _record(benchmark, twin)


# one PPR prefetch batch: 64 trivial calls, and the 128 events (STARTED, DONE) they produce
CLAIMED = [
    (
        InvocationRecord(
            f"{i:08d}-invocation-id", "tasks.add", PACKED, None, f"{i:08d}-wf", "tasks.add", 1e9
        ),
        0,
        100.0,
    )
    for i in range(64)
]
CALLS_FRAME = _dispatch_py.encode_calls(deque(CLAIMED), 64, {}, 100.5, 30.0)
_IDS = [record.invocation_id for record, _, _ in CLAIMED]
EVENTS_FRAME = msgpack.packb(
    [1] + [e for i in _IDS for e in ([1, i], [2, i, "success", b"5", None, 0.0])],
    use_bin_type=True,
)


@pytest.mark.benchmark(group="speedups-ppr-encode-calls")
@pytest.mark.parametrize("twin", DISPATCHES, ids=_name)
def test_ppr_encode_calls(benchmark: Any, twin: ModuleType) -> None:
    """Dispatcher: 64 claimed records -> the frame sent to a worker."""

    def encode() -> bytes:
        return twin.encode_calls(deque(CLAIMED), 64, {}, 100.5, 30.0)  # type: ignore[no-any-return]

    assert benchmark(encode) == CALLS_FRAME
    _record(benchmark, twin)


@pytest.mark.benchmark(group="speedups-ppr-decode-calls")
@pytest.mark.parametrize("twin", DISPATCHES, ids=_name)
def test_ppr_decode_calls(benchmark: Any, twin: ModuleType) -> None:
    """Worker: the frame -> 64 records, with their num_retries and start_within columns."""
    assert len(benchmark(twin.decode_calls, CALLS_FRAME, InvocationRecord)[1]) == 64
    _record(benchmark, twin)


@pytest.mark.benchmark(group="speedups-ppr-read-events")
@pytest.mark.parametrize("twin", DISPATCHES, ids=_name)
def test_ppr_read_events(benchmark: Any, twin: ModuleType) -> None:
    """Dispatcher: a worker's frame of 128 events -> the OutcomeWriter's columns and its
    view of the worker."""
    read = protocol.event_reader(twin).read

    def read_frame() -> OutcomeBatch:
        batch = OutcomeBatch()
        read(EVENTS_FRAME, {}, set(), set(), {}, batch)
        return batch

    assert len(benchmark(read_frame)) == 128
    _record(benchmark, twin)


class _NoBackend:
    """Takes the OutcomeWriter's calls and stores nothing: only the dispatcher's own work
    is measured."""

    trigger_definitions: tuple[()] = ()

    def __init__(self) -> None:
        self.orchestrator = self.broker = self

    def finish_invocations(
        self, changes: Any, results: Any, exceptions: Any, runner: Any
    ) -> dict[str, Any]:
        assert len(changes) == 128 and len(results) == 64
        return {}

    def route_invocations(self, invocation_ids: Any, delay_sec: float = 0.0) -> None:
        """Nothing is routed in this round."""


@pytest.mark.benchmark(group="speedups-ppr-dispatcher-round")
@pytest.mark.parametrize("twin", DISPATCHES, ids=_name)
def test_ppr_dispatcher_round(benchmark: Any, twin: ModuleType) -> None:
    """The dispatcher's CPU for 64 trivial tasks, backend excluded: encode their CALLS
    frame, read the worker's 128 events, turn them into ``finish_invocations`` arguments."""
    read = protocol.event_reader(twin).read
    writer = OutcomeWriter(_NoBackend(), "runner-a")  # type: ignore[arg-type]

    def dispatch_round() -> OutcomeBatch:
        in_flight: dict[str, None] = {}
        twin.encode_calls(deque(CLAIMED), 64, in_flight, 100.5, 30.0)
        batch = OutcomeBatch()
        read(EVENTS_FRAME, in_flight, set(), set(), {}, batch)
        writer.write(batch)
        return batch

    assert len(benchmark(dispatch_round)) == 128
    _record(benchmark, twin)
