"""State backend contract: records, history, results, exceptions, heartbeats, purge."""

from __future__ import annotations

import time

from pynenc import Pynenc
from pynenc.invocation.record import InvocationRecord
from pynenc.invocation.status import InvocationStatus, StatusRecord
from pynenc.state_backend.base import RunnerInfo

from .conftest import MakeApp, new_ids


def make_record(
    invocation_id: str, task_id: str = "tasks.add", **changes: object
) -> InvocationRecord:
    record = InvocationRecord(
        invocation_id=invocation_id,
        task_id=task_id,
        arguments=b"\x82\xa1a\x01\xa1b\xc4\x02\x00\xff",
        parent_invocation_id=None,
        workflow_id=invocation_id,
        workflow_task_id=task_id,
        created_at=1_700_000_000.25,
    )
    for name, value in changes.items():
        setattr(record, name, value)
    return record


def make_runner(runner_id: str, last_heartbeat: float) -> RunnerInfo:
    return RunnerInfo(runner_id, "host-a", 1234, "ThreadRunner", 1_700_000_000.0, last_heartbeat)


def test_records_round_trip_in_batches(app: Pynenc) -> None:
    ids = new_ids(3)
    records = [
        make_record(ids[0]),
        make_record(ids[1], parent_invocation_id=ids[0]),
        make_record(ids[2]),
    ]
    app.state_backend.store_invocations(records)

    found = app.state_backend.get_invocations([*ids, "unknown"])

    assert found == dict(zip(ids, records, strict=True))
    assert app.state_backend.get_invocation(ids[1]) == records[1]
    assert app.state_backend.get_invocation("unknown") is None


def test_storing_an_existing_record_again_changes_nothing(app: Pynenc) -> None:
    (invocation_id,) = new_ids(1)
    original = make_record(invocation_id)
    app.state_backend.store_invocations([original])

    app.state_backend.store_invocations([make_record(invocation_id, task_id="tasks.other")])

    assert app.state_backend.get_invocation(invocation_id) == original


def test_two_thousand_records_in_one_call(app: Pynenc) -> None:
    records = [make_record(i) for i in new_ids(2000)]
    app.state_backend.store_invocations(records)

    found = app.state_backend.get_invocations([r.invocation_id for r in records])

    assert len(found) == 2000
    assert found[records[-1].invocation_id] == records[-1]


def test_history_is_kept_in_order_per_invocation(app: Pynenc) -> None:
    first, second = new_ids(2)
    registered = StatusRecord(InvocationStatus.REGISTERED, 1.0, None)
    pending = StatusRecord(InvocationStatus.PENDING, 2.0, "runner-1")
    running = StatusRecord(InvocationStatus.RUNNING, 3.0, "runner-1")
    app.state_backend.add_history([(first, registered), (second, registered), (first, pending)])
    app.state_backend.add_history([(first, running)])

    assert app.state_backend.get_history(first) == [registered, pending, running]
    assert app.state_backend.get_history(second) == [registered]
    assert app.state_backend.get_history("unknown") == []


def test_results_round_trip_and_overwrite(app: Pynenc) -> None:
    first, second, third = new_ids(3)
    app.state_backend.store_results([(first, b"one"), (second, b"\x00two")])
    app.state_backend.store_results([(first, b"uno")])

    assert app.state_backend.get_results([first, second, third]) == {
        first: b"uno",
        second: b"\x00two",
    }
    assert app.state_backend.get_result(second) == b"\x00two"
    assert app.state_backend.get_result(third) is None


def test_exceptions_round_trip_apart_from_results(app: Pynenc) -> None:
    first, second = new_ids(2)
    app.state_backend.store_exceptions([(first, b"ValueError: bad")])
    app.state_backend.store_results([(second, b"ok")])

    assert app.state_backend.get_exceptions([first, second]) == {first: b"ValueError: bad"}
    assert app.state_backend.get_exception(first) == b"ValueError: bad"
    assert app.state_backend.get_exception(second) is None
    assert app.state_backend.get_result(first) is None


