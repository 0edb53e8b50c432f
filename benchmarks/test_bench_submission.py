"""Submission alone, backends side by side: how fast a client hands work over, with no
runner consuming it. ``parallelize`` writes one batch per 2,000 calls; separate calls
write one each (one round trip to a shared backend per call).

The ``submission-client`` group measures the client's own Python with a write that does
nothing (binding, serializing, ids, records), and ``submission-encode`` both twins of the
fused batch encoder.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from benchmarks import bench_tasks
from benchmarks.conftest import QUICK, backend_config, record_rate, use_app
from pynenc import Pynenc, PynencBuilder
from pynenc._speedups import _batch_py
from pynenc.invocation.record import InvocationRecord, Registration
from pynenc.serializer import JsonPickleSerializer

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


@pytest.fixture
def client_only() -> Iterator[Pynenc]:
    """The bench app whose orchestrator accepts every batch without storing it."""
    app = use_app(**PynencBuilder().memory().config)

    def accept(registrations: Sequence[Registration], _: Sequence[InvocationRecord]) -> list[str]:
        return [r.invocation_id for r in registrations]

    app.orchestrator.submit_invocations = accept  # type: ignore[method-assign]
    yield app
    use_app()


@pytest.mark.benchmark(group="submission-client")
def test_parallelize_client_only(benchmark: Any, client_only: Pynenc) -> None:
    items = [(i, 1) for i in range(PARALLELIZE_TASKS)]
    run = lambda: len(bench_tasks.add.parallelize(items))  # noqa: E731
    assert benchmark.pedantic(run, rounds=1 if QUICK else 5) == PARALLELIZE_TASKS
    record_rate(benchmark, PARALLELIZE_TASKS, backend="client only")


@pytest.mark.benchmark(group="submission-client")
def test_separate_calls_client_only(benchmark: Any, client_only: Pynenc) -> None:
    def run() -> int:
        return len([bench_tasks.add(i, 1) for i in range(SEPARATE_CALLS)])

    assert benchmark.pedantic(run, rounds=1 if QUICK else 5) == SEPARATE_CALLS
    record_rate(benchmark, SEPARATE_CALLS, backend="client only")


def _batch_twins() -> list[ModuleType]:
    try:
        return [_batch_py, importlib.import_module("pynenc._speedups._batch_c")]
    except ImportError:  # a pure install: only one row
        return [_batch_py]


@pytest.mark.benchmark(group="submission-encode")
@pytest.mark.parametrize("twin", _batch_twins(), ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_encode_calls(benchmark: Any, twin: ModuleType) -> None:
    calls = [{"x": i, "y": 1} for i in range(2000)]  # one submit batch
    dumps = JsonPickleSerializer().dumps
    envelopes, left = benchmark(twin.encode_calls, calls, dumps, 1024)
    assert len(envelopes) == 2000 and not left
    record_rate(benchmark, 2000, twin=twin.__name__.rsplit(".", 1)[-1])
