"""Open the Redis client: a real server, or the embedded in-process backend.

Every client opened here uses ``decode_responses=True``: commands return ``str``
(all stored values are UTF-8 text: JSON, model names, cookie values). The store also
accepts a client with ``decode_responses=False``, so callers that build their own
client are not forced into either.

A real server's client survives a restart of the server: pooled connections die with
it, so every command is retried (:data:`RETRIES` times, exponential backoff with jitter,
on ``ConnectionError`` and ``TimeoutError``) on a fresh connection, and a connection
idle for over :data:`HEALTH_CHECK_INTERVAL` seconds is checked with ``PING`` before use
(redis-py's ``Retry`` and ``health_check_interval``:
https://redis.readthedocs.io/en/stable/retry.html). Those retries span well under a
second; a restart takes longer, so the first :data:`RIDE_OUT` seconds of an outage are
ridden out too: a command (or pipeline) that still fails with ``ConnectionError`` or
``TimeoutError`` is tried again until that long after the first command that failed
since the server last answered (:class:`Outage`); later in the same outage commands fail
at once. A retried command may run twice
on the server when only its reply was lost, so the store's writes are idempotent
where a double would show (see :mod:`storage.store`). A server that stays down costs
a command about :data:`CONNECT_TIMEOUT` seconds per attempt at most (a refused
connection fails at once), then the error propagates. Options in the URL's query
(``?socket_timeout=10``) take precedence over these defaults.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import fakeredis
import redis.asyncio
from redis.asyncio.client import Pipeline
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError, NoScriptError, RedisError, TimeoutError

from storage.errors import StorageUnavailable

__all__ = [
    "EMBEDDED_URLS",
    "REAL_SCHEMES",
    "RIDE_OUT",
    "ErrorListener",
    "ObservedRedis",
    "Outage",
    "connect",
]

EMBEDDED_URLS = ("", "memory://")
REAL_SCHEMES = ("redis", "rediss", "unix")


def _safe_location(url: str) -> str:
    """Return ``scheme://host:port`` (or the socket path) of ``url`` without credentials."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix://{parts.path}"
    host = parts.hostname or "localhost"
    return f"{parts.scheme}://{host}:{parts.port or 6379}"


ErrorListener = Callable[[BaseException], None]
"""Told of each error a Redis command or pipeline raised; must not raise."""


def _tell(listener: ErrorListener | None, error: BaseException) -> None:
    # redis-py's Script loads a script the server does not know and calls it again
    if listener is not None and not isinstance(error, NoScriptError):
        listener(error)


class Outage:
    """A server outage as one client sees it, and how long its commands wait it out.

    ``since`` is the start time (``time.monotonic()``) of the first command that failed
    with ``ConnectionError`` or ``TimeoutError`` since the server last answered, or
    ``None`` while it answers; ``ride_out`` the seconds from then during which such a
    failure is tried again.
    """

    def __init__(self, ride_out: float) -> None:
        """Wait out the first ``ride_out`` seconds of each outage."""
        self.ride_out = ride_out
        self.since: float | None = None

    async def again(self, started: float, error: BaseException) -> bool:
        """Whether to try again a command that started at ``started`` and failed with
        ``error``; if so, after a pause of :data:`RIDE_OUT_PAUSE` s."""
        if not isinstance(error, ConnectionError | TimeoutError):
            return False
        if self.since is None:
            self.since = started
        left = self.since + self.ride_out - time.monotonic()
        if left <= 0:
            return False
        await asyncio.sleep(min(RIDE_OUT_PAUSE, left))
        return True

    def answered(self) -> None:
        """The server answered a command: no outage."""
        self.since = None


class ObservedRedis(redis.asyncio.Redis):
    """``redis.asyncio.Redis`` that tells ``on_error`` of every error (``RedisError``,
    ``OSError``) a command or a pipeline raises to its caller, after redis-py's own
    retries, whether or not the caller then handles it; ``NoScriptError`` is left out
    (redis-py's ``Script`` recovers from it by loading the script). ``on_error`` is
    ``None`` (nobody told) until the client's owner sets it. With an ``outage`` (set by
    :func:`connect` once the server answered), a command or pipeline that fails while
    the server does not answer is tried again (:meth:`Outage.again`).
    """

    on_error: ErrorListener | None = None
    outage: Outage | None = None

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        """See ``redis.asyncio.Redis.execute_command``."""
        run: Callable[..., Awaitable[Any]] = super().execute_command  # untyped in redis-py
        started = time.monotonic()
        while True:
            try:
                result = await run(*args, **options)
            except (RedisError, OSError) as exc:
                if self.outage is not None and await self.outage.again(started, exc):
                    continue
                _tell(self.on_error, exc)
                raise
            if self.outage is not None:
                self.outage.answered()
            return result

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        """See ``redis.asyncio.Redis.pipeline``; its ``execute`` tells ``on_error`` and
        waits out an outage too."""
        pipe = _ObservedPipeline(
            self.connection_pool, self.response_callbacks, transaction, shard_hint
        )
        pipe.on_error = self.on_error
        pipe.outage = self.outage
        return pipe


