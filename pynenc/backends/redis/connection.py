"""One Redis client per process per server, shared by the components of every app.

Each call is one round trip (a command, a pipeline or an EVALSHA) retried on connection
faults with exponential backoff for up to ``redis_max_connection_retry_sec``, then a
``BackendError``. Mutating scripts leave their reply under a token for a moment, so a call
retried after its reply was lost returns that reply instead of running a second time.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import msgpack
import redis
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, AuthorizationError, NoScriptError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from pynenc.backends.redis.keys import app_prefix, kind_of, scan_pattern
from pynenc.conf.config_redis import ConfigRedis
from pynenc.exceptions import BackendError

if TYPE_CHECKING:
    from redis.client import Pipeline
    from redis.commands.core import Script

    from pynenc.app import Pynenc

_hiredis_pack: Callable[[tuple[Any, ...]], bytes] | None
try:  # packs a whole command in C; redis-py encodes argument by argument otherwise
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # pragma: no cover - redis[hiredis] is the declared extra
    _hiredis_pack = None

T = TypeVar("T")
# a redis-py connection (typed Any: its annotations differ between redis-py releases)
Connection = Any

# Blocking commands wait at most SAFETY_RECHECK_SEC, far below the socket timeout.
SAFETY_RECHECK_SEC = 1.0
_SOCKET_TIMEOUT_SEC = 30.0
_CONNECT_TIMEOUT_SEC = 5.0
_FIRST_BACKOFF_SEC = 0.05
_MAX_BACKOFF_SEC = 2.0
_MAX_CONNECTIONS = 1000
_MIN_REPLY_TTL_MS = 60_000
_SCAN_COUNT = 1000
_TRANSIENT = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError)


@dataclass(frozen=True, slots=True)
class RedisSettings:
    """Where the server is; ``url``, when set, wins over host/port/password, and over
    ``db`` when it names a database."""

    url: str | None
    host: str
    port: int
    db: int
    password: str | None
    max_retry_sec: float

    @classmethod
    def of(cls, conf: ConfigRedis) -> RedisSettings:
        return cls(
            conf.redis_url or None,
            conf.redis_host,
            conf.redis_port,
            conf.redis_db,
            conf.redis_password,
            conf.redis_max_connection_retry_sec,
        )


class RedisClient:
    """A connection pool (hiredis parses replies when installed) and the retry policy."""

    def __init__(self, settings: RedisSettings) -> None:
        self.settings = settings
        options: dict[str, Any] = {
            "socket_timeout": _SOCKET_TIMEOUT_SEC,
            "socket_connect_timeout": min(_CONNECT_TIMEOUT_SEC, max(settings.max_retry_sec, 0.1)),
            "socket_keepalive": True,
            "retry": Retry(NoBackoff(), 0),  # retried here, with a deadline, not in redis-py
            "max_connections": _MAX_CONNECTIONS,
        }
        if settings.password is not None:
            options["password"] = settings.password
        if settings.url:  # a database named in the URL wins over the db setting
            pool = redis.ConnectionPool.from_url(settings.url, db=settings.db, **options)
        else:
            pool = redis.ConnectionPool(
                host=settings.host, port=settings.port, db=settings.db, **options
            )
        self.redis = redis.Redis(connection_pool=pool)
        self.reply_ttl_ms = max(_MIN_REPLY_TTL_MS, int(settings.max_retry_sec * 2000))
        self._scripts: dict[str, Script] = {}
        self._shas: dict[str, str] = {}
        self._local = threading.local()
        self._held_connections: weakref.WeakSet[Connection] = weakref.WeakSet()
        self._held_lock = threading.Lock()

    @property
    def address(self) -> str:
        """The server, for messages (never the password)."""
        kw = self.redis.connection_pool.connection_kwargs
        if "path" in kw:
            return f"unix://{kw['path']}?db={kw.get('db', 0)}"
        return f"{kw.get('host', 'localhost')}:{kw.get('port', 6379)}/{kw.get('db', 0)}"

    def run(self, op: Callable[[redis.Redis], T]) -> T:
        """``op(client)``, retried on connection faults until the retry window closes."""
        deadline: float | None = None
        delay = 0.0  # the first retry is at once: usually just a dropped connection
        while True:
            try:
                return op(self.redis)
            except (AuthenticationError, AuthorizationError) as exc:
                raise BackendError(
                    f"Redis at {self.address} refused the credentials ({exc}). Check the "
                    "user and password in redis_url or redis_password."
                ) from exc
            except _TRANSIENT as exc:
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self.settings.max_retry_sec
                if now >= deadline:
                    raise BackendError(
                        f"Redis at {self.address} is unreachable ({exc}); gave up after "
                        f"redis_max_connection_retry_sec={self.settings.max_retry_sec:g}s. "
                        "Check that the server is running and that redis_url (or "
                        "redis_host/redis_port) points at it."
                    ) from exc
                time.sleep(min(delay, deadline - now))
                delay = min(max(delay * 2, _FIRST_BACKOFF_SEC), _MAX_BACKOFF_SEC)

    def pipeline(self, build: Callable[[Pipeline], object]) -> list[Any]:
        """Commands queued by ``build`` sent as one round trip (not a transaction)."""

        def op(client: redis.Redis) -> list[Any]:
            pipe = client.pipeline(transaction=False)
            build(pipe)
            return pipe.execute()

        return self.run(op)

    def script(self, source: str) -> Script:
        """The script object for ``source``, loaded once and called with EVALSHA."""
        found = self._scripts.get(source)
        if found is None:
            found = self._scripts[source] = self.redis.register_script(source)
        return found

    def call(self, source: str, prefix: str, args: Sequence[Any]) -> Any:
        """Run a script built on ``scripts.PRELUDE``: its first arguments are the app prefix,
        this call's reply key, the reply key of this thread's previous call (its reply
        arrived, so it can go) and how long to keep the reply."""
        sha = self._sha(source)
        reply_key = f"{prefix}reply:{os.urandom(9).hex()}"
        ack = getattr(self._local, "ack", "")
        full = ("EVALSHA", sha, 0, prefix, reply_key, ack, self.reply_ttl_ms, *args)
        result = self.run(lambda _: self._evalsha(source, full))
        self._local.ack = reply_key
        return result

    def call_repeatable(self, source: str, args: Sequence[Any]) -> Any:
        """Run a script that is harmless to repeat (reads, SET NX ...): no reply is kept."""
        full = ("EVALSHA", self._sha(source), 0, *args)
        return self.run(lambda _: self._evalsha(source, full))

    def execute(self, *command: Any) -> Any:
        """One plain command on this thread's connection, retried like ``run``."""
        return self.run(lambda _: self._send(command))

    # --- this thread's own connection: the hot path skips redis-py's command layer ------
    # (about 25 us per call instead of 50 here), keeping its connect/auth/TLS handling

    def _sha(self, source: str) -> str:
        sha = self._shas.get(source)
        if sha is None:
            sha = self._shas[source] = hashlib.sha1(source.encode()).hexdigest()
        return sha

    def _evalsha(self, source: str, command: tuple[Any, ...]) -> Any:
        try:
            return self._send(command)
        except NoScriptError:  # a new or restarted server: load it, once, and run again
            self._send(("SCRIPT", "LOAD", source))
            return self._send(command)

    def _send(self, command: tuple[Any, ...]) -> Any:
        conn = self._held()
        try:
            conn.send_packed_command(_pack(conn, command), check_health=False)
            return conn.read_response()
        except ResponseError:
            raise  # the server answered: the connection is fine
        except BaseException:
            conn.disconnect()  # a half-read reply must never be read as the next one's
            raise

    def _held(self) -> Connection:
        local = self._local
        conn: Connection | None = getattr(local, "conn", None)
        if conn is None or local.conn_pid != os.getpid():
            pool = self.redis.connection_pool
            conn = pool.connection_class(**pool.connection_kwargs)
            local.conn, local.conn_pid = conn, os.getpid()
            with self._held_lock:
                self._held_connections.add(conn)
        return conn

    def unlink_kinds(self, prefix: str, kinds: Iterable[str]) -> None:
        """Delete every key under ``prefix`` whose kind is in ``kinds`` (SCAN by prefix,
        UNLINK in batches): other apps' keys are never touched."""
        wanted = frozenset(kinds)
        pattern = scan_pattern(prefix)

        def op(client: redis.Redis) -> None:
            batch: list[bytes] = []
            for raw in client.scan_iter(match=pattern, count=_SCAN_COUNT):
                if kind_of(raw.decode(errors="replace"), prefix) in wanted:
                    batch.append(raw)
                if len(batch) >= _SCAN_COUNT:
                    client.unlink(*batch)
                    batch = []
            if batch:
                client.unlink(*batch)

        self.run(op)

    def close(self) -> None:
        """Close idle connections (the threads' own ones reconnect on their next call);
        connections in use by a redis-py call of another thread stay open."""
        self.redis.connection_pool.disconnect(inuse_connections=False)
        with self._held_lock:
            held = list(self._held_connections)
        for conn in held:
            if getattr(conn, "pid", None) == os.getpid():  # never one inherited through fork
                conn.disconnect()


