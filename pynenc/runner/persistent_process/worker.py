"""A PersistentProcessRunner worker: a long-lived process that runs the calls its
dispatcher sends and reports every status change back. It never claims work nor writes
outcomes; it reads the backend only while a task waits on sub-invocations.

Threads: the main thread owns the ZeroMQ socket; executor threads run sync calls (one at a
time, plus one per call waiting on sub-invocations); one thread runs the event loop
shared by all async calls. Events go to the main thread through one FIFO deque, so the
dispatcher sees them in the order they happened.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import zmq

from pynenc.conf.config_runner import ConfigPersistentProcessRunner
from pynenc.context import InvocationContext, current_runner_id
from pynenc.exceptions import RunnerError
from pynenc.invocation.errors import encode_exception
from pynenc.invocation.status import InvocationStatus
from pynenc.runner.base import BaseRunner
from pynenc.runner.child_app import AppReference, load_app
from pynenc.runner.execution import Outcome, execute, execute_async
from pynenc.runner.persistent_process import protocol as p

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from pynenc.app import Pynenc
    from pynenc.invocation.record import InvocationRecord

SLOTS = 1  # sync calls running at once, not counting those waiting on sub-invocations
# While calls take under FAST_TASK_SEC on average the claim round trip costs more than
# the task, so the worker asks for PREFETCH more calls to queue; slower tasks never get
# calls queued behind them.
PREFETCH = 64
FAST_TASK_SEC = 0.003
# A queued call behind one running this long goes back to the dispatcher at once.
STALL_SEC = 0.1
_FLUSH_MS = 2  # while busy with fast calls, the main thread sends events this often
_LINGER_MS = 2000  # time to flush the last events on exit
# ZeroMQ polls pipes only on POSIX; elsewhere the lifeline is looked at periodically
_FDS_POLLABLE = os.name == "posix"
_LIFELINE_CHECK_MS = 500


class _Call:
    """One call held by this worker, from its arrival to its DONE or RETURNED event."""

    __slots__ = (
        "deadline",
        "holding",
        "is_async",
        "num_retries",
        "on_executor",
        "paused_at",
        "record",
        "resume_holding",
        "started",
        "waited",
        "waits",
    )

    def __init__(
        self, record: InvocationRecord, num_retries: int, deadline: float, is_async: bool
    ) -> None:
        self.record = record
        self.num_retries = num_retries
        self.deadline = deadline  # monotonic time after which it is handed back unstarted
        self.is_async = is_async
        self.holding = True  # counts against the worker's credits
        self.on_executor = False  # runs on an executor thread (holds a slot while holding)
        self.resume_holding = False
        self.started = 0.0
        self.waits = 0  # waits on sub-invocations in progress
        self.paused_at = 0.0
        self.waited = 0.0  # seconds spent waiting on sub-invocations


class WorkerRunner(BaseRunner):
    """``ctx.runner`` of the calls run in a worker: waits on sub-invocations free the
    call's credit, so the dispatcher sends other work meanwhile. It never serves."""

    kind = "ppr"
    config_cls = ConfigPersistentProcessRunner

    def __init__(self, app: Pynenc, worker: Worker, runner_id: str) -> None:
        super().__init__(app)
        self.runner_id = runner_id  # the dispatcher's: outcomes and logs are its own
        self._worker = worker

    def serve(self) -> None:
        raise RunnerError("A PersistentProcessRunner worker only runs what its dispatcher sends.")

    def drain(self, timeout_sec: float) -> None:
        """The dispatcher drains its workers."""

    def wait_for_invocations(
        self, ctx: InvocationContext, invocation_ids: Sequence[str], timeout_sec: float | None
    ) -> bool:
        return self._worker.wait(ctx.invocation_id, invocation_ids, timeout_sec)


def main(
    ref: AppReference, endpoint: str, identity: bytes, runner_id: str, lifeline: Connection
) -> None:
    """Entry point of a worker process (forkserver or spawn). ``lifeline`` reaches EOF
    when the dispatcher dies."""
    # the dispatcher decides when its workers stop: a Ctrl-C or SIGTERM sent to the whole
    # process group must not kill the calls it is draining
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    current_runner_id.set(runner_id)
    app = load_app(ref)
    Worker(app, endpoint, identity, runner_id, lifeline).run()


def _failed(call: _Call, exc: BaseException) -> Outcome:
    return Outcome(
        call.record.invocation_id, InvocationStatus.FAILED, exception=encode_exception(exc)
    )


def _new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's when it is installed (pip install 'pynenc[uvloop]'), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


