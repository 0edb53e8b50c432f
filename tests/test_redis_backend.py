"""What only the Redis backends promise: the missing-extra error, credentials, several runner
processes on one server, recovery after SIGKILL, riding out dropped connections, a clear
error when the server stays away, and expiry of finished invocations."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from pynenc import InvocationStatus, Pynenc, PynencBuilder
from pynenc.backends.redis import scripts
from pynenc.exceptions import BackendError, InvalidStatusTransitionError, StatusOwnershipError
from pynenc.invocation.record import InvocationRecord, Registration
from pynenc.invocation.status import compute_transition
from tests.apps import core_tasks as t
from tests.conftest import IN_CI, running
from tests.runner_support import (
    REDIS_URL,
    ROOT,
    redis_config,
    require_redis,
    runner_env,
    start_runner_process,
    stop_runner_process,
    wait_until,
)

S = InvocationStatus


def admin() -> object:
    import redis

    require_redis()
    return redis.Redis.from_url(REDIS_URL)


@contextmanager
def acl_user() -> Iterator[str]:
    """A throwaway ACL user with every right; yields a URL that logs in as it."""
    client = admin()
    name, password = f"pynenc-test-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    client.execute_command("ACL", "SETUSER", name, "on", f">{password}", "~*", "&*", "+@all")  # type: ignore[attr-defined]
    try:
        yield REDIS_URL.replace("redis://", f"redis://{name}:{password}@", 1)
    finally:
        client.execute_command("ACL", "DELUSER", name)  # type: ignore[attr-defined]


@pytest.fixture
def core_app(tmp_path: Path) -> Iterator[tuple[Pynenc, dict[str, object]]]:
    """The core test app on Redis; its previous config comes back afterwards."""
    app = t.app
    saved = dict(app.config_values)
    config: dict[str, object] = {
        **redis_config(tmp_path),
        "runner_heartbeat_interval": 0.2,
        "max_threads": 2,
    }
    app.reconfigure(dev_mode_force_sync_tasks=False, **config)
    app.purge()
    yield app, config
    app.purge()
    app.close()
    app.config_values.clear()
    app.reconfigure(**saved)


def use(app: Pynenc, config: dict[str, object], **changes: object) -> dict[str, str]:
    """Apply ``changes`` to the app and return the env of a runner process seeing them."""
    config.update(changes)
    app.reconfigure(**config)
    return runner_env(config)


def runs_of(app: Pynenc, invocation_id: str) -> list[str | None]:
    history = app.state_backend.get_history(invocation_id)
    return [h.runner_id for h in history if h.status is S.RUNNING]


# --- no server needed -----------------------------------------------------------------


@pytest.mark.parametrize("component", ["RedisBroker", "RedisStateBackend", "RedisOrchestrator"])
def test_selecting_redis_without_the_package_names_the_extra(component: str) -> None:
    code = (
        "import sys\n"
        "sys.modules['redis'] = None  # as if the package were not installed\n"
        "from pynenc.backends.registry import load_component\n"
        "from pynenc.exceptions import MissingExtraError\n"
        "try:\n"
        f"    load_component({component!r})\n"
        "except MissingExtraError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert component in out.stdout
    assert "pip install 'pynenc[redis]'" in out.stdout


def test_unreachable_server_raises_a_clear_backend_error() -> None:
    app = (
        PynencBuilder()
        .app_id("unreachable")
        .redis(url="redis://127.0.0.1:1/0")
        .custom_config(redis_max_connection_retry_sec=0.5)
        .build()
    )
    start = time.monotonic()
    with pytest.raises(BackendError, match="redis_max_connection_retry_sec") as info:
        app.broker.count_invocations()
    elapsed = time.monotonic() - start
    assert "127.0.0.1:1" in str(info.value)
    assert 0.4 <= elapsed < 3.0  # retried for the configured window, then gave up


# --- the status table handed to Lua -----------------------------------------------------


def test_lua_status_table_agrees_with_compute_transition() -> None:
    client = admin()
    harness = scripts.STATUS_LUA + (
        "local out = {}\n"
        "for k = 1, #ARGV, 4 do\n"
        "  local owner, err = transition(ARGV[k], ARGV[k + 1], ARGV[k + 2], ARGV[k + 3])\n"
        "  out[#out + 1] = owner or ('!' .. err)\n"
        "end\n"
        "return out\n"
    )
    cases = [
        (current, new, owner, runner)
        for current in (None, *S)
        for new in S
        for owner in (None, "a")
        for runner in (None, "a", "b")
    ]
    args = [value or "" for case in cases for value in case]
    got = [v.decode() for v in client.eval(harness, 0, *args)]  # type: ignore[attr-defined]
    for case, value in zip(cases, got, strict=True):
        try:
            expected = compute_transition(*case) or ""
        except InvalidStatusTransitionError:
            expected = "!bad"
        except StatusOwnershipError:
            expected = "!own"
        assert value == expected, case


# --- one round trip per batch, replayed when its reply is lost --------------------------


@pytest.fixture
def redis_app(tmp_path: Path) -> Iterator[Pynenc]:
    app = PynencBuilder().app_id("round-trips").custom_config(**redis_config(tmp_path)).build()
    yield app
    app.purge()
    app.close()


def submission(count: int, **options: object) -> tuple[list[Registration], list[InvocationRecord]]:
    ids = [uuid.uuid4().hex for _ in range(count)]
    registrations = [Registration(i, "tasks.add", **options) for i in ids]  # type: ignore[arg-type]
    records = [
        InvocationRecord(i, "tasks.add", b"\x81\xa1a\xc4\x01\xff", None, i, "tasks.add", 2.5)
        for i in ids
    ]
    return registrations, records


@contextmanager
def round_trips(app: Pynenc, lose_first_reply: bool = False) -> Iterator[list[int]]:
    """Count the calls to the server; optionally the first one runs but its reply is lost
    (the client then retries it, as after a dropped connection)."""
    client = app.orchestrator.client  # type: ignore[attr-defined]
    run = client.run
    count = [0]

    def counted(op: object) -> object:
        def once(redis_client: object) -> object:
            count[0] += 1
            result = op(redis_client)  # type: ignore[operator]
            if lose_first_reply and count[0] == 1:
                raise ConnectionError("reply lost")
            return result

        return run(once)

    client.run = counted
    try:
        yield count
    finally:
        del client.run


def test_a_submission_and_a_claim_with_its_records_are_one_round_trip_each(
    redis_app: Pynenc,
) -> None:
    app = redis_app
    registrations, records = submission(3)

    with round_trips(app) as submitted:
        ids = app.orchestrator.submit_invocations(registrations, records)
    with round_trips(app) as claimed:
        claim = app.orchestrator.claim_next(2, 1.0, "runner-1", start=True)

    assert submitted == claimed == [1]
    assert ids == [r.invocation_id for r in registrations]
    assert claim.claimed == ids[:2]
    assert claim.records == {r.invocation_id: r for r in records[:2]}
    assert app.state_backend.get_invocations(ids) == {r.invocation_id: r for r in records}


def test_a_submission_retried_after_its_reply_was_lost_runs_once(redis_app: Pynenc) -> None:
    app = redis_app
    first, first_records = submission(1, registration_key="k")
    (holder,) = app.orchestrator.submit_invocations(first, first_records)
    registrations, records = submission(3)
    keyed, keyed_records = submission(1, registration_key="k")

    with round_trips(app, lose_first_reply=True) as calls:
        ids = app.orchestrator.submit_invocations(
            [*registrations, *keyed], [*records, *keyed_records]
        )

    assert calls == [2]
    assert ids == [*(r.invocation_id for r in registrations), holder]
    assert app.broker.count_invocations() == 4
    for invocation_id in ids:
        assert [h.status for h in app.state_backend.get_history(invocation_id)] == [S.REGISTERED]
    assert app.state_backend.get_invocations([keyed[0].invocation_id]) == {}
    assert app.broker.retrieve_invocations(10, 1.0) == [holder, *ids[:3]]


def _stored(app: Pynenc, invocation_id: str) -> dict[bytes, bytes]:
    """An invocation's hash, its times left out (they differ between two writes)."""
    raw = app.orchestrator.client.redis.hgetall(app.orchestrator.keys.invocation(invocation_id))  # type: ignore[attr-defined]
    raw.pop(b"u")
    raw[b"h"] = b"\t".join(raw[b"h"].split(b"\t")[:1])
    return raw  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "options",
    [{}, {"running_key": "rk", "reroute_on_control": False}, {"non_key_arguments": "x=1"}],
)
def test_a_single_call_is_stored_and_queued_as_in_a_batch(
    redis_app: Pynenc, options: dict[str, object]
) -> None:
    app = redis_app
    single, single_records = submission(1, **options)
    batch, batch_records = submission(2, **options)
    with round_trips(app) as calls:
        app.orchestrator.submit_invocations(single, single_records)
    app.orchestrator.submit_invocations(batch, batch_records)

    assert calls == [1]
    single_id, batch_id = single[0].invocation_id, batch[0].invocation_id
    expected = _stored(app, batch_id)
    expected[b"r"] = expected[b"r"].replace(batch_id.encode(), single_id.encode())
    assert _stored(app, single_id) == expected
    assert app.orchestrator.get_states([single_id])[single_id].status == S.REGISTERED
    assert app.orchestrator.count_by_status() == {S.REGISTERED: 3}
    claim = app.orchestrator.claim_next(3, 1.0, "runner-1", start=True)
    assert claim.claimed[0] == single_id  # queued first, as called (the running key
    assert claim.records[single_id] == single_records[0]  # holds the others back)


