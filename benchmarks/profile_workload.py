"""A representative workload to profile task overhead: submit, run and collect trivial
tasks on SQLite with a ThreadRunner in this process, so one profile sees both sides.

    python -m scalene --cli --reduced-profile --outfile profile.txt \\
        benchmarks/profile_workload.py --tasks 20000

See docs/performance.md for how to read the report.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import bench_tasks
from pynenc import PynencBuilder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = bench_tasks.app
        app.reconfigure(**PynencBuilder().sqlite(f"{tmp}/profile.db").config)
        app.purge()
        runner = app.runner
        thread = threading.Thread(target=runner.run, daemon=True)
        thread.start()
        runner.started_event.wait(10)
        started = time.perf_counter()
        results = bench_tasks.add.parallelize([(i, 1) for i in range(args.tasks)]).results
        elapsed = time.perf_counter() - started
        assert results == [i + 1 for i in range(args.tasks)]
        runner.stop()
        thread.join(30)
        print(f"{args.tasks} tasks in {elapsed:.2f}s: {args.tasks / elapsed:,.0f} tasks/s")


if __name__ == "__main__":
    main()
