"""Lua scripts of the Redis backends: each batch operation is one atomic EVALSHA.

Lua cannot call Python, so the status machine is handed to the scripts as a table generated
at import time by running :func:`compute_transition` itself over every (current, new)
pair and every ownership case: the scripts look outcomes up, they never re-derive them.

Every mutating script starts with ``PRELUDE``; its ARGV[1..4] are the app prefix, this
call's reply key, the previous reply key to drop and the reply TTL (ms). Scripts return
their reply JSON-encoded (an empty Lua table encodes as ``{}``: read it as an empty list);
CLAIM with the state backend inline returns that JSON and then the claimed ids' records,
which are binary (JSON cannot carry them).
"""

from __future__ import annotations

from typing import Any

from pynenc.exceptions import InvalidStatusTransitionError, StatusOwnershipError
from pynenc.invocation.status import InvocationStatus, compute_transition
from pynenc.orchestrator.base import ACTIVE_STATUSES

_S = InvocationStatus

# Ownership cases as (owner, runner): none/none, none/runner, owner/operator (runner None),
# owner/the owner itself, owner/another runner. The Lua side classifies its inputs the same.
_CASES: tuple[tuple[str | None, str | None], ...] = (
    (None, None),
    (None, "r"),
    ("o", None),
    ("o", "o"),
    ("o", "r"),
)


_CODES = {"bad": "b", "own": "o", "none": "n", "runner": "r", "owner": "k"}


def _outcome(
    current: InvocationStatus | None, new: InvocationStatus, owner: str | None, runner: str | None
) -> str:
    """One case: 'b'/'o' (not allowed / reserved for the owner) or whose the resulting
    owner is: 'n' nobody, 'r' the runner, 'k' the owner kept."""
    try:
        result = compute_transition(current, new, owner, runner)
    except InvalidStatusTransitionError:
        return _CODES["bad"]
    except StatusOwnershipError:
        return _CODES["own"]
    if result is None:
        return _CODES["none"]
    return _CODES["runner"] if result == runner else _CODES["owner"]


def as_list(value: Any) -> list[Any]:
    """A list from a script's JSON reply, where an empty Lua table encodes as ``{}``."""
    return value if isinstance(value, list) else []


def _lua_set(statuses: object) -> str:
    return "{" + ", ".join(f"['{s}'] = true" for s in statuses) + "}"  # type: ignore[attr-defined]


def transition_table() -> str:
    """``T['current>new']`` = one outcome letter per case; '' is a not yet stored one.
    Absent pairs are not allowed in any case."""
    cells = []
    for current in (None, *InvocationStatus):
        for new in InvocationStatus:
            outcomes = "".join(_outcome(current, new, owner, runner) for owner, runner in _CASES)
            if set(outcomes) != {_CODES["bad"]}:
                key = f"{current.value if current is not None else ''}>{new.value}"
                cells.append(f"  ['{key}'] = '{outcomes}',")
    return "local T = {\n" + "\n".join(cells) + "\n}\n"


STATUS_SETS = (
    f"local FINAL = {_lua_set(s.value for s in _S if s.is_final)}\n"
    + f"local AVAILABLE = {_lua_set(s.value for s in _S if s.is_available_for_run)}\n"
    + f"local ACTIVE = {_lua_set(s.value for s in ACTIVE_STATUSES)}\n"
    + f"local CC = '{_S.CONCURRENCY_CONTROLLED.value}'\n"
    + f"local CC_FINAL = '{_S.CONCURRENCY_CONTROLLED_FINAL.value}'\n"
    + f"local PENDING = '{_S.PENDING.value}'\n"
    + f"local RUNNING = '{_S.RUNNING.value}'\n"
    + f"local RETRY = '{_S.RETRY.value}'\n"
    + f"local REGISTERED = '{_S.REGISTERED.value}'\n"
)

