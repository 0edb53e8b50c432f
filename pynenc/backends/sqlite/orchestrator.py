"""SQLite orchestrator: each batch is read, run through the status machine in Python and
written back inside one ``BEGIN IMMEDIATE`` transaction, so it is atomic across processes.

When the app's state backend lives in the same file, the history entries of a batch are
written in that same transaction.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from pynenc.backends.sqlite.broker import SQLiteBroker
from pynenc.backends.sqlite.connection import (
    HAS_JSON,
    SUPPORTS_RETURNING,
    database_for,
    fetch_by_ids,
)
from pynenc.backends.sqlite.notify import SAFETY_RECHECK_SEC, channel_name
from pynenc.backends.sqlite.schema import HISTORY_INSERT
from pynenc.backends.sqlite.state_backend import SQLiteStateBackend
from pynenc.exceptions import KeyArgumentsMismatchError, StatusTransitionError
from pynenc.invocation.record import InvocationRecord, InvocationState, Registration
from pynenc.invocation.status import InvocationStatus, check_transitions, compute_transition
from pynenc.orchestrator.base import ACTIVE_STATUSES, BaseOrchestrator, ClaimResult

if TYPE_CHECKING:
    from pynenc.app import Pynenc

_S = InvocationStatus
_FINAL = tuple(s.value for s in InvocationStatus if s.is_final)
_ACTIVE = tuple(s.value for s in ACTIVE_STATUSES)
_FINAL_SQL = ", ".join(f"'{s}'" for s in _FINAL)
_ACTIVE_SQL = ", ".join(f"'{s}'" for s in _ACTIVE)

_SET = (
    "UPDATE orchestrator SET status = ?, owner = ?, num_retries = ?, updated_at = ?, "
    "held_registration_key = ?, parked_seq = ? WHERE app_id = ? "
)
_HISTORY_INSERT_MANY = (
    "INSERT INTO history (app_id, invocation_id, status, timestamp, runner_id) "
    "SELECT ?1, value, ?2, ?3, ?4 FROM json_each(?5) ORDER BY key"
)
_UPDATE_ONE = _SET + "AND invocation_id = ?"
_UPDATE_MANY = _SET + "AND invocation_id IN (SELECT value FROM json_each(?))"
_STATE_COLUMNS = "invocation_id, task_id, status, owner, num_retries, updated_at"
# wait_for_final on more ids than this re-reads only the rows that became final lately
_SMALL_WAIT = 64
# ``updated_at`` is read just before the UPDATE, under the write lock: a commit is seen at
# most this long after its ``updated_at`` unless the writer stalled (the full re-check
# every SAFETY_RECHECK_SEC covers that)
_SCAN_OVERLAP_SEC = 0.1


# value -> member without the Enum call machinery (rows are read by the thousand)
_STATUS_OF: dict[Any, InvocationStatus] = {s.value: s for s in InvocationStatus}
_STATUS_OF.update({s: s for s in InvocationStatus})


class _Row:
    """Working copy of one invocation during a transaction."""

    __slots__ = (
        "held_key",
        "num_retries",
        "owner",
        "parked_seq",
        "reroute",
        "running_key",
        "status",
    )

    def __init__(self, row: tuple[Any, ...]) -> None:
        self.status = _STATUS_OF[row[1]]
        self.owner: str | None = row[2]
        self.num_retries: int = row[3]
        self.running_key: str | None = row[4]
        self.held_key: str | None = row[5]
        self.reroute = bool(row[6])
        self.parked_seq: int | None = row[7]


def _grouping_keeps_order(
    entries: Sequence[tuple[str, InvocationStatus]], groups: list[InvocationStatus]
) -> bool:
    """True when inserting the entries status group by status group (in ``groups`` order)
    keeps every invocation's own entries in their original order (e.g. a batch of
    RUNNING then SUCCESS pairs)."""
    rank = {status: n for n, status in enumerate(groups)}
    last: dict[str, int] = {}
    for invocation_id, status in entries:
        position = rank[status]
        if last.get(invocation_id, -1) >= position:
            return False
        last[invocation_id] = position
    return True


class SQLiteOrchestrator(BaseOrchestrator):
    def __init__(self, app: Pynenc) -> None:
        super().__init__(app)
        self.db = database_for(app)
        self._final_channel = channel_name("final", app.app_id)

    @cached_property
    def _inline_history(self) -> bool:
        """History goes in the orchestrator's transactions when it lives in the same file."""
        backend = self.app.state_backend
        return isinstance(backend, SQLiteStateBackend) and backend.db is self.db

    def _record(
        self, entries: Sequence[tuple[str, InvocationStatus]], runner_id: str | None, now: float
    ) -> None:
        if not self._inline_history:
            super()._record(entries, runner_id, now)

    def _write_history(
        self,
        conn: sqlite3.Connection,
        entries: Sequence[tuple[str, InvocationStatus]],
        runner_id: str | None,
        now: float,
    ) -> None:
        if not self._inline_history or not entries:
            return
        app_id = self.app.app_id
        by_status: dict[InvocationStatus, list[str]] = {}
        for invocation_id, status in entries:
            by_status.setdefault(status, []).append(invocation_id)
        if not HAS_JSON or not _grouping_keeps_order(entries, list(by_status)):
            # one statement per status would reorder some invocation's entries
            rows = [(app_id, i, s.value, now, runner_id) for i, s in entries]
            conn.executemany(HISTORY_INSERT, rows)
            return
        for status, ids in by_status.items():
            params = (app_id, status.value, now, runner_id, json.dumps(ids))
            conn.execute(_HISTORY_INSERT_MANY, params)

    # --- primitives ---------------------------------------------------------------------

    def _register(self, registrations: Sequence[Registration], now: float) -> list[str]:
        if not registrations:
            return []
        return self.db.write(lambda conn: self._register_in(conn, registrations, now))

    def _register_in(
        self, conn: sqlite3.Connection, registrations: Sequence[Registration], now: float
    ) -> list[str]:
        app_id = self.app.app_id
        keys = list({r.registration_key for r in registrations if r.registration_key})
        holders: dict[str, tuple[str, str | None]] = {
            key: (holder, non_key)
            for key, holder, non_key in fetch_by_ids(
                conn,
                "SELECT held_registration_key, invocation_id, non_key_arguments "
                "FROM orchestrator WHERE app_id = ? AND held_registration_key IN {ids}",
                (app_id,),
                keys,
            )
        }
        ids: list[str] = []
        fresh: list[tuple[Any, ...]] = []
        for reg in registrations:
            key = reg.registration_key or None
            if key and key in holders:
                holder, non_key = holders[key]
                _check_non_key_arguments(reg, non_key)
                ids.append(holder)
                continue
            fresh.append(
                (
                    app_id,
                    reg.invocation_id,
                    reg.task_id,
                    _S.REGISTERED.value,
                    now,
                    key,
                    key,
                    reg.running_key,
                    reg.non_key_arguments,
                    int(reg.reroute_on_control),
                )
            )
            if key:
                holders[key] = (reg.invocation_id, reg.non_key_arguments)
            ids.append(reg.invocation_id)
        conn.executemany(
            "INSERT OR REPLACE INTO orchestrator (app_id, invocation_id, task_id, status, "
            "updated_at, registration_key, held_registration_key, running_key, "
            "non_key_arguments, reroute_on_control) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            fresh,
        )
        self._write_history(conn, [(row[1], _S.REGISTERED) for row in fresh], None, now)
        return ids

    def submit_invocations(
        self, registrations: Sequence[Registration], records: Sequence[InvocationRecord]
    ) -> list[str]:
        found = self.app.broker
        same_file = isinstance(found, SQLiteBroker) and found.db is self.db
        if not (same_file and self._inline_history) or not registrations:
            return super().submit_invocations(registrations, records)
        broker: SQLiteBroker = found  # type: ignore[assignment]
        backend: SQLiteStateBackend = self.app.state_backend  # type: ignore[assignment]
        now = time.time()

        def work(conn: sqlite3.Connection) -> tuple[list[str], bool]:
            ids = self._register_in(conn, registrations, now)
            fresh = [r for r, i in zip(records, ids, strict=True) if r.invocation_id == i]
            backend.write_records(conn, fresh)
            broker.write_routes(conn, [r.invocation_id for r in fresh])
            return ids, bool(fresh)

        ids, routed = self.db.write(work)
        if routed:
            broker.notify()
        return ids

    def _claim(
        self, invocation_ids: Sequence[str], runner_id: str, now: float, start: bool
    ) -> ClaimResult:
        result = self.db.write(
            lambda conn: self._claim_in(conn, invocation_ids, runner_id, now, start)
        )
        if result.final:
            self.db.notifier.notify(self._final_channel)
        return result

    def claim_next(
        self, max_count: int, timeout_sec: float, runner_id: str, start: bool = False
    ) -> ClaimResult:
        broker = self.app.broker
        if not (isinstance(broker, SQLiteBroker) and broker.db is self.db):
            return super().claim_next(max_count, timeout_sec, runner_id, start)
        now = time.time()
        backend = self.app.state_backend
        same_file = isinstance(backend, SQLiteStateBackend) and backend.db is self.db

        def claim(conn: sqlite3.Connection, ids: list[str]) -> ClaimResult:
            result = self._claim_in(conn, ids, runner_id, time.time(), start)
            if same_file:  # the records ride along: no second round trip for them
                result.records = backend.read_records(conn, result.claimed)  # type: ignore[attr-defined]
            return result

        result = broker.retrieve_then(max_count, timeout_sec, claim)
        if result is None:
            return ClaimResult()
        if result.final:
            self.db.notifier.notify(self._final_channel)
        self._claimed(result, runner_id, now, start)
        return result

    def _claim_in(
        self,
        conn: sqlite3.Connection,
        invocation_ids: Sequence[str],
        runner_id: str,
        now: float,
        start: bool,
    ) -> ClaimResult:
        rows = self._load(conn, invocation_ids)
        active = self._active_counts(conn, rows.values())
        result = ClaimResult()
        next_seq: dict[str, int] = {}
        changed: dict[str, _Row] = {}
        for invocation_id in invocation_ids:
            row = rows.get(invocation_id)
            if row is None or not row.status.is_available_for_run:
                continue
            key = row.running_key
            changed[invocation_id] = row
            if key and active.get(key):
                self._control(conn, invocation_id, row, result, next_seq)
                continue
            row.owner = compute_transition(
                row.status, _S.PENDING, row.owner, runner_id, invocation_id
            )
            row.status, row.parked_seq = _S.PENDING, None
            if start:
                row.owner = compute_transition(
                    _S.PENDING, _S.RUNNING, row.owner, runner_id, invocation_id
                )
                row.status = _S.RUNNING
            if key:
                active[key] = active.get(key, 0) + 1
            result.claimed.append(invocation_id)
            result.num_retries[invocation_id] = row.num_retries
        self._update(conn, changed)
        entries = [(i, _S.PENDING) for i in result.claimed]
        if start:
            entries += [(i, _S.RUNNING) for i in result.claimed]
        entries += [(i, _S.CONCURRENCY_CONTROLLED) for i in result.controlled]
        entries += [(i, _S.CONCURRENCY_CONTROLLED_FINAL) for i in result.final]
        self._write_history(conn, entries, runner_id, now)
        return result

    def _control(
        self,
        conn: sqlite3.Connection,
        invocation_id: str,
        row: _Row,
        result: ClaimResult,
        next_seq: dict[str, int],
    ) -> None:
        """Refuse a claim because the running key is held: park the id or end it."""
        row.owner = None
        if not row.reroute:
            row.status, row.held_key, row.parked_seq = _S.CONCURRENCY_CONTROLLED_FINAL, None, None
            result.final.append(invocation_id)
            return
        row.status = _S.CONCURRENCY_CONTROLLED
        result.controlled.append(invocation_id)
        if row.parked_seq is not None:
            return  # parked already: keeps its place in line
        key = row.running_key
        assert key is not None
        if key not in next_seq:
            (last,) = conn.execute(
                "SELECT MAX(parked_seq) FROM orchestrator "
                "WHERE app_id = ? AND running_key = ? AND parked_seq IS NOT NULL",
                (self.app.app_id, key),
            ).fetchone()
            next_seq[key] = (last or 0) + 1
        row.parked_seq = next_seq[key]
        next_seq[key] += 1

    def finish_invocations(
        self,
        changes: Sequence[tuple[str, InvocationStatus]],
        results: Sequence[tuple[str, bytes]],
        exceptions: Sequence[tuple[str, bytes]],
        runner_id: str | None,
    ) -> dict[str, StatusTransitionError]:
        if not self._inline_history:
            return super().finish_invocations(changes, results, exceptions, runner_id)
        backend: SQLiteStateBackend = self.app.state_backend  # type: ignore[assignment]

        def store(conn: sqlite3.Connection) -> None:
            backend.write_values(conn, "results", results)
            backend.write_values(conn, "exceptions", exceptions)

        now = time.time()
        applied, errors, unparked = self._apply(changes, runner_id, now, before=store)
        self._applied(applied, unparked, runner_id, now)
        return errors

    def _apply(
        self,
        changes: Sequence[tuple[str, InvocationStatus]],
        runner_id: str | None,
        now: float,
        before: Callable[[sqlite3.Connection], None] | None = None,
    ) -> tuple[list[tuple[str, InvocationStatus]], dict[str, StatusTransitionError], list[str]]:
        def work(
            conn: sqlite3.Connection,
        ) -> tuple[list[tuple[str, InvocationStatus]], dict[str, StatusTransitionError], list[str]]:
            if before is not None:
                before(conn)
            rows = self._load(conn, [i for i, _ in changes])
            active = self._active_counts(conn, rows.values())
            applied: list[tuple[str, InvocationStatus]] = []
            errors: dict[str, StatusTransitionError] = {}
            freed: dict[str, int] = {}  # running key -> times it became free
            changed: dict[str, _Row] = {}
            moves = [
                (i, row.status, _STATUS_OF[s], row.owner)
                if (row := rows.get(i))
                else (i, None, _STATUS_OF[s], None)
                for i, s in changes
            ]
            verdicts = check_transitions(moves, runner_id)
            for (invocation_id, _, status, _), owner in zip(moves, verdicts, strict=True):
                if isinstance(owner, StatusTransitionError):
                    errors[invocation_id] = owner
                    continue
                row = rows[invocation_id]  # a transition from None is only to REGISTERED
                was_active = row.status in ACTIVE_STATUSES
                row.owner, row.status, row.parked_seq = owner, status, None
                if status is _S.RETRY:
                    row.num_retries += 1
                if status.is_final:
                    row.held_key = None
                key = row.running_key
                if key and was_active != (status in ACTIVE_STATUSES):
                    active[key] = active.get(key, 0) + (-1 if was_active else 1)
                    if not active[key]:
                        freed[key] = freed.get(key, 0) + 1
                changed[invocation_id] = row
                applied.append((invocation_id, status))
            self._update(conn, changed)
            self._write_history(conn, applied, runner_id, now)
            return applied, errors, self._unpark(conn, freed)

        return self.db.write(work)

    def _after_apply(self, applied: Sequence[tuple[str, InvocationStatus]]) -> None:
        if any(status.is_final for _, status in applied):
            self.db.notifier.notify(self._final_channel)

    # --- transaction helpers ------------------------------------------------------------

    def _load(self, conn: sqlite3.Connection, invocation_ids: Sequence[str]) -> dict[str, _Row]:
        found = fetch_by_ids(
            conn,
            "SELECT invocation_id, status, owner, num_retries, running_key, "
            "held_registration_key, reroute_on_control, parked_seq FROM orchestrator "
            "WHERE app_id = ? AND invocation_id IN {ids}",
            (self.app.app_id,),
            list(dict.fromkeys(invocation_ids)),
        )
        return {row[0]: _Row(row) for row in found}

    def _active_counts(self, conn: sqlite3.Connection, rows: Iterable[_Row]) -> dict[str, int]:
        """Running key -> invocations holding it (in an active status)."""
        keys = list({row.running_key for row in rows if row.running_key})
        found = fetch_by_ids(
            conn,
            "SELECT running_key, COUNT(*) FROM orchestrator WHERE app_id = ? "
            f"AND status IN ({_ACTIVE_SQL}) AND running_key IN {{ids}} GROUP BY running_key",
            (self.app.app_id,),
            keys,
        )
        return {key: count for key, count in found}

    def _update(self, conn: sqlite3.Connection, changed: dict[str, _Row]) -> None:
        """Write the changed rows; rows ending with the same values share one statement."""
        app_id, now = self.app.app_id, time.time()
        groups: dict[tuple[Any, ...], list[str]] = {}
        for invocation_id, r in changed.items():
            values = (r.status.value, r.owner, r.num_retries, now, r.held_key, r.parked_seq)
            groups.setdefault(values, []).append(invocation_id)
        singles: list[tuple[Any, ...]] = []
        for values, ids in groups.items():
            if len(ids) == 1:
                singles.append((*values, app_id, ids[0]))
            elif HAS_JSON:
                conn.execute(_UPDATE_MANY, (*values, app_id, json.dumps(ids)))
            else:
                singles += [(*values, app_id, i) for i in ids]
        if singles:
            conn.executemany(_UPDATE_ONE, singles)

    def _unpark(self, conn: sqlite3.Connection, freed: dict[str, int]) -> list[str]:
        """Hand back the oldest parked invocation of each freed running key."""
        unparked: list[str] = []
        app_id = self.app.app_id
        for key, count in freed.items():
            oldest = (
                "SELECT invocation_id FROM orchestrator WHERE app_id = ? AND running_key = ? "
                "AND parked_seq IS NOT NULL ORDER BY parked_seq LIMIT ?"
            )
            params = (app_id, app_id, key, count)
            if SUPPORTS_RETURNING:
                rows = conn.execute(
                    "UPDATE orchestrator SET parked_seq = NULL WHERE app_id = ? "
                    f"AND invocation_id IN ({oldest}) RETURNING invocation_id",
                    params,
                ).fetchall()
            else:
                rows = conn.execute(oldest, params[1:]).fetchall()
                conn.executemany(
                    "UPDATE orchestrator SET parked_seq = NULL "
                    "WHERE app_id = ? AND invocation_id = ?",
                    [(app_id, r[0]) for r in rows],
                )
            unparked += [r[0] for r in rows]
        return unparked

    # --- queries ------------------------------------------------------------------------

    def get_states(self, invocation_ids: Sequence[str]) -> dict[str, InvocationState]:
        rows = self.db.read(
            lambda conn: fetch_by_ids(
                conn,
                f"SELECT {_STATE_COLUMNS} FROM orchestrator "
                "WHERE app_id = ? AND invocation_id IN {ids}",
                (self.app.app_id,),
                invocation_ids,
            )
        )
        return {row[0]: _state(row) for row in rows}

    def find_invocations(
        self,
        statuses: Iterable[InvocationStatus] | None = None,
        updated_before: float | None = None,
        owner: str | None = None,
        task_id: str | None = None,
        limit: int | None = None,
    ) -> list[InvocationState]:
        where = ["app_id = ?"]
        params: list[Any] = [self.app.app_id]
        if statuses is not None:
            values = [InvocationStatus(s).value for s in statuses]
            if not values:
                return []
            where.append(f"status IN ({', '.join('?' * len(values))})")
            params += values
        for clause, value in (
            ("updated_at < ?", updated_before),
            ("owner = ?", owner),
            ("task_id = ?", task_id),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        sql = (
            f"SELECT {_STATE_COLUMNS} FROM orchestrator WHERE {' AND '.join(where)} "
            "ORDER BY updated_at DESC"
        )
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        rows = self.db.read(lambda conn: conn.execute(sql, params).fetchall())
        return [_state(row) for row in rows]

    def count_by_status(self) -> dict[InvocationStatus, int]:
        rows = self.db.read(
            lambda conn: conn.execute(
                "SELECT status, COUNT(*) FROM orchestrator WHERE app_id = ? GROUP BY status",
                (self.app.app_id,),
            ).fetchall()
        )
        return {InvocationStatus(status): count for status, count in rows}

    def wait_for_final(self, invocation_ids: Sequence[str], timeout_sec: float | None) -> bool:
        deadline = None if timeout_sec is None else time.monotonic() + timeout_sec
        pending = set(invocation_ids)
        waiter = None
        last_check: float | None = None  # wall time of the previous look at the database
        full_check_due = 0.0
        while True:
            started = time.time()
            if last_check is None or len(pending) <= _SMALL_WAIT or started >= full_check_due:
                pending -= self._final_among(pending)
                full_check_due = started + SAFETY_RECHECK_SEC
            else:  # a large group: only look at what became final since the last look
                pending -= self._final_since(last_check - _SCAN_OVERLAP_SEC)
            last_check = started
            if not pending:
                return True
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            if waiter is None:
                # listen first, then look again: a final status committed in between wakes us
                waiter = self.db.notifier.waiter(self._final_channel)
                last_check = None
                continue
            wait = SAFETY_RECHECK_SEC if remaining is None else min(remaining, SAFETY_RECHECK_SEC)
            waiter.wait(wait)

    def _final_among(self, invocation_ids: set[str]) -> set[str]:
        # "+status": look the ids up by primary key, never by scanning the status index
        # (every final invocation of the app) as the planner would pick otherwise
        rows = self.db.read(
            lambda conn: fetch_by_ids(
                conn,
                "SELECT invocation_id FROM orchestrator WHERE app_id = ? "
                f"AND +status IN ({_FINAL_SQL}) AND invocation_id IN {{ids}}",
                (self.app.app_id,),
                list(invocation_ids),
            )
        )
        return {row[0] for row in rows}

    def _final_since(self, since: float) -> set[str]:
        rows = self.db.read(
            lambda conn: conn.execute(
                "SELECT invocation_id FROM orchestrator WHERE app_id = ? "
                f"AND status IN ({_FINAL_SQL}) AND updated_at >= ?",
                (self.app.app_id, since),
            ).fetchall()
        )
        return {row[0] for row in rows}

    def purge(self) -> None:
        app_id = self.app.app_id
        self.db.write(
            lambda conn: conn.execute("DELETE FROM orchestrator WHERE app_id = ?", (app_id,))
        )

    def close(self) -> None:
        self.db.close()
        self.db.notifier.close()


def _check_non_key_arguments(reg: Registration, holder_non_key: str | None) -> None:
    if reg.non_key_arguments is not None and reg.non_key_arguments != holder_non_key:
        raise KeyArgumentsMismatchError(
            f"Task '{reg.task_id}' already has a pending invocation with the same key "
            "arguments but different other arguments (on_diff_non_key_args_raise=True)."
        )


def _state(row: tuple[Any, ...]) -> InvocationState:
    invocation_id, task_id, status, owner, num_retries, updated_at = row
    return InvocationState(
        invocation_id, task_id, InvocationStatus(status), owner, num_retries, updated_at
    )
