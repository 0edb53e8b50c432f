"""Redis state backend: records, histories, results, exceptions and runner heartbeats.

Each batch method is one command (MGET, or a script for writes): one round trip. Results
and exceptions expire after ``result_retention_sec``; records and histories get the same
TTL from the Redis orchestrator when their invocation becomes final.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgpack

from pynenc.backends.redis import scripts
from pynenc.backends.redis.connection import client_for
from pynenc.backends.redis.keys import STATE_KINDS, Keys, scan_pattern
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


def encode_record(r: InvocationRecord) -> bytes:
    fields = [
        r.task_id,
        r.arguments,
        r.parent_invocation_id,
        r.workflow_id,
        r.workflow_task_id,
        r.created_at,
    ]
    return msgpack.packb(fields, use_bin_type=True)  # type: ignore[no-any-return]


def decode_record(invocation_id: str, raw: bytes) -> InvocationRecord:
    task_id, arguments, parent, workflow_id, workflow_task_id, created_at = msgpack.unpackb(
        raw, raw=False
    )
    return InvocationRecord(
        invocation_id, task_id, arguments, parent, workflow_id, workflow_task_id, created_at
    )


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
            pairs = [x for r in records for x in (r.invocation_id, encode_record(r))]
            self.client.call_repeatable(scripts.STORE, [self.prefix, "rec:", "", *pairs])

    def get_invocations(self, invocation_ids: Sequence[str]) -> dict[str, InvocationRecord]:
        ids = list(dict.fromkeys(invocation_ids))
        values = self._mget([self.keys.record(i) for i in ids])
        return {i: decode_record(i, raw) for i, raw in zip(ids, values, strict=True) if raw}

    def _mget(self, keys: list[str]) -> list[Any]:
        if not keys:
            return []
        return self.client.execute("MGET", *keys)  # type: ignore[no-any-return]

    def add_history(self, entries: Sequence[tuple[str, StatusRecord]]) -> None:
        if entries:
            pairs = [x for i, record in entries for x in (i, encode_history(record))]
            self.client.call_repeatable(scripts.ADD_HISTORY, [self.prefix, "", *pairs])

    def get_history(self, invocation_id: str) -> list[StatusRecord]:
        raw = self.client.run(lambda r: r.lrange(self.keys.history(invocation_id), 0, -1))
        return [decode_history(entry) for entry in raw]

    def store_results(self, results: Sequence[tuple[str, bytes]]) -> None:
        self._store_values("res:", results)

    def get_results(self, invocation_ids: Sequence[str]) -> dict[str, bytes]:
        return self._get_values(self.keys.result, invocation_ids)

    def store_exceptions(self, exceptions: Sequence[tuple[str, bytes]]) -> None:
        self._store_values("exc:", exceptions)

    def get_exceptions(self, invocation_ids: Sequence[str]) -> dict[str, bytes]:
        return self._get_values(self.keys.exception, invocation_ids)

    def _store_values(self, kind: str, values: Sequence[tuple[str, bytes]]) -> None:
        if values:
            pairs = [x for pair in values for x in pair]
            self.client.call_repeatable(
                scripts.STORE, [self.prefix, kind, self.retention_ms, *pairs]
            )

    def _get_values(self, key: Any, invocation_ids: Sequence[str]) -> dict[str, bytes]:
        ids = list(dict.fromkeys(invocation_ids))
        values = self._mget([key(i) for i in ids])
        return {i: bytes(v) for i, v in zip(ids, values, strict=True) if v is not None}

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
        # No per-workflow index yet: scan the records (kept for the retention window).
        pattern = scan_pattern(self.keys.record(""))
        keys = self.client.run(lambda r: [_text(k) for k in r.scan_iter(match=pattern, count=1000)])
        found: list[InvocationRecord] = []
        offset = len(self.keys.record(""))
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            for key, raw in zip(chunk, self._mget(chunk), strict=True):
                if raw:
                    record = decode_record(key[offset:], raw)
                    if record.workflow_id == workflow_id:
                        found.append(record)
        return sorted(found, key=lambda r: (r.created_at, r.invocation_id))

    def purge(self) -> None:
        self.client.unlink_kinds(self.prefix, STATE_KINDS)

    def close(self) -> None:
        self.client.close()