STATUS_LUA = (
    STATUS_SETS
    + transition_table()
    + """
-- compute_transition, looked up: returns the new owner ('' = none) or nil and the error
-- ('bad' = not allowed by the table, 'own' = reserved for the owner). '' means None.
local function transition(current, new, owner, runner)
  local cell = T[current .. '>' .. new]
  if not cell then return nil, 'bad' end
  local case
  if owner == '' then
    case = (runner == '') and 1 or 2
  elseif runner == '' then
    case = 3
  elseif runner == owner then
    case = 4
  else
    case = 5
  end
  local outcome = string.sub(cell, case, case)
  if outcome == 'n' then return '' end
  if outcome == 'r' then return runner end
  if outcome == 'k' then return owner end
  return nil, (outcome == 'o') and 'own' or 'bad'
end
"""
)

# ``cached`` is the reply kept by an earlier run of this very call (retried after its reply
# was lost): PRELUDE returns it; a script replaying more than its JSON starts with
# PRELUDE_HEAD and replays itself.
PRELUDE_HEAD = """
local P = ARGV[1]
local TOKEN = ARGV[2]
local ACK = ARGV[3]
local REPLY_TTL = ARGV[4]
if ACK ~= '' then redis.call('DEL', ACK) end
local cached = redis.call('GET', TOKEN)
local function reply(result)
  local encoded = cjson.encode(result)
  redis.call('SET', TOKEN, encoded, 'PX', REPLY_TTL)
  return encoded
end
"""

PRELUDE = PRELUDE_HEAD + "if cached then return cached end\n"

BROKER_LUA = """
local function server_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function wake()
  if redis.call('LLEN', P .. 'wake') == 0 then redis.call('RPUSH', P .. 'wake', '1') end
end
local function push_all(key, ids)
  for k = 1, #ids, 1000 do
    redis.call('RPUSH', key, unpack(ids, k, math.min(k + 999, #ids)))
  end
end
local function route(ids)
  if #ids > 0 then
    push_all(P .. 'queue', ids)
    wake()
  end
end
local function route_later(ids, delay)
  local n = #ids
  local base = redis.call('INCRBY', P .. 'delayed-seq', n) - n
  local due = server_now() + delay
  local args = {}
  for k, id in ipairs(ids) do
    args[#args + 1] = due
    args[#args + 1] = string.format('%016d', base + k) .. ':' .. id
    if #args >= 2000 then
      redis.call('ZADD', P .. 'delayed', unpack(args))
      args = {}
    end
  end
  if #args > 0 then redis.call('ZADD', P .. 'delayed', unpack(args)) end
  wake()  -- a blocked popper recomputes how long to wait
end
-- Promote due delayed ids, then pop up to count ids, oldest first. Returns the ids and,
-- when there are none, seconds until the next delayed one is due (-1: none delayed).
local function pop(count)
  local queue, delayed = P .. 'queue', P .. 'delayed'
  local first = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
  local now = 0
  if #first > 0 then
    now = server_now()
    if tonumber(first[2]) <= now then
      local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, 1000)
      local promoted = {}
      for k, member in ipairs(due) do promoted[k] = string.sub(member, 18) end
      push_all(queue, promoted)
      redis.call('ZREM', delayed, unpack(due))
    end
  end
  local ids = redis.call('LPOP', queue, count) or {}
  local next_due = -1
  if #ids > 0 then
    -- a full batch may have left more: let the next blocked popper in
    if #ids == count and redis.call('LLEN', queue) > 0 then wake() end
  elseif #first > 0 then
    next_due = math.max(tonumber(first[2]) - now, 0)
  end
  return ids, next_due
end
"""

ROUTE = (
    PRELUDE
    + BROKER_LUA
    + """
local ids = {}
for k = 6, #ARGV do ids[#ids + 1] = ARGV[k] end
local delay = tonumber(ARGV[5])
if delay > 0 then route_later(ids, delay) else route(ids) end
return reply(#ids)
"""
)

POP = (
    PRELUDE
    + BROKER_LUA
    + """
local ids, next_due = pop(tonumber(ARGV[5]))
return reply({ids, next_due})
"""
)

