"""Open the Redis client: a real server, or the embedded in-process backend.

Every client opened here uses ``decode_responses=True``: commands return ``str``
(all stored values are UTF-8 text: JSON, model names, cookie values). The store also
accepts a client with ``decode_responses=False``, so callers that build their own
client are not forced into either.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import fakeredis
import redis.asyncio
from redis.exceptions import RedisError

from storage.errors import StorageUnavailable

__all__ = ["EMBEDDED_URLS", "REAL_SCHEMES", "connect"]

EMBEDDED_URLS = ("", "memory://")
REAL_SCHEMES = ("redis", "rediss", "unix")


def _safe_location(url: str) -> str:
    """Return ``scheme://host:port`` (or the socket path) of ``url`` without credentials."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix://{parts.path}"
    host = parts.hostname or "localhost"
    return f"{parts.scheme}://{host}:{parts.port or 6379}"


MAX_CONNECTIONS = 512
"""Connections to a real Redis server one process keeps at most."""
POOL_WAIT = 20.0
"""Seconds a command waits for a free connection before ``ConnectionError``."""


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
        url, decode_responses=True, max_connections=MAX_CONNECTIONS, timeout=POOL_WAIT
    )
    client = redis.asyncio.Redis.from_pool(pool)  # the client owns (and closes) the pool
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        raise StorageUnavailable(
            f"Redis at {_safe_location(url)} does not answer: {type(exc).__name__}: {exc}"
        ) from None
    return client, False
