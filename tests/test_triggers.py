"""Triggers: storage contract on every backend, evaluation with a fake clock, and runners."""

from __future__ import annotations

import itertools
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pynenc import InvocationStatus, Pynenc
from pynenc.backends.memory.trigger import MemTrigger
from pynenc.call import deserialize_arguments
from pynenc.runner.execution import Outcome
from pynenc.trigger.base_trigger import MAX_CONDITION_RECORDS, BaseTrigger
from pynenc.trigger.loop import CRON_CATCHUP_SEC, TRIM_INTERVAL_SEC, TriggerLoop
from pynenc.trigger.trigger_builder import TriggerBuilder
from tests.apps import trigger_cron_tasks as ct
from tests.apps import trigger_tasks as tt
from tests.conftest import running
from tests.runner_support import (
    PROCESS_RUNNERS,
    SQLITE,
    redis_config,
    runner_env,
    start_runner_process,
    stop_runner_process,
    wait_until,
)

MEMORY = {
    "broker_cls": "MemBroker",
    "state_backend_cls": "MemStateBackend",
    "orchestrator_cls": "MemOrchestrator",
    "trigger_cls": "MemTrigger",
    "client_data_store_cls": "MemClientDataStore",  # the default would write ./pynenc.db
}


def config_for(backend: str, tmp_path: Path) -> dict[str, object]:
    if backend == "memory":
        return dict(MEMORY)
    if backend == "sqlite":
        return {**SQLITE, "trigger_cls": "SQLiteTrigger", "sqlite_db_path": str(tmp_path / "t.db")}
    return {**redis_config(tmp_path), "trigger_cls": "RedisTrigger"}


def configured(app: Pynenc, backend: str, tmp_path: Path) -> Pynenc:
    app.reconfigure(
        dev_mode_force_sync_tasks=False,
        runner_cls="ThreadRunner",
        max_threads=2,
        trigger_retention_sec=24 * 3600.0,
        **config_for(backend, tmp_path),
    )
    app.purge()
    return app


