"""Redis state backend: records, histories, results, exceptions and runner heartbeats.

An invocation's record, history, result and exception are fields of its ``inv`` hash (see
``keys``), which the Redis orchestrator's scripts write directly when both are on one
server. Each batch method is one script: one round trip. Storing a result or an exception
here sets the hash to expire after ``result_retention_sec``; with the Redis orchestrator the
hash gets that TTL when the invocation becomes final.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

import msgpack

from pynenc.backends.redis import scripts
from pynenc.backends.redis.connection import client_for
from pynenc.backends.redis.keys import STATE_KINDS, Keys
from pynenc.invocation.record import InvocationRecord
from pynenc.invocation.status import InvocationStatus, StatusRecord
from pynenc.state_backend.base import BaseStateBackend, RunnerInfo

if TYPE_CHECKING:
    from pynenc.app import Pynenc


def encode_history(record: StatusRecord) -> str:
    """``status<TAB>timestamp[<TAB>runner_id]`` (no third field: no runner)."""
    entry = f"{record.status.value}\t{record.timestamp!r}"
    return entry if record.runner_id is None else f"{entry}\t{record.runner_id}"


def decode_history(raw: bytes | str) -> StatusRecord:
    text = raw.decode() if isinstance(raw, bytes) else raw
    status, timestamp, *runner = text.split("\t", 2)
    return StatusRecord(InvocationStatus(status), float(timestamp), runner[0] if runner else None)


def decode_histories(raw: bytes | str | None) -> list[StatusRecord]:
    """The ``h`` field: one entry per line, oldest first."""
    if not raw:
        return []
    text = raw.decode() if isinstance(raw, bytes) else raw
    return [decode_history(line) for line in text.split("\n") if line]


def record_fields(r: InvocationRecord) -> tuple[object, ...]:
    """What a stored record holds (its id is in its key), in stored order."""
    return (
        r.task_id,
        r.arguments,
        r.parent_invocation_id,
        r.workflow_id,
        r.workflow_task_id,
        r.created_at,
    )


def encode_record(r: InvocationRecord) -> bytes:
    return msgpack.packb(record_fields(r), use_bin_type=True)  # type: ignore[no-any-return]


def decode_record(invocation_id: str, raw: bytes) -> InvocationRecord:
    task_id, arguments, parent, workflow_id, workflow_task_id, created_at = msgpack.unpackb(
        raw, raw=False
    )
    return InvocationRecord(
        invocation_id, task_id, arguments, parent, workflow_id, workflow_task_id, created_at
    )


def workflow_parent(r: InvocationRecord) -> str:
    """The workflow id of a workflow's child, '' for a run's root (its own workflow)."""
    return "" if r.workflow_id == r.invocation_id else r.workflow_id


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisStateBackend(BaseStateBackend):
    def __init__(self, app: Pynenc) -> None:
        super().__init__(app)
        self.client, self.prefix = client_for(app)
        self.keys = Keys(self.prefix)

    @property
    def retention_ms(self) -> int:
        return max(int(self.app.conf.result_retention_sec * 1000), 1)

    def store_invocations(self, records: Sequence[InvocationRecord]) -> None:
        if records:
            triples = [
                x for r in records for x in (r.invocation_id, encode_record(r), workflow_parent(r))
            ]
            ttl = 2 * self.retention_ms
            self.client.call_repeatable(scripts.STORE_RECORDS, [self.prefix, ttl, *triples])

    def get_invocations(self, invocation_ids: Sequence[str]) -> dict[str, InvocationRecord]:
        return {i: decode_record(i, raw) for i, raw in self._field("r", invocation_ids).items()}

    def _field(self, field: str, invocation_ids: Sequence[str]) -> dict[str, bytes]:
        """One field of each id's hash, for the ids that have it (one round trip)."""
        ids = list(dict.fromkeys(invocation_ids))
        if not ids:
            return {}
        if len(ids) == 1:  # a plain HGET costs the server a third of a script call
            values = [self.client.execute("HGET", self.keys.invocation(ids[0]), field)]
        else:
            values = self.client.call_repeatable(scripts.FIELD_VALUES, [self.prefix, field, *ids])
        return {i: bytes(v) for i, v in zip(ids, values, strict=True) if v is not None}

    def add_history(self, entries: Sequence[tuple[str, StatusRecord]]) -> None:
        if entries:
            pairs = [x for i, record in entries for x in (i, encode_history(record))]
            self.client.call_repeatable(scripts.ADD_HISTORY, [self.prefix, "", *pairs])

    def get_history(self, invocation_id: str) -> list[StatusRecord]:
        raw = self.client.run(lambda r: r.hget(self.keys.invocation(invocation_id), "h"))
        return decode_histories(raw)

    def store_results(self, results: Sequence[tuple[str, bytes]]) -> None:
        self._store_values("v", results)

    def get_results(self, invocation_ids: Sequence[str]) -> dict[str, bytes]:
        return self._field("v", invocation_ids)

    def store_exceptions(self, exceptions: Sequence[tuple[str, bytes]]) -> None:
        self._store_values("x", exceptions)

    def get_exceptions(self, invocation_ids: Sequence[str]) -> dict[str, bytes]:
        return self._field("x", invocation_ids)

    def _store_values(self, field: str, values: Sequence[tuple[str, bytes]]) -> None:
        if values:
            pairs = [x for pair in values for x in pair]
            self.client.call_repeatable(
                scripts.STORE, [self.prefix, field, self.retention_ms, *pairs]
            )

    def store_runner_heartbeat(self, info: RunnerInfo) -> None:
        encoded = json.dumps(
            [info.hostname, info.pid, info.runner_cls, info.started_at, info.last_heartbeat]
        )
        self.client.run(lambda r: r.hset(self.keys.runners, info.runner_id, encoded))

    def get_runners(self) -> list[RunnerInfo]:
        raw = self.client.run(lambda r: r.hgetall(self.keys.runners))
        runners = [RunnerInfo(_text(key), *json.loads(value)) for key, value in raw.items()]
        return sorted(runners, key=lambda info: -info.last_heartbeat)

    def remove_runner(self, runner_id: str) -> None:
        self.client.run(lambda r: r.hdel(self.keys.runners, runner_id))

    def set_workflow_data(self, workflow_id: str, key: str, value: bytes) -> None:
        name = self.keys.workflow_data(workflow_id)
        retention = self.retention_ms
        self.client.pipeline(lambda p: (p.hset(name, key, value), p.pexpire(name, retention)))

    def get_workflow_data(self, workflow_id: str, key: str) -> bytes | None:
        raw = self.client.run(lambda r: r.hget(self.keys.workflow_data(workflow_id), key))
        if raw is None:
            return None
        return raw if isinstance(raw, bytes) else str(raw).encode()

    def get_workflow_invocations(self, workflow_id: str) -> list[InvocationRecord]:
        """The run's root (whose id is the workflow id) and the children in its index."""
        key = self.keys.workflow_members(workflow_id)
        children = self.client.run(lambda r: [_text(i) for i in r.smembers(key)])
        ids = [workflow_id, *children]
        found: list[InvocationRecord] = []
        for first in range(0, len(ids), 1000):
            records = self.get_invocations(ids[first : first + 1000])
            found += (r for r in records.values() if r.workflow_id == workflow_id)
        return sorted(found, key=lambda r: (r.created_at, r.invocation_id))

    def purge(self) -> None:
        self.client.unlink_kinds(self.prefix, STATE_KINDS)

    def close(self) -> None:
        self.client.close()
