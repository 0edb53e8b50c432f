"""The many-hosts shape: PersistentProcessRunner (2 workers) on a real Redis server.

One table per question of the Redis goals: end-to-end throughput of a large
``parallelize``, separate calls then waiting for every result, and the single-task round
trip (the client's enqueue rate alone is in test_bench_submission.py). Skips without a
Redis server (fails under CI=true).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks import bench_tasks
from benchmarks.conftest import QUICK, serve_with_runner_process
from pynenc import Pynenc

PARALLELIZE_TASKS = 500 if QUICK else 50_000
SEPARATE_CALLS = 100 if QUICK else 5_000
ROUND_TRIPS = 20 if QUICK else 500


@pytest.fixture
def ppr_on_redis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pynenc]:
    monkeypatch.setenv("PYNENC__NUM_PROCESSES", "2")
    yield from serve_with_runner_process(tmp_path, "PersistentProcessRunner", "redis")


def _rate(benchmark: Any, count: int) -> None:
    benchmark.extra_info["tasks"] = count
    benchmark.extra_info["runner"] = "PPR, 2 workers, Redis"
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        benchmark.extra_info["tasks_per_sec"] = round(count / stats.stats.median, 1)


@pytest.mark.benchmark(group="redis-ppr-parallelize")
def test_parallelize_end_to_end(benchmark: Any, ppr_on_redis: Pynenc) -> None:
    items = [(i, 1) for i in range(PARALLELIZE_TASKS)]
    run = lambda: bench_tasks.add.parallelize(items).results  # noqa: E731
    rounds = 1 if QUICK else 3
    results = benchmark.pedantic(run, setup=ppr_on_redis.purge, rounds=rounds)
    assert results == [i + 1 for i in range(PARALLELIZE_TASKS)]
    _rate(benchmark, PARALLELIZE_TASKS)


@pytest.mark.benchmark(group="redis-separate-calls")
def test_separate_calls_then_wait(benchmark: Any, ppr_on_redis: Pynenc) -> None:
    def run() -> int:
        invocations = [bench_tasks.add(i, 1) for i in range(SEPARATE_CALLS)]
        return sum(inv.result for inv in invocations)

    expected = sum(i + 1 for i in range(SEPARATE_CALLS))
    rounds = 1 if QUICK else 3
    assert benchmark.pedantic(run, setup=ppr_on_redis.purge, rounds=rounds) == expected
    _rate(benchmark, SEPARATE_CALLS)


@pytest.mark.benchmark(group="redis-round-trip")
def test_single_round_trip(benchmark: Any, ppr_on_redis: Pynenc) -> None:
    samples: list[float] = []

    def one() -> int:
        started = time.perf_counter()
        value = bench_tasks.add(1, 2).result
        samples.append(time.perf_counter() - started)
        return value

    assert benchmark.pedantic(one, rounds=ROUND_TRIPS, warmup_rounds=5) == 3
    samples.sort()
    benchmark.extra_info["p50_ms"] = round(statistics.median(samples) * 1000, 3)
    benchmark.extra_info["p99_ms"] = round(samples[max(int(len(samples) * 0.99) - 1, 0)] * 1000, 3)
