"""Clocks for the send scheduler: the real monotonic one and a virtual one for tests.

The scheduler only ever asks a :class:`Clock` for the time and to sleep, so the same
code runs on :class:`MonotonicClock` in production and on :class:`FakeClock` in tests
and benchmarks, where minutes of virtual time pass in milliseconds of wall time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable
from typing import Protocol, TypeVar

__all__ = ["Clock", "FakeClock", "MonotonicClock"]

T = TypeVar("T")

_SETTLE_LIMIT = 100_000  # loop turns before settle() decides something spins forever
_SETTLE_FALLBACK = 64  # turns to yield on loops that do not expose their ready queue


class Clock(Protocol):
    """A source of monotonic time (seconds) that can also sleep."""

    def now(self) -> float:
        """Return the current time in seconds; only differences are meaningful."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return after ``seconds`` of this clock's time have passed."""
        ...


class MonotonicClock:
    """The real clock: ``time.monotonic()`` and ``asyncio.sleep``."""

    def now(self) -> float:
        """Return ``time.monotonic()`` in seconds."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of wall time with ``asyncio.sleep``."""
        await asyncio.sleep(seconds)


class FakeClock:
    """A virtual clock: time moves only when a test driver moves it.

    ``sleep`` parks the caller on a future keyed by its virtual deadline. The driver
    methods (:meth:`advance`, :meth:`run`) first let the event loop run until every
    task is blocked (:meth:`settle`), then jump to the earliest deadline, wake the
    sleepers due at it (in the order they went to sleep), and repeat. With no real
    I/O and no real timers involved, a run is the same sequence of steps every time.

    Everything that waits must wait through this clock (or on futures/events set
    by tasks that do): a real ``asyncio.sleep(1)`` is invisible to the driver.
    """

    def __init__(self, start: float = 0.0) -> None:
        """Start the virtual time at ``start`` seconds."""
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> float:
        """Return the current virtual time in seconds."""
        return self._now

    async def sleep(self, seconds: float) -> None:
        """Return once virtual time reaches ``now() + seconds``; ``<= 0`` just yields."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), future))
        await future

    def next_deadline(self) -> float | None:
        """Return the earliest deadline of a live sleeper, or ``None`` if none sleeps."""
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
        return self._sleepers[0][0] if self._sleepers else None

    async def settle(self) -> None:
        """Let the event loop run until no task is ready to run (all are blocked).

        Raises ``RuntimeError`` if the loop never becomes idle (a task that spins
        on ``asyncio.sleep(0)`` forever).
        """
        loop = asyncio.get_running_loop()
        # CPython's BaseEventLoop keeps the callbacks due this turn in ``_ready``; the
        # loop is idle when it is empty as this task resumes (it ran last in the turn).
        ready = getattr(loop, "_ready", None)
        if ready is None:
            for _ in range(_SETTLE_FALLBACK):
                await asyncio.sleep(0)
            return
        for _ in range(_SETTLE_LIMIT):
            await asyncio.sleep(0)
            if not ready:
                return
        raise RuntimeError("the event loop never became idle")

    async def advance(self, seconds: float) -> None:
        """Move virtual time forward by ``seconds``, waking sleepers in deadline order."""
        target = self._now + seconds
        while True:
            await self.settle()
            deadline = self.next_deadline()
            if deadline is None or deadline > target:
                break
            self._wake_until(deadline)
        self._now = max(self._now, target)
        await self.settle()

    async def run(self, awaitable: Awaitable[T], *, within: float | None = None) -> T:
        """Drive virtual time until ``awaitable`` completes and return its result.

        ``within`` bounds the virtual seconds this may take. Raises ``TimeoutError``
        when the next deadline lies beyond it, ``RuntimeError`` when the awaitable
        is blocked and no sleeper is left to wake it (a deadlock), and whatever the
        awaitable raises.
        """
        task = asyncio.ensure_future(awaitable)
        limit = float("inf") if within is None else self._now + within
        try:
            while True:
                await self.settle()
                if task.done():
                    return task.result()
                deadline = self.next_deadline()
                if deadline is None:
                    raise RuntimeError("deadlock: the awaited task is blocked, no sleeper left")
                if deadline > limit:
                    raise TimeoutError(f"not done within {within} virtual seconds")
                self._wake_until(deadline)
        finally:
            if not task.done():
                task.cancel()
                await self.settle()

    def _wake_until(self, deadline: float) -> None:
        """Set the time to ``deadline`` and wake every sleeper due by then."""
        self._now = max(self._now, deadline)
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)