@pytest.fixture(params=["memory", "sqlite", "redis"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pynenc]:
    yield configured(tt.app, request.param, tmp_path)
    tt.app.purge()
    tt.app.close()


@pytest.fixture
def sqlite_app(tmp_path: Path) -> Iterator[Pynenc]:
    yield configured(tt.app, "sqlite", tmp_path)
    tt.app.purge()
    tt.app.close()


def calls_of(app: Pynenc, task_id: str) -> list[dict[str, Any]]:
    states = app.orchestrator.find_invocations(task_id=task_id)
    records = app.state_backend.get_invocations([s.invocation_id for s in states])
    return [deserialize_arguments(app.serializer, r.arguments) for r in records.values()]


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- storage contract ---------------------------------------------------------------------


def test_a_database_from_before_claim_timestamps_keeps_working(tmp_path: Path) -> None:
    # the claims table of earlier releases had no ts column
    with sqlite3.connect(tmp_path / "t.db") as old:
        old.execute(
            "CREATE TABLE trigger_claims (app_id TEXT NOT NULL, claim_key TEXT NOT NULL, "
            "PRIMARY KEY (app_id, claim_key))"
        )
        old.execute("INSERT INTO trigger_claims VALUES (?, 'cron:old')", (tt.app.app_id,))
    app = tt.app
    app.reconfigure(dev_mode_force_sync_tasks=False, **config_for("sqlite", tmp_path))
    try:
        assert app.trigger.claim("cron:old") is False  # the old claim still holds
        assert app.trigger.claim("cron:new") is True
        app.trigger.trim(time.time())  # old claims count as oldest: trimmed first
        assert app.trigger.claim("cron:old") is True
    finally:
        app.purge()
        app.close()


def test_claim_is_first_wins(app: Pynenc) -> None:
    trigger = app.trigger
    assert trigger.claim("a") is True
    assert trigger.claim("a") is False
    assert trigger.claim("b") is True
    app.purge()
    assert trigger.claim("a") is True


def test_events_are_an_ordered_log(app: Pynenc) -> None:
    ids = [app.trigger.emit_event("code", {"n": n}) for n in range(3)]
    events = app.trigger.events_after("")
    assert [e[1] for e in events] == ids
    assert [app.serializer.loads(e[3]) for e in events] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert [e[1] for e in app.trigger.events_after(events[0][0])] == ids[1:]


def test_condition_records_are_taken_one_per_condition(app: Pynenc) -> None:
    trigger, now = app.trigger, time.time()
    trigger.add_condition_record("t#0", 0, b"a", now, 0.0)
    trigger.add_condition_record("t#0", 0, b"b", now + 1, 0.0)
    assert trigger.take_condition_records("t#0", 2, 0.0) is None  # condition 1 not met
    trigger.add_condition_record("t#0", 1, b"c", now + 2, 0.0)

    assert trigger.take_condition_records("t#0", 2, 0.0) == [b"a", b"c"]  # oldest first
    assert trigger.take_condition_records("t#0", 2, 0.0) is None  # "b" waits for a new "c"
    trigger.add_condition_record("t#0", 1, b"d", now + 3, 0.0)
    assert trigger.take_condition_records("t#0", 2, now + 2) is None  # "b" is out of the window
    assert trigger.take_condition_records("t#1", 1, 0.0) is None  # other triggers: apart


def test_condition_records_keep_the_newest_when_flooded(app: Pynenc) -> None:
    trigger, now = app.trigger, time.time()
    for n in range(MAX_CONDITION_RECORDS + 5):
        trigger.add_condition_record("t#0", 0, b"%d" % n, now + n, 0.0)
    assert trigger.take_condition_records("t#0", 1, 0.0) == [b"5"]


def test_condition_records_are_taken_once_by_concurrent_runners(app: Pynenc) -> None:
    components = [app.trigger, other_trigger_component(app)]
    now = time.time()
    for n in range(100):
        for cond in (0, 1):
            app.trigger.add_condition_record("t#0", cond, b"%d-%d" % (cond, n), now, 0.0)
    taken: list[list[bytes]] = [[], []]

    def drain(number: int) -> None:
        while (found := components[number].take_condition_records("t#0", 2, 0.0)) is not None:
            taken[number].append(b"|".join(found))

    threads = [threading.Thread(target=drain, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    pairs = taken[0] + taken[1]
    assert sorted(pairs) == sorted(b"0-%d|1-%d" % (n, n) for n in range(100))


# --- evaluation -------------------------------------------------------------------------


def test_definitions_registered_at_task_definition() -> None:
    by_task = {d.task_id: d for d in tt.app.trigger_definitions}
    assert tt.every_minute.task_id in by_task
    assert by_task[tt.and_trigger.task_id].logic == "and"
    assert tt.divide.task_id not in by_task


def test_cron_fires_once_per_due_time_with_two_loops(sqlite_app: Pynenc) -> None:
    clock = FakeClock(1_800_000_000.0 + 30)  # half past a minute
    # two runners' trigger components on one SQLite file
    triggers = [load(sqlite_app) for _ in range(2)]
    for t in triggers:
        t.clock = clock
    loops = [TriggerLoop(sqlite_app, trigger=t) for t in triggers]
    for loop in loops:
        loop.step()
    assert calls_of(sqlite_app, tt.every_minute.task_id) == []
    clock.now += 60  # one due time passed
    assert sum(loop.step() for loop in loops) == 1
    clock.now += 120  # two more
    assert sum(loop.step() for loop in loops) == 2
    # a restarted runner (a new loop) starting before a claimed due time does not double
    again = TriggerLoop(sqlite_app, trigger=triggers[0])
    again.last_time = clock.now - 150
    assert again.step() == 0
    assert len(calls_of(sqlite_app, tt.every_minute.task_id)) == 3


def test_a_restarted_runner_runs_the_due_times_it_missed(app: Pynenc) -> None:
    clock = FakeClock(1_800_000_000.0 + 30)
    app.trigger.clock = clock
    first = TriggerLoop(app)
    first.step()
    clock.now += 60
    assert first.step() == 1
    clock.now += 120  # the only runner is down for two due times, then starts again

    restarted = TriggerLoop(app)

    assert restarted.step() == 2
    assert restarted.step() == 0
    clock.now += 3600  # a long outage: only the last CRON_CATCHUP_SEC are caught up
    assert TriggerLoop(app).step() == CRON_CATCHUP_SEC // 60
    assert len(calls_of(app, tt.every_minute.task_id)) == 1 + 2 + CRON_CATCHUP_SEC // 60


def load(app: Pynenc) -> BaseTrigger:
    from pynenc.backends.registry import load_component

    return load_component(app.conf.trigger_cls)(app)  # type: ignore[no-any-return]


def test_event_payload_filter_and_args(app: Pynenc) -> None:
    app.trigger.clock = FakeClock(time.time())  # no minutely cron firing between the steps
    loop = TriggerLoop(app)
    app.trigger.emit_event("user.login", {"user": "ann", "role": "user"})
    app.trigger.emit_event("user.login", {"user": "bob", "role": "admin"})
    app.trigger.emit_event("other", {"user": "eve", "role": "admin"})
    assert loop.step() == 1
    assert loop.step() == 0
    assert calls_of(app, tt.admin_login.task_id) == [{"user": "bob"}]
    # a second loop reading the same log does not fire it again
    assert TriggerLoop(app).step() == 0


def test_a_failing_filter_is_logged_and_spares_the_other_triggers(
    app: Pynenc, caplog: pytest.LogCaptureFixture
) -> None:
    app.trigger.clock = FakeClock(time.time())  # no minutely cron firing in the step
    app.trigger.emit_event("user.login", {"user": "boom", "role": "admin"})

    with caplog.at_level("ERROR"):
        assert TriggerLoop(app).step() == 1  # admin_login still fires

    assert calls_of(app, tt.admin_login.task_id) == [{"user": "boom"}]
    assert calls_of(app, tt.never_runs.task_id) == []
    assert f"Trigger {tt.never_runs.task_id}#0 failed" in caplog.text


def test_builder_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        TriggerBuilder().on_cron("not a cron")
    with pytest.raises(ValueError):
        TriggerBuilder().with_logic("xor")
    with pytest.raises(ValueError, match="no conditions"):
        TriggerBuilder().build("t")
    with pytest.raises(ValueError, match="cannot watch PENDING; use FAILED"):
        TriggerBuilder().on_status("m.t", statuses=["PENDING"])
    with pytest.raises(ValueError, match="Unknown invocation status 'DONE'"):
        TriggerBuilder().on_status("m.t", statuses=["DONE"])
    with pytest.raises(ValueError, match="exception classes or their names"):
        TriggerBuilder().on_exception("m.t", exception_types=[42])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="positive number of seconds"):
        TriggerBuilder().with_window(0)
    with pytest.raises(ValueError, match="non-empty event code"):
        MemTrigger(Pynenc(app_id="bad-event")).emit_event("")


def test_and_or_logic() -> None:
    from pynenc.arguments import Arguments
    from pynenc.trigger.conditions import TriggerContext

    builder = TriggerBuilder().on_status("m.t", statuses=["SUCCESS"]).on_event("go")
    ok = TriggerContext(
        "invocation", task_id="m.t", status=InvocationStatus.SUCCESS, arguments=Arguments({})
    )
    event = TriggerContext("event", event_code="go")
    both_by_default = builder.build("d")
    assert both_by_default.logic == "and"  # as in Pynenc
    either = builder.with_logic("or").build("x")
    assert either.matches(ok) and either.matches(event)
    both = builder.with_logic("and").build("x")
    assert not both.matches(ok) and not both.matches(event)
    same = TriggerBuilder().on_status("m.t").on_any_result("m.t").with_logic("and").build("y")
    assert same.matches(ok)


# --- with a runner ----------------------------------------------------------------------


def test_status_result_exception_triggers_with_runner(app: Pynenc) -> None:
    with running(app):
        assert tt.divide(5, 2).result == 2.5
        with pytest.raises(ZeroDivisionError):
            _ = tt.divide(3, 0).result
        assert tt.divide(4, 2).result == 2.0
        assert tt.divide(7, 1).result == 7.0

        def fired() -> bool:
            triggered = (tt.got_half, tt.div_error, tt.and_trigger, tt.saw_running)
            return all(calls_of(app, task.task_id) for task in triggered)

        wait_until(fired, 10, "triggered tasks")
        wait_until(
            lambda: all(
                s.status == InvocationStatus.SUCCESS
                for s in app.orchestrator.find_invocations(task_id=tt.div_error.task_id)
            ),
            10,
            "div_error to run",
        )
    assert calls_of(app, tt.got_half.task_id) == [{"value": 2.5}]
    assert calls_of(app, tt.div_error.task_id) == [{"kind": "ZeroDivisionError", "x": 3}]
    assert len(calls_of(app, tt.and_trigger.task_id)) == 1  # only x=5 matches the filter
    assert calls_of(app, tt.saw_running.task_id) == [{"status": "running"}]


def test_event_fires_within_seconds_with_runner(sqlite_app: Pynenc) -> None:
    with running(sqlite_app):
        sqlite_app.trigger.emit_event("user.login", {"user": "zoe", "role": "admin"})
        wait_until(lambda: bool(calls_of(sqlite_app, tt.admin_login.task_id)), 3, "event")


def assert_once_per_due_time(dues: list[float]) -> None:
    """Every second between the first and last due time fired exactly once."""
    ordered = sorted(dues)
    assert len(set(ordered)) == len(ordered), f"a due time fired twice: {ordered}"
    assert all(b - a == 1.0 for a, b in itertools.pairwise(ordered)), f"a gap: {ordered}"


def cron_dues(app: Pynenc) -> list[float]:
    return [c["due"] for c in calls_of(app, ct.every_second.task_id)]


def test_real_time_cron_with_two_loops(tmp_path: Path) -> None:
    app = ct.app
    app.reconfigure(runner_cls="ThreadRunner", max_threads=1, **config_for("sqlite", tmp_path))
    app.purge()
    try:
        stop = threading.Event()
        loops = [TriggerLoop(app, stop, trigger=load(app)) for _ in range(2)]
        for loop in loops:
            loop.start()
        wait_until(lambda: len(cron_dues(app)) >= 3, 6, "three ticks")
        stop.set()
        for loop in loops:
            loop.join(5)
        assert_once_per_due_time(cron_dues(app))  # one per second, not one per loop
        assert app.trigger.events_after("") == []  # cron uses claims only, no events
    finally:
        app.purge()
        app.close()


# --- AND across different occurrences -------------------------------------------------------


def other_trigger_component(app: Pynenc) -> BaseTrigger:
    """What a second runner would use: its own component on the same storage (memory
    storage lives in one component, so there it is the same one)."""
    return app.trigger if app.conf.trigger_cls == "MemTrigger" else load(app)


def division_outcome(app: Pynenc, x: int, y: int) -> Outcome:
    """Submit ``divide(x, y)`` and give the outcome a runner would report for it."""
    invocation = tt.divide(x, y)
    result = app.serializer.dumps(x / y)
    return Outcome(invocation.invocation_id, InvocationStatus.SUCCESS, result=result)


def test_and_of_an_event_and_a_result_fires_once_both_happened(app: Pynenc) -> None:
    clock = FakeClock(time.time())
    triggers = [app.trigger, other_trigger_component(app)]
    for t in triggers:
        t.clock = clock
    loops = [TriggerLoop(app, trigger=t) for t in triggers]
    app.trigger.emit_event("report.approved", {"approver": "ann"})
    assert sum(loop.step() for loop in loops) == 0  # the event alone is not enough
    clock.now += 10
    app.trigger.report_outcomes([division_outcome(app, 8, 3)])  # result filter: no
    assert calls_of(app, tt.publish_approved.task_id) == []

    triggers[1].report_outcomes([division_outcome(app, 8, 2)])

    assert calls_of(app, tt.publish_approved.task_id) == [
        {"approver": "ann", "value": 4.0, "sources": ["event", "invocation"]}
    ]
    assert calls_of(app, tt.archive_approved.task_id) == [{"approver": "ann", "value": 4.0}]
    # both occurrences were consumed: another result alone does not fire again
    app.trigger.report_outcomes([division_outcome(app, 12, 3)])
    assert len(calls_of(app, tt.publish_approved.task_id)) == 1


def test_typed_providers_run_on_their_own_source(app: Pynenc) -> None:
    loop = TriggerLoop(app)
    app.trigger.emit_event("ping", {"who": "ann"})
    loop.step()
    app.trigger.report_outcomes([division_outcome(app, 5, 2)])

    calls = calls_of(app, tt.either_source.task_id)

    assert sorted(c["source"] for c in calls) == ["event:ann", "result:2.5"]
    assert all(c["seen"] for c in calls)  # the static provider always runs


def test_and_conditions_expire_after_the_window(app: Pynenc) -> None:
    clock = FakeClock(time.time())
    app.trigger.clock = clock
    loop = TriggerLoop(app)
    app.trigger.emit_event("report.approved", {"approver": "old"})
    loop.step()
    clock.now += 61  # publish_approved has a 60 s window
    app.trigger.report_outcomes([division_outcome(app, 8, 2)])
    assert calls_of(app, tt.publish_approved.task_id) == []

    app.trigger.emit_event("report.approved", {"approver": "new"})  # pairs with that result
    loop.step()

    assert [c["approver"] for c in calls_of(app, tt.publish_approved.task_id)] == ["new"]


def test_and_across_sources_with_runner(app: Pynenc) -> None:
    with running(app):
        assert tt.divide(8, 2).result == 4.0
        app.trigger.emit_event("report.approved", {"approver": "bob"})
        wait_until(lambda: bool(calls_of(app, tt.publish_approved.task_id)), 5, "AND trigger")
    assert calls_of(app, tt.publish_approved.task_id) == [
        {"approver": "bob", "value": 4.0, "sources": ["event", "invocation"]}
    ]


# --- retention ----------------------------------------------------------------------------


def test_loop_trims_events_older_than_retention(app: Pynenc) -> None:
    clock = FakeClock(time.time())
    app.trigger.clock = clock
    loop = TriggerLoop(app)
    app.trigger.emit_event("noise", {"n": 1})
    loop.step()
    assert len(app.trigger.events_after("")) == 1
    clock.now += app.trigger.retention_sec + TRIM_INTERVAL_SEC
    app.trigger.emit_event("noise", {"n": 2})

    loop.step()

    kept = app.trigger.events_after("")
    assert [app.serializer.loads(e.payload) for e in kept] == [{"n": 2}]


def test_claims_and_condition_records_expire_after_retention(app: Pynenc) -> None:
    app.reconfigure(trigger_retention_sec=1.0)
    trigger = app.trigger
    assert trigger.claim("due-time")
    trigger.add_condition_record("t#0", 0, b"record", time.time(), 0.0)

    def forgotten() -> bool:
        trigger.trim(time.time() - trigger.retention_sec)  # what the loop does every minute
        return trigger.take_condition_records("t#0", 1, 0.0) is None and trigger.claim("due-time")

    wait_until(forgotten, 5, "claims and condition records to expire")
    assert not trigger.claim("due-time")  # a fresh claim holds again


# --- under runner processes ---------------------------------------------------------------


def process_config(backend: str, runner_cls: str, tmp_path: Path) -> dict[str, object]:
    return {
        **config_for(backend, tmp_path),
        "runner_cls": runner_cls,
        **PROCESS_RUNNERS[runner_cls],
        "runner_heartbeat_interval": 0.2,
        "dev_mode_force_sync_tasks": False,
    }


def succeeded(app: Pynenc, task_id: str) -> list[Any]:
    states = app.orchestrator.find_invocations(task_id=task_id)
    done = [s for s in states if s.status == InvocationStatus.SUCCESS]
    return [app.get_invocation(s.invocation_id).result for s in done]


@pytest.mark.parametrize("runner_cls", list(PROCESS_RUNNERS))
@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_triggers_fire_under_runner_processes(
    backend: str, runner_cls: str, tmp_path: Path
) -> None:
    config = process_config(backend, runner_cls, tmp_path)
    app = tt.app
    app.reconfigure(**config)
    app.purge()
    proc = start_runner_process(app, runner_env(config), "tests.apps.trigger_tasks.app")
    try:
        assert tt.divide(5, 2).result == 2.5
        with pytest.raises(ZeroDivisionError):
            _ = tt.divide(3, 0).result
        assert tt.divide(8, 2).result == 4.0
        assert tt.divide(7, 1).result == 7.0
        app.trigger.emit_event("user.login", {"user": "zoe", "role": "admin"})
        app.trigger.emit_event("report.approved", {"approver": "bob"})
        triggered = (tt.got_half, tt.div_error, tt.and_trigger, tt.admin_login, tt.saw_running)
        wait_until(
            lambda: all(succeeded(app, task.task_id) for task in (*triggered, tt.publish_approved)),
            20,
            "every triggered task to run in the runner process",
        )
        assert succeeded(app, tt.got_half.task_id) == [2.5]
        assert succeeded(app, tt.div_error.task_id) == ["ZeroDivisionError:3"]
        assert succeeded(app, tt.and_trigger.task_id) == ["and"]
        assert succeeded(app, tt.admin_login.task_id) == ["zoe"]
        assert succeeded(app, tt.publish_approved.task_id) == ["bob:4.0"]
        assert succeeded(app, tt.saw_running.task_id) == ["running"]
    finally:
        assert stop_runner_process(proc) == 0
        app.purge()
        app.close()


def test_cron_once_per_due_time_across_runner_processes_and_a_restart(tmp_path: Path) -> None:
    app = ct.app
    configs = [process_config("sqlite", name, tmp_path) for name in PROCESS_RUNNERS]
    app.reconfigure(**configs[0])
    app.purge()
    path = "tests.apps.trigger_cron_tasks.app"
    procs = [start_runner_process(app, runner_env(c), path) for c in configs]
    try:
        wait_until(lambda: len(succeeded(app, ct.every_second.task_id)) >= 2, 15, "two ticks")
        assert stop_runner_process(procs[0]) == 0  # one runner restarts, the other goes on
        procs[0] = start_runner_process(app, runner_env(configs[0]), path)
        seen = len(cron_dues(app))
        wait_until(lambda: len(cron_dues(app)) >= seen + 2, 15, "two more ticks")
    finally:
        for proc in procs:
            assert stop_runner_process(proc) == 0
    try:
        assert_once_per_due_time(cron_dues(app))
    finally:
        app.purge()
        app.close()


def test_a_backlog_of_events_is_read_in_one_pass(app: Pynenc) -> None:
    # a clock that stands still: the app's minutely cron trigger must not fire between steps
    app.trigger.clock = FakeClock(time.time())
    loop = TriggerLoop(app)
    payloads = [{"user": f"u{n}", "role": "admin"} for n in range(1200)]  # > 2 batches of 500
    for payload in payloads:
        app.trigger.emit_event("user.login", payload)

    assert loop.step() == len(payloads)
    assert loop.step() == 0