def test_a_single_call_retried_after_its_reply_was_lost_is_queued_once(
    redis_app: Pynenc,
) -> None:
    app = redis_app
    registrations, records = submission(1)
    with round_trips(app, lose_first_reply=True) as calls:
        ids = app.orchestrator.submit_invocations(registrations, records)
    assert calls == [2]
    assert ids == [registrations[0].invocation_id]
    assert app.broker.count_invocations() == 1
    assert [h.status for h in app.state_backend.get_history(ids[0])] == [S.REGISTERED]


def test_a_single_workflow_child_joins_its_run(redis_app: Pynenc) -> None:
    app = redis_app
    (registration,), (record,) = submission(1)
    child = InvocationRecord(
        record.invocation_id, "tasks.add", record.arguments, "parent-id", "run-1", "tasks.flow", 2.5
    )
    app.orchestrator.submit_invocations([registration], [child])
    assert [r.invocation_id for r in app.state_backend.get_workflow_invocations("run-1")] == [
        record.invocation_id
    ]


@pytest.mark.parametrize(("size", "reads"), [(100, 1), (4000, 2)])
def test_a_waiter_gets_a_small_result_with_the_news_of_its_end(
    core_app: tuple[Pynenc, dict[str, object]],
    monkeypatch: pytest.MonkeyPatch,
    size: int,
    reads: int,
) -> None:
    app, config = core_app
    use(app, config, min_size_to_cache=100_000)  # the large result stays inline
    backend = app.state_backend
    read_ids: list[list[str]] = []
    real = backend.get_results

    def counted(invocation_ids: Sequence[str]) -> dict[str, bytes]:
        read_ids.append(list(invocation_ids))
        return real(invocation_ids)

    monkeypatch.setattr(backend, "get_results", counted)
    with running(app):
        value = "x" * size
        invocation = t.late_echo(value, 0.3)
        assert invocation.result == value
    # one look before waiting; a large result is read back after the news (1 KiB at most
    # rides along with it)
    assert read_ids == [[invocation.invocation_id]] * reads


