"""Both twins of every compiled hot spot: same API, same output, pinned wire format."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections import deque
from collections.abc import Callable
from hashlib import blake2b
from pathlib import Path
from types import ModuleType
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pynenc._speedups import _dispatch_py, _envelope_py, _hashing_py, _status_py
from pynenc.exceptions import InvalidStatusTransitionError, StatusOwnershipError
from pynenc.invocation import status as status_module
from pynenc.invocation.record import InvocationRecord
from pynenc.invocation.status import InvocationStatus
from pynenc.runner.execution import Outcome
from pynenc.runner.outcomes import ROUTED, OutcomeBatch
from tests.conftest import IN_CI

GOLDEN = Path(__file__).parent / "golden"
ROOT = Path(__file__).resolve().parents[1]


def _compiled(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"pynenc._speedups.{name}")
    except ImportError:
        if IN_CI:
            raise  # CI installs with a compiler: the compiled twin must be there
        return None


ENVELOPES = [m for m in (_envelope_py, _compiled("_envelope_c")) if m is not None]
HASHINGS = [m for m in (_hashing_py, _compiled("_hashing_c")) if m is not None]
STATUS_TWINS = [m for m in (_status_py, _compiled("_status_c")) if m is not None]
DISPATCHES = [m for m in (_dispatch_py, _compiled("_dispatch_c")) if m is not None]


def _transition_table(twin: ModuleType) -> _status_py.TransitionTable:
    """The table ``pynenc.invocation.status`` builds, built with the given twin."""
    return twin.TransitionTable(  # type: ignore[no-any-return]
        statuses=list(InvocationStatus),
        allowed_next=status_module._NEXT,
        takes=status_module._TAKES_OWNERSHIP,
        drops=status_module._DROPS_OWNERSHIP,
        owner_only=status_module._OWNER_ONLY,
        admin_kill=InvocationStatus.KILLED,
        invalid_error=InvalidStatusTransitionError,
        ownership_error=StatusOwnershipError,
    )


TABLES = [_transition_table(m) for m in STATUS_TWINS]


@pytest.fixture(params=ENVELOPES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def envelope(request: pytest.FixtureRequest) -> ModuleType:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=HASHINGS, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def hashing(request: pytest.FixtureRequest) -> ModuleType:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=STATUS_TWINS, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def transitions(request: pytest.FixtureRequest) -> _status_py.TransitionTable:
    return _transition_table(request.param)


@pytest.fixture(params=DISPATCHES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def dispatch(request: pytest.FixtureRequest) -> ModuleType:
    return request.param  # type: ignore[no-any-return]


SAMPLE = {"x": b"1", "name": '"h\u00e9llo"'.encode(), "empty": b"", "big": bytes(range(256)) * 8}


def test_envelope_round_trip(envelope: ModuleType) -> None:
    data = envelope.pack_arguments(SAMPLE)
    assert envelope.unpack_arguments(data) == (SAMPLE, frozenset())
    refs = frozenset({"big"})
    assert envelope.unpack_arguments(envelope.pack_arguments(SAMPLE, refs)) == (SAMPLE, refs)
    assert envelope.unpack_arguments(envelope.pack_arguments({})) == ({}, frozenset())


def test_envelope_matches_golden_file(envelope: ModuleType) -> None:
    golden = (GOLDEN / "envelope_v1.bin").read_bytes()
    assert envelope.pack_arguments(SAMPLE, frozenset({"big"})) == golden
    assert envelope.unpack_arguments(golden) == (SAMPLE, frozenset({"big"}))


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda d: d[:3], "too short"),
        (lambda d: b"\x09" + d[1:], "version 9"),
        (lambda d: d[:-1], "truncated"),
        (lambda d: d + b"\x00", "trailing"),
    ],
)
def test_envelope_refuses_bad_bytes(envelope: ModuleType, mangle: object, message: str) -> None:
    data = envelope.pack_arguments({"a": b"xyz"})
    with pytest.raises(_envelope_py.EnvelopeError, match=message):
        envelope.unpack_arguments(mangle(data))  # type: ignore[operator]


def test_hashing_api(hashing: ModuleType) -> None:
    assert hashing.content_key(b"abc") == hashing.content_key(b"abc") != hashing.content_key(b"")
    assert hashing.oversized(SAMPLE, 100) == ["big"]
    assert hashing.oversized(SAMPLE, 1, 100) == ["x", "name"]
    assert hashing.arguments_key({"a": b"1", "b": b"2"}) == hashing.arguments_key(
        {"b": b"2", "a": b"1"}
    )
    assert hashing.arguments_key({"a": b"1", "b": b"2"}, ("a",)) == hashing.arguments_key(
        {"a": b"1", "b": b"3"}, ("a",)
    )
    golden = json.loads((GOLDEN / "hashing_v1.json").read_text())
    assert hashing.content_key(b"pynenc") == golden["content_key"]
    assert hashing.arguments_key(SAMPLE) == golden["arguments_key"]


def test_oversized_keys_names_the_values_to_store(hashing: ModuleType) -> None:
    keys = hashing.oversized_keys(SAMPLE, 100)
    assert keys == {"big": hashing.content_key(SAMPLE["big"])}
    assert hashing.oversized_keys(SAMPLE, 1, 100) == {
        "x": hashing.content_key(b"1"),
        "name": hashing.content_key(SAMPLE["name"]),
    }


def test_arguments_key_counts_a_repeated_name_once(hashing: ModuleType) -> None:
    values = {"a": b"1", "b": b"2"}
    assert hashing.arguments_key(values, ("b", "a", "b")) == hashing.arguments_key(values)
    assert hashing.arguments_key(values, ("a", "zz")) == hashing.arguments_key(
        {"a": b"1", "zz": b""}
    )


def test_content_key_is_blake2b_128(hashing: ModuleType) -> None:
    """The compiled twin hashes small values itself: it must stay hashlib's BLAKE2b."""
    for size in (0, 1, 127, 128, 129, 255, 256, 257, 1023, 1024, 5000):
        data = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
        assert hashing.content_key(data) == blake2b(data, digest_size=16).hexdigest(), size
    assert hashing.content_key(bytearray(b"abc")) == hashing.content_key(b"abc")


