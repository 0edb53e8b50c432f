"""MultiThreadRunner: a supervisor process that keeps ThreadRunner child processes, scaled
with the queue. Each child is a full runner (own id, heartbeat, claims, outcome writer); the
supervisor only starts, watches and stops them, and re-queues a dead child's work at once."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event
from typing import TYPE_CHECKING, Any

from pynenc.conf.config_base import ENV_PREFIX
from pynenc.conf.config_runner import ConfigMultiThreadRunner, worker_count
from pynenc.context import InvocationContext
from pynenc.exceptions import RunnerError
from pynenc.runner.base import BaseRunner
from pynenc.runner.child_app import AppReference, load_app, reference_to
from pynenc.runner.recovery import recover_runner
from pynenc.runner.thread_runner import ThreadRunner

if TYPE_CHECKING:
    from pynenc.app import Pynenc
    from pynenc.invocation.record import InvocationRecord

# The supervisor looks at the queue and its children this often at most (it also wakes at
# once when a child exits); a child starting or stopping takes longer than this anyway.
SUPERVISE_INTERVAL_SEC = 0.25
# Children drain for graceful_shutdown_timeout_sec themselves; this is their time to write
# the last outcomes and leave before the supervisor kills them.
CHILD_EXIT_GRACE_SEC = 5.0
# Room for a runner id (kind, host name up to 255 bytes, pid, random part).
RUNNER_ID_MAX_BYTES = 320
# Children in a row that die before serving: the app cannot start here, so stop trying.
MAX_FAILED_STARTS = 3


@dataclass(frozen=True)
class _Seat:
    """A child's place among the children that hold the supervisor at its floor.

    An idle child gives up its seat itself, under a lock shared by all children, so two
    children idle at once never both leave when only one of them is spare."""

    counted: Any  # multiprocessing Value("i"): seats taken, shared by every child
    given_up: Any  # multiprocessing RawValue("b") of this child
    floor: int

    def give_up_if_spare(self) -> bool:
        with self.counted.get_lock():
            if self.given_up.value or self.counted.value <= self.floor:
                return False
            self.counted.value -= 1
            self.given_up.value = 1
            return True

    def release(self) -> None:
        """The supervisor frees the seat of a child that exited without giving it up."""
        with self.counted.get_lock():
            if not self.given_up.value:
                self.counted.value -= 1
                self.given_up.value = 1


@dataclass(frozen=True)
class _ChildSpec:
    """Everything a child process needs, pickled to it by the spawn context."""

    app_ref: AppReference
    runner_id_box: Any  # multiprocessing RawArray("c"): the child writes its runner id here
    min_threads: int
    max_threads: int
    idle_exit_sec: float
    seat: _Seat
    ready: Event  # set once the child serves


@dataclass
class _Child:
    process: BaseProcess
    spec: _ChildSpec
    started_at: float = field(default_factory=time.monotonic)

    @property
    def runner_id(self) -> str | None:
        """Known once the child built its runner (before it could claim anything)."""
        return str(self.spec.runner_id_box.value.decode()) or None


class ChildThreadRunner(ThreadRunner):
    """The ThreadRunner inside each child process.

    It tells the supervisor its runner id, takes its thread counts from it, exits after
    ``idle_timeout_process_sec`` without work when its seat is spare, and drains and exits
    when the supervisor dies."""

    def __init__(self, app: Pynenc, spec: _ChildSpec) -> None:
        super().__init__(app)
        spec.runner_id_box.value = self.runner_id.encode()  # recovered if this child dies
        self.max_threads = worker_count(spec.max_threads)
        self.min_threads = min(spec.min_threads, self.max_threads)
        self._spec = spec
        self._busy_at = time.monotonic()

    def serve(self) -> None:
        threading.Thread(
            target=self._watch_supervisor, name="pynenc-supervisor-watch", daemon=True
        ).start()
        self._spec.ready.set()
        super().serve()

    def claim_next(self, max_count: int, timeout_sec: float) -> list[tuple[InvocationRecord, int]]:
        claimed = super().claim_next(max_count, timeout_sec)
        now = time.monotonic()
        if claimed or self._active > 0 or self._waiting > 0:
            self._busy_at = now
        elif now - self._busy_at >= self._spec.idle_exit_sec and self._spec.seat.give_up_if_spare():
            self.app.logger.info(
                "Runner %s idle for %.1fs: exiting", self.runner_id, now - self._busy_at
            )
            self.stop_event.set()
        return claimed

    def _watch_supervisor(self) -> None:
        parent = multiprocessing.parent_process()
        if parent is None:
            return
        wait([parent.sentinel])
        if not self.stop_event.is_set():
            self.app.logger.warning("Runner %s lost its supervisor: draining", self.runner_id)
            self.stop_event.set()


def _child_main(spec: _ChildSpec) -> None:
    """Entry point of a child process: rebuild the app with the parent's config, serve."""
    # The child is a ThreadRunner whatever the environment names (PYNENC__RUNNER_CLS set for
    # the supervisor is inherited), so the app's config tells the truth inside the child.
    for name in [n for n in os.environ if n.upper().startswith(ENV_PREFIX)]:
        if name.upper().endswith("RUNNER_CLS"):
            del os.environ[name]
    values = {**spec.app_ref.config_values, "runner_cls": "ThreadRunner"}
    app = load_app(replace(spec.app_ref, config_values=values))
    runner = ChildThreadRunner(app, spec)
    app.runner = runner
    try:
        runner.run()
    finally:
        app.close()