class _ObservedPipeline(Pipeline):
    on_error: ErrorListener | None = None
    outage: Outage | None = None

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        # redis-py empties the pipeline after every execute, failed or not: keep what to
        # send again (a pipeline that WATCHes is not tried again: its keys may have moved)
        stack, scripts, watched = list(self.command_stack), set(self.scripts), self.watching
        started = time.monotonic()
        while True:
            try:
                result = await super().execute(raise_on_error)
            except (RedisError, OSError) as exc:
                outage = None if watched else self.outage
                if outage is not None and await outage.again(started, exc):
                    self.command_stack, self.scripts = list(stack), set(scripts)
                    continue
                _tell(self.on_error, exc)
                raise
            if self.outage is not None:
                self.outage.answered()
            return result


MAX_CONNECTIONS = 512
"""Connections to a real Redis server one process keeps at most."""
POOL_WAIT = 20.0
"""Seconds a command waits for a free connection before ``ConnectionError``."""
RETRIES = 3
"""Times a command is retried on a new connection after a connection error or timeout."""
BACKOFF_BASE = 0.05
BACKOFF_CAP = 0.5
"""Seconds before retry ``n`` (from 0): random in ``[0, min(CAP, BASE * 2**n)]``."""
CONNECT_TIMEOUT = 2.0
"""Seconds to open a connection (a server that does not answer SYN)."""
SOCKET_TIMEOUT = 5.0
"""Seconds a command waits for its reply (no command of the bot blocks on the server)."""
HEALTH_CHECK_INTERVAL = 10
"""Seconds a pooled connection may idle before it is checked with PING on its next use."""
RIDE_OUT = 3.0
"""Seconds of an outage (the server refusing connections or not answering, as during a
restart) that commands wait out, from the start of the first command that failed."""
RIDE_OUT_PAUSE = 0.1
"""Seconds between two tries of a command while an outage is waited out (each try makes
redis-py's own :data:`RETRIES` too)."""


async def connect(url: str) -> tuple[redis.asyncio.Redis, bool]:
    """Open a client for ``url`` and check it answers PING; returns ``(client, embedded)``.

    ``""`` or ``memory://`` → a private in-process fakeredis server (``embedded`` is
    True; data is lost when the process exits; Lua needs the ``lupa`` package, i.e.
    ``fakeredis[lua]``). ``redis://``, ``rediss://``, ``unix://`` → ``redis.asyncio``
    (URL syntax: https://redis.readthedocs.io/en/stable/connections.html#redis.Redis.from_url).
    Raises :class:`StorageUnavailable` for another scheme or when the server does not
    answer; the message names host and port, never the password.
    """
    if url in EMBEDDED_URLS:
        server = fakeredis.FakeServer(version=(7,))
        client: redis.asyncio.Redis = fakeredis.FakeAsyncRedis(server=server, decode_responses=True)
        return client, True
    scheme = urlsplit(url).scheme
    if scheme not in REAL_SCHEMES:
        raise StorageUnavailable(
            f"REDIS_URL scheme {scheme!r} is not supported: use memory://, redis://, "
            "rediss:// or unix://"
        )
    # A blocking pool: under load a command waits (up to POOL_WAIT s) for a free
    # connection instead of failing with MaxConnectionsError (redis-py's default pool
    # of 100 was exhausted at 200 concurrent replies in bench/streaming.py).
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        url,
        decode_responses=True,
        max_connections=MAX_CONNECTIONS,
        timeout=POOL_WAIT,
        retry=Retry(ExponentialWithJitterBackoff(base=BACKOFF_BASE, cap=BACKOFF_CAP), RETRIES),
        retry_on_error=[ConnectionError, TimeoutError],
        health_check_interval=HEALTH_CHECK_INTERVAL,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=SOCKET_TIMEOUT,
        socket_keepalive=True,
    )
    client = ObservedRedis.from_pool(pool)  # the client owns (and closes) the pool
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        raise StorageUnavailable(
            f"Redis at {_safe_location(url)} does not answer: {type(exc).__name__}: {exc}"
        ) from None
    if isinstance(client, ObservedRedis):  # it is: from_pool builds the class it is called on
        client.outage = Outage(RIDE_OUT)  # from now on a restart is waited out
    return client, False