# ARGV[5..9]: now, state backend inline (1/0), broker inline (1/0), retention ms, runner.
# Results up to DELIVER_BYTES ride along with the final announcement of a batch of at most
# DELIVER_AT_MOST final invocations (a bigger batch is read back in batches anyway).
DELIVER_BYTES = 1024
DELIVER_AT_MOST = 16

ORCHESTRATOR_LUA = (
    f"""
local DELIVER_BYTES, DELIVER_AT_MOST = {DELIVER_BYTES}, {DELIVER_AT_MOST}
"""
    + """
local NOW = ARGV[5]
local INLINE = ARGV[6] == '1'
local ROUTE_INLINE = ARGV[7] == '1'
local RETENTION = ARGV[8]
local RUNNER = ARGV[9]
local INV = P .. 'inv:'
local finals, final_statuses = {}, {}
-- (id, result) pairs of small results that became final: published with the ids so a
-- waiter gets its result without reading it back (small batches only: the latency case)
local delivered = {}
local SUFFIX = '\\t' .. NOW
if RUNNER ~= '' then SUFFIX = SUFFIX .. '\\t' .. RUNNER end
SUFFIX = SUFFIX .. '\\n'
-- One write of an invocation's hash: its new status and owner, and (state backend inline)
-- its history grown by ``entries`` and the extra field/value pairs. The common shapes are
-- direct calls: building tables costs more than the HSET itself.
local function write(key, history, status, owner, entries, extra)
  if not INLINE then
    redis.call('HSET', key, 's', status, 'u', NOW, 'o', owner)
  elseif not extra then
    redis.call('HSET', key, 's', status, 'u', NOW, 'o', owner, 'h', (history or '') .. entries)
  elseif #extra == 2 then
    redis.call('HSET', key, 's', status, 'u', NOW, 'o', owner, 'h', (history or '') .. entries,
      extra[1], extra[2])
  else
    local fields = {'s', status, 'u', NOW, 'o', owner, 'h', (history or '') .. entries}
    for _, v in ipairs(extra) do fields[#fields + 1] = v end
    redis.call('HSET', key, unpack(fields))
  end
end
-- The by-status sets are updated once per status per script: each id leaves the set of
-- the status it had when the script first moved it and joins the set of its last one.
-- Sets of final statuses are sorted by time (trimmed to the retention window, listed newest
-- first); the others are plain sets: an insert into a sorted set costs several times more,
-- and they only hold the invocations in flight.
local moved, left, joined = {}, {}, {}
local function move(id, old, new)
  if left[id] == nil then
    moved[#moved + 1] = id
    left[id] = old
  end
  joined[id] = new
end
local function append(lists, status, id)
  local list = lists[status]
  if not list then
    list = {}
    lists[status] = list
  end
  list[#list + 1] = id
end
local function flush_moves()
  local leaving, joining = {}, {}
  for _, id in ipairs(moved) do
    local old, new = left[id], joined[id]
    if old ~= '' and old ~= new then append(leaving, old, id) end
    append(joining, new, id)
  end
  for status, ids in pairs(leaving) do
    local key, command = P .. 'by-status:' .. status, FINAL[status] and 'ZREM' or 'SREM'
    for k = 1, #ids, 1000 do
      redis.call(command, key, unpack(ids, k, math.min(k + 999, #ids)))
    end
  end
  for status, ids in pairs(joining) do
    local key = P .. 'by-status:' .. status
    for k = 1, #ids, 1000 do
      local last = math.min(k + 999, #ids)
      if FINAL[status] then
        local args = {}
        for j = k, last do
          args[#args + 1] = NOW
          args[#args + 1] = ids[j]
        end
        redis.call('ZADD', key, unpack(args))
      else
        redis.call('SADD', key, unpack(ids, k, last))
      end
    end
  end
  moved, left, joined = {}, {}, {}
end
local function finalize(id, status, rk)
  if rk ~= '' and redis.call('HGET', P .. 'reg-keys', rk) == id then
    redis.call('HDEL', P .. 'reg-keys', rk)
  end
  redis.call('PEXPIRE', INV .. id, RETENTION)
  finals[#finals + 1] = id
  final_statuses[status] = true
end
-- Write the batched index moves, wake waiters and trim the final-status indexes to the
-- retention window.
local function announce()
  flush_moves()
  if #finals == 0 then return end
  if #delivered > 0 and #finals <= DELIVER_AT_MOST then
    redis.call('PUBLISH', P .. 'final-values', cmsgpack.pack(delivered))
  end
  redis.call('PUBLISH', P .. 'final', table.concat(finals, ' '))
  local cutoff = '(' .. (tonumber(NOW) - tonumber(RETENTION) / 1000)
  for status in pairs(final_statuses) do
    redis.call('ZREMRANGEBYSCORE', P .. 'by-status:' .. status, '-inf', cutoff)
  end
end
local function unpark_one(rn)
  local parked = P .. 'parked:' .. rn
  while true do
    local popped = redis.call('ZPOPMIN', parked)
    if #popped == 0 then return nil end
    if redis.call('HGET', INV .. popped[1], 's') == CC then return popped[1] end
  end
end
"""
)

