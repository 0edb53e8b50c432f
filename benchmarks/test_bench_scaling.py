"""How cost grows with work: PersistentProcessRunner with 1, 2 and 4 workers on 1k, 10k
and 100k trivial tasks, and a nested fan-out. Full sizes are for manual runs; quick mode
(CI) runs 100 tasks per cell.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks import bench_tasks
from benchmarks.conftest import QUICK, record_rate, serve_with_runner_process
from pynenc import Pynenc

WORKERS = [1, 2, 4]
SIZES = [100] if QUICK else [1_000, 10_000, 100_000]


@pytest.fixture(params=WORKERS, ids=lambda n: f"{n}-workers")
def served(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Pynenc, int]]:
    monkeypatch.setenv("PYNENC__NUM_PROCESSES", str(request.param))
    for app in serve_with_runner_process(tmp_path, "PersistentProcessRunner"):
        yield app, request.param


def _record(benchmark: Any, tasks: int, workers: int) -> None:
    record_rate(benchmark, tasks, workers=workers, runner=f"PPR {workers} workers")


@pytest.mark.parametrize("tasks", SIZES)
def test_scaling(benchmark: Any, served: tuple[Pynenc, int], tasks: int) -> None:
    app, workers = served
    benchmark.group = f"scaling-{tasks}-tasks"
    items = [(i, 1) for i in range(tasks)]

    def run() -> int:
        return len(bench_tasks.add.parallelize(items).results)

    assert benchmark.pedantic(run, setup=app.purge, rounds=1) == tasks
    _record(benchmark, tasks, workers)


@pytest.mark.benchmark(group="nested-fan-out")
def test_nested_fan_out(benchmark: Any, served: tuple[Pynenc, int]) -> None:
    app, workers = served
    width, parents = (10, 2) if QUICK else (50, 20)

    def run() -> int:
        return sum(bench_tasks.fan_out.parallelize([(width,)] * parents).results)

    expected = parents * sum(i + 1 for i in range(width))
    assert benchmark.pedantic(run, setup=app.purge, rounds=1) == expected
    _record(benchmark, parents * (width + 1), workers)
