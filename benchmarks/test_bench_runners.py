"""Runner types side by side on SQLite, one table per kind of work.

Each runner is started by ``pynenc runner start`` in its own process; this process submits
with ``parallelize`` and waits for every result (``extra_info["tasks_per_sec"]`` carries the
throughput into ``--benchmark-json``), or calls one task at a time for the round trip
(``p50_ms`` / ``p99_ms``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks import bench_tasks
from benchmarks.conftest import QUICK, serve_with_runner_process
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
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        benchmark.extra_info["tasks"] = calls
        benchmark.extra_info["runner"] = app.conf.runner_cls
        benchmark.extra_info["tasks_per_sec"] = round(calls / stats.stats.median, 1)


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
    """One call, then its result, again and again: the latency a caller sees."""
    samples: list[float] = []

    def one() -> int:
        started = time.perf_counter()
        value = bench_tasks.add(1, 2).result
        samples.append(time.perf_counter() - started)
        return int(value)

    rounds = 20 if QUICK else 300 // CALLS_DIVISOR.get(served.conf.runner_cls, 1)
    assert benchmark.pedantic(one, rounds=rounds, warmup_rounds=3) == 3
    samples.sort()
    benchmark.extra_info["runner"] = served.conf.runner_cls
    benchmark.extra_info["p50_ms"] = round(statistics.median(samples) * 1000, 3)
    benchmark.extra_info["p99_ms"] = round(samples[max(int(len(samples) * 0.99) - 1, 0)] * 1000, 3)
