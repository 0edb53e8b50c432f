"""ProcessRunner: every invocation runs in a fresh process started from a forkserver.

The parent claims work and watches its children through pipes and process sentinels; a
child rebuilds the app from an ``AppReference``, runs one invocation, sends its Outcome
back and exits. A child waiting on sub-invocations tells the parent, which frees its slot.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from pynenc.conf.config_runner import ConfigProcessRunner, worker_count
from pynenc.context import InvocationContext, current_runner_id
from pynenc.exceptions import ConfigError, RunnerError
from pynenc.invocation.errors import encode_exception
from pynenc.invocation.status import InvocationStatus
from pynenc.runner.base import BaseRunner
from pynenc.runner.child_app import AppReference, load_app, reference_to
from pynenc.runner.execution import Outcome, execute

if TYPE_CHECKING:
    from multiprocessing.context import ForkServerContext, SpawnContext

    from pynenc.app import Pynenc
    from pynenc.invocation.record import InvocationRecord

    ProcessContext = ForkServerContext | SpawnContext

# What a child tells its parent, as tuples: (PAUSED,), (RESUMED,), (OUTCOME, Outcome).
PAUSED = "paused"  # waiting on sub-invocations: its slot may run other work meanwhile
RESUMED = "resumed"  # running again
OUTCOME = "outcome"  # finished; the child exits right after

TERMINATE_GRACE_SEC = 5.0  # after SIGTERM, a child left by drain() gets this long before SIGKILL
SLOT_RECHECK_SEC = 0.5  # the claim loop looks at stop_event at least this often when full


class ProcessExitedError(RunnerError):
    """The process running an invocation ended before sending its outcome."""

    def __init__(self, invocation_id: str, exitcode: int | None) -> None:
        self.invocation_id, self.exitcode = invocation_id, exitcode
        cause = f" (killed by {_signal_name(-exitcode)})" if exitcode and exitcode < 0 else ""
        super().__init__(
            f"The process of invocation {invocation_id} exited with code {exitcode}{cause} "
            "before finishing. It was killed (out of memory?), crashed or called os._exit; "
            "see the runner's log."
        )

    def __reduce__(self) -> tuple[type[ProcessExitedError], tuple[str, int | None]]:
        return type(self), (self.invocation_id, self.exitcode)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def process_context(preload: Sequence[str] = ()) -> ProcessContext:
    """A dedicated context: forkserver with pynenc (and ``preload``) imported once in the
    server, else spawn. Never fork: the parent runs threads (heartbeat, outcomes, monitor)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # only read when the server starts: the first runner of this process decides
    context.set_forkserver_preload([__name__, *preload])
    return context


def _failed(invocation_id: str, error: Exception) -> Outcome:
    return Outcome(invocation_id, InvocationStatus.FAILED, exception=encode_exception(error))


# --- the child side -------------------------------------------------------------------


class _ChildRunner(BaseRunner):
    """``ctx.runner`` inside a child: waits on sub-invocations, telling the parent that it
    is paused meanwhile. It serves nothing; the parent owns the invocation."""

    kind = "process"
    config_cls = ConfigProcessRunner

    def __init__(self, app: Pynenc, runner_id: str, conn: Connection) -> None:
        super().__init__(app)
        self.runner_id = runner_id
        self._conn = conn

    def serve(self) -> None:
        raise RunnerError("A ProcessRunner child runs one invocation; it cannot serve.")

    def drain(self, timeout_sec: float) -> None:
        """Nothing to drain: the child ends with its invocation."""

    def wait_for_invocations(
        self, ctx: InvocationContext, invocation_ids: Sequence[str], timeout_sec: float | None
    ) -> bool:
        orchestrator = self.app.orchestrator
        if orchestrator.wait_for_final(invocation_ids, 0):
            return True  # already done: no pause to record
        self._conn.send((PAUSED,))
        try:
            return orchestrator.wait_for_final(invocation_ids, timeout_sec)
        finally:
            self._conn.send((RESUMED,))


