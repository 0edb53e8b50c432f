"""What a user sees calling tasks: results, errors, retries, groups, nesting, concurrency."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import threading
from decimal import Decimal
from typing import Any

import pytest

from pynenc import InvocationStatus, Pynenc
from pynenc.exceptions import BackendError, ConcurrencyControlledError, KeyArgumentsMismatchError
from pynenc.invocation import submit
from tests.apps import core_tasks as t


def test_call_returns_invocation_at_once_and_result_blocks(runner: Pynenc) -> None:
    t.events["hold"] = threading.Event()
    inv = t.blocker("hold")
    assert inv.invocation_id
    assert inv.status in {
        InvocationStatus.REGISTERED,
        InvocationStatus.PENDING,
        InvocationStatus.RUNNING,
    }
    t.events["hold"].set()
    assert inv.result == "hold"
    assert inv.status is InvocationStatus.SUCCESS


def test_round_trip_keeps_python_types(runner: Pynenc) -> None:
    value = {
        "set": {1, 2},
        "tuple": (1, "a"),
        "bytes": b"\x00\xff",
        "when": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        "money": Decimal("1.10"),
        "point": t.Point(1, 2),
        "color": t.Color.RED,
    }
    assert t.echo(value).result == value


def test_defaults_and_keywords_are_bound(runner: Pynenc) -> None:
    assert t.greet("ann").result == "hello ann"
    assert t.greet(name="bob", greeting="hi").result == "hi bob"


def test_wrong_arguments_fail_in_the_caller(app: Pynenc) -> None:
    with pytest.raises(TypeError, match="Invalid arguments for task"):
        t.add(1)  # type: ignore[call-arg]


def test_failure_reraises_the_task_exception_type_with_remote_traceback(runner: Pynenc) -> None:
    inv = t.fail(7)
    with pytest.raises(t.CustomError) as info:
        inv.result
    assert info.value.code == 7 and info.value.detail == "it failed"
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "Remote traceback" in notes and "in fail" in notes
    assert inv.status is InvocationStatus.FAILED


def test_retry_for_listed_exception_until_success(runner: Pynenc) -> None:
    inv = t.flaky("k1", failures=2)
    assert inv.result == 3
    assert inv.num_retries == 2
    statuses = [h.status for h in inv.history]
    assert statuses.count(InvocationStatus.RETRY) == 2
    assert statuses[-1] is InvocationStatus.SUCCESS


def test_retries_exhausted_raises_last_error(runner: Pynenc) -> None:
    inv = t.flaky("k2", failures=5)
    with pytest.raises(ConnectionError, match="attempt 3"):
        inv.result
    assert inv.num_retries == 2


def test_retry_delay_grows_exponentially(runner: Pynenc) -> None:
    inv = t.always_retry("k3")
    with pytest.raises(Exception, match="again"):
        inv.result
    times = [h.timestamp for h in inv.history if h.status is InvocationStatus.PENDING]
    assert len(times) == 4  # first run + 3 retries
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # delays 0.05, 0.1, 0.2: each gap at least its delay, and growing
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1 and gaps[2] >= 0.2


def test_history_records_every_transition_with_runner(runner: Pynenc) -> None:
    inv = t.add(1, 2)
    assert inv.result == 3
    history = inv.history
    assert [h.status for h in history] == [
        InvocationStatus.REGISTERED,
        InvocationStatus.PENDING,
        InvocationStatus.RUNNING,
        InvocationStatus.SUCCESS,
    ]
    assert history[0].runner_id is None
    assert all(h.runner_id == runner.runner.runner_id for h in history[1:])
    assert [h.timestamp for h in history] == sorted(h.timestamp for h in history)


def test_parallelize_results_in_input_order(runner: Pynenc) -> None:
    group = t.add.parallelize([(i, i) for i in range(300)])
    assert len(group.invocations) == 300
    assert group.results == [2 * i for i in range(300)]


def test_parallelize_over_many_batches_queues_every_call_in_order(
    app: Pynenc, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(submit, "SUBMIT_BATCH", 7)  # 30 calls: 5 writes, 4 of them overlapped
    ids = [inv.invocation_id for inv in t.add.parallelize([(i, 0) for i in range(30)])]
    assert len(set(ids)) == 30
    queued: list[str] = []
    while len(queued) < 30:
        popped = app.broker.retrieve_invocations(30, 1.0)
        assert popped, "the queue holds fewer invocations than were submitted"
        queued += popped
    assert queued == ids


def test_a_failed_batch_write_raises_and_writes_no_later_batch(
    app: Pynenc, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(submit, "SUBMIT_BATCH", 5)
    write = app.orchestrator.submit_invocations
    writes: list[int] = []

    def second_write_fails(registrations: Any, records: Any) -> list[str]:
        writes.append(len(records))
        if len(writes) == 2:
            raise BackendError("disk full")
        return write(registrations, records)

    monkeypatch.setattr(app.orchestrator, "submit_invocations", second_write_fails)
    with pytest.raises(BackendError, match="disk full"):
        t.add.parallelize([(i, 0) for i in range(20)])
    assert writes == [5, 5]
    assert app.broker.count_invocations() == 5


def test_parallelize_accepts_dicts_arguments_and_common_args(runner: Pynenc) -> None:
    group = t.greet.parallelize([{"name": "a"}, t.greet.args("b", greeting="yo"), ("c",)])
    assert group.results == ["hello a", "yo b", "hello c"]
    common = t.greet.parallelize([("x",), ("y",)], common_args={"greeting": "hey"})
    assert common.results == ["hey x", "hey y"]


def test_async_results(runner: Pynenc) -> None:
    async def main() -> tuple[int, list[int]]:
        one = await t.add(2, 3).async_result()
        many = await t.add.parallelize([(1, 1), (2, 2)]).async_results()
        return one, many

    assert asyncio.run(main()) == (5, [2, 4])


def test_async_task_runs(runner: Pynenc) -> None:
    assert t.async_double.parallelize([(i,) for i in range(20)]).results == [
        2 * i for i in range(20)
    ]


def test_direct_task_returns_value(runner: Pynenc) -> None:
    assert t.direct_mul(6, 7) == 42


def test_nested_calls_deeper_than_thread_count(runner: Pynenc) -> None:
    # fib(10) nests 10 deep with 4 threads; each waiting task gives up its slot
    assert t.fib(10).result == 55


def test_running_concurrency_task_never_overlaps(runner: Pynenc) -> None:
    group = t.exclusive.parallelize([(str(i), 0.02) for i in range(6)])
    assert sorted(group.results) == [str(i) for i in range(6)]
    spans = sorted(t.spans, key=lambda s: s[1])
    assert len(spans) == 6
    for (_, _, end), (_, start, _) in itertools.pairwise(spans):
        assert start >= end, "two runs of a TASK-controlled task overlapped"


def test_registration_concurrency_arguments_reuses_pending_invocation(app: Pynenc) -> None:
    first = t.register_once(1)
    again = t.register_once(1)
    other = t.register_once(2)
    assert again.invocation_id == first.invocation_id
    assert other.invocation_id != first.invocation_id


def test_registration_keys_raise_on_different_non_key_arguments(app: Pynenc) -> None:
    first = t.keyed("a", 1)
    assert t.keyed("a", 1).invocation_id == first.invocation_id
    with pytest.raises(KeyArgumentsMismatchError):
        t.keyed("a", 2)
    assert t.keyed("b", 2).invocation_id != first.invocation_id


def test_registration_released_once_final(runner: Pynenc) -> None:
    first = t.register_once(5)
    assert first.result == 5
    assert t.register_once(5).invocation_id != first.invocation_id


def test_get_invocation_by_id(runner: Pynenc) -> None:
    inv = t.add(4, 4)
    assert inv.result == 8
    again = runner.get_invocation(inv.invocation_id)
    assert again.result == 8 and again.task is t.add


def test_purge_clears_only_this_app(runner: Pynenc) -> None:
    inv = t.add(1, 1)
    assert inv.result == 2
    runner.purge()
    with pytest.raises(Exception, match="No invocation"):
        runner.get_invocation(inv.invocation_id)


def test_concurrency_controlled_final_when_not_rerouting(app: Pynenc) -> None:
    from pynenc.invocation.record import Registration

    orch = app.orchestrator
    orch.register_invocations([Registration("h1", "t.x", None, "key")])
    orch.register_invocations([Registration("h2", "t.x", None, "key", None, False)])
    assert orch.claim_invocations(["h1"], "r").claimed == ["h1"]
    result = orch.claim_invocations(["h2"], "r")
    assert result.final == ["h2"]
    with pytest.raises(ConcurrencyControlledError):
        from pynenc.invocation.dist import final_values

        final_values(app, ["h2"])
