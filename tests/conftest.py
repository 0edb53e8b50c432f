"""Shared fixtures: the core test app on each backend, with a runner thread."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pynenc import Pynenc
from tests.apps import core_tasks

BACKENDS = {
    "memory": {
        "broker_cls": "MemBroker",
        "state_backend_cls": "MemStateBackend",
        "orchestrator_cls": "MemOrchestrator",
        "client_data_store_cls": "MemClientDataStore",
    },
    "sqlite": {
        "broker_cls": "SQLiteBroker",
        "state_backend_cls": "SQLiteStateBackend",
        "orchestrator_cls": "SQLiteOrchestrator",
        "client_data_store_cls": "SQLiteClientDataStore",
    },
}

BASE_CONFIG = dict(core_tasks.app.config_values)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def backend_config(name: str, tmp_path: Path) -> dict[str, object]:
    values: dict[str, object] = dict(BACKENDS[name])
    if name == "sqlite":
        values["sqlite_db_path"] = str(tmp_path / "pynenc.db")
    return values


@pytest.fixture(params=list(BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def app(backend: str, tmp_path: Path) -> Iterator[Pynenc]:
    """The core test app on the chosen backend, purged, with no runner."""
    app = core_tasks.app
    app.config_values.clear()
    app.config_values.update(BASE_CONFIG)
    app.reconfigure(dev_mode_force_sync_tasks=False, **backend_config(backend, tmp_path))
    app.purge()
    core_tasks.attempts.clear()
    core_tasks.spans.clear()
    yield app
    app.purge()
    app.close()


@contextmanager
def running(app: Pynenc) -> Iterator[Pynenc]:
    """Serve ``app`` with its configured runner from a thread of this process."""
    runner = app.runner
    thread = threading.Thread(target=runner.run, name="test-runner", daemon=True)
    thread.start()
    assert runner.started_event.wait(10)
    try:
        yield app
    finally:
        runner.stop()
        thread.join(30)
        assert not thread.is_alive(), "runner did not stop"


@pytest.fixture
def runner(app: Pynenc) -> Iterator[Pynenc]:
    """``app`` with a ThreadRunner serving it from a thread of this process."""
    with running(app):
        yield app
