"""The app ``pynenc demo`` runs: SQLite in one file, the production runner
(PersistentProcessRunner: a dispatcher and one worker process per CPU), trivial tasks.

The database file comes from ``PYNENC_DEMO_DB`` (read at import, so the demo and its runner
subprocess agree on it); without it, ``pynenc-demo.db`` in the temporary directory. Try it::

    PYNENC_DEMO_DB=/tmp/demo.db pynenc --app pynenc.demo.demo_tasks.app runner start
"""

from __future__ import annotations

import os
import tempfile

from pynenc import PynencBuilder

DB_ENV_VAR = "PYNENC_DEMO_DB"
DB_PATH = os.environ.get(DB_ENV_VAR) or os.path.join(tempfile.gettempdir(), "pynenc-demo.db")

app = PynencBuilder().app_id("pynenc-demo").sqlite(DB_PATH).persistent_process_runner().build()


@app.task
def add(x: int, y: int) -> int:
    return x + y


@app.task
def square(x: int) -> int:
    return x * x
