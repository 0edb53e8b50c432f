"""The Redis key schema: every key of an app starts with ``{redis_key_prefix}:{<app_id>}:``.

The braces are a Redis Cluster hash tag, so every key of one app lives in one slot and the
Lua scripts may touch any of them. ``P`` below is that prefix.

Broker
  ``P queue``            LIST    ids ready to run, FIFO (RPUSH to route, LPOP to pop)
  ``P delayed``          ZSET    ``<16-digit seq>:<id>`` -> due time (Redis server clock);
                                 promoted to ``queue`` by the pop script once due
  ``P delayed-seq``      STRING  counter giving delayed members their FIFO order
  ``P wake``             LIST    0 or 1 wake-up token; blocked poppers BLPOP it
Invocations (state backend and orchestrator)
  ``P inv:<id>``         HASH    everything about one invocation, in one key so a claim or a
                                 finish reads and writes it with one command each:
                                 state backend fields: r record (msgpack, never rewritten),
                                 h history (``status<TAB>timestamp[<TAB>runner_id]<LF>`` per
                                 entry, oldest first), v result, x exception; orchestrator
                                 fields: s status, o owner ("" = none), n num_retries,
                                 u updated_at, t task_id, rk registration key, rn running key,
                                 nk non-key arguments ("" = none, "+" + value), rr reroute on
                                 control ("0" = no; absent fields hold their
                                 defaults). Disjoint field names: a state backend and an
                                 orchestrator on different servers or prefixes keep their
                                 own halves of it.
State backend
  ``P runners``          HASH    runner_id -> JSON of its last heartbeat
  ``P wf-inv:<wf_id>``   SET     ids of a workflow run's children (its root's id is the
                                 workflow id); expires twice the retention after its
                                 last addition
Client data store
  ``P cds:<key>``        STRING  a large serialized value by its content key (SET NX; no
                                 TTL: shared by every invocation passing it)
  ``P wf:<workflow_id>`` HASH    workflow data key -> serialized value (expires after
                                 ``result_retention_sec`` from its last write)
Orchestrator
  ``P by-status:<s>``    ZSET    ids in final status ``s`` -> updated_at (finds, counts)
                         SET     ids in a non-final status ``s`` (finds, counts, recovery)
  ``P reg-keys``         HASH    registration key -> id of the non-final invocation holding it
  ``P running:<key>``    SET     ids in an active status (PENDING..RESUMED) holding running key
  ``P parked:<key>``     ZSET    CONCURRENCY_CONTROLLED ids waiting for ``key`` -> park order
  ``P park-seq``         STRING  counter giving parked ids their order
  ``P reply:<token>``    STRING  a mutating script's reply, kept briefly so a call retried
                                 after a lost reply returns it instead of running twice
  ``P final``            channel ids that became final, space separated (wakes waiters)
  ``P final-values``     channel msgpack (id, result) pairs of small results that became
                                 final, published just before their ids on ``final``

When an invocation becomes final its ``inv`` hash gets the retention TTL, and the
``by-status`` sets of final statuses are trimmed to the same window. The scripts move ids
between ``by-status`` sets once per status per batch (one variadic command), not once per
invocation: per invocation a submission costs one HSET, a claim one HMGET and one HSET, a
finish one HMGET, one HSET and one PEXPIRE.
"""

from __future__ import annotations

import re

# Every key kind, by the component that owns (and purges) it.
BROKER_KINDS = frozenset({"queue", "delayed", "delayed-seq", "wake"})
# ``inv`` hashes hold both the state backend's and the orchestrator's fields.
STATE_KINDS = frozenset({"inv", "runners", "wf", "wf-inv"})
CLIENT_DATA_KINDS = frozenset({"cds"})
ORCHESTRATOR_KINDS = frozenset(
    {"inv", "by-status", "reg-keys", "running", "parked", "park-seq", "reply"}
)

_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


def app_prefix(key_prefix: str, app_id: str) -> str:
    """``{key_prefix}:{<app_id>}:``; a ``}`` or ``%`` in the app id is percent-encoded so
    the hash tag always ends where the app id does."""
    tag = app_id.replace("%", "%25").replace("}", "%7D")
    return f"{key_prefix}:{{{tag}}}:"


def scan_pattern(prefix: str) -> str:
    """A SCAN MATCH pattern for every key under ``prefix`` (glob characters escaped)."""
    return _GLOB_SPECIAL.sub(r"\\\1", prefix) + "*"


def kind_of(key: str, prefix: str) -> str:
    """The kind of ``key`` (``rec``, ``queue`` ...): the part after the prefix up to ':'."""
    return key[len(prefix) :].split(":", 1)[0]


class Keys:
    """Key names of one app."""

    __slots__ = ("delayed", "final", "final_values", "prefix", "queue", "runners", "wake")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.queue = prefix + "queue"
        self.delayed = prefix + "delayed"
        self.wake = prefix + "wake"
        self.runners = prefix + "runners"
        self.final = prefix + "final"
        self.final_values = prefix + "final-values"

    def invocation(self, invocation_id: str) -> str:
        return f"{self.prefix}inv:{invocation_id}"

    def workflow_data(self, workflow_id: str) -> str:
        return f"{self.prefix}wf:{workflow_id}"

    def workflow_members(self, workflow_id: str) -> str:
        return f"{self.prefix}wf-inv:{workflow_id}"

    def by_status(self, status: str) -> str:
        return f"{self.prefix}by-status:{status}"
