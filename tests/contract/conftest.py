"""Every contract test runs once per backend (dramatiq's ``params=["stub", "redis"]``).

Adding a backend is one entry in ``BACKENDS``: how to point a builder at it. Apps made by
``make_app`` in one test share the same storage (the same SQLite file, ...), so tests can
check that two ``app_id`` values never see each other's data.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pynenc import Pynenc, PynencBuilder
from pynenc.invocation.record import Registration
from tests.runner_support import redis_config

BACKENDS: dict[str, Callable[[PynencBuilder, Path], PynencBuilder]] = {
    "memory": lambda builder, tmp: builder.memory(),
    "sqlite": lambda builder, tmp: builder.sqlite(sqlite_db_path=str(tmp / "pynenc.db")),
    "redis": lambda builder, tmp: builder.custom_config(**redis_config(tmp)),
}

MakeApp = Callable[..., Pynenc]


@pytest.fixture(params=list(BACKENDS))
def make_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeApp]:
    apps: list[Pynenc] = []

    def make(app_id: str = "contract") -> Pynenc:
        builder = BACKENDS[request.param](PynencBuilder().app_id(app_id), tmp_path)
        app = builder.build()
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.purge()
        app.close()


@pytest.fixture
def app(make_app: MakeApp) -> Pynenc:
    return make_app()


def new_ids(count: int) -> list[str]:
    return [uuid.uuid4().hex for _ in range(count)]


def register(app: Pynenc, count: int = 1, task_id: str = "tasks.add", **options: Any) -> list[str]:
    """Register ``count`` fresh invocations with the same options; returns their ids."""
    registrations = [Registration(i, task_id, **options) for i in new_ids(count)]
    return app.orchestrator.register_invocations(registrations)