def _pack(conn: Connection, command: tuple[Any, ...]) -> Any:
    if _hiredis_pack is not None:
        return [_hiredis_pack(command)]
    return conn.pack_command(*command)


_clients: dict[tuple[int, RedisSettings], RedisClient] = {}
_clients_lock = threading.Lock()


def client_for(app: Pynenc) -> tuple[RedisClient, str]:
    """This process's client for the app's server, and the app's key prefix."""
    conf = ConfigRedis(app.config_values, app.config_filepath)
    settings = RedisSettings.of(conf)
    key = (os.getpid(), settings)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = RedisClient(settings)
    return client, app_prefix(conf.redis_key_prefix, app.app_id)


class _Watch:
    """Ids one caller waits for; the listener removes them as they are announced."""

    __slots__ = ("event", "pending", "progressed", "recheck", "values")

    def __init__(self, pending: set[str]) -> None:
        self.pending = pending
        self.event = threading.Event()
        self.recheck = False
        self.progressed = False  # announcements removed some ids since the caller looked
        # results delivered with the announcement (a single id's wait only: the latency case)
        self.values: dict[str, bytes] | None = {} if len(pending) == 1 else None


class IdListener:
    """One subscriber thread for a channel on which scripts publish space-separated ids,
    and optionally one on which they publish (id, value) pairs of some of those ids first.

    Waiters register a ``_Watch``; each message removes its ids from every watch and wakes
    the watches left empty (values for a watch's ids are kept in it first). After a
    reconnect every watch is told to re-check, since messages sent while disconnected are
    lost. The thread ends after a minute unused."""

    IDLE_EXIT_SEC = 60.0

    def __init__(self, client: RedisClient, channel: str, values_channel: str = "") -> None:
        self.client = client
        self.channel = channel
        self.values_channel = values_channel
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._watches: set[_Watch] = set()
        self._thread: threading.Thread | None = None
        self._subscribed = threading.Event()
        self._stop = threading.Event()
        self._idle_since = time.monotonic()

    def watch(self, ids: set[str], timeout_sec: float) -> _Watch:
        """Register interest in ``ids``; returns once subscribed (or after ``timeout_sec``,
        when the server is not answering: the caller's periodic re-check then covers)."""
        watch = _Watch(set(ids))
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's thread is not here
                self._reset()
            self._watches.add(watch)
            if self._thread is None:
                self._subscribed, self._stop = threading.Event(), threading.Event()
                self._thread = threading.Thread(
                    target=self._run,
                    args=(self._subscribed, self._stop),
                    name="pynenc-redis-final",
                    daemon=True,
                )
                self._thread.start()
            subscribed = self._subscribed
        subscribed.wait(min(timeout_sec, 2.0))
        return watch

    def unwatch(self, watch: _Watch) -> None:
        with self._lock:
            self._watches.discard(watch)
            if not self._watches:
                self._idle_since = time.monotonic()

    def remove(self, watch: _Watch, ids: set[str]) -> bool:
        """Drop ``ids`` from ``watch``; True when nothing is left to wait for."""
        with self._lock:
            watch.pending -= ids
            return not watch.pending

    def snapshot(self, watch: _Watch) -> set[str]:
        with self._lock:
            return set(watch.pending)

    def close(self) -> None:
        """Stop the thread if nobody is waiting (it restarts on the next ``watch``)."""
        with self._lock:
            if self._thread is not None and not self._watches:
                self._stop.set()
                self._thread = None

    def _run(self, subscribed: threading.Event, stop: threading.Event) -> None:
        delay = 0.0
        while not stop.is_set():
            pubsub = self.client.redis.pubsub()  # type: ignore[no-untyped-call,unused-ignore]
            try:
                channels = [c for c in (self.channel, self.values_channel) if c]
                pubsub.subscribe(*channels)
                values_channel = self.values_channel.encode()
                while not stop.is_set():
                    message = pubsub.get_message(timeout=SAFETY_RECHECK_SEC)
                    if message is None:
                        if self._idle_exit(stop):
                            return
                        continue
                    delay = 0.0
                    if message["type"] == "subscribe":
                        subscribed.set()
                        self._dispatch(None)
                    elif message["type"] != "message":
                        continue
                    elif message["channel"] == values_channel:
                        self._deliver(message["data"])
                    else:
                        self._dispatch(set(message["data"].decode().split()))
            except (*_TRANSIENT, OSError):
                subscribed.clear()
                stop.wait(delay)
                delay = min(max(delay * 2, _FIRST_BACKOFF_SEC), SAFETY_RECHECK_SEC)
            finally:
                pubsub.close()

    def _idle_exit(self, stop: threading.Event) -> bool:
        with self._lock:
            if stop is not self._stop or stop.is_set():
                return True  # closed, or replaced by a newer thread
            idle = time.monotonic() - self._idle_since > self.IDLE_EXIT_SEC
            if self._watches or not idle:
                return False
            self._thread = None
            return True

    def _deliver(self, data: bytes) -> None:
        """Keep announced values in the watches waiting for their ids."""
        flat = msgpack.unpackb(data, raw=True)
        values = {flat[k].decode(): flat[k + 1] for k in range(0, len(flat) - 1, 2)}
        with self._lock:
            for watch in self._watches:
                if watch.values is not None:
                    for invocation_id in watch.pending & values.keys():
                        watch.values[invocation_id] = values[invocation_id]

    def _dispatch(self, ids: set[str] | None) -> None:
        """Remove announced ids from every watch (None: a (re)subscription, re-check all)."""
        with self._lock:
            for watch in self._watches:
                if ids is None:
                    watch.recheck = True
                    watch.event.set()
                elif watch.pending & ids:
                    watch.pending -= ids
                    watch.progressed = True
                    if not watch.pending:
                        watch.event.set()
