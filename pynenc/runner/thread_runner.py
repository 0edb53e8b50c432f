"""ThreadRunner: one process, a pool of threads that grows while tasks wait on others."""

from __future__ import annotations

import asyncio
import os
import queue
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pynenc.conf.config_runner import ConfigThreadRunner
from pynenc.context import InvocationContext, current_runner_id
from pynenc.runner.base import BaseRunner
from pynenc.runner.execution import execute

if TYPE_CHECKING:
    from pynenc.app import Pynenc
    from pynenc.invocation.record import InvocationRecord

_Work = tuple["InvocationRecord", int]

# Tasks shorter than this on average are cheaper than the claim round trip, so the runner
# claims a second batch ahead for them; slower tasks never get work queued behind them.
FAST_TASK_SEC = 0.005
IDLE_THREAD_EXIT_SEC = 30.0


class ThreadRunner(BaseRunner):
    """Runs up to ``max_threads`` invocations at once (0 = CPU count).

    A task that waits on a sub-invocation's result stops counting against the limit, so
    nested calls deeper than the thread count still complete: another thread takes the
    sub-invocation."""

    kind = "thread"
    config_cls = ConfigThreadRunner

    def __init__(self, app: Pynenc) -> None:
        super().__init__(app)
        conf: ConfigThreadRunner = self.conf  # type: ignore[assignment]
        self.max_threads = conf.max_threads or os.cpu_count() or 1
        self.min_threads = min(conf.min_threads, self.max_threads)
        self._work: queue.SimpleQueue[_Work] = queue.SimpleQueue()
        self._lock = threading.Condition()
        self._active = 0  # claimed and not finished, excluding tasks waiting on others
        self._waiting = 0  # tasks blocked on sub-invocations
        self._threads = 0
        self._idle = 0  # threads blocked on the work queue
        self._avg_task_sec = 1.0  # pessimistic until measured: no prefetch at start

    @property
    def capacity(self) -> int:
        """How many claimed invocations may be on hand (running or queued here)."""
        prefetch = self.max_threads if self._avg_task_sec < FAST_TASK_SEC else 0
        return self.max_threads + prefetch

    def serve(self) -> None:
        batch_size = self.conf.runner_batch_size
        timeout = max(self.app.conf.queue_timeout_sec, 0.05)
        while not self.stop_event.is_set():
            with self._lock:
                if not self._lock.wait_for(lambda: self._active < self.capacity, timeout=0.5):
                    continue
                free = self.capacity - self._active
            for work in self.claim_next(min(free, batch_size), timeout):
                self._submit(work)

    def _submit(self, work: _Work) -> None:
        with self._lock:
            self._active += 1
            self._work.put(work)
            self._ensure_thread()

    def _ensure_thread(self) -> None:
        """Start a thread when queued work has no idle thread to take it (lock held)."""
        if self._idle >= self._work.qsize():
            return
        if self._threads - self._waiting >= self.max_threads:
            return
        self._threads += 1
        threading.Thread(target=self._worker, name="pynenc-worker", daemon=True).start()

    def _worker(self) -> None:
        current_runner_id.set(self.runner_id)
        loop: asyncio.AbstractEventLoop | None = None
        while True:
            with self._lock:
                self._idle += 1
            try:
                record, num_retries = self._work.get(timeout=IDLE_THREAD_EXIT_SEC)
            except queue.Empty:
                with self._lock:
                    self._idle -= 1
                    if self._threads > self.min_threads and self._work.empty():
                        self._threads -= 1
                        break
                continue
            with self._lock:
                self._idle -= 1
            task = self.app.tasks.get(record.task_id)
            if loop is None and (task is None or task.is_async):
                loop = asyncio.new_event_loop()
            started = time.perf_counter()
            outcome = execute(self.app, record, num_retries, self, loop)
            self._avg_task_sec = 0.8 * self._avg_task_sec + 0.2 * (time.perf_counter() - started)
            self.outcomes.put(outcome)
            with self._lock:
                self._active -= 1
                self._lock.notify_all()
        if loop is not None:
            loop.close()

    def wait_for_invocations(
        self, ctx: InvocationContext, invocation_ids: Sequence[str], timeout_sec: float | None
    ) -> bool:
        with self._lock:
            self._active -= 1
            self._waiting += 1
            self._ensure_thread()  # work queued here may be what this task waits for
            self._lock.notify_all()
        try:
            return self.app.orchestrator.wait_for_final(invocation_ids, timeout_sec)
        finally:
            with self._lock:
                self._active += 1
                self._waiting -= 1

    def drain(self, timeout_sec: float) -> None:
        with self._lock:
            self._lock.wait_for(lambda: self._active <= 0, timeout=timeout_sec)
        self.outcomes.wait_idle(timeout_sec)