values_strategy = st.dictionaries(st.text(max_size=20), st.binary(max_size=300), max_size=8)


@given(values=values_strategy, data=st.data())
def test_twins_agree_on_envelopes(values: dict[str, bytes], data: st.DataObject) -> None:
    refs = frozenset(data.draw(st.sets(st.sampled_from(sorted(values)))) if values else set())
    packed = {m.pack_arguments(values, refs) for m in ENVELOPES}
    assert len(packed) == 1
    (blob,) = packed
    assert all(m.unpack_arguments(blob) == (values, refs) for m in ENVELOPES)


@given(values=values_strategy, limit=st.integers(0, 400), data=st.data())
def test_twins_agree_on_hashing(values: dict[str, bytes], limit: int, data: st.DataObject) -> None:
    assert len({m.arguments_key(values) for m in HASHINGS}) == 1
    assert len({tuple(m.oversized(values, limit)) for m in HASHINGS}) == 1
    assert len({tuple(m.oversized_keys(values, limit).items()) for m in HASHINGS}) == 1
    names = tuple(data.draw(st.lists(st.sampled_from([*values, "missing"]), max_size=4)))
    assert len({m.arguments_key(values, names) for m in HASHINGS}) == 1


@given(blob=st.binary(max_size=3000))
def test_twins_agree_on_content_keys(blob: bytes) -> None:
    assert len({m.content_key(blob) for m in HASHINGS}) == 1


S = InvocationStatus


def _claimed(count: int) -> list[tuple[InvocationRecord, int, float]]:
    """(record, num_retries, claimed_at) as the dispatcher's backlog holds them."""
    return [
        (
            InvocationRecord(
                f"inv-{i}",
                "tasks.add",
                b"\x01args",
                None if i % 2 else "inv-0",
                f"wf-{i}",
                "tasks.add",
                1_700_000_000.5 + i,
            ),
            i,
            100.0 + i,
        )
        for i in range(count)
    ]


