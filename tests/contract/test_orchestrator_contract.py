"""Orchestrator contract: registration, claims, transitions, concurrency control, waiting."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import pytest

from pynenc import Pynenc
from pynenc.exceptions import (
    InvalidStatusTransitionError,
    KeyArgumentsMismatchError,
    StatusOwnershipError,
)
from pynenc.invocation.record import InvocationRecord, Registration
from pynenc.invocation.status import InvocationStatus

from .conftest import MakeApp, new_ids, register

S = InvocationStatus
RUNNER, OTHER_RUNNER = "runner-1", "runner-2"


def status_of(app: Pynenc, invocation_id: str) -> InvocationStatus | None:
    state = app.orchestrator.get_state(invocation_id)
    return None if state is None else InvocationStatus(state.status)


def run_to(app: Pynenc, invocation_id: str, *statuses: InvocationStatus) -> None:
    """Claim for RUNNER, then apply ``statuses`` one by one."""
    assert app.orchestrator.claim_invocations([invocation_id], RUNNER).claimed == [invocation_id]
    for status in statuses:
        app.orchestrator.set_status(invocation_id, status, RUNNER)


# --- registration ---------------------------------------------------------------------


def test_register_tracks_invocations_as_registered(app: Pynenc) -> None:
    ids = register(app, 3)

    states = app.orchestrator.get_states([*ids, "unknown"])

    assert set(states) == set(ids)
    for invocation_id in ids:
        state = states[invocation_id]
        assert state.status == S.REGISTERED
        assert state.owner is None
        assert state.num_retries == 0
        assert state.task_id == "tasks.add"
        history = app.state_backend.get_history(invocation_id)
        assert [(h.status, h.runner_id) for h in history] == [(S.REGISTERED, None)]


def test_registration_concurrency_returns_the_pending_holder(app: Pynenc) -> None:
    (holder,) = register(app, registration_key="tasks.add:k")
    newcomer = Registration(new_ids(1)[0], "tasks.add", registration_key="tasks.add:k")

    assert app.orchestrator.register_invocations([newcomer]) == [holder]
    assert app.orchestrator.get_state(newcomer.invocation_id) is None
    assert len(app.state_backend.get_history(holder)) == 1


def test_registration_key_in_one_batch_maps_to_the_first(app: Pynenc) -> None:
    regs = [Registration(i, "tasks.add", registration_key="k") for i in new_ids(3)]

    ids = app.orchestrator.register_invocations(regs)

    assert ids == [regs[0].invocation_id] * 3


def test_registration_key_is_released_when_the_holder_is_final(app: Pynenc) -> None:
    (holder,) = register(app, registration_key="k")
    run_to(app, holder, S.RUNNING, S.SUCCESS)

    (fresh,) = register(app, registration_key="k")

    assert fresh != holder
    assert status_of(app, fresh) == S.REGISTERED


def test_different_non_key_arguments_raise_when_asked(app: Pynenc) -> None:
    (holder,) = register(app, registration_key="k", non_key_arguments="x")

    with pytest.raises(KeyArgumentsMismatchError):
        register(app, registration_key="k", non_key_arguments="y")
    assert register(app, registration_key="k", non_key_arguments="x") == [holder]
    assert status_of(app, holder) == S.REGISTERED


# --- submission (register + store + queue) ---------------------------------------------


def submission(
    count: int, task_id: str = "tasks.add", **options: Any
) -> tuple[list[Registration], list[InvocationRecord]]:
    """``count`` fresh registrations with the same options and their records (arguments
    that are not valid UTF-8, as a serializer's bytes may be)."""
    ids = new_ids(count)
    registrations = [Registration(i, task_id, **options) for i in ids]
    binary = b"\x81\xa1x\xc4\x02\x00\xff"
    records = [
        InvocationRecord(i, task_id, binary + k.to_bytes(4, "big"), None, i, task_id, 1.5 + k)
        for k, i in enumerate(ids)
    ]
    return registrations, records


def test_submit_registers_stores_and_queues_in_order(app: Pynenc) -> None:
    registrations, records = submission(3)

    ids = app.orchestrator.submit_invocations(registrations, records)

    assert ids == [r.invocation_id for r in registrations]
    assert {s.status for s in app.orchestrator.get_states(ids).values()} == {S.REGISTERED}
    assert app.state_backend.get_invocations(ids) == {r.invocation_id: r for r in records}
    history = app.state_backend.get_history(ids[1])
    assert [(h.status, h.runner_id) for h in history] == [(S.REGISTERED, None)]
    assert app.broker.retrieve_invocations(10, 1.0) == ids


def test_submit_of_a_large_batch_queues_every_id_in_order(app: Pynenc) -> None:
    registrations, records = submission(2000)

    ids = app.orchestrator.submit_invocations(registrations, records)

    assert ids == [r.invocation_id for r in registrations]
    assert app.broker.count_invocations() == 2000
    assert app.orchestrator.claim_next(2000, 1.0, RUNNER).claimed == ids


def test_submit_under_registration_concurrency_returns_the_holder(app: Pynenc) -> None:
    first, first_records = submission(1, registration_key="tasks.add:k")
    (holder,) = app.orchestrator.submit_invocations(first, first_records)
    again, again_records = submission(2, registration_key="tasks.add:k")

    assert app.orchestrator.submit_invocations(again, again_records) == [holder, holder]
    newcomers = [r.invocation_id for r in again]
    assert app.orchestrator.get_states(newcomers) == {}
    assert app.state_backend.get_invocations(newcomers) == {}
    assert app.state_backend.get_invocations([holder]) == {holder: first_records[0]}
    assert len(app.state_backend.get_history(holder)) == 1
    assert app.broker.count_invocations() == 1
    assert app.broker.retrieve_invocations(10, 1.0) == [holder]


def test_submit_of_one_key_twice_in_a_batch_queues_the_first(app: Pynenc) -> None:
    keyed, keyed_records = submission(2, registration_key="k")
    free, free_records = submission(1)

    ids = app.orchestrator.submit_invocations(
        [keyed[0], free[0], keyed[1]], [keyed_records[0], free_records[0], keyed_records[1]]
    )

    first = keyed[0].invocation_id
    assert ids == [first, free[0].invocation_id, first]
    assert app.state_backend.get_invocations([keyed[1].invocation_id]) == {}
    assert app.broker.retrieve_invocations(10, 1.0) == [first, free[0].invocation_id]


def test_submit_with_different_non_key_arguments_raises_and_writes_nothing(
    app: Pynenc,
) -> None:
    first, first_records = submission(1, registration_key="k", non_key_arguments="x")
    (holder,) = app.orchestrator.submit_invocations(first, first_records)
    app.broker.retrieve_invocations(1, 1.0)
    free, free_records = submission(1)
    bad, bad_records = submission(1, registration_key="k", non_key_arguments="y")

    with pytest.raises(KeyArgumentsMismatchError):
        app.orchestrator.submit_invocations([*free, *bad], [*free_records, *bad_records])

    written = [free[0].invocation_id, bad[0].invocation_id]
    assert app.orchestrator.get_states(written) == {}
    assert app.state_backend.get_invocations(written) == {}
    assert app.broker.count_invocations() == 0
    assert status_of(app, holder) == S.REGISTERED


# --- claims ---------------------------------------------------------------------------


def test_claim_moves_to_pending_owned_by_the_runner(app: Pynenc) -> None:
    ids = register(app, 3)

    result = app.orchestrator.claim_invocations(ids, RUNNER)

    assert result.claimed == ids
    assert result.controlled == result.final == []
    for state in app.orchestrator.get_states(ids).values():
        assert (state.status, state.owner) == (S.PENDING, RUNNER)
    history = app.state_backend.get_history(ids[0])
    assert [(h.status, h.runner_id) for h in history] == [(S.REGISTERED, None), (S.PENDING, RUNNER)]


def test_claim_with_start_goes_straight_to_running(app: Pynenc) -> None:
    ids = register(app, 2)

    result = app.orchestrator.claim_invocations(ids, RUNNER, start=True)

    assert result.claimed == ids and result.num_retries == dict.fromkeys(ids, 0)
    assert {status_of(app, i) for i in ids} == {S.RUNNING}
    statuses = [h.status for h in app.state_backend.get_history(ids[1])]
    assert statuses == [S.REGISTERED, S.PENDING, S.RUNNING]


def test_claim_next_pops_from_the_broker_and_claims(app: Pynenc) -> None:
    ids = register(app, 3)
    app.broker.route_invocations(ids)

    first = app.orchestrator.claim_next(2, 1.0, RUNNER, start=True)
    rest = app.orchestrator.claim_next(5, 1.0, OTHER_RUNNER)

    assert first.claimed == ids[:2] and rest.claimed == ids[2:]
    assert status_of(app, ids[0]) is S.RUNNING and status_of(app, ids[2]) is S.PENDING
    assert app.broker.count_invocations() == 0
    empty = app.orchestrator.claim_next(5, 0.05, RUNNER)
    assert empty.claimed == []


def test_claims_return_the_claimed_records_when_the_backend_reads_them(app: Pynenc) -> None:
    registrations, records = submission(3)
    ids = app.orchestrator.submit_invocations(registrations, records)
    by_id = {r.invocation_id: r for r in records}

    popped = app.orchestrator.claim_next(2, 1.0, RUNNER, start=True)
    named = app.orchestrator.claim_invocations([ids[2], ids[0]], OTHER_RUNNER, start=True)
    # pops ids[2], already claimed: nothing claimed, no record
    stale = app.orchestrator.claim_next(2, 0.05, RUNNER, start=True)

    assert popped.claimed == ids[:2] and named.claimed == [ids[2]] and stale.claimed == []
    assert {status_of(app, i) for i in ids} == {S.RUNNING}
    if popped.records is not None:
        assert popped.records == {i: by_id[i] for i in ids[:2]}
    if named.records is not None:
        assert named.records == {ids[2]: by_id[ids[2]]}
    assert not stale.records


def test_finish_stores_results_before_they_are_seen_final(app: Pynenc) -> None:
    ok, bad = register(app, 2)
    app.orchestrator.claim_invocations([ok, bad], RUNNER, start=True)

    errors = app.orchestrator.finish_invocations(
        [(ok, S.SUCCESS), (bad, S.FAILED)], [(ok, b"42")], [(bad, b"boom")], RUNNER
    )

    assert errors == {}
    assert (status_of(app, ok), status_of(app, bad)) == (S.SUCCESS, S.FAILED)
    assert app.state_backend.get_result(ok) == b"42"
    assert app.state_backend.get_exception(bad) == b"boom"
    assert app.orchestrator.wait_for_final([ok, bad], 0.1)


def test_second_claim_by_another_runner_gets_nothing(app: Pynenc) -> None:
    ids = register(app, 2)
    app.orchestrator.claim_invocations(ids, RUNNER)

    result = app.orchestrator.claim_invocations([*ids, "unknown"], OTHER_RUNNER)

    assert result.claimed == result.controlled == result.final == []
    assert {s.owner for s in app.orchestrator.get_states(ids).values()} == {RUNNER}


def test_an_id_twice_in_one_claim_is_claimed_once(app: Pynenc) -> None:
    (invocation_id,) = register(app)

    result = app.orchestrator.claim_invocations([invocation_id, invocation_id], RUNNER)

    assert result.claimed == [invocation_id]


def test_a_claim_of_a_large_batch(app: Pynenc) -> None:
    ids = register(app, 1000)

    result = app.orchestrator.claim_invocations(ids, RUNNER)
    errors = app.orchestrator.set_statuses([(i, S.RUNNING) for i in ids], RUNNER)

    assert result.claimed == ids
    assert errors == {}
    assert app.orchestrator.count_by_status() == {S.RUNNING: 1000}


# --- transitions ----------------------------------------------------------------------


def test_full_life_is_recorded_in_history(app: Pynenc) -> None:
    (invocation_id,) = register(app)
    run_to(app, invocation_id, S.RUNNING, S.SUCCESS)

    history = app.state_backend.get_history(invocation_id)

    assert [h.status for h in history] == [S.REGISTERED, S.PENDING, S.RUNNING, S.SUCCESS]
    assert [h.runner_id for h in history] == [None, RUNNER, RUNNER, RUNNER]
    assert all(a.timestamp <= b.timestamp for a, b in itertools.pairwise(history))
    state = app.orchestrator.get_state(invocation_id)
    assert state is not None
    assert (state.status, state.owner) == (S.SUCCESS, None)


def test_illegal_transition_is_reported_without_blocking_the_batch(app: Pynenc) -> None:
    good, bad = register(app, 2)
    app.orchestrator.claim_invocations([good, bad], RUNNER)

    errors = app.orchestrator.set_statuses(
        [(good, S.RUNNING), (bad, S.SUCCESS), ("unknown", S.RUNNING)], RUNNER
    )

    assert set(errors) == {bad, "unknown"}
    assert isinstance(errors[bad], InvalidStatusTransitionError)
    assert status_of(app, good) == S.RUNNING
    assert status_of(app, bad) == S.PENDING
    assert [h.status for h in app.state_backend.get_history(bad)] == [S.REGISTERED, S.PENDING]


def test_an_id_twice_in_one_batch_keeps_its_history_in_order(app: Pynenc) -> None:
    first, second = register(app, 2)
    app.orchestrator.claim_invocations([first, second], RUNNER)
    app.orchestrator.set_statuses([(first, S.RUNNING)], RUNNER)

    errors = app.orchestrator.set_statuses(
        [(first, S.SUCCESS), (second, S.RUNNING), (second, S.SUCCESS)], RUNNER
    )

    assert errors == {}
    history = [h.status for h in app.state_backend.get_history(second)]
    assert history == [S.REGISTERED, S.PENDING, S.RUNNING, S.SUCCESS]


def test_set_status_raises_the_status_machine_error(app: Pynenc) -> None:
    (invocation_id,) = register(app)

    with pytest.raises(InvalidStatusTransitionError):
        app.orchestrator.set_status(invocation_id, S.SUCCESS, RUNNER)


def test_only_the_owner_may_move_its_invocation(app: Pynenc) -> None:
    (invocation_id,) = register(app)
    run_to(app, invocation_id)

    errors = app.orchestrator.set_statuses([(invocation_id, S.RUNNING)], OTHER_RUNNER)
    assert isinstance(errors[invocation_id], StatusOwnershipError)
    with pytest.raises(StatusOwnershipError):
        app.orchestrator.set_status(invocation_id, S.RUNNING, None)

    app.orchestrator.set_status(invocation_id, S.RUNNING, RUNNER)
    assert status_of(app, invocation_id) == S.RUNNING


def test_recovery_overrides_ownership(app: Pynenc) -> None:
    (invocation_id,) = register(app)
    run_to(app, invocation_id, S.RUNNING)

    app.orchestrator.set_status(invocation_id, S.RUNNING_RECOVERY, OTHER_RUNNER)

    state = app.orchestrator.get_state(invocation_id)
    assert state is not None
    assert (state.status, state.owner) == (S.RUNNING_RECOVERY, OTHER_RUNNER)


def test_retry_increments_num_retries_and_can_be_claimed_again(app: Pynenc) -> None:
    (invocation_id,) = register(app)
    run_to(app, invocation_id, S.RUNNING, S.RETRY)

    state = app.orchestrator.get_state(invocation_id)
    assert state is not None
    assert (state.status, state.owner, state.num_retries) == (S.RETRY, None, 1)

    run_to(app, invocation_id, S.RUNNING, S.RETRY)
    state = app.orchestrator.get_state(invocation_id)
    assert state is not None
    assert state.num_retries == 2


# --- running concurrency --------------------------------------------------------------


def test_running_key_parks_the_second_invocation(app: Pynenc) -> None:
    first, second = register(app, 2, running_key="tasks.add")

    result = app.orchestrator.claim_invocations([first, second], RUNNER)

    assert result.claimed == [first]
    assert result.controlled == [second]
    assert status_of(app, second) == S.CONCURRENCY_CONTROLLED
    state = app.orchestrator.get_state(second)
    assert state is not None and state.owner is None
    history = app.state_backend.get_history(second)
    assert [h.status for h in history] == [S.REGISTERED, S.CONCURRENCY_CONTROLLED]
    assert app.broker.count_invocations() == 0  # parked, not spinning through the queue


def test_freed_running_key_routes_the_oldest_parked_invocation(app: Pynenc) -> None:
    holder, older, newer = register(app, 3, running_key="k")
    app.orchestrator.claim_invocations([holder], RUNNER)
    app.orchestrator.claim_invocations([older], OTHER_RUNNER)
    app.orchestrator.claim_invocations([newer], OTHER_RUNNER)

    app.orchestrator.set_status(holder, S.RUNNING, RUNNER)  # still holds the key
    assert app.broker.count_invocations() == 0
    app.orchestrator.set_status(holder, S.SUCCESS, RUNNER)

    assert app.broker.retrieve_invocations(10, 0) == [older]
    assert app.orchestrator.claim_invocations([older], OTHER_RUNNER).claimed == [older]
    app.orchestrator.set_statuses([(older, S.RUNNING)], OTHER_RUNNER)
    app.orchestrator.set_statuses([(older, S.FAILED)], OTHER_RUNNER)
    assert app.broker.retrieve_invocations(10, 0) == [newer]


def test_running_keys_are_independent(app: Pynenc) -> None:
    (a,) = register(app, running_key="a")
    (b,) = register(app, running_key="b")

    assert app.orchestrator.claim_invocations([a, b], RUNNER).claimed == [a, b]


def test_no_reroute_on_control_ends_the_invocation(app: Pynenc) -> None:
    (holder,) = register(app, running_key="k")
    (refused,) = register(app, running_key="k", reroute_on_control=False, registration_key="r")
    app.orchestrator.claim_invocations([holder], RUNNER)

    result = app.orchestrator.claim_invocations([refused], RUNNER)

    assert result.final == [refused]
    assert status_of(app, refused) == S.CONCURRENCY_CONTROLLED_FINAL
    assert app.orchestrator.wait_for_final([refused], 0) is True
    (fresh,) = register(app, registration_key="r")  # a final one holds no registration key
    assert fresh != refused


# --- queries --------------------------------------------------------------------------


def test_find_invocations_filters_and_orders_recent_first(app: Pynenc) -> None:
    old, mine, theirs = register(app, 3)
    (other_task,) = register(app, task_id="tasks.other")
    before_claims = time.time()
    app.orchestrator.claim_invocations([mine], RUNNER)
    app.orchestrator.claim_invocations([theirs], OTHER_RUNNER)

    def found(**filters: Any) -> list[str]:
        return [s.invocation_id for s in app.orchestrator.find_invocations(**filters)]

    assert found(statuses=[S.PENDING]) == [theirs, mine]
    assert found(statuses=[S.PENDING], owner=RUNNER) == [mine]
    assert sorted(found(statuses=[S.REGISTERED])) == sorted([old, other_task])
    assert found(task_id="tasks.other") == [other_task]
    assert sorted(found(updated_before=before_claims)) == sorted([old, other_task])
    assert found(statuses=[S.PENDING], limit=1) == [theirs]
    assert len(found()) == 4
    assert found(statuses=[S.SUCCESS]) == []


def test_count_by_status_omits_empty_statuses(app: Pynenc) -> None:
    ids = register(app, 4)
    app.orchestrator.claim_invocations(ids[:3], RUNNER)
    app.orchestrator.set_statuses([(ids[0], S.RUNNING)], RUNNER)

    assert app.orchestrator.count_by_status() == {S.REGISTERED: 1, S.PENDING: 2, S.RUNNING: 1}


# --- waiting --------------------------------------------------------------------------


def test_wait_for_final_is_woken_by_another_threads_final_transition(app: Pynenc) -> None:
    ids = register(app, 2)
    for invocation_id in ids:
        run_to(app, invocation_id, S.RUNNING)
    waiting = threading.Event()
    outcome: list[bool] = []
    returned_at: list[float] = []

    def waiter() -> None:
        waiting.set()
        outcome.append(app.orchestrator.wait_for_final(ids, 10.0))
        returned_at.append(time.monotonic())

    thread = threading.Thread(target=waiter)
    thread.start()
    assert waiting.wait(5)
    app.orchestrator.set_status(ids[0], S.SUCCESS, RUNNER)
    finished_at = time.monotonic()
    app.orchestrator.set_status(ids[1], S.FAILED, RUNNER)
    thread.join(10)

    assert outcome == [True]
    assert returned_at[0] - finished_at < 0.5


def test_wait_for_final_on_a_large_group_returns_when_the_last_one_ends(app: Pynenc) -> None:
    ids = register(app, 300)
    app.orchestrator.claim_invocations(ids, RUNNER)
    app.orchestrator.set_statuses([(i, S.RUNNING) for i in ids], RUNNER)
    waiting = threading.Event()
    outcome: list[bool] = []
    returned_at: list[float] = []

    def waiter() -> None:
        waiting.set()
        outcome.append(app.orchestrator.wait_for_final(ids, 10.0))
        returned_at.append(time.monotonic())

    thread = threading.Thread(target=waiter)
    thread.start()
    assert waiting.wait(5)
    for start in range(0, 300, 50):
        app.orchestrator.set_statuses([(i, S.SUCCESS) for i in ids[start : start + 50]], RUNNER)
    finished_at = time.monotonic()
    thread.join(10)

    assert outcome == [True]
    assert returned_at[0] - finished_at < 0.5


def test_wait_for_final_times_out_false(app: Pynenc) -> None:
    (invocation_id,) = register(app)
    start = time.monotonic()

    assert app.orchestrator.wait_for_final([invocation_id], 0.2) is False
    assert time.monotonic() - start >= 0.19


def test_wait_for_final_returns_at_once_when_already_final(app: Pynenc) -> None:
    (invocation_id,) = register(app)
    run_to(app, invocation_id, S.RUNNING, S.SUCCESS)

    assert app.orchestrator.wait_for_final([invocation_id], 0) is True
    assert app.orchestrator.wait_for_final([], 0) is True


# --- isolation ------------------------------------------------------------------------


def test_purge_only_forgets_its_own_app(make_app: MakeApp) -> None:
    one, other = make_app("one"), make_app("other")
    mine, theirs = register(one, 2), register(other, 2)

    one.orchestrator.purge()

    assert one.orchestrator.get_states(mine) == {}
    assert one.orchestrator.count_by_status() == {}
    assert set(other.orchestrator.get_states(theirs)) == set(theirs)
    assert other.orchestrator.count_by_status() == {S.REGISTERED: 2}


def test_apps_never_claim_each_others_invocations(make_app: MakeApp) -> None:
    one, other = make_app("one"), make_app("other")
    theirs = register(other, 2)
    (key_holder,) = register(other, registration_key="shared")

    assert one.orchestrator.claim_invocations(theirs, RUNNER).claimed == []
    assert one.orchestrator.find_invocations() == []
    assert register(one, registration_key="shared") != [key_holder]
