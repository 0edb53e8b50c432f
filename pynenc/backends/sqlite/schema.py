"""Tables of the SQLite backends. Every row carries ``app_id`` so apps can share one file.

Applied with ``CREATE ... IF NOT EXISTS`` by the first connection of each process.
"""

from __future__ import annotations

SCHEMA = """
CREATE TABLE IF NOT EXISTS broker_queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id TEXT NOT NULL,
    invocation_id TEXT NOT NULL,
    visible_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS broker_queue_order ON broker_queue (app_id, visible_at, seq);

CREATE TABLE IF NOT EXISTS invocations (
    app_id TEXT NOT NULL,
    invocation_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    arguments BLOB NOT NULL,
    parent_invocation_id TEXT,
    workflow_id TEXT NOT NULL,
    workflow_task_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (app_id, invocation_id)
);

CREATE INDEX IF NOT EXISTS invocations_by_workflow ON invocations (app_id, workflow_id);

CREATE TABLE IF NOT EXISTS workflow_data (
    app_id TEXT NOT NULL,
    workflow_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (app_id, workflow_id, key)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY,
    app_id TEXT NOT NULL,
    invocation_id TEXT NOT NULL,
    status TEXT NOT NULL,
    timestamp REAL NOT NULL,
    runner_id TEXT
);
CREATE INDEX IF NOT EXISTS history_by_invocation ON history (app_id, invocation_id, seq);

CREATE TABLE IF NOT EXISTS results (
    app_id TEXT NOT NULL,
    invocation_id TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (app_id, invocation_id)
);

CREATE TABLE IF NOT EXISTS exceptions (
    app_id TEXT NOT NULL,
    invocation_id TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (app_id, invocation_id)
);

-- The client data store: large serialized values by content key, stored once.
CREATE TABLE IF NOT EXISTS client_data (
    app_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (app_id, key)
);

CREATE TABLE IF NOT EXISTS runners (
    app_id TEXT NOT NULL,
    runner_id TEXT NOT NULL,
    hostname TEXT NOT NULL,
    pid INTEGER NOT NULL,
    runner_cls TEXT NOT NULL,
    started_at REAL NOT NULL,
    last_heartbeat REAL NOT NULL,
    PRIMARY KEY (app_id, runner_id)
) WITHOUT ROWID;

-- The orchestrator's mutable state. ``held_registration_key`` is the registration key while
-- the invocation is not final (NULL afterwards), so looking up a key's holder is one probe.
-- ``parked_seq`` orders the CONCURRENCY_CONTROLLED invocations waiting on their running key.
CREATE TABLE IF NOT EXISTS orchestrator (
    app_id TEXT NOT NULL,
    invocation_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    status TEXT NOT NULL,
    owner TEXT,
    num_retries INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL,
    registration_key TEXT,
    held_registration_key TEXT,
    running_key TEXT,
    non_key_arguments TEXT,
    reroute_on_control INTEGER NOT NULL,
    parked_seq INTEGER,
    PRIMARY KEY (app_id, invocation_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS orchestrator_by_status
    ON orchestrator (app_id, status, updated_at);
CREATE INDEX IF NOT EXISTS orchestrator_by_running_key
    ON orchestrator (app_id, running_key, status) WHERE running_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS orchestrator_by_registration_key
    ON orchestrator (app_id, held_registration_key) WHERE held_registration_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS orchestrator_parked
    ON orchestrator (app_id, running_key, parked_seq) WHERE parked_seq IS NOT NULL;
"""

HISTORY_INSERT = (
    "INSERT INTO history (app_id, invocation_id, status, timestamp, runner_id) "
    "VALUES (?, ?, ?, ?, ?)"
)