def _reader(twin: ModuleType) -> _dispatch_py.EventReader:
    return twin.EventReader(  # type: ignore[no-any-return]
        {s.value: s for s in S}, S.RUNNING, S.RESUMED, S.PAUSED, S.REROUTED, ROUTED
    )


def _columns(batch: OutcomeBatch) -> tuple[list[Any], ...]:
    return batch.ids, batch.statuses, batch.results, batch.exceptions, batch.retries


def test_calls_frame_round_trip_and_golden_file(dispatch: ModuleType) -> None:
    """The frame a dispatcher sends: what the worker decodes, pinned byte for byte."""
    backlog = deque(_claimed(3))
    in_flight: dict[str, None] = {}
    frame = dispatch.encode_calls(backlog, 2, in_flight, 105.0, 10.0)
    assert list(in_flight) == ["inv-0", "inv-1"] and len(backlog) == 1
    assert frame == (GOLDEN / "ppr_calls_v1.bin").read_bytes()
    kind, records, num_retries, start_within = dispatch.decode_calls(frame, InvocationRecord)
    assert kind == _dispatch_py.CALLS
    assert list(zip(records, num_retries, start_within, strict=True)) == [
        (r, n, 10.0 - (105.0 - at)) for r, n, at in _claimed(2)
    ]
    assert dispatch.decode_calls(msgpack.packb([1]), InvocationRecord) == (1, [], [], [])


EVENTS = [
    7,
    [_dispatch_py.HELLO, 4242],
    [_dispatch_py.STARTED, "inv-0"],
    [_dispatch_py.DONE, "inv-0", "success", b"2", None, 0.0],
    [_dispatch_py.STARTED, "inv-1"],
    [_dispatch_py.PAUSED, "inv-1"],
    [_dispatch_py.RESUMED, "inv-1"],
    [_dispatch_py.RETURNED, "inv-2"],
]


def test_event_frame_becomes_outcomes(dispatch: ModuleType) -> None:
    """A worker's frame (pinned by a golden file): credits, HELLO, and one change per
    status event, in order, as the columns the OutcomeWriter writes; the dispatcher's
    view of the worker kept up to date."""
    frame = (GOLDEN / "ppr_events_v1.bin").read_bytes()
    assert msgpack.packb(EVENTS, use_bin_type=True) == frame
    in_flight: dict[str, None] = dict.fromkeys(["inv-0", "inv-1", "inv-2"])
    started: set[str] = set()
    running: set[str] = set()
    lost_runs = {"inv-0": 1}
    batch = OutcomeBatch()
    grant, hello = _reader(dispatch).read(frame, in_flight, started, running, lost_runs, batch)
    assert (grant, hello) == (7, True)
    assert batch.changes() == [
        ("inv-0", S.RUNNING),
        ("inv-0", S.SUCCESS),
        ("inv-1", S.RUNNING),
        ("inv-1", S.PAUSED),
        ("inv-1", S.RESUMED),
        ("inv-2", S.REROUTED),
    ]
    assert (batch.results, batch.exceptions) == ([("inv-0", b"2")], [])
    assert batch.retries == [("inv-2", 0.0)]  # handed back to the broker once written
    assert batch.outcomes() == [
        Outcome("inv-0", S.RUNNING),
        Outcome("inv-0", S.SUCCESS, b"2", None, 0.0),
        Outcome("inv-1", S.RUNNING),
        Outcome("inv-1", S.PAUSED),
        Outcome("inv-1", S.RESUMED),
        Outcome("inv-2", S.REROUTED),
    ]
    assert list(in_flight) == ["inv-1"] and started == running == {"inv-1"}
    assert lost_runs == {}


