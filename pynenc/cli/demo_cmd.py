"""``pynenc demo``: an end-to-end self-check on the embedded default backend (SQLite).

Starts a real runner subprocess on the bundled app (:mod:`pynenc.demo.demo_tasks`), submits
N tasks, waits for them with progress bars, reports throughput and checks every result.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

import pynenc
from pynenc.app import Pynenc
from pynenc.cli.app_loader import AppRef
from pynenc.cli.console import EXIT_FAILURE, EXIT_OK, CLIError, stderr_console, stdout_console

DEMO_MODULE = "pynenc.demo.demo_tasks"
DEMO_APP = f"{DEMO_MODULE}.app"
DB_ENV_VAR = "PYNENC_DEMO_DB"  # read by the demo module at import

RUNNER_START_TIMEOUT_SEC = 30.0
RUNNER_STOP_TIMEOUT_SEC = 30.0
POLL_INTERVAL_SEC = 0.2  # how often progress is refreshed (the wait is on the runner process)
RESULT_CHUNK = 1000
MAX_REPORTED_MISMATCHES = 10
LOG_TAIL_LINES = 20


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run N tasks through a runner subprocess on SQLite and check every result",
        description="Self-check: start a runner subprocess on the bundled demo app (SQLite), "
        "submit N add(x, y) tasks, wait for them, print tasks/s and check every result. "
        "Exits 0 when every result is right.",
    )
    parser.add_argument(
        "--tasks", type=_positive_int, default=10_000, metavar="N", help="default: 10000"
    )
    parser.add_argument(
        "--db", type=Path, help="SQLite file to use (default: a new one in a temporary directory)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the database and the runner log afterwards"
    )
    parser.add_argument(
        "--timeout",
        type=_positive_float,
        default=300.0,
        metavar="SEC",
        help="give up (exit 1) after this long; default: 300",
    )
    parser.set_defaults(handler=run)


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive number")
    return value


def run(args: argparse.Namespace, _ref: AppRef) -> int:
    if args.app:
        stderr_console().print(
            f"Note: demo runs its bundled app ({DEMO_APP}); --app is ignored.", markup=False
        )
    return Demo(args.tasks, args.db, args.keep, args.timeout).run()


def expected_result(index: int) -> int:
    """Task ``index`` is ``add(index, 2 * index)``."""
    return 3 * index


class Demo:
    """One demo run; every path out of :meth:`run` stops the runner and cleans up."""

    def __init__(self, num_tasks: int, db: Path | None, keep: bool, timeout_sec: float) -> None:
        self.num_tasks = num_tasks
        self.keep = keep
        self.timeout_sec = timeout_sec
        self.deadline = time.monotonic() + timeout_sec
        self.workdir = Path(tempfile.mkdtemp(prefix="pynenc-demo-"))
        self.db_path = (db or self.workdir / "demo.db").resolve()
        self.log_path = self.workdir / "runner.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.console = stdout_console()

    # --- the run ------------------------------------------------------------------------

    def run(self) -> int:
        module = load_demo_module(self.db_path)
        app: Pynenc = module.app
        try:
            app.purge()
            self._start_runner(app)
            started = time.perf_counter()
            ids = self._submit(module)
            submitted = time.perf_counter()
            self._wait_for_completion(app)
            finished = time.perf_counter()
            self._report_rates(started, submitted, finished)
            self.console.print(status_table(app))
            code = self._verdict(check_results(app, ids))
            self._stop_runner()
            return code
        except CLIError:
            self._stop_runner(quiet=True)  # first, so the log tail shows how it ended
            self._print_log_tail()
            raise
        finally:
            self._stop_runner(quiet=True)
            app.close()
            self._clean_up()

    def _start_runner(self, app: Pynenc) -> None:
        env = {
            **os.environ,
            DB_ENV_VAR: str(self.db_path),
            "PYTHONPATH": _pythonpath_with_pynenc(),
            "PYTHONUNBUFFERED": "1",
        }
        command = [sys.executable, "-m", "pynenc", "--app", DEMO_APP, "runner", "start"]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        self.console.print(
            f"pynenc demo: {self.num_tasks} tasks on SQLite ({self.db_path}), "
            f"runner subprocess pid {self.process.pid}",
            markup=False,
        )
        self._wait_for_heartbeat(app, self.process)

    def _wait_for_heartbeat(self, app: Pynenc, process: subprocess.Popen[bytes]) -> None:
        limit = min(time.monotonic() + RUNNER_START_TIMEOUT_SEC, self.deadline)
        with self.console.status("Waiting for the runner to start..."):
            while not any(info.pid == process.pid for info in app.state_backend.get_runners()):
                if time.monotonic() > limit:
                    raise CLIError(
                        f"The runner subprocess did not heartbeat within "
                        f"{RUNNER_START_TIMEOUT_SEC:.0f}s{self._log_hint}.",
                        EXIT_FAILURE,
                    )
                self._wait_on_runner(process, "while starting")
        self.console.print("Runner is up.", markup=False)

    def _wait_on_runner(self, process: subprocess.Popen[bytes], when: str) -> None:
        """Wait one poll interval, failing at once if the runner exits meanwhile."""
        try:
            code = process.wait(timeout=POLL_INTERVAL_SEC)
        except subprocess.TimeoutExpired:
            return
        raise CLIError(
            f"The runner subprocess exited with code {code} {when}{self._log_hint}.",
            EXIT_FAILURE,
        )

    def _submit(self, module: ModuleType) -> list[str]:
        chunk = max(1, min(1000, self.num_tasks // 20))
        ids: list[str] = []
        with _progress(self.console) as progress:
            bar = progress.add_task("submitting", total=self.num_tasks)
            for start in range(0, self.num_tasks, chunk):
                self._check_deadline("submitting")
                calls = [(i, 2 * i) for i in range(start, min(start + chunk, self.num_tasks))]
                group = module.add.parallelize(calls)
                ids.extend(invocation.invocation_id for invocation in group)
                progress.update(bar, completed=len(ids))
        return ids

    def _wait_for_completion(self, app: Pynenc) -> None:
        assert self.process is not None
        with _progress(self.console) as progress:
            bar = progress.add_task("completing", total=self.num_tasks)
            while True:
                done = sum(
                    n for status, n in app.orchestrator.count_by_status().items() if status.is_final
                )
                progress.update(bar, completed=done)
                if done >= self.num_tasks:
                    return
                self._check_deadline(f"waiting for results ({done}/{self.num_tasks} final)")
                self._wait_on_runner(self.process, "before finishing the tasks")

    def _check_deadline(self, doing: str) -> None:
        if time.monotonic() > self.deadline:
            raise CLIError(
                f"Demo timed out after {self.timeout_sec:.0f}s while {doing}{self._log_hint}. "
                f"Try fewer --tasks or a longer --timeout.",
                EXIT_FAILURE,
            )

    def _report_rates(self, started: float, submitted: float, finished: float) -> None:
        submit_secs, total_secs = submitted - started, finished - started
        self.console.print(
            f"submission: {self.num_tasks} tasks in {submit_secs:.2f} s "
            f"({_rate(self.num_tasks, submit_secs)} tasks/s); end-to-end: {total_secs:.2f} s "
            f"({_rate(self.num_tasks, total_secs)} tasks/s)",
            markup=False,
        )

    def _verdict(self, mismatches: list[str]) -> int:
        if mismatches:
            console = stderr_console()
            console.print(f"{len(mismatches)} wrong or missing results:", style="bold red")
            for line in mismatches[:MAX_REPORTED_MISMATCHES]:
                console.print(f"  {line}", markup=False)
            return EXIT_FAILURE
        self.console.print(f"All {self.num_tasks} results are correct.", style="bold green")
        return EXIT_OK

    @property
    def _log_hint(self) -> str:
        """Where the runner log is, when it outlives the demo (the tail is printed anyway)."""
        return f" (runner log: {self.log_path})" if self.keep else ""

    # --- teardown -----------------------------------------------------------------------

    def _stop_runner(self, quiet: bool = False) -> None:
        """SIGTERM (the runner drains), then kill if it has not exited in time."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()  # SIGTERM on POSIX
            try:
                process.wait(timeout=RUNNER_STOP_TIMEOUT_SEC)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                if not quiet:
                    raise CLIError(
                        f"The runner did not stop within {RUNNER_STOP_TIMEOUT_SEC:.0f}s of "
                        f"SIGTERM and was killed{self._log_hint}.",
                        EXIT_FAILURE,
                    ) from None
        if not quiet:
            if process.returncode != 0:
                raise CLIError(
                    f"The runner exited with code {process.returncode} after SIGTERM"
                    f"{self._log_hint}.",
                    EXIT_FAILURE,
                )
            self.console.print("Runner stopped cleanly.", markup=False)

    def _print_log_tail(self) -> None:
        try:
            with self.log_path.open(encoding="utf-8", errors="replace") as log:
                tail = deque(log, maxlen=LOG_TAIL_LINES)
        except OSError:
            return
        if tail:
            console = stderr_console()
            console.print("Last lines of the runner log:", style="dim")
            console.print("".join(tail).rstrip(), markup=False, soft_wrap=True)

    def _clean_up(self) -> None:
        if self.keep:
            self.console.print(
                f"Kept the database {self.db_path} and the runner log {self.log_path}.",
                markup=False,
            )
            return
        shutil.rmtree(self.workdir, ignore_errors=True)


