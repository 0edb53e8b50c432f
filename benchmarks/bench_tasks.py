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