def test_a_claim_retried_after_its_reply_was_lost_claims_once_with_its_records(
    redis_app: Pynenc,
) -> None:
    app = redis_app
    registrations, records = submission(3)
    ids = app.orchestrator.submit_invocations(registrations, records)

    with round_trips(app, lose_first_reply=True) as calls:
        claim = app.orchestrator.claim_next(2, 1.0, "runner-1", start=True)

    assert calls == [2]
    assert claim.claimed == ids[:2]
    assert claim.records == {r.invocation_id: r for r in records[:2]}
    history = app.state_backend.get_history(ids[0])
    assert [h.status for h in history] == [S.REGISTERED, S.PENDING, S.RUNNING]
    assert app.broker.retrieve_invocations(10, 1.0) == ids[2:]


def test_a_submission_with_another_broker_stores_in_one_trip_then_routes(
    tmp_path: Path,
) -> None:
    config = {**redis_config(tmp_path), "broker_cls": "MemBroker"}
    app = PynencBuilder().app_id("other-broker").custom_config(**config).build()
    try:
        registrations, records = submission(2)
        with round_trips(app) as calls:
            ids = app.orchestrator.submit_invocations(registrations, records)
        assert calls == [1]  # the memory broker's route is not a server call
        assert app.broker.retrieve_invocations(10, 1.0) == ids
        assert app.state_backend.get_invocations(ids) == {r.invocation_id: r for r in records}
        claim = app.orchestrator.claim_invocations(ids, "runner-1", start=True)
        assert claim.records == {r.invocation_id: r for r in records}
    finally:
        app.purge()
        app.close()