_ORCHESTRATOR = PRELUDE + BROKER_LUA + STATUS_LUA + ORCHESTRATOR_LUA

# Registrations from ``rows`` (a flat table), ``stride`` values each: id, task_id,
# registration key, running key, non-key arguments ('' none, '+' value), reroute (1/0)
# and, with ``with_record``, the record's bytes. Writes the fresh ones as REGISTERED (one
# HSET each) and returns the (1-based index, holder id) pairs of registrations an existing
# invocation stands for and the row index of each fresh one; or nil and the task id on a
# non-key arguments mismatch, having written nothing.
REGISTER_LUA = """
local OPTIONAL_FIELDS = {'rk', 'rn', 'nk', 'rr'}
local function register(rows, stride, with_record)
  local holders, taken, fresh = {}, {}, {}
  for b = 1, #rows, stride do
    local id, rk, nk = rows[b], rows[b + 2], rows[b + 4]
    local holder = nil
    if rk ~= '' then
      holder = holders[rk]
      if not holder then
        local hid = redis.call('HGET', P .. 'reg-keys', rk)
        if hid then
          local f = redis.call('HMGET', INV .. hid, 's', 'nk')
          if f[1] then holder = {hid, f[2] or ''} end
        end
      end
    end
    if holder then
      if nk ~= '' and nk ~= holder[2] then return nil, rows[b + 1] end
      taken[#taken + 1] = {(b - 1) / stride + 1, holder[1]}
    else
      if rk ~= '' then holders[rk] = {id, nk} end
      fresh[#fresh + 1] = b
    end
  end
  local registered = REGISTERED .. SUFFIX
  for _, b in ipairs(fresh) do
    local id = rows[b]
    -- fields at their default ('' or reroute '1', no retries) are left out: an absent
    -- field reads as its default, and each one costs memory for the invocation's life
    local fields = {'s', REGISTERED, 'u', NOW, 't', rows[b + 1]}
    for k, name in ipairs(OPTIONAL_FIELDS) do
      local value = rows[b + 1 + k]
      if value ~= '' and not (name == 'rr' and value == '1') then
        fields[#fields + 1] = name
        fields[#fields + 1] = value
      end
    end
    if INLINE then
      fields[#fields + 1] = 'h'
      fields[#fields + 1] = registered
    end
    if with_record then
      fields[#fields + 1] = 'r'
      fields[#fields + 1] = rows[b + 6]
    end
    redis.call('HSET', INV .. id, unpack(fields))
    move(id, '', REGISTERED)
    if rows[b + 2] ~= '' then redis.call('HSET', P .. 'reg-keys', rows[b + 2], id) end
  end
  return taken, fresh
end
"""

_REGISTERING = PRELUDE + BROKER_LUA + STATUS_SETS + ORCHESTRATOR_LUA + REGISTER_LUA