# --- helpers ------------------------------------------------------------------------------


def load_demo_module(db_path: Path) -> ModuleType:
    """The demo module, bound to ``db_path`` (re-imported if loaded for another file)."""
    previous = os.environ.get(DB_ENV_VAR)
    os.environ[DB_ENV_VAR] = str(db_path)
    try:
        module = sys.modules.get(DEMO_MODULE)
        if module is None:
            return importlib.import_module(DEMO_MODULE)
        if str(db_path) != module.DB_PATH:
            module = importlib.reload(module)
        return module
    finally:
        if previous is None:
            del os.environ[DB_ENV_VAR]
        else:
            os.environ[DB_ENV_VAR] = previous


def check_results(app: Pynenc, invocation_ids: Sequence[str]) -> list[str]:
    """One line per invocation whose result is missing or not ``expected_result``."""
    mismatches: list[str] = []
    loads = app.serializer.loads
    for start in range(0, len(invocation_ids), RESULT_CHUNK):
        chunk = invocation_ids[start : start + RESULT_CHUNK]
        resolve = app.client_data_store.resolve_value
        results = {i: resolve(v) for i, v in app.state_backend.get_results(chunk).items()}
        missing = [i for i in chunk if i not in results]
        states = app.orchestrator.get_states(missing) if missing else {}
        for index, invocation_id in enumerate(chunk, start):
            expected = expected_result(index)
            if invocation_id not in results:
                state = states.get(invocation_id)
                status = state.status if state else "unknown"
                mismatches.append(f"task {index} ({invocation_id}): no result, status {status}")
                continue
            got = loads(results[invocation_id])
            if got != expected:
                mismatches.append(f"task {index} ({invocation_id}): {got!r} != {expected!r}")
    return mismatches


def status_table(app: Pynenc) -> Table:
    table = Table(title="final status counts", title_justify="left")
    table.add_column("status")
    table.add_column("count", justify="right")
    for status, count in sorted(app.orchestrator.count_by_status().items()):
        table.add_row(status.name, str(count))
    return table


def _pythonpath_with_pynenc() -> str:
    """The child must import this very pynenc, also when it runs from a source checkout."""
    root = str(Path(pynenc.__file__).resolve().parent.parent)
    existing = os.environ.get("PYTHONPATH", "")
    return os.pathsep.join([root, existing]) if existing else root


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}" if seconds > 0 else "inf"


@contextmanager
def _progress(console: Console) -> Iterator[Progress]:
    progress = Progress(
        TextColumn("{task.description:<11}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    with progress:
        yield progress
