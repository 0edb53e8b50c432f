"""Tasks the benchmarks run. A runner subprocess imports this module to find them, so it
must stay importable as ``benchmarks.bench_tasks`` from the repository root."""

from __future__ import annotations

from pynenc import PynencBuilder

# Memory by default; each benchmark reconfigures the app, and a runner subprocess is
# pointed at the benchmark's SQLite file by PYNENC__* environment variables.
app = PynencBuilder().app_id("pynenc-bench").memory().thread_runner().build()


@app.task
def add(x: int, y: int) -> int:
    return x + y


@app.task
def sleep_10ms() -> None:
    """An I/O-bound task: waits without using the CPU."""
    import time

    time.sleep(0.01)


@app.task
def cpu_bound(n: int) -> int:
    """A CPU-bound task: pure Python arithmetic holding the GIL (about 2 ms for n=20,000)."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


@app.task
def fan_out(width: int) -> int:
    """A task that starts ``width`` sub-tasks and waits for all of them (nested fan-out)."""
    return sum(add.parallelize([(i, 1) for i in range(width)]).results)