# --- credentials ------------------------------------------------------------------------


def test_a_password_url_logs_in(tmp_path: Path) -> None:
    with acl_user() as url:
        config = {**redis_config(tmp_path), "redis_url": url}
        app = PynencBuilder().app_id("auth").custom_config(**config).build()
        try:
            (invocation_id,) = app.orchestrator.register_invocations(
                [Registration(uuid.uuid4().hex, "tasks.add")]
            )
            app.broker.route_invocations([invocation_id])
            claim = app.orchestrator.claim_next(10, 1.0, "runner-1", start=True)
            assert claim.claimed == [invocation_id]
            app.orchestrator.finish_invocations(
                [(invocation_id, S.SUCCESS)], [(invocation_id, b"5")], [], "runner-1"
            )
            assert app.orchestrator.wait_for_final([invocation_id], 5.0)
            assert app.state_backend.get_result(invocation_id) == b"5"
        finally:
            app.purge()
            app.close()


def test_a_wrong_password_fails_at_once_with_a_clear_error(tmp_path: Path) -> None:
    with acl_user() as url:
        wrong = url.replace("@", "x@", 1)  # same user, another password
        config = {**redis_config(tmp_path), "redis_url": wrong}
        app = PynencBuilder().app_id("auth").custom_config(**config).build()
        start = time.monotonic()
        with pytest.raises(BackendError, match="credentials"):
            app.broker.count_invocations()
        assert time.monotonic() - start < 2.0  # not retried for the whole window


# --- retention --------------------------------------------------------------------------


def test_final_invocations_expire_after_the_retention(tmp_path: Path) -> None:
    config = {**redis_config(tmp_path), "result_retention_sec": 30}
    app = PynencBuilder().app_id("retention").custom_config(**config).build()
    client = admin()
    try:
        done, waiting = (uuid.uuid4().hex for _ in range(2))
        app.orchestrator.register_invocations(
            [Registration(i, "tasks.add") for i in (done, waiting)]
        )
        app.state_backend.store_invocations(
            [
                InvocationRecord(i, "tasks.add", b"", None, i, "tasks.add", 1.0)
                for i in (done, waiting)
            ]
        )
        app.orchestrator.claim_invocations([done, waiting], "runner-1", start=True)
        app.orchestrator.finish_invocations([(done, S.SUCCESS)], [(done, b"1")], [], "runner-1")

        keys = app.orchestrator.keys  # type: ignore[attr-defined]
        # one hash holds an invocation's status, record, history and result
        assert 0 < client.pttl(keys.invocation(done)) <= 30_000  # type: ignore[attr-defined]
        assert client.pttl(keys.invocation(waiting)) == -1  # type: ignore[attr-defined]
        assert app.state_backend.get_result(done) == b"1"
        assert [h.status for h in app.state_backend.get_history(done)] == [
            S.REGISTERED,
            S.PENDING,
            S.RUNNING,
            S.SUCCESS,
        ]
    finally:
        app.purge()
        app.close()


# --- runner processes -------------------------------------------------------------------


def test_two_runner_processes_share_the_work(
    core_app: tuple[Pynenc, dict[str, object]],
) -> None:
    app, config = core_app
    env = runner_env(config)
    first, second = start_runner_process(app, env), start_runner_process(app, env)
    try:
        group = t.add.parallelize([(i, 1) for i in range(2000)])
        assert group.get_results(timeout_sec=120) == [i + 1 for i in range(2000)]
    finally:
        assert stop_runner_process(first) == 0
        assert stop_runner_process(second) == 0
    runs = [runs_of(app, inv.invocation_id) for inv in group]
    assert all(len(r) == 1 for r in runs), "an invocation ran twice or never"
    by_runner = {r[0] for r in runs}
    assert len(by_runner) == 2, "one runner did all the work"


