"""Per-user question pace: at most N questions a minute, counted in the store's Redis.

The counting is the ``limits`` library's moving window (``MovingWindowRateLimiter``
over its ``RedisStorage``, redis-py flavour) on the store's own connection pool, so it
works the same on real Redis and on the embedded backend and needs no second
connection. Its keys start with :data:`storage.keys.PACE_PREFIX`.
"""

from __future__ import annotations

import time

import redis.asyncio
from limits import RateLimitItemPerMinute
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from storage.keys import PACE_PREFIX

__all__ = ["QuestionPace"]

# limits parses a URI even when handed a connection pool; the pool is what it uses.
_POOL_URI = "async+redis://localhost:6379"


class QuestionPace:
    """At most ``per_minute`` questions per user in any 60 seconds (a moving window).

    ``redis_client`` is the store's client (its connection pool is shared). Raises
    ``ValueError`` when ``per_minute`` < 1.
    """

    def __init__(self, redis_client: redis.asyncio.Redis, *, per_minute: int) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be >= 1")
        self.per_minute = per_minute
        pool = redis_client.connection_pool  # RedisStorage's docstring: ``connection_pool``
        storage = RedisStorage(
            _POOL_URI,
            implementation="redispy",
            key_prefix=PACE_PREFIX,
            connection_pool=pool,  # type: ignore[arg-type]  # typed too narrowly
        )
        self._limiter = MovingWindowRateLimiter(storage)
        self._item = RateLimitItemPerMinute(per_minute)

    async def take(self, user_id: int) -> float:
        """Count one question by ``user_id`` if the pace allows it.

        Returns 0.0 when it was counted (ask now), else the seconds (at least 1) until
        the oldest question in the window drops out; a refused question is not counted.
        """
        if await self._limiter.hit(self._item, "question", str(int(user_id))):
            return 0.0
        stats = await self._limiter.get_window_stats(self._item, "question", str(int(user_id)))
        return max(1.0, stats.reset_time - time.time())