ids = st.sampled_from(["inv-0", "inv-1", "inv-2"])
events_strategy = st.lists(
    st.one_of(
        st.tuples(st.sampled_from([1, 3, 4, 5]), ids).map(list),
        st.tuples(
            st.just(2),
            ids,
            st.sampled_from(["success", "failed", "retry"]),
            st.none() | st.binary(max_size=8),
            st.none() | st.binary(max_size=8),
            st.floats(0, 10),
        ).map(list),
        # a short DONE: both twins fail at the same field, with the same state left
        st.tuples(st.just(2), ids, st.sampled_from(["success", "retry"]), st.none()).map(list),
    ),
    max_size=12,
)


@given(events=events_strategy, grant=st.integers(0, 100))
def test_twins_agree_on_event_frames(events: list[list[object]], grant: int) -> None:
    frame = msgpack.packb([grant, *events], use_bin_type=True)
    results = []
    for twin in DISPATCHES:
        state = (dict.fromkeys(["inv-0", "inv-1"]), {"inv-1"}, {"inv-1"}, {"inv-2": 2})
        batch = OutcomeBatch()
        try:
            returned: object = _reader(twin).read(frame, *state, batch)
        except Exception as error:  # short DONE events: the same error, at the same point
            returned = type(error)
        results.append(repr((returned, state, _columns(batch))))
    assert len(set(results)) == 1


records_strategy = st.builds(
    InvocationRecord,
    st.text(max_size=40),
    st.sampled_from(["tasks.add", "t\u00e9sts.long_task_name_" + "x" * 40]),
    st.binary(max_size=300),
    st.none() | st.text(max_size=5),
    st.text(max_size=5),
    st.text(max_size=5),
    st.floats(allow_nan=False) | st.integers(-(2**63), 2**64 - 1),
)


@given(
    claimed=st.lists(
        st.tuples(records_strategy, st.integers(0, 2**40), st.floats(0, 1e6)), max_size=20
    ),
    now=st.floats(0, 1e6),
    within=st.floats(0, 100),
)
def test_twins_agree_on_calls_frames(
    claimed: list[tuple[InvocationRecord, int, float]], now: float, within: float
) -> None:
    """Same bytes out (ints of any width, long and non-ASCII strings), same records back."""
    frames = {
        twin.encode_calls(deque(claimed), len(claimed), {}, now, within) for twin in DISPATCHES
    }
    assert len(frames) == 1
    (frame,) = frames
    decoded = [twin.decode_calls(frame, InvocationRecord) for twin in DISPATCHES]
    assert all(d == decoded[0] for d in decoded)
    assert decoded[0][1] == [record for record, _, _ in claimed]


class _PlainRecord:
    """Not a slots dataclass: the compiled twin must fall back to calling it."""

    def __init__(self, *fields: object) -> None:
        self.fields = fields

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _PlainRecord) and other.fields == self.fields


def test_decode_calls_with_any_record_factory(dispatch: ModuleType) -> None:
    frame = dispatch.encode_calls(deque(_claimed(2)), 2, {}, 105.0, 10.0)
    for make in (_PlainRecord, lambda *fields: _PlainRecord(*fields)):
        _, records, _, _ = dispatch.decode_calls(frame, make)
        assert records == [
            _PlainRecord(*[getattr(r, f) for f in _dispatch_py.CALL_FIELDS])
            for r, _, _ in _claimed(2)
        ]


def test_transition_ownership_rules(transitions: _status_py.TransitionTable) -> None:
    assert transitions.check(None, S.REGISTERED, None, None) is None
    assert transitions.check(S.REGISTERED, S.PENDING, None, "r-a") == "r-a"
    assert transitions.check(S.PENDING, S.RUNNING, "r-a", "r-a") == "r-a"
    assert transitions.check(S.RUNNING, S.SUCCESS, "r-a", "r-a") is None
    assert transitions.check(S.RUNNING, S.RUNNING_RECOVERY, "r-a", "r-b") == "r-b"
    assert transitions.check(S.RUNNING, S.KILLED, "r-a", None) is None  # operator kill
    with pytest.raises(InvalidStatusTransitionError):
        transitions.check(S.SUCCESS, S.RUNNING, None, "r-a", "inv-1")
    with pytest.raises(InvalidStatusTransitionError):
        transitions.check(None, S.PENDING, None, "r-a")
    with pytest.raises(StatusOwnershipError):
        transitions.check(S.RUNNING, S.SUCCESS, "r-a", "r-b", "inv-1")
    with pytest.raises(KeyError):
        transitions.check("no-such-status", S.PENDING, None, "r-a")


