"""A per-conversation lock in Redis, kept alive while its holder works.

Protocol (the single-instance lock of https://redis.io/docs/latest/develop/use/patterns/distributed-locks/):
acquire with ``SET key token NX PX ttl`` (``token`` random per holder); release and
extend with Lua scripts that act only while the key still holds the holder's token,
so a holder whose lock expired never deletes or prolongs someone else's lock.
While held, a background task resets the TTL every ``ttl / 3`` seconds, so a long
reply stream keeps its lock, and a crashed process frees it ``ttl`` seconds later.
The lock is not re-entrant: acquiring it again in the same task waits (and times out).

Redis may be briefly down when the holder is done: the release is retried (exponential
backoff, for up to ``ttl`` seconds, past which the lock has expired anyway) and, if it
still fails, logged and left to the TTL; it never raises. The client retries a command
whose reply was lost (:mod:`storage.backend`), so ``SET NX`` may find the key already
set to the caller's own token: that counts as acquired.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import redis.asyncio
import stamina
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from storage.errors import LockTimeout, redis_unavailable
from storage.scripts import lua_source

__all__ = ["POLL_INTERVAL", "RELEASE_WAIT_MAX", "LockScripts", "hold_lock"]

logger = logging.getLogger(__name__)

POLL_INTERVAL = 0.05
"""Seconds between two acquisition attempts while another holder has the lock."""
RELEASE_WAIT_MAX = 1.0
"""Seconds between two release attempts at most while Redis is unavailable (from 0.05)."""


@dataclass(frozen=True)
class LockScripts:
    """The release and extend Lua scripts, registered once on one client."""

    release: AsyncScript
    extend: AsyncScript

    @classmethod
    def register(cls, client: redis.asyncio.Redis) -> LockScripts:
        """Register ``release_lock.lua`` and ``extend_lock.lua`` on ``client``."""
        return cls(
            release=client.register_script(lua_source("release_lock.lua")),
            extend=client.register_script(lua_source("extend_lock.lua")),
        )


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _holds(value: str | bytes | None, token: str) -> bool:
    return (value.decode() if isinstance(value, bytes) else value) == token


async def _acquire(
    client: redis.asyncio.Redis, lock_key: str, token: str, *, ttl: float, wait: float, scope: str
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while not (
        await client.set(lock_key, token, nx=True, px=_ms(ttl))
        # a retried SET whose first run took the lock (its reply was lost) answers nil
        or _holds(await client.get(lock_key), token)
    ):
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise LockTimeout(scope, wait=wait)
        await asyncio.sleep(min(POLL_INTERVAL, remaining))


async def _keep_alive(scripts: LockScripts, lock_key: str, token: str, *, ttl: float) -> None:
    while True:
        await asyncio.sleep(ttl / 3)
        try:
            extended = await scripts.extend(keys=[lock_key], args=[token, _ms(ttl)])
        except RedisError as exc:  # transient: try again at the next interval
            logger.warning("could not extend the lock %s: %s", lock_key, type(exc).__name__)
            continue
        if not extended:
            logger.warning("lost the lock %s before its holder finished", lock_key)
            return


async def _release(scripts: LockScripts, lock_key: str, token: str, *, ttl: float) -> None:
    """Delete the lock if still ours; retried while Redis is unavailable, for ``ttl`` s."""
    try:
        async for attempt in stamina.retry_context(
            on=redis_unavailable,
            attempts=None,
            timeout=ttl,
            wait_max=RELEASE_WAIT_MAX,
            wait_initial=0.05,
        ):
            with attempt:
                await scripts.release(keys=[lock_key], args=[token])
    except (RedisError, OSError) as exc:
        logger.warning(
            "could not release the lock %s (%s); it expires within %g s",
            lock_key,
            type(exc).__name__,
            ttl,
        )


@asynccontextmanager
async def hold_lock(
    client: redis.asyncio.Redis,
    scripts: LockScripts,
    lock_key: str,
    *,
    scope: str,
    ttl: float,
    wait: float,
) -> AsyncIterator[None]:
    """Hold the lock ``lock_key`` for the body of an ``async with``.

    ``ttl`` (seconds) is how long the lock outlives a holder that stopped refreshing;
    ``wait`` (seconds) is how long to poll for it. Raises :class:`LockTimeout` when
    ``wait`` elapses, and Redis errors while acquiring. Leaving the body never raises
    a Redis error: the release is retried for up to ``ttl`` s while Redis is
    unavailable, then logged (the lock expires ``ttl`` s after its last refresh).
    """
    if ttl <= 0 or wait < 0:
        raise ValueError("lock ttl must be > 0 and wait >= 0 seconds")
    token = secrets.token_hex(16)
    await _acquire(client, lock_key, token, ttl=ttl, wait=wait, scope=scope)
    refresher = asyncio.create_task(_keep_alive(scripts, lock_key, token, ttl=ttl))
    try:
        yield
    finally:
        refresher.cancel()
        try:
            await asyncio.gather(refresher, return_exceptions=True)
        finally:
            await _release(scripts, lock_key, token, ttl=ttl)
