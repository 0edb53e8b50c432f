"""ThreadRunner: one process, a pool of threads that grows while tasks wait on others."""

from __future__ import annotations

import asyncio
import os
import queue
import threading
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
        self._work: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._slots = threading.Condition()
        self._active = 0  # invocations executing and not waiting on others
        self._threads = 0
        self._idle_threads = 0

    @property
    def free_slots(self) -> int:
        return self.max_threads - self._active

    def serve(self) -> None:
        broker = self.app.broker
        batch_size = self.conf.runner_batch_size
        timeout = max(self.app.conf.queue_timeout_sec, 0.05)
        while not self.stop_event.is_set():
            with self._slots:
                if not self._slots.wait_for(lambda: self.free_slots > 0, timeout=0.5):
                    continue
                free = self.free_slots
            ids = broker.retrieve_invocations(min(free, batch_size), timeout)
            if not ids:
                continue
            for work in self.claim(ids):
                self._submit(work)

    def _submit(self, work: _Work) -> None:
        with self._slots:
            self._active += 1
            start_thread = self._idle_threads == 0
            if start_thread:
                self._threads += 1
            else:
                self._idle_threads -= 1
            self._work.put(work)  # under the lock: an idle thread never leaves with work queued
        if start_thread:
            threading.Thread(target=self._worker, name="pynenc-worker", daemon=True).start()

    def _worker(self) -> None:
        current_runner_id.set(self.runner_id)
        loop: asyncio.AbstractEventLoop | None = None
        while True:
            try:
                # idle threads beyond min_threads leave after a while
                item = self._work.get(timeout=30.0)
            except queue.Empty:
                with self._slots:
                    leave = self._threads > self.min_threads and self._work.empty()
                    if leave and self._idle_threads > 0:
                        self._threads -= 1
                        self._idle_threads -= 1
                        break
                continue
            if item is None:
                break
            record, num_retries = item
            task = self.app.tasks.get(record.task_id)
            if loop is None and (task is None or task.is_async):
                loop = asyncio.new_event_loop()
            outcome = execute(self.app, record, num_retries, self, loop)
            self.outcomes.put(outcome)
            with self._slots:
                self._active -= 1
                self._idle_threads += 1
                self._slots.notify_all()
        if loop is not None:
            loop.close()

    def wait_for_invocations(
        self, ctx: InvocationContext, invocation_ids: Sequence[str], timeout_sec: float | None
    ) -> bool:
        with self._slots:
            self._active -= 1
            self._slots.notify_all()
        try:
            return self.app.orchestrator.wait_for_final(invocation_ids, timeout_sec)
        finally:
            with self._slots:
                self._active += 1

    def drain(self, timeout_sec: float) -> None:
        with self._slots:
            self._slots.wait_for(lambda: self._active <= 0, timeout=timeout_sec)
        self.outcomes.wait_idle(timeout_sec)
