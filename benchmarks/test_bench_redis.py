"""The many-hosts shape: PersistentProcessRunner (2 workers) on a real Redis server.

One table per question of the Redis goals: end-to-end throughput of a large
``parallelize``, separate calls then waiting for every result, and the single-task round
trip (the client's enqueue rate alone is in test_bench_submission.py). Skips without a
Redis server (fails under CI=true).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks import bench_tasks
from benchmarks.conftest import QUICK, measure_round_trip, record_rate, serve_with_runner_process
from pynenc import Pynenc

PARALLELIZE_TASKS = 500 if QUICK else 50_000
SEPARATE_CALLS = 100 if QUICK else 5_000
ROUND_TRIPS = 20 if QUICK else 500


@pytest.fixture
def ppr_on_redis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pynenc]:
    monkeypatch.setenv("PYNENC__NUM_PROCESSES", "2")
    yield from serve_with_runner_process(tmp_path, "PersistentProcessRunner", "redis")


RUNNER = "PPR, 2 workers, Redis"


@pytest.mark.benchmark(group="redis-ppr-parallelize")
def test_parallelize_end_to_end(benchmark: Any, ppr_on_redis: Pynenc) -> None:
    items = [(i, 1) for i in range(PARALLELIZE_TASKS)]
    run = lambda: bench_tasks.add.parallelize(items).results  # noqa: E731
    rounds = 1 if QUICK else 3
    results = benchmark.pedantic(run, setup=ppr_on_redis.purge, rounds=rounds)
    assert results == [i + 1 for i in range(PARALLELIZE_TASKS)]
    record_rate(benchmark, PARALLELIZE_TASKS, runner=RUNNER)


@pytest.mark.benchmark(group="redis-separate-calls")
def test_separate_calls_then_wait(benchmark: Any, ppr_on_redis: Pynenc) -> None:
    def run() -> int:
        invocations = [bench_tasks.add(i, 1) for i in range(SEPARATE_CALLS)]
        return sum(inv.result for inv in invocations)

    expected = sum(i + 1 for i in range(SEPARATE_CALLS))
    rounds = 1 if QUICK else 3
    assert benchmark.pedantic(run, setup=ppr_on_redis.purge, rounds=rounds) == expected
    record_rate(benchmark, SEPARATE_CALLS, runner=RUNNER)


@pytest.mark.benchmark(group="redis-round-trip")
def test_single_round_trip(benchmark: Any, ppr_on_redis: Pynenc) -> None:
    measure_round_trip(benchmark, ROUND_TRIPS, runner=RUNNER)
