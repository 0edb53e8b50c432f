"""One behaviour suite for every runner on every backend that can host it.

Each combination serves the core test app: memory only with ThreadRunner (in this
process), SQLite with every runner as a real runner process started by the CLI.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pynenc import InvocationStatus, Pynenc
from tests.apps import core_tasks as t
from tests.runner_support import (
    SQLITE,
    redis_config,
    runner_env,
    start_runner_process,
    stop_runner_process,
    wait_until,
)


@dataclass(frozen=True)
class Combo:
    backend: str
    runner_cls: str
    options: dict[str, object] = field(default_factory=dict)

    @property
    def in_process(self) -> bool:
        return self.backend == "memory"

    def __str__(self) -> str:
        return f"{self.backend}-{self.runner_cls}"


COMBOS = [
    Combo("memory", "ThreadRunner", {"max_threads": 2}),
    Combo("sqlite", "ThreadRunner", {"max_threads": 2}),
    Combo("redis", "ThreadRunner", {"max_threads": 2}),
    Combo(
        "sqlite",
        "MultiThreadRunner",
        {"min_processes": 2, "max_processes": 2, "min_threads": 1, "max_threads": 1},
    ),
    Combo("sqlite", "ProcessRunner", {"max_processes": 2}),
    Combo("sqlite", "PersistentProcessRunner", {"num_processes": 2}),
]


@dataclass
class Served:
    app: Pynenc
    combo: Combo
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None


@pytest.fixture(params=COMBOS, ids=str)
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    combo: Combo = request.param
    config: dict[str, object] = {"runner_cls": combo.runner_cls, **combo.options}
    if combo.backend == "sqlite":
        config.update(SQLITE, sqlite_db_path=str(tmp_path / "suite.db"))
    elif combo.backend == "redis":
        config.update(redis_config(tmp_path))
    else:
        config.update(
            broker_cls="MemBroker",
            state_backend_cls="MemStateBackend",
            orchestrator_cls="MemOrchestrator",
            client_data_store_cls="MemClientDataStore",
        )
    config.update(runner_heartbeat_interval=0.2, dev_mode_force_sync_tasks=False)
    app = t.app
    app.reconfigure(**config)
    app.purge()
    t.attempts.clear()
    served = Served(app, combo, runner_env(config))
    if combo.in_process:
        runner = app.runner
        thread = threading.Thread(target=runner.run, daemon=True)
        thread.start()
        assert runner.started_event.wait(10)
        yield served
        runner.stop()
        thread.join(30)
    else:
        served.proc = start_runner_process(app, served.env)
        try:
            yield served
        finally:
            assert stop_runner_process(served.proc) == 0
    app.purge()
    app.close()


def test_round_trip(served: Served) -> None:
    assert t.add(20, 22).result == 42
    assert t.greet("ann", greeting="hi").result == "hi ann"


def test_exception_propagates_with_its_type(served: Served) -> None:
    with pytest.raises(t.CustomError) as info:
        t.fail(5).result
    assert info.value.code == 5
    assert "Remote traceback" in "\n".join(getattr(info.value, "__notes__", []))


def test_retries_with_backoff(served: Served) -> None:
    inv = t.always_retry("suite")
    with pytest.raises(Exception, match="again"):
        inv.result
    assert inv.num_retries == 3
    starts = [h.timestamp for h in inv.history if h.status is InvocationStatus.PENDING]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(gaps) == 3 and gaps[0] >= 0.05 and gaps[1] >= 0.1 and gaps[2] >= 0.2


def test_running_concurrency_task_never_overlaps(served: Served) -> None:
    spans = sorted(t.exclusive_span.parallelize([(0.05,) for _ in range(6)]).results)
    assert len(spans) == 6
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end, f"two runs overlapped under {served.combo}"


def test_parallelize_results_in_order(served: Served) -> None:
    assert t.add.parallelize([(i, i) for i in range(500)]).results == [2 * i for i in range(500)]


def test_nested_calls_deeper_than_worker_count(served: Served) -> None:
    assert t.fib(7).result == 13  # depth 7 on 2 workers


def test_ten_megabyte_argument_round_trip(served: Served) -> None:
    blob = os.urandom(10 * 1024 * 1024)
    assert t.payload_size(blob).result == len(blob)
    assert t.echo_bytes(blob).result == blob


@pytest.mark.parametrize("served", [c for c in COMBOS if not c.in_process], indirect=True, ids=str)
def test_sigterm_loses_nothing(served: Served) -> None:
    assert served.proc is not None
    group = t.nap.parallelize([(0.2,) for _ in range(8)])
    ids = [inv.invocation_id for inv in group]
    orchestrator = served.app.orchestrator
    wait_until(
        lambda: orchestrator.count_by_status().get(InvocationStatus.RUNNING, 0) > 0,
        30,
        "a task to start",
    )
    assert stop_runner_process(served.proc) == 0
    held = {InvocationStatus.PENDING, InvocationStatus.RUNNING}
    assert not [s for s in orchestrator.get_states(ids).values() if s.status in held]
    served.proc = start_runner_process(served.app, served.env)
    assert group.get_results(timeout_sec=60) == [0.2] * len(ids)
