"""Backends side by side: submission rates and single-task round trips, SQLite vs Redis.

The runner is a ThreadRunner process; this process is the client. Redis benchmarks skip
when no server is reachable (and fail under CI=true).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks import bench_tasks
from benchmarks.conftest import QUICK, measure_round_trip, record_rate, serve_with_runner_process
from pynenc import Pynenc

BACKENDS = ["sqlite", "redis"]


@pytest.fixture(params=BACKENDS)
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pynenc]:
    yield from serve_with_runner_process(tmp_path, "ThreadRunner", request.param)


@pytest.mark.benchmark(group="backends-end-to-end")
def test_parallelize_end_to_end(benchmark: Any, served: Pynenc) -> None:
    count = 200 if QUICK else 5000
    items = [(i, 1) for i in range(count)]
    run = lambda: bench_tasks.add.parallelize(items).results  # noqa: E731
    assert benchmark.pedantic(run, setup=served.purge, rounds=1 if QUICK else 3) == [
        i + 1 for i in range(count)
    ]
    record_rate(benchmark, count, backend=served.conf.broker_cls)


@pytest.mark.benchmark(group="backends-separate-calls")
def test_separate_calls_then_wait(benchmark: Any, served: Pynenc) -> None:
    count = 50 if QUICK else 1000

    def run() -> int:
        invocations = [bench_tasks.add(i, 1) for i in range(count)]
        return sum(inv.result for inv in invocations)

    expected = sum(i + 1 for i in range(count))
    assert benchmark.pedantic(run, setup=served.purge, rounds=1 if QUICK else 3) == expected
    record_rate(benchmark, count, backend=served.conf.broker_cls)


@pytest.mark.benchmark(group="backends-round-trip")
def test_single_round_trip(benchmark: Any, served: Pynenc) -> None:
    measure_round_trip(benchmark, 20 if QUICK else 300, backend=served.conf.broker_cls)