class Worker:
    def __init__(
        self, app: Pynenc, endpoint: str, identity: bytes, runner_id: str, lifeline: Connection
    ) -> None:
        self.app = app
        self.lifeline = lifeline
        self.endpoint = endpoint
        self.identity = identity
        self.runner_id = runner_id
        self.runner = WorkerRunner(app, self, runner_id)
        app.runner = self.runner
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)  # executor threads wait for calls here
        self._queue: deque[_Call] = deque()  # sync calls not started yet
        self._calls: dict[str, _Call] = {}  # every call held, by invocation id
        self._held = 0  # credits in use (calls received, not finished, waiting or awaiting)
        self._granted = 0  # credits announced and not yet used by a call (main thread)
        self._active = 0  # executor threads running a call that is not waiting
        self._idle = 0  # executor threads waiting for a call
        self._threads = 0
        self._current: _Call | None = None  # the sync call started last (stall check)
        self._avg_task_sec = 1.0  # pessimistic until measured: no prefetch at start
        self._stopping = False
        self._async_tasks: dict[str, bool] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._loop_blocked = 0  # sync waits running on the loop thread (it is stuck)
        self._local = threading.local()
        self._events: deque[list[Any]] = deque()
        self._nudged = False
        self._main_sleeps = True  # the main thread may poll long: events must nudge it
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    # --- main thread ----------------------------------------------------------------------

    def run(self) -> None:
        context = zmq.Context()
        dealer = context.socket(zmq.DEALER)
        dealer.setsockopt(zmq.IDENTITY, self.identity)
        dealer.setsockopt(zmq.LINGER, _LINGER_MS)
        dealer.connect(self.endpoint)
        poller = zmq.Poller()
        poller.register(dealer, zmq.POLLIN)
        wake_fd = self._wake_r.fileno()
        poller.register(wake_fd, zmq.POLLIN)
        lifeline = self.lifeline.fileno() if _FDS_POLLABLE else -1
        if _FDS_POLLABLE:
            poller.register(lifeline, zmq.POLLIN)
        self._events.append([p.HELLO, os.getpid()])
        try:
            while True:
                self._send(dealer)
                if self._finished():
                    return
                for item, _ in poller.poll(self._poll_timeout_ms()):
                    if item is dealer:
                        self._receive(dealer)
                    elif item == wake_fd:
                        self._clear_wake()
                    elif item == lifeline:
                        self._orphaned()
                if not _FDS_POLLABLE and self.lifeline.poll():
                    self._orphaned()
                self._main_sleeps = False
                self._expire()
        finally:
            dealer.close()
            context.term()

    def _orphaned(self) -> None:
        self.app.logger.warning("Worker %d: its dispatcher is gone, exiting", os.getpid())
        os._exit(1)  # its calls are re-queued by whoever recovers the dispatcher's runner

    def _poll_timeout_ms(self) -> int | None:
        timeout = self._timeout_ms()
        if not _FDS_POLLABLE:  # look at the lifeline this often instead
            timeout = _LIFELINE_CHECK_MS if timeout is None else min(timeout, _LIFELINE_CHECK_MS)
        if self._queue and self._avg_task_sec < FAST_TASK_SEC:
            # busy with fast calls: their events wait for this flush instead of a wake-up each
            timeout = _FLUSH_MS if timeout is None else min(timeout, _FLUSH_MS)
        # tells the threads whether an event could wait long for the next flush; set before
        # looking at the events, so one added meanwhile is either seen here or nudges
        self._main_sleeps = timeout is None or timeout > _FLUSH_MS
        return 0 if self._events else timeout

    def _batching(self) -> bool:
        """Events may wait for the main thread's next flush (within _FLUSH_MS)."""
        return self._avg_task_sec < FAST_TASK_SEC and not self._main_sleeps

    def _finished(self) -> bool:
        with self._lock:
            return self._stopping and not self._calls and not self._events

    def _send(self, dealer: zmq.Socket[bytes]) -> None:
        self._nudged = False  # before draining: an event added after this nudges again
        events = self._events
        message: list[Any] = [0]
        while events:
            message.append(events.popleft())
        with self._lock:
            grant = 0 if self._stopping else self._target() - self._held - self._granted
            if grant > 0:
                self._granted += grant
                message[0] = grant
        if len(message) > 1 or message[0]:
            dealer.send(p.encode(message))

    def _target(self) -> int:
        """Credits this worker wants in use (lock held)."""
        return SLOTS + (PREFETCH if self._avg_task_sec < FAST_TASK_SEC else 0)

    def _receive(self, dealer: zmq.Socket[bytes]) -> None:
        # asking for EVENTS is much cheaper than the zmq.Again of a non-blocking recv
        while cast(int, dealer.get(zmq.EVENTS)) & zmq.POLLIN:
            kind, records, num_retries, start_within = p.decode_calls(dealer.recv())
            if kind == p.CALLS:
                self._accept(records, num_retries, start_within)
            elif kind == p.STOP:
                self._stop()

    def _accept(
        self, records: list[InvocationRecord], retries: list[int], start_within: list[float]
    ) -> None:
        now = time.monotonic()
        to_loop: list[_Call] = []
        with self._lock:
            self._granted -= len(records)
            queued = 0
            for record, num_retries, within in zip(records, retries, start_within, strict=True):
                call = _Call(record, num_retries, now + within, self._is_async(record))
                self._calls[record.invocation_id] = call
                self._held += 1
                if call.is_async and not self._loop_blocked:
                    to_loop.append(call)
                else:
                    self._queue.append(call)
                    queued += 1
            if queued:
                self._ready.notify(queued)
                self._spawn_if_needed()
        if to_loop:
            loop = self._event_loop()
            for call in to_loop:
                loop.call_soon_threadsafe(self._start_async, call)

    def _is_async(self, record: InvocationRecord) -> bool:
        found = self._async_tasks.get(record.task_id)
        if found is None:
            try:
                found = self.app.get_task(record.task_id).is_async
            except Exception:  # execute() reports the missing task as the call's failure
                found = False
            self._async_tasks[record.task_id] = found
        return found

    def _stop(self) -> None:
        """Hand back what has not started; the rest finishes, then the worker exits."""
        with self._lock:
            self._stopping = True
            while self._queue:
                self._hand_back(self._queue.popleft())

    def _timeout_ms(self) -> int | None:
        """Until the next queued call must be handed back, or forever."""
        with self._lock:
            if not self._queue:
                return None
            due = self._queue[0].deadline
            current = self._current
            if current is not None and current.waits == 0:
                due = min(due, current.started + STALL_SEC)
        return math.ceil(max(due - time.monotonic(), 0.0) * 1000)

    def _expire(self) -> None:
        """Hand back queued calls that waited too long, or sit behind a stalled one."""
        if not self._queue:
            return
        now = time.monotonic()
        with self._lock:
            queue = self._queue
            current = self._current
            if current is not None and current.waits == 0 and now - current.started >= STALL_SEC:
                self._avg_task_sec = max(self._avg_task_sec, now - current.started)
                while queue:
                    self._hand_back(queue.popleft())
            while queue and queue[0].deadline <= now:
                self._hand_back(queue.popleft())

    def _hand_back(self, call: _Call) -> None:
        """Return an unstarted call to the dispatcher (lock held)."""
        del self._calls[call.record.invocation_id]
        self._held -= 1
        self._events.append([p.RETURNED, call.record.invocation_id])

    def _clear_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    # --- any thread -----------------------------------------------------------------------

    def _nudge(self) -> None:
        """Wake the main thread to send the events queued so far."""
        if self._nudged:
            return
        self._nudged = True
        try:  # noqa: SIM105 (hot path: cheaper than contextlib.suppress)
            self._wake_w.send(b"\0")
        except (BlockingIOError, InterruptedError):
            pass  # the socket is full of wake-ups already

    def _emit(self, event: list[Any]) -> None:
        self._events.append(event)
        self._nudge()

    def _finish(self, call: _Call, outcome: Outcome, seconds: float | None) -> None:
        """The call ended: free what it held and report it, atomically for ``_finished``."""
        with self._lock:
            del self._calls[call.record.invocation_id]
            if call.holding:
                self._held -= 1
                if call.on_executor:
                    self._active -= 1
                    self._ready.notify()
            if self._current is call:
                self._current = None
            if seconds is not None:
                self._avg_task_sec = 0.8 * self._avg_task_sec + 0.2 * seconds
            self._events.append(
                [
                    p.DONE,
                    outcome.invocation_id,
                    outcome.status.value,
                    outcome.result,
                    outcome.exception,
                    outcome.retry_delay,
                ]
            )
        if not (self._queue and self._batching()):  # nothing else to run: send it now
            self._nudge()

    def _release(self, call: _Call) -> None:
        """The call stops counting against credits and slots (lock held)."""
        call.holding = False
        self._held -= 1
        if call.on_executor:
            self._active -= 1
            self._ready.notify()
            self._spawn_if_needed()

    def wait(self, invocation_id: str, ids: Sequence[str], timeout_sec: float | None) -> bool:
        """A call waits on sub-invocations: PAUSED, its credit free, until they end."""
        call = self._calls.get(invocation_id)
        if call is None:  # not one of this worker's calls (a thread the task started)
            return self.app.orchestrator.wait_for_final(ids, timeout_sec)
        on_loop = threading.current_thread() is self._loop_thread
        with self._lock:
            call.waits += 1
            if call.waits == 1:
                call.paused_at = time.perf_counter()
                call.resume_holding = call.holding
                if call.holding:
                    self._release(call)
                self._events.append([p.PAUSED, invocation_id])
            if on_loop:
                self._loop_blocked += 1
        self._nudge()
        try:
            return self.app.orchestrator.wait_for_final(ids, timeout_sec)
        finally:
            with self._lock:
                call.waits -= 1
                if on_loop:
                    self._loop_blocked -= 1
                if call.waits == 0:
                    call.waited += time.perf_counter() - call.paused_at
                    if call.resume_holding:
                        call.holding = True
                        self._held += 1
                        if call.on_executor:
                            self._active += 1
                    self._events.append([p.RESUMED, invocation_id])
            self._nudge()

    # --- executor threads -----------------------------------------------------------------

    def _spawn_if_needed(self) -> None:
        """Start an executor thread when a queued call has no thread to take it (lock held)."""
        if self._queue and self._active < SLOTS and self._idle == 0:
            self._threads += 1
            self._idle += 1  # counted from now, so one arrival never starts two threads
            threading.Thread(target=self._executor, name="pynenc-call", daemon=True).start()

    def _executor(self) -> None:
        current_runner_id.set(self.runner_id)
        while True:
            self._run(self._take())
            with self._lock:
                if self._idle > 0:  # another thread is waiting for calls: one is enough
                    self._threads -= 1
                    return
                self._idle += 1

    def _take(self) -> _Call:
        """The next queued call this thread may start (the thread is counted idle)."""
        ready = self._ready
        with ready:
            while True:
                while not (self._queue and self._active < SLOTS):
                    ready.wait()
                call = self._queue.popleft()
                if time.monotonic() <= call.deadline:
                    break
                self._hand_back(call)
                self._nudge()
            self._idle -= 1
            self._active += 1
            call.on_executor = True
            call.started = time.monotonic()
            self._current = call
            return call

    def _run(self, call: _Call) -> None:
        self._events.append([p.STARTED, call.record.invocation_id])
        if not self._batching():
            self._nudge()
        loop = self._thread_loop() if call.is_async else None
        started = time.perf_counter()
        try:
            outcome = execute(self.app, call.record, call.num_retries, self.runner, loop)
        except BaseException as exc:  # SystemExit & co. end the call, never the worker
            outcome = _failed(call, exc)
        # the time it held its slot: waits on sub-invocations leave the slot to others
        busy = time.perf_counter() - started - call.waited
        self._finish(call, outcome, None if call.is_async else busy)

    def _thread_loop(self) -> asyncio.AbstractEventLoop:
        """This executor thread's own loop, for async calls that came while the shared
        loop was blocked by a sync wait."""
        loop: asyncio.AbstractEventLoop | None = getattr(self._local, "loop", None)
        if loop is None:
            loop = self._local.loop = _new_event_loop()
        return loop

    # --- the event loop thread ------------------------------------------------------------

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        """The loop every async call of this worker runs on, started on first use."""
        if self._loop is None:
            loop = _new_event_loop()
            thread = threading.Thread(
                target=self._serve_loop, args=(loop,), name="pynenc-async", daemon=True
            )
            self._loop, self._loop_thread = loop, thread
            thread.start()
        return self._loop

    def _serve_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        current_runner_id.set(self.runner_id)
        asyncio.set_event_loop(loop)
        loop.run_forever()

    def _start_async(self, call: _Call) -> None:
        loop = self._loop
        assert loop is not None
        if time.monotonic() > call.deadline:  # the loop was busy (blocked?) for too long
            with self._lock:
                self._hand_back(call)
            self._nudge()
            return
        task = loop.create_task(self._run_async(call))
        # runs right after the task's first step: if it is awaiting by then, it no longer
        # needs its credit and this worker can take more calls
        loop.call_soon(self._check_awaiting, call, task)

    def _check_awaiting(self, call: _Call, task: asyncio.Task[None]) -> None:
        if task.done():
            return
        with self._lock:
            if call.holding and call.waits == 0:
                self._release(call)
        self._nudge()

    async def _run_async(self, call: _Call) -> None:
        self._emit([p.STARTED, call.record.invocation_id])
        try:
            outcome = await execute_async(self.app, call.record, call.num_retries, self.runner)
        except BaseException as exc:  # would stop the shared loop: end only this call
            outcome = _failed(call, exc)
        self._finish(call, outcome, None)