def test_transitions_match_golden_file(transitions: _status_py.TransitionTable) -> None:
    """Every (current, new) pair by the owner, pinned: a table change shows up in review."""
    golden = json.loads((GOLDEN / "status_transitions_v1.json").read_text())
    assert _transition_outcomes(transitions) == golden


def _transition_outcomes(table: _status_py.TransitionTable) -> dict[str, str]:
    outcomes = {}
    for current in [None, *S]:
        for new in S:
            try:
                result = repr(table.check(current, new, "owner", "owner"))
            except InvalidStatusTransitionError:
                result = "invalid"
            outcomes[f"{current}->{new}"] = result
    return outcomes


def _outcome(check: Callable[..., str | None], args: tuple[object, ...]) -> object:
    try:
        return ("owner", check(*args))
    except Exception as exc:  # the exact error type and its message must agree too
        return (type(exc), str(exc))


statuses = st.sampled_from(list(S))
runners = st.sampled_from([None, "r-a", "r-b"])


@given(current=st.none() | statuses, new=statuses, owner=runners, runner=runners)
def test_twins_agree_on_transitions(
    current: InvocationStatus | None,
    new: InvocationStatus,
    owner: str | None,
    runner: str | None,
) -> None:
    args = (current, new, owner, runner, "inv-1")
    assert len({_outcome(table.check, args) for table in TABLES}) == 1
    assert _outcome(TABLES[0].check, args) == _outcome(status_module.compute_transition, args)


def test_twins_agree_on_every_transition() -> None:
    """Exhaustive over the small space hypothesis samples: all (current, new, owner, runner)."""
    people = [None, "r-a", "r-b"]
    for current in [None, *S]:
        for new in S:
            for owner in people:
                for runner in people:
                    args = (current, new, owner, runner, "inv-1")
                    assert len({_outcome(t.check, args) for t in TABLES}) == 1, args


def test_check_many_returns_each_rows_owner_or_error(
    transitions: _status_py.TransitionTable,
) -> None:
    """A bad row is reported in its place and never stops the rows after it."""
    verdicts = transitions.check_many(
        [
            ("inv-1", S.PENDING, S.RUNNING, "r-a"),
            ("inv-2", S.SUCCESS, S.RUNNING, None),
            ("inv-3", S.RUNNING, S.SUCCESS, "r-b"),
            ("inv-4", S.RUNNING, S.SUCCESS, "r-a"),
        ],
        "r-a",
    )
    assert verdicts[0] == "r-a" and verdicts[3] is None
    assert isinstance(verdicts[1], InvalidStatusTransitionError)
    assert isinstance(verdicts[2], StatusOwnershipError)
    assert "inv-2" in str(verdicts[1]) and "inv-3" in str(verdicts[2])


def test_check_many_chains_moves_of_one_invocation(
    transitions: _status_py.TransitionTable,
) -> None:
    """Claim, start and finish in one batch: each move starts where the last allowed one
    left the invocation; a refused move leaves it where it was."""
    verdicts = transitions.check_many(
        [
            ("inv-1", S.REGISTERED, S.PENDING, None),
            ("inv-1", S.REGISTERED, S.PENDING, None),  # refused: inv-1 is PENDING now
            ("inv-1", S.REGISTERED, S.RUNNING, None),  # allowed: from PENDING
            ("inv-1", S.REGISTERED, S.SUCCESS, None),
        ],
        "r-a",
    )
    assert verdicts[0] == "r-a" and verdicts[2] == "r-a" and verdicts[3] is None
    assert isinstance(verdicts[1], InvalidStatusTransitionError)


