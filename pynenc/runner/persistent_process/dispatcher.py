"""PersistentProcessRunner: this process is the dispatcher of N long-lived workers.

Only the dispatcher talks to the backend for work: a fetcher thread claims one batch per
round for all free worker credits (claims stay PENDING), the ZeroMQ loop sends calls to
the workers that asked for them, and turns their events (STARTED, DONE, PAUSED, ...) into
status changes that the OutcomeWriter batches into few transactions.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import zmq

from pynenc.conf.config_runner import ConfigPersistentProcessRunner, worker_count
from pynenc.context import InvocationContext, current_runner_id
from pynenc.exceptions import RunnerError
from pynenc.invocation.errors import encode_exception
from pynenc.invocation.status import InvocationStatus
from pynenc.runner.base import BaseRunner
from pynenc.runner.child_app import AppReference, reference_to
from pynenc.runner.execution import Outcome
from pynenc.runner.outcomes import OutcomeBatch
from pynenc.runner.persistent_process import protocol as p
from pynenc.runner.persistent_process import transport
from pynenc.runner.persistent_process.worker import main as worker_main

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.context import ForkServerContext, SpawnContext
    from multiprocessing.process import BaseProcess

    from pynenc.app import Pynenc
    from pynenc.invocation.record import InvocationRecord

_Claimed = tuple["InvocationRecord", int, float]  # record, num_retries, monotonic claim time

MIN_CLAIM_WAIT_SEC = 0.5  # how long one claim blocks on an empty queue (stop waits for it)
MAX_LOST_RUNS = 3  # an invocation running on this many dying workers is FAILED
MAX_START_FAILURES = 5  # a worker slot dying this often before its HELLO stops the runner
SAFETY_POLL_MS = 1000  # the loop re-checks stop_event at least this often
KILL_WAIT_SEC = 5.0
# Windows cannot poll process handles with ZeroMQ: look at the workers this often instead
_SENTINELS_POLLABLE = os.name == "posix"
_LIVENESS_POLL_MS = 100

_S = InvocationStatus
_STOP = p.encode([p.STOP])


class WorkerExitedError(RunnerError):
    """An invocation was running each time its worker process died, too often to retry."""

    def __init__(self, invocation_id: str, exitcode: int | None, times: int) -> None:
        self.invocation_id, self.exitcode, self.times = invocation_id, exitcode, times
        cause = f"code {exitcode}"
        if exitcode is not None and exitcode < 0:
            with contextlib.suppress(ValueError):
                cause += f", killed by {signal.Signals(-exitcode).name}"
        super().__init__(
            f"Invocation {invocation_id} was running when its worker process exited "
            f"({cause}), {times} times: it is not retried again. Does it crash its process "
            "(os._exit, a segfault, running out of memory)? See the runner's log."
        )

    def __reduce__(self) -> tuple[type[WorkerExitedError], tuple[str, int | None, int]]:
        return type(self), (self.invocation_id, self.exitcode, self.times)


def _process_context() -> ForkServerContext | SpawnContext:
    """forkserver where there is one (a respawn forks a small preloaded server: fast), else
    spawn; never plain fork, which copies this threaded process mid-flight."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    return multiprocessing.get_context("forkserver")


class _Worker:
    """The dispatcher's view of one worker process."""

    __slots__ = (
        "credits",
        "identity",
        "in_flight",
        "process",
        "ready",
        "running",
        "slot",
        "started",
    )

    def __init__(self, slot: int, identity: bytes, process: BaseProcess) -> None:
        self.slot = slot
        self.identity = identity
        self.process = process
        self.credits = 0  # calls it asked for and has not been sent
        self.in_flight: dict[str, None] = {}  # sent, not yet DONE or RETURNED; oldest first
        self.started: set[str] = set()  # of those, the ones that began
        self.running: set[str] = set()  # of those, the ones not waiting on others
        self.ready = False  # its HELLO arrived


