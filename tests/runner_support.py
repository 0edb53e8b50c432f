"""Serving the core test app with any runner, in this process or as a real runner process."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest

from pynenc import Pynenc
from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[1]
SQLITE = {
    "broker_cls": "SQLiteBroker",
    "state_backend_cls": "SQLiteStateBackend",
    "orchestrator_cls": "SQLiteOrchestrator",
    "client_data_store_cls": "SQLiteClientDataStore",
}
REDIS = {
    "broker_cls": "RedisBroker",
    "state_backend_cls": "RedisStateBackend",
    "orchestrator_cls": "RedisOrchestrator",
    "client_data_store_cls": "RedisClientDataStore",
}
# the runners that serve from processes of their own, with two of them (or two threads in
# two processes) each, for tests that run under every one of them
PROCESS_RUNNERS = {
    "ProcessRunner": {"max_processes": 2},
    "PersistentProcessRunner": {"num_processes": 2},
    "MultiThreadRunner": {
        "min_processes": 2,
        "max_processes": 2,
        "min_threads": 2,
        "max_threads": 2,
    },
}

# a db of the shared local server; each test also gets its own key prefix
REDIS_URL = os.environ.get("PYNENC_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


@cache
def redis_available() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except Exception:
        return False


def require_redis() -> None:
    """Skip the calling test without a local Redis server; under CI=true, fail it."""
    if redis_available():
        return
    message = f"no Redis server at {REDIS_URL} (set PYNENC_TEST_REDIS_URL)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def redis_config(tmp_path: Path) -> dict[str, object]:
    """The Redis components with a key prefix of their own for the test owning ``tmp_path``
    (concurrent test sessions on one server never meet)."""
    require_redis()
    tag = hashlib.sha1(str(tmp_path).encode()).hexdigest()[:12]
    return {**REDIS, "redis_url": REDIS_URL, "redis_key_prefix": f"pynenc-test-{tag}"}


def wait_until(condition: Callable[[], bool], timeout_sec: float, what: str) -> None:
    """Bounded wait on a condition that lives in another process's writes."""
    deadline = time.monotonic() + timeout_sec
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def runner_env(config: dict[str, object]) -> dict[str, str]:
    """Environment that makes a runner process see ``config`` (env beats the builder)."""
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    for field, value in config.items():
        env[f"PYNENC__{field.upper()}"] = str(value)
    return env


def start_runner_process(
    app: Pynenc, env: dict[str, str], app_path: str = "tests.apps.core_tasks.app"
) -> subprocess.Popen[bytes]:
    """``pynenc runner start`` for ``app_path`` (``app`` in this process, on the same
    backend); returns once it has heartbeated."""
    before = {r.runner_id for r in app.state_backend.get_runners()}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pynenc", "--app", app_path, "runner", "start"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wait_until(
        lambda: (
            bool({r.runner_id for r in app.state_backend.get_runners()} - before)
            or proc.poll() is not None
        ),
        60,
        "the runner's first heartbeat",
    )
    if proc.poll() is not None:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise AssertionError(f"runner exited with {proc.returncode}: {err[-2000:]}")
    return proc


def stop_runner_process(proc: subprocess.Popen[bytes], timeout_sec: float = 60) -> int:
    """SIGTERM, then wait for the drain; kills it if it never ends."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout_sec)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