def _one_by_one(
    table: _status_py.TransitionTable,
    rows: list[tuple[str, InvocationStatus | None, InvocationStatus, str | None]],
    runner: str | None,
) -> list[object]:
    """What applying the rows one by one with ``check`` gives (the batch's contract)."""
    state: dict[str, tuple[InvocationStatus | None, str | None]] = {}
    verdicts: list[object] = []
    for invocation_id, current, new, owner in rows:
        current, owner = state.get(invocation_id, (current, owner))
        verdict = _outcome(table.check, (current, new, owner, runner, invocation_id))
        if verdict[0] == "owner":
            state[invocation_id] = (new, verdict[1])  # type: ignore[assignment]
        verdicts.append(verdict)
    return verdicts


@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["inv-1", "inv-2", "inv-3"]), st.none() | statuses, statuses, runners
        ),
        max_size=40,
    ),
    runner=runners,
)
def test_twins_agree_on_batches(
    rows: list[tuple[str, InvocationStatus | None, InvocationStatus, str | None]],
    runner: str | None,
) -> None:
    expected = _one_by_one(TABLES[0], rows, runner)
    for table in TABLES:
        verdicts = table.check_many(rows, runner)
        assert [
            (type(v), str(v)) if isinstance(v, Exception) else ("owner", v) for v in verdicts
        ] == expected


def _active_twins(env_value: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYNENC_NO_EXTENSIONS"}
    if env_value is not None:
        env["PYNENC_NO_EXTENSIONS"] = env_value
    env["PYTHONPATH"] = str(ROOT)
    code = "import json, pynenc._speedups as s; print(json.dumps(s.active_twins()))"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_env_var_switches_to_pure_twins() -> None:
    assert set(_active_twins("1").values()) == {"pure"}
    if len(ENVELOPES) == 2:
        assert set(_active_twins(None).values()) == {"compiled"}


@pytest.mark.parametrize(
    "message",
    [[0, [2, "inv-0", "success"]], [0, [1]], [0, 5]],
    ids=["short DONE", "no id", "not an event"],
)
def test_malformed_event_frame_raises(dispatch: ModuleType, message: list[object]) -> None:
    """A corrupt frame is an error the dispatcher logs, never a crash of its process."""
    with pytest.raises((IndexError, TypeError)):
        _reader(dispatch).read(msgpack.packb(message), {}, set(), set(), {}, OutcomeBatch())


def test_outcome_batch_gives_back_the_outcomes_it_was_made_of() -> None:
    """Triggers still see one Outcome per change, results on the change that ended."""
    outcomes = [
        Outcome("inv-0", S.RUNNING),
        Outcome("inv-1", S.RUNNING),
        Outcome("inv-0", S.SUCCESS, result=b"2"),
        Outcome("inv-1", S.RETRY, retry_delay=1.5),
        Outcome("inv-2", S.FAILED, exception=b"boom"),
        Outcome("inv-3", S.REROUTED),
    ]
    batch = OutcomeBatch.of(outcomes)
    assert batch.outcomes() == outcomes
    assert batch.retries == [("inv-1", 1.5), ("inv-3", 0.0)]
    merged = OutcomeBatch.of(outcomes[:3])
    merged.extend(OutcomeBatch.of(outcomes[3:]))
    assert merged.outcomes() == outcomes and len(merged) == 6


def test_encode_calls_failing_on_a_record_leaves_the_rest_queued(dispatch: ModuleType) -> None:
    """A record missing a field raises, and the records after it stay in the backlog."""
    claimed: list[Any] = _claimed(4)
    claimed[1] = (object(), 0, 100.0)
    backlog: deque[Any] = deque(claimed)
    in_flight: dict[str, None] = {}
    with pytest.raises(AttributeError):
        dispatch.encode_calls(backlog, 4, in_flight, 105.0, 10.0)
    assert list(in_flight) == ["inv-0"]
    assert list(backlog) == claimed[2:]