# Reply: 'mismatch' and the task id, or 'ok' and the (index, holder id) pairs.
REGISTER = (
    _REGISTERING
    + """
local rows = {}
for k = 10, #ARGV do rows[#rows + 1] = ARGV[k] end
local taken, detail = register(rows, 6, false)
if not taken then return cjson.encode({'mismatch', detail}) end
announce()
return reply({'ok', taken})
"""
)

# Children of a workflow run (not its root, whose id is the workflow id) join the run's
# ``wf-inv`` set: ``members`` is a flat (workflow id, invocation id) list. The set expires
# twice the retention after its last addition, by then its members are gone too.
WORKFLOW_MEMBERS_LUA = """
local function add_workflow_members(prefix, members, ttl_ms)
  local by_workflow, order = {}, {}
  for k = 1, #members, 2 do
    local ids = by_workflow[members[k]]
    if not ids then
      ids = {}
      by_workflow[members[k]] = ids
      order[#order + 1] = members[k]
    end
    ids[#ids + 1] = members[k + 1]
  end
  for _, workflow_id in ipairs(order) do
    local key = prefix .. 'wf-inv:' .. workflow_id
    local ids = by_workflow[workflow_id]
    for k = 1, #ids, 1000 do redis.call('SADD', key, unpack(ids, k, math.min(k + 999, #ids))) end
    redis.call('PEXPIRE', key, ttl_ms)
  end
end
"""

# The client's whole write for a batch (only with the state backend inline): REGISTER's
# registrations, each followed by its record's bytes and its workflow id when it is a
# workflow's child ('' otherwise), packed in ARGV[10] as one msgpack array (one argument
# instead of eight per invocation); the fresh ones are stored with their records and, when
# ROUTE_INLINE, their ids queued in order. Reply as REGISTER's.
SUBMIT = (
    _REGISTERING
    + WORKFLOW_MEMBERS_LUA
    + """
local rows = cmsgpack.unpack(ARGV[10])
local taken, detail = register(rows, 8, true)
if not taken then return cjson.encode({'mismatch', detail}) end
local members = {}
for _, b in ipairs(detail) do
  if rows[b + 7] ~= '' then members[#members + 1] = rows[b + 7]; members[#members + 1] = rows[b] end
end
add_workflow_members(P, members, 2 * tonumber(RETENTION))
announce()
if ROUTE_INLINE then
  local ids = {}
  for k, b in ipairs(detail) do ids[k] = rows[b] end
  route(ids)
end
return reply({'ok', taken})
"""
)

# One fresh call with no registration key, state and broker inline (``task(...)``, the
# common single call): SUBMIT's write for it without the machinery of batches and keys.
# ARGV: prefix, now, retention ms, id, task id, running key, non-key arguments, reroute,
# record, workflow id of a child ('' otherwise). Repeating it is harmless: an id already
# stored means an earlier try ran (ids are random), so no reply needs keeping. Reply: 1,
# or 0 for such a repeat.
SUBMIT_ONE = (
    f"local REGISTERED = '{_S.REGISTERED.value}'\n"  # not all STATUS_SETS: 5 us a call
    + """
local P, NOW, id = ARGV[1], ARGV[2], ARGV[4]
local key = P .. 'inv:' .. id
if redis.call('EXISTS', key) == 1 then return 0 end
local fields = {'s', REGISTERED, 'u', NOW, 't', ARGV[5]}
if ARGV[6] ~= '' then fields[#fields + 1] = 'rn'; fields[#fields + 1] = ARGV[6] end
if ARGV[7] ~= '' then fields[#fields + 1] = 'nk'; fields[#fields + 1] = ARGV[7] end
if ARGV[8] ~= '1' then fields[#fields + 1] = 'rr'; fields[#fields + 1] = ARGV[8] end
fields[#fields + 1] = 'h'
fields[#fields + 1] = REGISTERED .. '\\t' .. NOW .. '\\n'
fields[#fields + 1] = 'r'
fields[#fields + 1] = ARGV[9]
redis.call('HSET', key, unpack(fields))
redis.call('SADD', P .. 'by-status:' .. REGISTERED, id)
if ARGV[10] ~= '' then
  local members = P .. 'wf-inv:' .. ARGV[10]
  redis.call('SADD', members, id)
  redis.call('PEXPIRE', members, 2 * tonumber(ARGV[3]))
end
redis.call('RPUSH', P .. 'queue', id)
if redis.call('LLEN', P .. 'wake') == 0 then redis.call('RPUSH', P .. 'wake', '1') end
return 1
"""
)