class MultiThreadRunner(BaseRunner):
    """Runs ``min_processes`` to ``max_processes`` child processes (0 = CPU count), each a
    ThreadRunner with ``min_threads`` to ``max_threads`` threads. The supervisor runs no task.

    - Scaling up: while the queue holds more invocations than the children's threads can
      take (``count_invocations() > children * max_threads``), one more child starts once
      the previous one serves, up to ``max_processes``.
    - Scaling down: a child that claimed nothing for ``idle_timeout_process_sec`` exits by
      itself while more than ``min_processes`` children remain.
    - ``enforce_max_processes=True`` (as in Pynenc) keeps ``max_processes`` children at all
      times, whatever the load, and none exits when idle. With ``False`` (the default) the
      count follows the load between ``min_processes`` and ``max_processes``.
    - A child that dies is noticed at once (process sentinel): its invocations are re-queued
      and a new child starts while fewer than the floor remain. Children start with the
      ``spawn`` context and rebuild the app from its module with the parent's config.
    - SIGTERM/SIGINT: children get SIGTERM and drain (``graceful_shutdown_timeout_sec``);
      the supervisor waits for them, then exits.
    """

    kind = "multithread"
    config_cls = ConfigMultiThreadRunner

    def __init__(self, app: Pynenc) -> None:
        super().__init__(app)
        conf: ConfigMultiThreadRunner = self.conf  # type: ignore[assignment]
        self.max_processes = max(worker_count(conf.max_processes), conf.min_processes)
        self.min_processes = (
            self.max_processes if conf.enforce_max_processes else max(conf.min_processes, 0)
        )
        self.max_threads = worker_count(conf.max_threads)
        self.min_threads = conf.min_threads
        self.idle_exit_sec = conf.idle_timeout_process_sec
        self._ctx = multiprocessing.get_context("spawn")  # never fork a threaded parent
        self._children: dict[int, _Child] = {}  # by process sentinel
        self._counted: Any = None  # seats taken, a shared Value made in serve()
        self._app_ref: AppReference | None = None
        self._failed_starts = 0
        self._spawned = 0

    @property
    def child_pids(self) -> list[int]:
        return [pid for c in self._children.values() if (pid := c.process.pid) is not None]

    # --- supervision --------------------------------------------------------------------

    def serve(self) -> None:
        self._app_ref = reference_to(self.app)  # fails here, not in every child
        self._counted = self._ctx.Value("i", 0)
        interval = min(self.app.conf.runner_heartbeat_interval, SUPERVISE_INTERVAL_SEC)
        while not self.stop_event.is_set():
            self._scale()
            self._watch(interval)
            if self._failed_starts >= MAX_FAILED_STARTS:
                raise RunnerError(
                    f"{self._failed_starts} child runners in a row died before serving; "
                    "see their errors above (often the app module does not import in a new "
                    "process, or a backend is unreachable)."
                )

    def _scale(self) -> None:
        missing = self.min_processes - self._counted.value
        for _ in range(missing):
            self._spawn()
        if missing > 0 or len(self._children) >= self.max_processes:
            return
        if any(not c.spec.ready.is_set() for c in self._children.values()):
            return  # a child is starting: its threads will take part of the backlog
        try:
            queued = self.app.broker.count_invocations()
        except Exception:  # looked at again next interval
            self.app.logger.exception("Supervisor %s could not count the queue", self.runner_id)
            return
        if queued > self._counted.value * self.max_threads:
            self._spawn()

    def _spawn(self) -> None:
        assert self._app_ref is not None and self._counted is not None
        seat = _Seat(self._counted, self._ctx.RawValue("b", 0), self.min_processes)
        spec = _ChildSpec(
            self._app_ref,
            self._ctx.RawArray("c", RUNNER_ID_MAX_BYTES),
            self.min_threads,
            self.max_threads,
            self.idle_exit_sec,
            seat,
            self._ctx.Event(),
        )
        self._spawned += 1
        name = f"pynenc-{self.runner_id}-child-{self._spawned}"
        process = self._ctx.Process(target=_child_main, args=(spec,), name=name)
        with self._counted.get_lock():
            self._counted.value += 1
        try:
            process.start()
        except BaseException:
            seat.release()
            raise
        self._children[process.sentinel] = _Child(process, spec)
        self.app.logger.info(
            "Supervisor %s started a child runner (pid %s, %d children)",
            self.runner_id,
            process.pid,
            len(self._children),
        )

    def _watch(self, timeout_sec: float | None) -> None:
        """Wait up to ``timeout_sec`` for a child to exit (or for a stop), and reap it."""
        if not self._children:
            self.stop_event.wait(timeout_sec)
            return
        for sentinel in wait(list(self._children), timeout_sec):
            assert isinstance(sentinel, int)
            self._reap(self._children.pop(sentinel))

    def _reap(self, child: _Child) -> None:
        child.process.join()
        child.spec.seat.release()
        code = child.process.exitcode
        runner_id = child.runner_id
        routed: list[str] = []
        try:
            if runner_id is not None:
                routed = recover_runner(self.app, runner_id, self.runner_id)
        except Exception:  # the heartbeat recovery of any live runner catches it later
            self.app.logger.exception("Could not recover the work of %s", runner_id)
        served = child.spec.ready.is_set()
        if code == 0 or self.stop_event.is_set():
            self.app.logger.info("Child runner %s exited (code %s)", runner_id, code)
        else:
            self.app.logger.warning(
                "Child runner %s (pid %s) died with exit code %s after %.1fs: re-queued %d "
                "invocations",
                runner_id,
                child.process.pid,
                code,
                time.monotonic() - child.started_at,
                len(routed),
            )
        if served:
            self._failed_starts = 0
        elif code != 0 and not self.stop_event.is_set():
            self._failed_starts += 1

    # --- stopping -----------------------------------------------------------------------

    def drain(self, timeout_sec: float) -> None:
        """SIGTERM every child, wait for their own drains, kill what is left."""
        for child in self._children.values():
            if child.process.is_alive():
                child.process.terminate()
        deadline = time.monotonic() + timeout_sec + CHILD_EXIT_GRACE_SEC
        while self._children and (left := deadline - time.monotonic()) > 0:
            self._watch(left)
        for child in self._children.values():
            self.app.logger.warning(
                "Child runner %s did not stop in time: killing it", child.runner_id
            )
            child.process.kill()
        while self._children:
            self._watch(None)

    def wait_for_invocations(
        self, ctx: InvocationContext, invocation_ids: Sequence[str], timeout_sec: float | None
    ) -> bool:
        # tasks run in the children; this is only reached by code calling the supervisor
        return self.app.orchestrator.wait_for_final(invocation_ids, timeout_sec)