class PersistentProcessRunner(BaseRunner):
    """A dispatcher feeding ``num_processes`` long-lived worker processes (0 = CPU count).

    Workers get calls only against the credits they announce, so a slow task never holds
    others hostage; a worker killed by a signal is noticed at once through its process
    sentinel, its calls are re-queued and the worker respawned."""

    kind = "ppr"
    config_cls = ConfigPersistentProcessRunner
    start_on_claim = False  # claims stay PENDING until a worker reports STARTED

    def __init__(self, app: Pynenc) -> None:
        super().__init__(app)
        conf: ConfigPersistentProcessRunner = self.conf  # type: ignore[assignment]
        self.num_processes = worker_count(conf.num_processes)
        self._batch_size = conf.runner_batch_size
        self._mp = _process_context()
        self._lifeline: tuple[Connection, Connection] | None = None
        self._workers: dict[bytes, _Worker] = {}  # live processes, by ZeroMQ identity
        self._by_sentinel: dict[int, _Worker] = {}
        self._start_failures = [0] * self.num_processes
        self._spawned = 0
        self._lost_runs: dict[str, int] = {}  # invocation id -> workers that died running it
        self._backlog: deque[_Claimed] = deque()  # claimed, waiting for a credit
        self._credits = 0  # sum of the workers' credits
        self._claiming = False  # a claim request is with the fetcher
        self._requests: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._batches: queue.SimpleQueue[list[tuple[InvocationRecord, int]]] = queue.SimpleQueue()
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._context: zmq.Context[zmq.Socket[bytes]] | None = None
        self._router: zmq.Socket[bytes] | None = None
        self._poller = zmq.Poller()
        self._endpoint: transport.Endpoint | None = None
        self._app_ref: AppReference | None = None
        self._fetcher: threading.Thread | None = None
        self._fatal: RunnerError | None = None
        self._draining = False
        # a prefetched call must start before PENDING recovery could take it over
        self._start_within_sec = app.conf.max_pending_seconds / 2

    # --- public -------------------------------------------------------------------------

    def worker_pids(self) -> list[int]:
        """Pids of the workers that are up (have said HELLO)."""
        return [w.process.pid for w in list(self._workers.values()) if w.ready and w.process.pid]

    def stop(self) -> None:
        super().stop()
        self._wake()

    def wait_for_invocations(
        self, ctx: InvocationContext, invocation_ids: Sequence[str], timeout_sec: float | None
    ) -> bool:
        return self.app.orchestrator.wait_for_final(invocation_ids, timeout_sec)

    # --- lifecycle ----------------------------------------------------------------------

    def serve(self) -> None:
        self._open()
        while not self.stop_event.is_set():
            self._step(self._timeout_ms())
        if self._fatal is not None:
            raise self._fatal

    def drain(self, timeout_sec: float) -> None:
        """Stop the workers: they hand back calls not started and finish the others."""
        if self._router is None:
            return
        deadline = time.monotonic() + timeout_sec
        self._reroute([record.invocation_id for record, _, _ in self._backlog])
        self._backlog.clear()
        self._draining = True
        for worker in list(self._workers.values()):
            if worker.ready:  # the others get it with their HELLO
                self._send(worker, _STOP)
        while self._workers or self._claiming:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._step(min(int(remaining * 1000) + 1, self._timeout_ms() or SAFETY_POLL_MS))
        for worker in list(self._workers.values()):
            self.app.logger.warning(
                "Worker %s still busy after %.1fs: killing it", worker.process.pid, timeout_sec
            )
            worker.process.kill()
            worker.process.join(KILL_WAIT_SEC)
            self._worker_exited(worker)
        self._close()

    def _open(self) -> None:
        current_runner_id.set(self.runner_id)
        self._app_ref = reference_to(self.app)
        if self._mp.get_start_method() == "forkserver":  # unless another runner started it
            self._mp.set_forkserver_preload([worker_main.__module__])
        # workers hold the read end: it reaches EOF when this process dies, however it dies
        self._lifeline = self._mp.Pipe(duplex=False)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._context = zmq.Context()
        router = self._router = self._context.socket(zmq.ROUTER)
        router.setsockopt(zmq.ROUTER_MANDATORY, 1)  # a send to a dead worker raises
        router.setsockopt(zmq.LINGER, 0)
        self._endpoint = transport.bind(router)
        self._poller.register(router, zmq.POLLIN)
        self._poller.register(self._wake_r.fileno(), zmq.POLLIN)
        self._fetcher = threading.Thread(target=self._fetch_loop, name="pynenc-fetch", daemon=True)
        self._fetcher.start()
        for slot in range(self.num_processes):
            self._spawn(slot)
        self.app.logger.info(
            "Dispatcher %s serves %d workers on %s",
            self.runner_id,
            self.num_processes,
            self._endpoint.address,
        )

    def _close(self) -> None:
        self._requests.put(None)
        if self._fetcher is not None:
            self._fetcher.join()
        if self._router is not None:
            self._router.close()
        if self._context is not None:
            self._context.term()
        if self._endpoint is not None:
            self._endpoint.close()
        for closable in (self._wake_r, self._wake_w, *(self._lifeline or ())):
            if closable is not None:
                closable.close()

    # --- workers ------------------------------------------------------------------------

    def _spawn(self, slot: int) -> None:
        assert self._endpoint is not None and self._lifeline is not None
        self._spawned += 1
        identity = b"%d.%d" % (slot, self._spawned)
        process = self._mp.Process(
            target=worker_main,
            args=(
                self._app_ref,
                self._endpoint.address,
                identity,
                self.runner_id,
                self._lifeline[0],
            ),
            name=f"pynenc-worker-{slot}",
            daemon=True,
        )
        process.start()
        worker = _Worker(slot, identity, process)
        self._workers[identity] = worker
        if _SENTINELS_POLLABLE:
            self._by_sentinel[process.sentinel] = worker
            self._poller.register(process.sentinel, zmq.POLLIN)

    def _worker_exited(self, worker: _Worker) -> None:
        """Re-queue what the worker held; respawn it unless the runner is stopping."""
        process = worker.process
        if _SENTINELS_POLLABLE and process.sentinel in self._by_sentinel:
            del self._by_sentinel[process.sentinel]
            self._poller.unregister(process.sentinel)
        del self._workers[worker.identity]
        self._credits -= worker.credits
        process.join(KILL_WAIT_SEC)
        lost = list(worker.in_flight)
        failed = self._count_lost_runs(worker)
        self._reroute([i for i in lost if i not in failed])
        stopping = self.stop_event.is_set()
        if lost or not stopping:
            self.app.logger.warning(
                "Worker %s exited with code %s; re-queued %d invocations",
                process.pid,
                process.exitcode,
                len(lost) - len(failed),
            )
        if failed:
            self._fail_lost(failed, worker.started, process.exitcode)
        process.close()
        if stopping:
            return
        if worker.ready:
            self._start_failures[worker.slot] = 0
        else:
            self._start_failures[worker.slot] += 1
            if self._start_failures[worker.slot] >= MAX_START_FAILURES:
                self._fatal = RunnerError(
                    f"Worker processes of runner {self.runner_id} exit before starting "
                    f"({MAX_START_FAILURES} in a row); see their errors above (does the app "
                    "import in a fresh interpreter?)."
                )
                self.stop()
                return
        self._spawn(worker.slot)

    def _count_lost_runs(self, worker: _Worker) -> set[str]:
        """Ids running on a dead worker for the MAX_LOST_RUNS-th time: likely the cause.

        A call that kills its process at once may die before its STARTED is sent: with
        none known running, the oldest call not started (the next it would start) is."""
        failed: set[str] = set()
        lost_runs = self._lost_runs
        suspects = worker.running
        if not suspects:
            started = worker.started
            first = next((i for i in worker.in_flight if i not in started), None)
            suspects = {first} if first is not None else set()
        for invocation_id in suspects:
            lost_runs[invocation_id] = count = lost_runs.get(invocation_id, 0) + 1
            if count >= MAX_LOST_RUNS:
                failed.add(invocation_id)
                del lost_runs[invocation_id]
        return failed

    def _fail_lost(self, invocation_ids: set[str], started: set[str], exitcode: int | None) -> None:
        outcomes: list[Outcome] = []
        for invocation_id in invocation_ids:
            error = WorkerExitedError(invocation_id, exitcode, MAX_LOST_RUNS)
            self.app.logger.error("%s", error)
            if invocation_id not in started:  # it died before its STARTED got out
                outcomes.append(Outcome(invocation_id, _S.RUNNING))
            outcomes.append(Outcome(invocation_id, _S.FAILED, exception=encode_exception(error)))
        self.outcomes.put_many(outcomes)

    def _check_liveness(self) -> None:
        for worker in list(self._workers.values()):
            if not worker.process.is_alive():
                self._worker_exited(worker)

    def _send(self, worker: _Worker, frame: bytes) -> None:
        assert self._router is not None
        # a worker gone: its sentinel fires next and re-queues its calls
        with contextlib.suppress(zmq.ZMQError):
            self._router.send_multipart([worker.identity, frame])

    # --- the loop -----------------------------------------------------------------------

    def _wake(self) -> None:
        if self._wake_w is None:
            return  # not serving yet
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, InterruptedError):
            pass  # full of wake-ups already
        except OSError:
            pass  # closed: the loop is over

    def _timeout_ms(self) -> int:
        timeout = SAFETY_POLL_MS if _SENTINELS_POLLABLE else _LIVENESS_POLL_MS
        if self._backlog:
            due = self._backlog[0][2] + self._start_within_sec - time.monotonic()
            timeout = min(timeout, max(int(due * 1000) + 1, 0))
        return timeout

    def _step(self, timeout_ms: int) -> None:
        assert self._wake_r is not None
        router, wake_fd = self._router, self._wake_r.fileno()
        exited: list[_Worker] = []
        for item, _ in self._poller.poll(timeout_ms):
            if item is router:
                self._read_workers()
            elif item == wake_fd:
                self._clear_wake()
            else:
                worker = self._by_sentinel.get(item)
                if worker is not None:
                    exited.append(worker)
        self._take_batches()
        for worker in exited:  # after reading their last events
            self._worker_exited(worker)
        if not _SENTINELS_POLLABLE:
            self._check_liveness()
        if self._backlog:
            self._expire_backlog()
            self._dispatch()
        self._request_claim()

    def _clear_wake(self) -> None:
        assert self._wake_r is not None
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _read_workers(self) -> None:
        router = self._router
        assert router is not None
        recv = router.recv_multipart
        workers, lost_runs = self._workers, self._lost_runs
        read_events = p.read_events
        outcomes = OutcomeBatch()
        got_credits = False
        # asking for EVENTS is much cheaper than the zmq.Again of a non-blocking recv
        while cast(int, router.get(zmq.EVENTS)) & zmq.POLLIN:
            identity, frame = recv()
            worker = workers.get(identity)
            if worker is None:  # a late message from a worker already re-queued
                continue
            grant, hello = read_events(
                frame, worker.in_flight, worker.started, worker.running, lost_runs, outcomes
            )
            if grant:
                worker.credits += grant
                self._credits += grant
                got_credits = True
            if hello:
                worker.ready = True
                if self._draining:  # too late for the STOP sent to the ready ones
                    self._send(worker, _STOP)
        self.outcomes.put_batch(outcomes)
        if got_credits and self._backlog:
            self._dispatch()

    def _dispatch(self) -> None:
        """Send claimed calls to the workers with credits, spread evenly."""
        backlog = self._backlog
        if not backlog or self._credits <= 0:
            return
        now = time.monotonic()
        within = self._start_within_sec
        candidates = [w for w in self._workers.values() if w.credits > 0]
        left = len(candidates)
        for worker in candidates:
            share = min(worker.credits, -(-len(backlog) // left))
            left -= 1
            frame = p.encode_calls(backlog, share, worker.in_flight, now, within)
            worker.credits -= share
            self._credits -= share
            self._send(worker, frame)
            if not backlog:
                return

    def _expire_backlog(self) -> None:
        """Claimed calls no worker could take in time go back to the broker."""
        limit = time.monotonic() - self._start_within_sec
        expired: list[str] = []
        backlog = self._backlog
        while backlog and backlog[0][2] <= limit:
            expired.append(backlog.popleft()[0].invocation_id)
        self._reroute(expired)

    def _reroute(self, invocation_ids: list[str]) -> None:
        """Send back to the broker invocations this runner owns and will not finish. The
        OutcomeWriter does it after their earlier status changes, in order."""
        self.outcomes.put_many([Outcome(i, _S.REROUTED) for i in invocation_ids])

    # --- claiming -----------------------------------------------------------------------

    def _request_claim(self) -> None:
        if self._claiming or self.stop_event.is_set():
            return
        free = self._credits - len(self._backlog)
        if free > 0:
            self._claiming = True
            self._requests.put(min(free, self._batch_size))

    def _take_batches(self) -> None:
        while True:
            try:
                batch = self._batches.get_nowait()
            except queue.Empty:
                return
            self._claiming = False
            if self.stop_event.is_set():
                self._reroute([record.invocation_id for record, _ in batch])
                continue
            now = time.monotonic()
            self._backlog.extend([(record, num_retries, now) for record, num_retries in batch])
            self._dispatch()

    def _fetch_loop(self) -> None:
        """The fetcher thread: one blocking claim per request from the loop."""
        current_runner_id.set(self.runner_id)
        wait = max(self.app.conf.queue_timeout_sec, MIN_CLAIM_WAIT_SEC)
        while True:
            count = self._requests.get()
            if count is None:
                return
            batch: list[Any] = []
            try:
                batch = self.claim_next(count, wait)
            except Exception:
                self.app.logger.exception("Runner %s could not claim work", self.runner_id)
                self.stop_event.wait(wait)  # the backend is down: try again later
            self._batches.put(batch)
            self._wake()
