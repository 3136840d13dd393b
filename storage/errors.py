"""The storage package's errors.

```
StorageError               base of every error raised by storage/
├── StorageUnavailable     the Redis server at REDIS_URL could not be reached at start
└── LockTimeout            a per-conversation lock was not free within ``wait`` seconds
```

Errors that Redis itself raises while the bot runs (``redis.exceptions.RedisError``)
are not translated: they propagate to the application's error handler.
"""

from __future__ import annotations

__all__ = ["LockTimeout", "StorageError", "StorageUnavailable"]


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