def test_runner_heartbeats_refresh_and_order(app: Pynenc) -> None:
    now = time.time()
    app.state_backend.store_runner_heartbeat(make_runner("runner-a", now - 10))
    app.state_backend.store_runner_heartbeat(make_runner("runner-b", now - 5))
    app.state_backend.store_runner_heartbeat(make_runner("runner-a", now))

    runners = app.state_backend.get_runners()

    assert [r.runner_id for r in runners] == ["runner-a", "runner-b"]
    assert runners[0] == make_runner("runner-a", now)


def test_removed_runner_is_forgotten(app: Pynenc) -> None:
    app.state_backend.store_runner_heartbeat(make_runner("runner-a", time.time()))
    app.state_backend.store_runner_heartbeat(make_runner("runner-b", time.time()))

    app.state_backend.remove_runner("runner-a")
    app.state_backend.remove_runner("never-seen")

    assert [r.runner_id for r in app.state_backend.get_runners()] == ["runner-b"]


def test_purge_only_drops_its_own_app(make_app: MakeApp) -> None:
    one, other = make_app("one"), make_app("other")
    mine, theirs = new_ids(2)
    for app, invocation_id in ((one, mine), (other, theirs)):
        app.state_backend.store_invocations([make_record(invocation_id)])
        registered = StatusRecord(InvocationStatus.REGISTERED, 1.0, None)
        app.state_backend.add_history([(invocation_id, registered)])
        app.state_backend.store_results([(invocation_id, b"r")])
        app.state_backend.store_exceptions([(invocation_id, b"e")])
        app.state_backend.store_runner_heartbeat(make_runner(f"runner-{app.app_id}", time.time()))

    one.state_backend.purge()

    assert one.state_backend.get_invocation(mine) is None
    assert one.state_backend.get_history(mine) == []
    assert one.state_backend.get_result(mine) is None
    assert one.state_backend.get_exception(mine) is None
    assert one.state_backend.get_runners() == []
    assert other.state_backend.get_invocation(theirs) is not None
    assert len(other.state_backend.get_history(theirs)) == 1
    assert other.state_backend.get_result(theirs) == b"r"
    assert other.state_backend.get_exception(theirs) == b"e"
    assert [r.runner_id for r in other.state_backend.get_runners()] == ["runner-other"]


def test_apps_never_read_each_others_data(make_app: MakeApp) -> None:
    one, other = make_app("one"), make_app("other")
    (invocation_id,) = new_ids(1)
    other.state_backend.store_invocations([make_record(invocation_id)])
    other.state_backend.store_results([(invocation_id, b"r")])

    assert one.state_backend.get_invocation(invocation_id) is None
    assert one.state_backend.get_result(invocation_id) is None


def test_workflow_data_round_trips_per_workflow(app: Pynenc) -> None:
    first, second = new_ids(2)
    backend = app.state_backend
    assert backend.get_workflow_data(first, "k") is None

    backend.set_workflow_data(first, "k", b"\x00one")
    backend.set_workflow_data(second, "k", b"two")
    backend.set_workflow_data(first, "other", b"")

    assert backend.get_workflow_data(first, "k") == b"\x00one"
    assert backend.get_workflow_data(second, "k") == b"two"
    assert backend.get_workflow_data(first, "other") == b""
    backend.set_workflow_data(first, "k", b"replaced")
    assert backend.get_workflow_data(first, "k") == b"replaced"


def test_workflow_invocations_list_one_run_with_parents(app: Pynenc) -> None:
    root, child, grandchild, stranger = new_ids(4)
    records = [
        make_record(root, created_at=1.0),
        make_record(child, parent_invocation_id=root, workflow_id=root, created_at=2.0),
        make_record(grandchild, parent_invocation_id=child, workflow_id=root, created_at=3.0),
        make_record(stranger, created_at=1.5),
    ]
    app.state_backend.store_invocations(records)

    found = app.state_backend.get_workflow_invocations(root)

    assert found == records[:3]
    assert app.state_backend.get_workflow_invocations("unknown") == []


def test_purge_drops_workflow_data(app: Pynenc) -> None:
    (workflow_id,) = new_ids(1)
    app.state_backend.set_workflow_data(workflow_id, "k", b"v")
    app.state_backend.purge()
    assert app.state_backend.get_workflow_data(workflow_id, "k") is None
