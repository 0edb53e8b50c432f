"""Tasks used by the core tests; the app is reconfigured per test by fixtures."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from pynenc import PynencBuilder
from pynenc.exceptions import RetryError

app = PynencBuilder().app_id("core-tests").memory().thread_runner(max_threads=4).build()

# Shared state for in-process runners (memory / sqlite runner thread in the test process).
attempts: dict[str, int] = {}
attempts_lock = threading.Lock()
spans: list[tuple[str, float, float]] = []


class Color(Enum):
    RED = "red"
    BLUE = "blue"


@dataclass
class Point:
    x: int
    y: int


class CustomError(Exception):
    def __init__(self, code: int, detail: str) -> None:
        super().__init__(code, detail)
        self.code = code
        self.detail = detail


@app.task
def add(x: int, y: int) -> int:
    return x + y


@app.task
def echo(value: object) -> object:
    return value


@app.task
def greet(name: str, greeting: str = "hello") -> str:
    return f"{greeting} {name}"


@app.task
def fail(code: int) -> None:
    raise CustomError(code, "it failed")


@app.task(max_retries=2, retry_for=(ConnectionError,))
def flaky(key: str, failures: int) -> int:
    with attempts_lock:
        attempts[key] = attempts.get(key, 0) + 1
        count = attempts[key]
    if count <= failures:
        raise ConnectionError(f"attempt {count}")
    return count


@app.task(max_retries=3, retry_delay_sec=0.05, retry_backoff=2.0)
def always_retry(key: str) -> None:
    with attempts_lock:
        attempts[key] = attempts.get(key, 0) + 1
    raise RetryError("again")


@app.task
def fib(n: int) -> int:
    if n < 2:
        return n
    return fib(n - 1).result + fib(n - 2).result


@app.task(running_concurrency="TASK")
def exclusive(label: str, duration: float) -> str:
    start = time.time()
    time.sleep(duration)  # simulates work; overlap is what the test checks
    spans.append((label, start, time.time()))
    return label


@app.task(registration_concurrency="ARGUMENTS")
def register_once(value: int) -> int:
    return value


@app.task(registration_concurrency="KEYS", key_arguments=("key",), on_diff_non_key_args_raise=True)
def keyed(key: str, payload: int) -> int:
    return payload


@app.task
async def async_double(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


@app.direct_task
def direct_mul(x: int, y: int) -> int:
    return x * y


@app.task
def blocker(event_name: str) -> str:
    events[event_name].wait(30)
    return event_name


events: dict[str, threading.Event] = {}


@app.task
def log_and_add(x: int, y: int) -> int:
    # logs through another task's logger so the test can attach one handler
    add.logger.info("adding %d and %d", x, y)
    return x + y


@app.task
def nap(seconds: float) -> float:
    time.sleep(seconds)  # the task's own work: something that takes a while
    return seconds


@app.task
def late_echo(value: object, seconds: float) -> object:
    """``value``, after a while: its caller is waiting by the time it ends."""
    time.sleep(seconds)  # the task's own work
    return value


@app.task(running_concurrency="TASK")
def exclusive_span(duration: float) -> tuple[float, float]:
    """Returns when it ran, so overlap can be checked across processes."""
    start = time.time()
    time.sleep(duration)  # the task's own work
    return start, time.time()


@app.task
def payload_size(blob: bytes) -> int:
    return len(blob)


@app.task
def echo_bytes(blob: bytes) -> bytes:
    return blob


@app.task
def nap_pid(seconds: float) -> int:
    """Which process ran it (runners with child processes spread work over them)."""
    time.sleep(seconds)  # the task's own work
    return os.getpid()


# --- tasks for process runners: state that must survive a fresh process per invocation ---


def _write_pid(path: str) -> None:
    """Where a test finds the process running a task, to kill it."""
    Path(path + ".tmp").write_text(str(os.getpid()))
    os.replace(path + ".tmp", path)


@app.task
def nap_after_writing_pid(path: str, seconds: float) -> float:
    _write_pid(path)
    time.sleep(seconds)  # the work a test interrupts
    return seconds


@app.task
def wait_on_nap_after_writing_pid(path: str, seconds: float) -> float:
    """Waits on a sub-invocation (PAUSED) in a process a test can kill."""
    _write_pid(path)
    return nap(seconds).result


@app.task
def exit_abruptly(code: int) -> None:
    os._exit(code)  # a crash: no exception, no outcome sent


@app.task(max_retries=2, retry_for=(ConnectionError,))
def flaky_on_disk(path: str, failures: int) -> int:
    """Like ``flaky``, counting attempts in a file (each attempt may be another process)."""
    count = int(Path(path).read_text()) + 1 if Path(path).exists() else 1
    Path(path).write_text(str(count))
    if count <= failures:
        raise ConnectionError(f"attempt {count}")
    return count


@app.task
async def async_nap_span(seconds: float) -> tuple[float, float, int, int]:
    """Awaits ``seconds``; returns when it ran and on which process and event loop, so the
    overlap of async tasks and the loops they shared can be checked."""
    start = time.time()
    await asyncio.sleep(seconds)
    return start, time.time(), os.getpid(), id(asyncio.get_running_loop())