# ARGV[10] start (1/0), ARGV[11] how many to pop from the broker first (0: claim the ids
# from ARGV[12..]). Reply: claimed ids, their num_retries, controlled, final, ids popped,
# seconds until the next delayed id is due. With the state backend inline the records of
# the claimed ids ride along: the script returns {reply, record or false per claimed id}
# (a replay reads the records again: they never change).
CLAIM = (
    PRELUDE_HEAD
    + BROKER_LUA
    + STATUS_LUA
    + ORCHESTRATOR_LUA
    + """
if cached then
  if not INLINE then return cached end
  local out = {cached}
  for _, id in ipairs(cjson.decode(cached)[1]) do
    out[#out + 1] = redis.call('HGET', INV .. id, 'r')
  end
  return out
end
local start = ARGV[10] == '1'
local ids, next_due = {}, -1
local pop_count = tonumber(ARGV[11])
if pop_count > 0 then
  ids, next_due = pop(pop_count)
else
  for k = 12, #ARGV do ids[#ids + 1] = ARGV[k] end
end
local claimed, retries, controlled, final, records = {}, {}, {}, {}, {}
local PENDING_ENTRY = PENDING .. SUFFIX
local STARTED_ENTRIES = PENDING_ENTRY .. RUNNING .. SUFFIX
for _, id in ipairs(ids) do
  local key = INV .. id
  -- s o n rn rr rk h r (the last two only matter inline)
  local f = redis.call('HMGET', key, 's', 'o', 'n', 'rn', 'rr', 'rk', 'h', 'r')
  local s, rn = f[1], f[4] or ''
  if s and AVAILABLE[s] then
    local parked = P .. 'parked:' .. rn
    if rn ~= '' and redis.call('SCARD', P .. 'running:' .. rn) > 0 then
      if f[5] == '0' then
        if s == CC then redis.call('ZREM', parked, id) end
        write(key, f[7], CC_FINAL, '', CC_FINAL .. SUFFIX)
        move(id, s, CC_FINAL)
        finalize(id, CC_FINAL, f[6] or '')
        final[#final + 1] = id
      else
        write(key, f[7], CC, '', CC .. SUFFIX)
        move(id, s, CC)
        if not redis.call('ZSCORE', parked, id) then  -- parked already: keeps its place
          redis.call('ZADD', parked, redis.call('INCR', P .. 'park-seq'), id)
        end
        controlled[#controlled + 1] = id
      end
    else
      local owner = transition(s, PENDING, f[2] or '', RUNNER)
      if owner then
        local status, entries = PENDING, PENDING_ENTRY
        if start then
          owner = transition(PENDING, RUNNING, owner, RUNNER) or owner
          status, entries = RUNNING, STARTED_ENTRIES
        end
        write(key, f[7], status, owner, entries)
        move(id, s, status)
        if s == CC then redis.call('ZREM', parked, id) end
        if rn ~= '' then redis.call('SADD', P .. 'running:' .. rn, id) end
        claimed[#claimed + 1] = id
        retries[#retries + 1] = f[3] or '0'
        records[#records + 1] = f[8]
      end
    end
  end
end
announce()
local encoded = reply({claimed, retries, controlled, final, #ids, next_due})
if not INLINE then return encoded end
local out = {encoded}
for k, record in ipairs(records) do out[k + 1] = record end
return out
"""
)