def _child_main(
    ref: AppReference,
    runner_id: str,
    record: InvocationRecord,
    num_retries: int,
    conn: Connection,
) -> None:
    """Entry point of a child process: run ``record`` and send its Outcome."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C drains the parent, not the task
    current_runner_id.set(runner_id)
    try:
        app = load_app(ref)
    except Exception as exc:
        error = RunnerError(f"A ProcessRunner child could not load the app {ref.module}: {exc}")
        conn.send((OUTCOME, _failed(record.invocation_id, error)))
        conn.close()
        return
    try:
        task = app.tasks.get(record.task_id)
        loop = asyncio.new_event_loop() if task is not None and task.is_async else None
        try:
            outcome = execute(app, record, num_retries, _ChildRunner(app, runner_id, conn), loop)
        finally:
            if loop is not None:
                loop.close()
        conn.send((OUTCOME, outcome))
    finally:
        conn.close()
        app.close()


# --- the parent side ------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class _Child:
    record: InvocationRecord
    process: BaseProcess
    sentinel: int
    conn: Connection | None
    paused: bool = False  # waiting on sub-invocations: not counted against max_processes
    finished: bool = False  # its outcome arrived
    abandoned: bool = False  # terminated by drain(): left for the re-queue


class ProcessRunner(BaseRunner):
    """Runs up to ``max_processes`` invocations at once (0 = CPU count), each in a new
    process: full isolation, a crash fails only its own invocation.

    A task waiting on a sub-invocation's result stops counting against the limit, so
    nested calls deeper than ``max_processes`` still complete."""

    kind = "process"
    config_cls = ConfigProcessRunner

    def __init__(self, app: Pynenc) -> None:
        super().__init__(app)
        conf: ConfigProcessRunner = self.conf  # type: ignore[assignment]
        self.max_processes = worker_count(conf.max_processes)
        self._lock = threading.Condition()
        # Process.start() polls every child multiprocessing knows; a join in another thread
        # at the same time could read a forkserver child's exit code twice (once as 255)
        self._process_lock = threading.Lock()
        self._children: dict[int, _Child] = {}  # by process sentinel
        self._active = 0  # children not paused
        self._closing = False
        self._monitor: threading.Thread | None = None
        self._wake_reader: Connection | None = None
        self._wake_writer: Connection | None = None

    # --- the claim loop (main thread) -------------------------------------------------

    def serve(self) -> None:
        self._check_backend()
        ref = reference_to(self.app)
        context = process_context([ref.module])
        self._start_monitor()
        batch_size = self.conf.runner_batch_size
        timeout = max(self.app.conf.queue_timeout_sec, 0.05)
        while not self.stop_event.is_set():
            free = self._free_slots()
            if free <= 0:
                continue
            for record, num_retries in self.claim_next(min(free, batch_size), timeout):
                self._start_child(context, ref, record, num_retries)

    def _check_backend(self) -> None:
        components = (self.app.broker, self.app.orchestrator, self.app.state_backend)
        if any(type(c).__module__.startswith("pynenc.backends.memory") for c in components):
            raise ConfigError(
                "ProcessRunner runs every task in another process, which cannot see an "
                "in-memory backend. Use .sqlite() or .redis(url=...), or .thread_runner()."
            )

    def _free_slots(self) -> int:
        with self._lock:
            self._lock.wait_for(lambda: self._active < self.max_processes, SLOT_RECHECK_SEC)
            return self.max_processes - self._active

    def _start_child(
        self, context: ProcessContext, ref: AppReference, record: InvocationRecord, num_retries: int
    ) -> None:
        reader, writer = context.Pipe(duplex=False)
        process = context.Process(
            target=_child_main,
            args=(ref, self.runner_id, record, num_retries, writer),
            name=f"pynenc-{record.invocation_id}",
        )
        try:
            with self._process_lock:
                process.start()
        except Exception as exc:
            reader.close()
            self.app.logger.exception("Could not start a process for %s", record.invocation_id)
            error = RunnerError(f"Could not start a process for {record.invocation_id}: {exc}")
            self._fail(record.invocation_id, error)
            return
        finally:
            writer.close()  # the child has its copy: EOF on reader means the child is gone
        with self._lock:
            self._children[process.sentinel] = _Child(record, process, process.sentinel, reader)
            self._active += 1
        self._wake()

    def _fail(self, invocation_id: str, error: Exception) -> None:
        self.outcomes.put(_failed(invocation_id, error))

    # --- the monitor (one thread: pipes, sentinels and a wake-up) --------------------

    def _start_monitor(self) -> None:
        self._wake_reader, self._wake_writer = multiprocessing.Pipe(duplex=False)
        self._monitor = threading.Thread(
            target=self._monitor_loop, name="pynenc-process-monitor", daemon=True
        )
        self._monitor.start()

    def _wake(self) -> None:
        if self._wake_writer is not None:
            self._wake_writer.send_bytes(b"")

    def _monitor_loop(self) -> None:
        current_runner_id.set(self.runner_id)
        assert self._wake_reader is not None
        wake = self._wake_reader
        while True:
            with self._lock:
                if self._closing and not self._children:
                    return
                owners: dict[Any, _Child] = {}
                for child in self._children.values():
                    owners[child.sentinel] = child
                    if child.conn is not None:
                        owners[child.conn] = child
            for ready in wait([wake, *owners]):
                if ready is wake:
                    while wake.poll():
                        wake.recv_bytes()
                    continue
                child = owners[ready]
                try:
                    if ready is child.conn:
                        self._read(child)
                    elif ready == child.sentinel and self._children.get(ready) is child:
                        self._reap(child)
                except Exception:  # a backend error must not stop the watch over children
                    self.app.logger.exception("Handling %s failed", child.record.invocation_id)

    def _read(self, child: _Child) -> None:
        """Handle one message; on EOF (the child closed its end) stop reading it."""
        assert child.conn is not None
        try:
            message = child.conn.recv()
        except (EOFError, OSError):
            child.conn.close()
            child.conn = None
            return
        kind = message[0]
        if kind == OUTCOME:
            child.finished = True
            self.outcomes.put(message[1])
        elif kind == PAUSED:
            self._count(child, paused=True)
            self._set_status(child, InvocationStatus.PAUSED)
        elif kind == RESUMED:
            self._count(child, paused=False)
            self._set_status(child, InvocationStatus.RESUMED)

    def _count(self, child: _Child, paused: bool) -> None:
        with self._lock:
            if child.paused != paused:
                child.paused = paused
                self._active += -1 if paused else 1
                self._lock.notify_all()

    def _set_status(self, child: _Child, status: InvocationStatus) -> None:
        try:
            self.app.orchestrator.set_status(child.record.invocation_id, status, self.runner_id)
        except Exception as exc:
            self.app.logger.warning(
                "Could not set %s on %s: %s", status, child.record.invocation_id, exc
            )

    def _reap(self, child: _Child) -> None:
        """The child exited: take its last messages, free its slot, fail it if it never
        sent an outcome."""
        while child.conn is not None and child.conn.poll():
            self._read(child)  # the outcome is in the pipe before the exit
        if child.conn is not None:
            child.conn.close()
            child.conn = None
        with self._process_lock:
            child.process.join()
        with self._lock:
            del self._children[child.sentinel]
            if not child.paused:
                self._active -= 1
            self._lock.notify_all()
        if child.finished or child.abandoned:
            return
        error = ProcessExitedError(child.record.invocation_id, child.process.exitcode)
        self.app.logger.error("%s", error)
        if child.paused:  # FAILED is reachable from RESUMED, not from PAUSED
            self._set_status(child, InvocationStatus.RESUMED)
        self._fail(child.record.invocation_id, error)

    # --- stopping ------------------------------------------------------------------------

    def drain(self, timeout_sec: float) -> None:
        with self._lock:
            self._lock.wait_for(lambda: not self._children, timeout_sec)
            leftover = list(self._children.values())
            for child in leftover:
                child.abandoned = True
        if leftover:
            self.app.logger.warning(
                "Runner %s terminates %d processes still running after %.1fs; their "
                "invocations go back to the queue",
                self.runner_id,
                len(leftover),
                timeout_sec,
            )
            _terminate([child.process for child in leftover])
        self._stop_monitor()
        self.outcomes.wait_idle(timeout_sec)

    def _stop_monitor(self) -> None:
        with self._lock:
            self._closing = True
        if self._monitor is None:
            return
        self._wake()
        self._monitor.join(TERMINATE_GRACE_SEC)
        if self._monitor.is_alive():  # a child that survived SIGKILL: leave the daemon be
            return
        for conn in (self._wake_reader, self._wake_writer):
            if conn is not None:
                conn.close()
        self._wake_reader = self._wake_writer = None

    def wait_for_invocations(
        self, ctx: InvocationContext, invocation_ids: Sequence[str], timeout_sec: float | None
    ) -> bool:
        """Tasks run in children, which wait through their own ``_ChildRunner``; code in
        the parent holds no slot, so it just waits."""
        return self.app.orchestrator.wait_for_final(invocation_ids, timeout_sec)


def _terminate(processes: Sequence[BaseProcess]) -> None:
    """SIGTERM, then SIGKILL for whatever is still alive after the grace period."""
    for process in processes:
        process.terminate()
    deadline = time.monotonic() + TERMINATE_GRACE_SEC
    for process in processes:
        process.join(max(deadline - time.monotonic(), 0))
        if process.exitcode is None:
            process.kill()
            process.join(TERMINATE_GRACE_SEC)
