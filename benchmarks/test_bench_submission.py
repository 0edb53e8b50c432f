"""Submission alone, backends side by side: how fast a client hands work over, with no
runner consuming it. ``parallelize`` writes one batch per 2,000 calls; separate calls
write one each (one round trip to a shared backend per call).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks import bench_tasks
from benchmarks.conftest import QUICK, backend_config, record_rate, use_app
from pynenc import Pynenc, PynencBuilder

BACKENDS = ["memory", "sqlite", "redis"]
PARALLELIZE_TASKS = 500 if QUICK else 50_000
SEPARATE_CALLS = 100 if QUICK else 5_000


@pytest.fixture(params=BACKENDS)
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pynenc]:
    backend = request.param
    config = PynencBuilder().memory().config if backend == "memory" else {}
    app = use_app(**(config or backend_config(backend, tmp_path)))
    app.purge()
    yield app
    app.purge()
    use_app()


@pytest.mark.benchmark(group="submission-parallelize")
def test_parallelize(benchmark: Any, client: Pynenc) -> None:
    items = [(i, 1) for i in range(PARALLELIZE_TASKS)]
    run = lambda: len(bench_tasks.add.parallelize(items))  # noqa: E731
    rounds = 1 if QUICK else 3
    assert benchmark.pedantic(run, setup=client.purge, rounds=rounds) == PARALLELIZE_TASKS
    assert client.broker.count_invocations() == PARALLELIZE_TASKS
    record_rate(benchmark, PARALLELIZE_TASKS, backend=client.conf.broker_cls)


@pytest.mark.benchmark(group="submission-separate-calls")
def test_separate_calls(benchmark: Any, client: Pynenc) -> None:
    def run() -> int:
        return len([bench_tasks.add(i, 1) for i in range(SEPARATE_CALLS)])

    rounds = 1 if QUICK else 3
    assert benchmark.pedantic(run, setup=client.purge, rounds=rounds) == SEPARATE_CALLS
    assert client.broker.count_invocations() == SEPARATE_CALLS
    record_rate(benchmark, SEPARATE_CALLS, backend=client.conf.broker_cls)