# ARGV[10] results count, ARGV[11] exceptions count, then (id, value) pairs of each
# (only with the state backend inline), then (id, status) changes. Reply: errors as
# (1-based change index, 'bad'/'own', current status, owner) and the parked ids freed
# (empty when routed here, ROUTE_INLINE).
APPLY = (
    _ORCHESTRATOR
    + """
local results, exceptions = tonumber(ARGV[10]), tonumber(ARGV[11])
local i = 12
local values = {}  -- id -> field/value pairs to write with its status
for k = 1, results + exceptions do
  local id = ARGV[i]
  local pairs_of = values[id]
  if not pairs_of then
    pairs_of = {}
    values[id] = pairs_of
  end
  pairs_of[#pairs_of + 1] = (k <= results) and 'v' or 'x'
  pairs_of[#pairs_of + 1] = ARGV[i + 1]
  i = i + 2
end
local errors, unparked = {}, {}
local index = 0
-- A run of changes of one id (the STARTED and DONE of a fast task) is checked step by step
-- against the status each step leaves, and written once: one HMGET and one HSET (status,
-- history, result) for the whole run.
while i < #ARGV do
  local id = ARGV[i]
  local key = INV .. id
  local f = redis.call('HMGET', key, 's', 'o', 'rn', 'rk', 'n', 'h')
  local first = f[1] or ''
  local current, owner, rn = first, f[2] or '', f[3] or ''
  local entries, retried = '', 0
  repeat
    local new = ARGV[i + 1]
    i = i + 2
    index = index + 1
    local new_owner, err = nil, 'bad'
    if current ~= '' then new_owner, err = transition(current, new, owner, RUNNER) end
    if not new_owner then
      errors[#errors + 1] = {index, err, current, owner}
    else
      if new == RETRY then retried = retried + 1 end
      if current == CC and new ~= CC and rn ~= '' then
        redis.call('ZREM', P .. 'parked:' .. rn, id)
      end
      if rn ~= '' then
        local running = P .. 'running:' .. rn
        if ACTIVE[new] then
          redis.call('SADD', running, id)
        elseif ACTIVE[current] then
          redis.call('SREM', running, id)
          if redis.call('SCARD', running) == 0 then
            local freed = unpark_one(rn)
            if freed then unparked[#unparked + 1] = freed end
          end
        end
      end
      entries = entries .. new .. SUFFIX
      current, owner = new, new_owner
    end
  until ARGV[i] ~= id
  if entries ~= '' then
    local extra = values[id]
    values[id] = nil
    if retried > 0 then
      extra = extra or {}
      extra[#extra + 1] = 'n'
      extra[#extra + 1] = (tonumber(f[5]) or 0) + retried
    end
    write(key, f[6], current, owner, entries, extra)
    move(id, first, current)
    if FINAL[current] then
      finalize(id, current, f[4] or '')
      if #finals <= DELIVER_AT_MOST and extra and extra[1] == 'v'
          and #extra[2] <= DELIVER_BYTES then
        delivered[#delivered + 1] = id
        delivered[#delivered + 1] = extra[2]
      end
    end
  end
end
-- values sent without an applied change are still kept, while the invocation is stored
for id, pairs_of in pairs(values) do
  if redis.call('EXISTS', INV .. id) == 1 then redis.call('HSET', INV .. id, unpack(pairs_of)) end
end
announce()
if ROUTE_INLINE then
  route(unparked)
  unparked = {}
end
return reply({errors, unparked})
"""
)

