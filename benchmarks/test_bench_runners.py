"""Runner types side by side on SQLite, one table per kind of work.

Each runner is started by ``pynenc runner start`` in its own process; this process submits
with ``parallelize`` and waits for every result (``extra_info["tasks_per_sec"]`` carries the
throughput into ``--benchmark-json``), or calls one task at a time for the round trip
(``p50_ms`` / ``p99_ms``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks import bench_tasks
from benchmarks.conftest import (
    QUICK,
    measure_round_trip,
    record_rate,
    serve_with_runner_process,
)
from pynenc import Pynenc

RUNNERS = ["ThreadRunner", "MultiThreadRunner", "ProcessRunner", "PersistentProcessRunner"]

# (task, arguments of one call, calls per round): sized so a round takes about a second
WORKLOADS: dict[str, tuple[Callable[..., Any], tuple[Any, ...], int]] = {
    "trivial": (bench_tasks.add, (1, 2), 200 if QUICK else 3000),
    "sleep-10ms": (bench_tasks.sleep_10ms, (), 20 if QUICK else 200),
    "cpu-bound": (bench_tasks.cpu_bound, (20_000,), 20 if QUICK else 300),
}


@pytest.fixture(params=RUNNERS)
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pynenc]:
    yield from serve_with_runner_process(tmp_path, request.param)


# a process per task: a round of the others' size would take minutes
CALLS_DIVISOR = {"ProcessRunner": 10}


def _measure(benchmark: Any, app: Pynenc, workload: str) -> None:
    task, args, calls = WORKLOADS[workload]
    calls = max(calls // CALLS_DIVISOR.get(app.conf.runner_cls, 1), 1)
    items = [args] * calls

    def run() -> int:
        return len(task.parallelize(items).results)

    rounds = 1 if QUICK else 3
    assert benchmark.pedantic(run, setup=app.purge, rounds=rounds, iterations=1) == calls
    record_rate(benchmark, calls, runner=app.conf.runner_cls)


@pytest.mark.benchmark(group="runners-trivial")
def test_trivial(benchmark: Any, served: Pynenc) -> None:
    _measure(benchmark, served, "trivial")


@pytest.mark.benchmark(group="runners-sleep-10ms")
def test_sleep_10ms(benchmark: Any, served: Pynenc) -> None:
    _measure(benchmark, served, "sleep-10ms")


@pytest.mark.benchmark(group="runners-cpu-bound")
def test_cpu_bound(benchmark: Any, served: Pynenc) -> None:
    _measure(benchmark, served, "cpu-bound")


@pytest.mark.benchmark(group="runners-round-trip")
def test_round_trip(benchmark: Any, served: Pynenc) -> None:
    runner = served.conf.runner_cls
    rounds = 20 if QUICK else 300 // CALLS_DIVISOR.get(runner, 1)
    measure_round_trip(benchmark, rounds, runner=runner)