def test_a_sigkilled_runner_is_recovered_by_the_other(
    core_app: tuple[Pynenc, dict[str, object]],
) -> None:
    app, config = core_app
    timeout, interval = 1.5, 0.2
    env = use(app, config, runner_recovery_timeout=timeout, runner_heartbeat_interval=interval)
    procs = {}
    for _ in range(2):
        proc = start_runner_process(app, env)
        procs[proc.pid] = proc
    try:
        group = t.nap.parallelize([(0.5,) for _ in range(6)])
        inv = next(iter(group))
        wait_until(lambda: inv.status is S.RUNNING, 30, "the task to start")
        owner = app.orchestrator.get_state(inv.invocation_id).owner  # type: ignore[union-attr]
        victim = next(r for r in app.state_backend.get_runners() if r.runner_id == owner)
        procs[victim.pid].send_signal(signal.SIGKILL)
        killed_at = time.time()
        procs[victim.pid].wait(10)
        assert group.get_results(timeout_sec=60) == [0.5] * 6
        history = inv.history
        recovered = next(h for h in history if h.status is S.RUNNING_RECOVERY)
        assert recovered.runner_id != owner
        # dead after `timeout` of silence, noticed at the next beat of the survivor
        assert recovered.timestamp - killed_at <= timeout + interval + 0.5
        assert history[-1].status is S.SUCCESS
    finally:
        for proc in procs.values():
            stop_runner_process(proc)


def test_runners_ride_out_killed_connections(
    core_app: tuple[Pynenc, dict[str, object]],
) -> None:
    app, config = core_app
    client = admin()
    with acl_user() as url:
        user = url.split("//", 1)[1].split(":", 1)[0]
        env = use(app, config, redis_url=url, max_threads=4)
        proc = start_runner_process(app, env)
        kills: list[int] = []
        done = threading.Event()

        def killer() -> None:
            while not done.wait(0.05):
                for kind in ("normal", "pubsub"):
                    kills.append(
                        client.execute_command("CLIENT", "KILL", "TYPE", kind, "USER", user)  # type: ignore[attr-defined]
                    )

        thread = threading.Thread(target=killer, daemon=True)
        try:
            group = t.nap.parallelize([(0.001,) for _ in range(1500)])
            thread.start()
            assert group.get_results(timeout_sec=120) == [0.001] * 1500
            assert set(app.orchestrator.count_by_status()) == {S.SUCCESS}
            # a call retried after its reply was lost replays the reply: nothing runs twice
            assert all(len(runs_of(app, inv.invocation_id)) == 1 for inv in group)
        finally:
            done.set()
            thread.join(10)
            assert stop_runner_process(proc) == 0
            use(app, config, redis_url=REDIS_URL)  # the user is about to go
    assert sum(kills) > 0, "no connection was killed during the run"


# --- a private server, restarted ---------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_server(port: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def answers() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    wait_until(answers, 10, "the private redis-server")
    return server


def test_a_call_during_a_server_restart_waits_for_it() -> None:
    if shutil.which("redis-server") is None:
        if IN_CI:
            pytest.fail("redis-server is not installed")
        pytest.skip("redis-server is not installed")
    port = _free_port()
    server = _start_server(port)
    app = (
        PynencBuilder()
        .app_id("restart")
        .redis(url=f"redis://127.0.0.1:{port}/0")
        .custom_config(redis_max_connection_retry_sec=20)
        .build()
    )
    try:
        app.broker.route_invocations(["a", "b"])
        assert app.broker.count_invocations() == 2
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        outcome: list[object] = []
        caller = threading.Thread(target=lambda: outcome.append(app.broker.count_invocations()))
        caller.start()
        caller.join(0.5)
        assert caller.is_alive(), "the call should be waiting for the server"
        server = _start_server(port)
        caller.join(20)
        assert outcome == [0]  # a fresh server without persistence: reconnected, empty
    finally:
        app.close()
        if server.poll() is None:
            server.send_signal(signal.SIGKILL)
            server.wait(10)