# Read-only. ARGV: prefix, updated_before ('' = none), owner and task filters ('' = any,
# else '=' and the value), limit (0 = none), then statuses. Reply: flat (id, task_id,
# status, owner, num_retries, updated_at) rows, at most ``limit`` per status.
FIND = (
    f"local FINAL = {_lua_set(s.value for s in InvocationStatus if s.is_final)}\n"
    + """
local P, before, owner, task = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local limit = tonumber(ARGV[5])
local max = '+inf'
if before ~= '' then max = '(' .. before end
local newer = tonumber(before)
local filtered = owner ~= '' or task ~= ''
owner, task = string.sub(owner, 2), string.sub(task, 2)
local out = {}
for k = 6, #ARGV do
  local key = P .. 'by-status:' .. ARGV[k]
  local ids
  if not FINAL[ARGV[k]] then
    ids = redis.call('SMEMBERS', key)  -- in flight only: filtered and ordered below
  elseif limit > 0 and not filtered then
    ids = redis.call('ZREVRANGEBYSCORE', key, max, '-inf', 'LIMIT', 0, limit)
  else
    ids = redis.call('ZREVRANGEBYSCORE', key, max, '-inf')
  end
  local rows = {}
  for _, id in ipairs(ids) do
    local f = redis.call('HMGET', P .. 'inv:' .. id, 't', 's', 'o', 'n', 'u')
    if f[2] and (owner == '' or f[3] == owner) and (task == '' or f[1] == task)
        and (not newer or (tonumber(f[5]) or 0) < newer) then
      rows[#rows + 1] = {id, f}
    end
  end
  if not FINAL[ARGV[k]] then
    table.sort(rows, function(a, b) return (tonumber(a[2][5]) or 0) > (tonumber(b[2][5]) or 0) end)
  end
  for n, row in ipairs(rows) do
    if limit > 0 and n > limit then break end
    out[#out + 1] = row[1]
    for c = 1, 5 do out[#out + 1] = row[2][c] or '' end
  end
end
return out
"""
)


# --- plain batch scripts: one command instead of a pipeline of N (no reply kept: repeating
# them is harmless). ARGV[1] is the app prefix, ARGV[2] a field of the ``inv`` hashes.

# ARGV[3] TTL in ms of the hashes written, then (id, value) pairs: results and
# exceptions stored outside the orchestrator's scripts.
STORE = """
local P, field, ttl = ARGV[1], ARGV[2], ARGV[3]
for k = 4, #ARGV, 2 do
  local key = P .. 'inv:' .. ARGV[k]
  redis.call('HSET', key, field, ARGV[k + 1])
  redis.call('PEXPIRE', key, ttl)
end
return 1
"""

# ARGV[2] workflow index TTL in ms, then (id, record, workflow id of a child or '')
# triples: records not stored yet are, children join their run's set.
STORE_RECORDS = (
    WORKFLOW_MEMBERS_LUA
    + """
local P = ARGV[1]
local members = {}
for k = 3, #ARGV, 3 do
  redis.call('HSETNX', P .. 'inv:' .. ARGV[k], 'r', ARGV[k + 1])
  if ARGV[k + 2] ~= '' then members[#members + 1] = ARGV[k + 2]; members[#members + 1] = ARGV[k] end
end
add_workflow_members(P, members, ARGV[2])
return 1
"""
)

# ids -> the field's value per id (nil when missing).
FIELD_VALUES = """
local P, field = ARGV[1], ARGV[2]
local out = {}
for k = 3, #ARGV do out[k - 2] = redis.call('HGET', P .. 'inv:' .. ARGV[k], field) end
return out
"""

# (id, entry) pairs appended to the histories, in order.
ADD_HISTORY = """
local P = ARGV[1]
for k = 3, #ARGV, 2 do
  local key = P .. 'inv:' .. ARGV[k]
  local history = redis.call('HGET', key, 'h') or ''
  redis.call('HSET', key, 'h', history .. ARGV[k + 1] .. '\\n')
end
return 1
"""

# ids -> flat (task_id, status, owner, num_retries, updated_at) per id, '' when missing.
STATES = """
local P = ARGV[1]
local out = {}
for k = 3, #ARGV do
  local f = redis.call('HMGET', P .. 'inv:' .. ARGV[k], 't', 's', 'o', 'n', 'u')
  for c = 1, 5 do out[#out + 1] = f[c] or '' end
end
return out
"""

# ids -> those in a final status.
FINAL_AMONG = (
    f"local FINAL = {_lua_set(s.value for s in InvocationStatus if s.is_final)}\n"
    + """
local P = ARGV[1]
local out = {}
for k = 3, #ARGV do
  local s = redis.call('HGET', P .. 'inv:' .. ARGV[k], 's')
  if s and FINAL[s] then out[#out + 1] = ARGV[k] end
end
return out
"""
)
