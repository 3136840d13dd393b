"""The storage package's errors, and which Redis errors mean "Redis cannot serve now".

```
StorageError               base of every error raised by storage/
├── StorageUnavailable     the Redis server at REDIS_URL could not be reached at start
└── LockTimeout            a per-conversation lock was not free within ``wait`` seconds
```

Errors that Redis itself raises while the bot runs (``redis.exceptions.RedisError``)
are not translated: they propagate to the caller (the application's error handler,
the gate), which asks :func:`redis_unavailable` whether the server is down or busy
rather than the bot being wrong.
"""

from __future__ import annotations

from redis.exceptions import (
    ConnectionError,
    MasterDownError,
    OutOfMemoryError,
    ReadOnlyError,
    TimeoutError,
    TryAgainError,
)

__all__ = ["LockTimeout", "StorageError", "StorageUnavailable", "redis_unavailable"]

_UNAVAILABLE = (
    ConnectionError,  # refused, reset, closed by the server, pool exhausted, still LOADING
    TimeoutError,  # no answer within the socket timeout
    OutOfMemoryError,  # "-OOM command not allowed when used memory > 'maxmemory'"
    ReadOnlyError,  # a replica (a failover in progress) refuses writes
    TryAgainError,  # a cluster slot is being migrated
    MasterDownError,  # a replica lost its master (replica-serve-stale-data no)
)


def redis_unavailable(error: BaseException) -> bool:
    """True when ``error`` says the Redis server cannot serve now (down, restarting, out of
    memory, read-only), so the same command may succeed later; False for errors of the
    bot's own making (a wrong type, a script error), which a retry does not cure.

    The error classes are redis-py's (``redis.exceptions``); ``OutOfMemoryError`` and
    ``ReadOnlyError`` are its parse of the server's ``-OOM`` and ``-READONLY`` replies.
    """
    return isinstance(error, _UNAVAILABLE)


class StorageError(Exception):
    """Base class of the storage errors; ``str(err)`` never holds a password."""


class StorageUnavailable(StorageError):
    """The Redis server could not be reached (or the URL scheme is not supported)."""


class LockTimeout(StorageError):
    """Another holder kept the conversation's lock for longer than the caller would wait.

    ``scope`` is the conversation scope, ``wait`` the seconds waited.
    """

    def __init__(self, scope: str, *, wait: float) -> None:
        super().__init__(f"lock of conversation {scope!r} still held after {wait:g} s")
        self.scope = scope
        self.wait = wait
