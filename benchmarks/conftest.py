"""Fixtures of the benchmarks: the bench app in dev mode, on memory with a runner thread,
and on SQLite served by a runner in a separate process (the real deployment shape).

``PYNENC_BENCH_N`` sets the number of tasks per end-to-end round (default 5000);
``PYNENC_BENCH_QUICK=1`` runs 200 tasks, one round (CI). Other ``PYNENC__*`` variables
(e.g. ``PYNENC__MAX_THREADS``) reach the runner process unchanged.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from benchmarks import bench_tasks
from pynenc import Pynenc, PynencBuilder
from pynenc.conf import ConfigThreadRunner

REPO = Path(__file__).resolve().parent.parent
QUICK = os.environ.get("PYNENC_BENCH_QUICK", "").lower() in ("1", "true", "yes")
RUNNER_START_TIMEOUT_SEC = 30.0
RUNNER_STOP_TIMEOUT_SEC = 30.0
WARMUP_TASKS = 50
BASE_CONFIG = dict(bench_tasks.app.config_values)  # memory + ThreadRunner, as the module builds it


@dataclass(frozen=True)
class Workload:
    tasks: int
    rounds: int


@pytest.fixture(scope="session")
def workload() -> Workload:
    default = 200 if QUICK else 5000
    return Workload(int(os.environ.get("PYNENC_BENCH_N", default)), 1 if QUICK else 3)


def use_app(**config: object) -> Pynenc:
    """The bench app as its module builds it, plus ``config``."""
    app = bench_tasks.app
    app.config_values.clear()
    app.config_values.update(BASE_CONFIG)
    app.reconfigure(**config)
    return app


def runner_threads(app: Pynenc) -> int:
    """Threads a ThreadRunner for ``app`` runs at most (the runner process resolves the same
    config values and environment, so this holds for it too)."""
    return ConfigThreadRunner(app.config_values, app.config_filepath).max_threads or (
        os.cpu_count() or 1
    )


def _warm_up(app: Pynenc) -> None:
    """Run a few tasks first: proves the runner serves, and keeps cold caches out of round 1."""
    items = [(i, 1) for i in range(WARMUP_TASKS)]
    assert bench_tasks.add.parallelize(items).results == [i + 1 for i in range(WARMUP_TASKS)]
    app.purge()


@pytest.fixture
def dev_app() -> Iterator[Pynenc]:
    yield use_app(dev_mode_force_sync_tasks=True)
    use_app()


@pytest.fixture
def memory_app() -> Iterator[Pynenc]:
    """Memory backends, a ThreadRunner serving from a thread of this process."""
    app = use_app()
    runner = app.runner
    thread = threading.Thread(target=runner.run, name="bench-runner", daemon=True)
    thread.start()
    assert runner.started_event.wait(10), "runner thread did not start"
    _warm_up(app)
    yield app
    runner.stop()
    thread.join(RUNNER_STOP_TIMEOUT_SEC)
    assert not thread.is_alive(), "runner thread did not stop"
    app.purge()
    use_app()


def _runner_env(config: dict[str, Any]) -> dict[str, str]:
    env = dict(os.environ)
    # environment variables beat the module's builder values (memory)
    env.update({f"PYNENC__{field.upper()}": str(value) for field, value in config.items()})
    env.update(
        {
            "PYNENC__LOGGING_LEVEL": os.environ.get("PYNENC__LOGGING_LEVEL", "warning"),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
        }
    )
    return env


def _wait_for_heartbeat(app: Pynenc, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + RUNNER_START_TIMEOUT_SEC
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"runner process exited {process.returncode}:\n{log.read_text()}")
        if any(info.pid == process.pid for info in app.state_backend.get_runners()):
            return
        time.sleep(0.05)  # polling another process's first heartbeat: nothing to wait on
    pytest.fail(
        f"runner process sent no heartbeat in {RUNNER_START_TIMEOUT_SEC}s:\n{log.read_text()}"
    )


def _stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)  # drains, re-queues the unfinished, exits 0
    try:
        return process.wait(RUNNER_STOP_TIMEOUT_SEC)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


@pytest.fixture
def sqlite_runner_process(tmp_path: Path) -> Iterator[Pynenc]:
    """SQLite backends; a ThreadRunner started with ``pynenc runner start`` in its own process.

    This process only submits and waits for results, as a client of a deployment would."""
    yield from serve_with_runner_process(tmp_path, "ThreadRunner")


def backend_config(backend: str, tmp_path: Path) -> dict[str, Any]:
    """Builder values selecting ``backend`` ("sqlite" or "redis") for one benchmark."""
    if backend == "sqlite":
        return PynencBuilder().sqlite(sqlite_db_path=str(tmp_path / "bench.db")).config
    from tests.runner_support import redis_config  # skips locally, fails in CI, if absent

    return {**PynencBuilder().redis().config, **redis_config(tmp_path)}


def serve_with_runner_process(
    tmp_path: Path, runner_cls: str, backend: str = "sqlite"
) -> Iterator[Pynenc]:
    """The bench app on ``backend``, served by ``runner_cls`` started by the CLI in a
    process of its own."""
    config = {**backend_config(backend, tmp_path), "runner_cls": runner_cls}
    app = use_app(**config)
    log = tmp_path / "runner.log"
    command = [sys.executable, "-m", "pynenc", "--app", "benchmarks.bench_tasks.app"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "runner", "start"],
            cwd=REPO,
            env=_runner_env(config),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_heartbeat(app, process, log)
        _warm_up(app)
        yield app
    finally:
        code = _stop(process)
        app.purge()
        use_app()
    assert code == 0, f"runner process exited {code} on SIGTERM:\n{log.read_text()}"


def record_rate(benchmark: Any, tasks: int, **labels: object) -> None:
    """Put ``tasks`` and the tasks/s of the median round in ``extra_info`` (with labels
    such as ``runner`` or ``backend``, which name the bar in docs/benchmarks.svg)."""
    benchmark.extra_info.update(labels, tasks=tasks)
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        benchmark.extra_info["tasks_per_sec"] = round(tasks / stats.stats.median, 1)


def measure_round_trip(benchmark: Any, rounds: int, **labels: object) -> None:
    """Call ``add(1, 2)`` and wait for its result, ``rounds`` times; p50/p99 in ms go to
    ``extra_info``: the latency one caller sees."""
    samples: list[float] = []

    def one() -> int:
        started = time.perf_counter()
        value = int(bench_tasks.add(1, 2).result)
        samples.append(time.perf_counter() - started)
        return value

    assert benchmark.pedantic(one, rounds=rounds, warmup_rounds=3) == 3
    samples.sort()
    benchmark.extra_info.update(labels)
    benchmark.extra_info["p50_ms"] = round(statistics.median(samples) * 1000, 3)
    benchmark.extra_info["p99_ms"] = round(samples[max(int(len(samples) * 0.99) - 1, 0)] * 1000, 3)
