"""Core costs: what dev mode adds to a plain call, and trivial tasks per second end to end.

Run with ``pytest benchmarks --benchmark-only``; see conftest.py for the workload knobs.
"""

from __future__ import annotations

import statistics
import timeit
from typing import Any

import pytest

from benchmarks.bench_tasks import add
from benchmarks.conftest import Workload, runner_threads
from pynenc import Pynenc

DEV_MODE_GOAL_US = 10.0
END_TO_END_GOAL_TASKS_PER_SEC = 1000.0


def _median_seconds(benchmark: Any) -> float | None:
    """Median seconds per call, or None when benchmarking is disabled."""
    stats = getattr(benchmark, "stats", None)
    return stats.stats.median if stats is not None else None


def _direct_call_seconds() -> float:
    """Median seconds of calling the task's function directly, measured like pytest-benchmark
    does (a callable per call, many calls per timing)."""
    func = add.func
    number = 20_000
    samples = timeit.repeat(lambda: func(1, 2), number=number, repeat=7)
    return statistics.median(samples) / number


@pytest.mark.benchmark(group="dev-mode-overhead")
def test_direct_call(benchmark: Any) -> None:
    func = add.func
    assert benchmark(lambda: func(1, 2)) == 3


@pytest.mark.benchmark(group="dev-mode-overhead")
def test_dev_mode_call_and_result(benchmark: Any, dev_app: Pynenc) -> None:
    assert benchmark(lambda: add(1, 2).result) == 3
    median = _median_seconds(benchmark)
    if median is None:
        return
    direct = _direct_call_seconds()
    overhead_us = (median - direct) * 1e6
    benchmark.extra_info["direct_call_us"] = round(direct * 1e6, 3)
    benchmark.extra_info["overhead_us"] = round(overhead_us, 3)
    benchmark.extra_info["goal_us"] = DEV_MODE_GOAL_US
    print(f"\ndev-mode overhead: {overhead_us:.2f} us per call (goal <= {DEV_MODE_GOAL_US} us)")


def _end_to_end(benchmark: Any, app: Pynenc, workload: Workload, label: str) -> None:
    items = [(i, 1) for i in range(workload.tasks)]
    expected = [i + 1 for i in range(workload.tasks)]

    def run() -> list[int]:
        return add.parallelize(items).results

    results = benchmark.pedantic(run, setup=app.purge, rounds=workload.rounds, iterations=1)
    assert results == expected
    median = _median_seconds(benchmark)
    if median is None:
        return
    tasks_per_sec = workload.tasks / median
    benchmark.extra_info["tasks"] = workload.tasks
    benchmark.extra_info["runner"] = label
    benchmark.extra_info["tasks_per_sec"] = round(tasks_per_sec, 1)
    benchmark.extra_info["goal_tasks_per_sec"] = END_TO_END_GOAL_TASKS_PER_SEC
    benchmark.extra_info["runner_max_threads"] = threads = runner_threads(app)
    print(
        f"\n{label}: {tasks_per_sec:,.0f} tasks/s "
        f"({workload.tasks} tasks per round, {threads} runner threads)"
    )


@pytest.mark.benchmark(group="end-to-end")
def test_memory_thread_runner_in_process(
    benchmark: Any, memory_app: Pynenc, workload: Workload
) -> None:
    _end_to_end(benchmark, memory_app, workload, "memory + ThreadRunner (runner thread)")


@pytest.mark.benchmark(group="end-to-end")
def test_sqlite_thread_runner_process(
    benchmark: Any, sqlite_runner_process: Pynenc, workload: Workload
) -> None:
    _end_to_end(
        benchmark, sqlite_runner_process, workload, "SQLite + ThreadRunner (runner process)"
    )
