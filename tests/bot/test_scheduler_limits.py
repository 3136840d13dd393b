"""The send scheduler never exceeds a flood limit, on a virtual clock (no real sleeping)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

import pytest

from bot.scheduler.clock import FakeClock
from bot.scheduler.core import Limits, SendOutcome, SendScheduler, StreamHandle
from bot.scheduler.stream import SendCallback

TOLERANCE = 1e-6  # float slack when comparing counts with rate * seconds


@dataclass
class Wire:
    """The fake Telegram edge: records (virtual time, chat_id, frame) of each launched send."""

    clock: FakeClock
    latency: float = 0.0
    sent: list[tuple[float, int, str]] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0

    def to(self, chat_id: int) -> SendCallback[str]:
        """Return a send callback for ``chat_id`` that records, then takes ``latency``."""

        async def deliver(frame: str) -> SendOutcome | None:
            self.sent.append((self.clock.now(), chat_id, frame))
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                if self.latency:
                    await self.clock.sleep(self.latency)
            finally:
                self.in_flight -= 1
            return None

        return deliver

    def times(self, chat_id: int | None = None) -> list[float]:
        """Return the send times, of one chat or of all."""
        return sorted(t for t, c, _ in self.sent if chat_id is None or c == chat_id)

    def when(self, frame: str) -> float:
        """Return when the first frame starting with ``frame`` was sent (``ValueError``: never)."""
        for t, _, sent in self.sent:
            if sent.startswith(frame):
                return t
        raise ValueError(frame)


class Sends(Protocol):
    """A fake Telegram edge that hands out a send callback per chat (the Wire classes)."""

    def to(self, chat_id: int) -> SendCallback[str]:
        """Return the send callback for ``chat_id``."""
        ...


async def stream_reply(
    handle: StreamHandle,
    wire: Sends,
    clock: FakeClock,
    *,
    every: float,
    for_: float,
    label: str = "",
) -> float:
    """Submit frames "<label> 0", "<label> 1", … every ``every`` s for ``for_`` s, then
    "<label> final" (no label: "0", …, "final"); close.

    Returns the virtual time the final frame was submitted; asserts it was delivered.
    """
    send = wire.to(handle.chat_id)
    handle.submit(f"{label} 0".strip(), kind="first", send=send)
    end = clock.now() + for_
    for n in itertools.count(1):
        await clock.sleep(every)
        if clock.now() >= end:
            break
        handle.submit(f"{label} {n}".strip(), kind="intermediate", send=send)
    submitted = clock.now()
    handle.submit(f"{label} final".strip(), kind="final", send=send)
    assert await handle.close()
    return submitted


def max_in_window(times: list[float], window: float) -> int:
    """Return the most sends in any half-open window ``[t, t + window)``."""
    best, j = 0, 0
    for i, start in enumerate(times):
        j = max(j, i)
        while j < len(times) and times[j] < start + window - TOLERANCE:
            j += 1
        best = max(best, j - i)
    return best


def assert_bucket(times: list[float], *, rate: float, burst: int) -> None:
    """Assert every closed window ``[a, b]`` holds at most ``burst + rate * (b - a)`` sends."""
    for i, start in enumerate(times):
        for j in range(i, len(times)):
            allowed = burst + rate * (times[j] - start) + TOLERANCE
            assert j - i + 1 <= allowed, (start, times[j], j - i + 1)


@pytest.mark.timeout(10)
async def test_one_fast_reply_stays_within_the_chat_bucket() -> None:
    """A reply pushing a frame every 10 ms for 60 s is sent at most at the chat's bucket rate."""
    clock, limits = FakeClock(), Limits(per_chat_per_second=1.0, per_chat_burst=3)
    wire = Wire(clock)
    async with SendScheduler(limits=limits, clock=clock) as scheduler:
        handle = scheduler.open_stream(42)
        coro = stream_reply(handle, wire, clock, label="r", every=0.01, for_=60.0)
        assert await clock.run(coro, within=120)
    times = wire.times()
    assert_bucket(times, rate=1.0, burst=3)
    assert len(times) >= 60  # the budget is used, not wasted
    assert wire.sent[-1][2] == "r final"
    assert scheduler.stats.superseded > 5000


@pytest.mark.timeout(10)
async def test_one_group_shares_twenty_a_minute_fairly_among_five_replies() -> None:
    """Five replies streaming in one group for 3 min: <= 20 sends in any 60 s, fair shares.

    Five of each minute's 20 sends are kept for the replies' finals (final reserve), so
    the five share 15 a minute: 9 each in 3 minutes.
    """
    clock, limits = FakeClock(), Limits(per_group_per_minute=20, per_group_burst=3)
    wire = Wire(clock, latency=0.2)
    group = -100123
    async with SendScheduler(limits=limits, clock=clock) as scheduler:
        replies = [
            stream_reply(
                scheduler.open_stream(group), wire, clock, label=f"r{k}", every=0.1, for_=180.0
            )
            for k in range(5)
        ]
        results = await clock.run(_gather(*replies), within=600)
    assert all(results)
    times = wire.times(group)
    assert max_in_window(times, 60.0) <= 20
    assert_bucket(times, rate=20 / 60, burst=3)
    during = [frame.split()[0] for t, _, frame in wire.sent if t < 180.0]
    shares = [during.count(f"r{k}") for k in range(5)]
    assert min(shares) >= 9
    assert max(shares) - min(shares) <= 1, shares


@pytest.mark.timeout(10)
async def test_two_hundred_private_chats_stay_within_the_global_limit() -> None:
    """200 private chats streaming at once never get more than 30 sends in any second."""
    clock, limits = FakeClock(), Limits(global_per_second=30, global_burst=10)
    wire = Wire(clock, latency=0.05)
    async with SendScheduler(limits=limits, clock=clock) as scheduler:
        replies = [
            stream_reply(
                scheduler.open_stream(1000 + k), wire, clock, label=f"u{k}", every=0.1, for_=10.0
            )
            for k in range(200)
        ]
        results = await clock.run(_gather(*replies), within=120)
    assert all(results)
    times = wire.times()
    assert max_in_window(times, 1.0) == 30  # the cap is reached and never passed
    assert_bucket(times, rate=30.0, burst=10)
    for k in range(200):
        assert_bucket(wire.times(1000 + k), rate=1.0, burst=3)
    assert scheduler.stats.sends == len(times)


@pytest.mark.timeout(10)
async def test_group_sends_count_against_the_chat_bucket_too() -> None:
    """A group with a generous group budget is still held to its per-chat bucket."""
    clock = FakeClock()
    limits = Limits(per_chat_per_second=0.5, per_chat_burst=2, per_group_per_minute=600)
    wire = Wire(clock)
    async with SendScheduler(limits=limits, clock=clock, give_up_seconds=600) as scheduler:
        coro = stream_reply(
            scheduler.open_stream(-5), wire, clock, label="g", every=0.05, for_=30.0
        )
        assert await clock.run(coro, within=120)
    assert_bucket(wire.times(), rate=0.5, burst=2)


@pytest.mark.timeout(10)
async def test_the_same_run_gives_the_same_sends() -> None:
    """Two identical runs on fresh fake clocks send the same frames at the same times."""

    async def one_run() -> list[tuple[float, int, str]]:
        clock = FakeClock()
        wire = Wire(clock, latency=0.03)
        async with SendScheduler(limits=Limits(), clock=clock) as scheduler:
            replies = [
                stream_reply(
                    scheduler.open_stream(-7), wire, clock, label=f"r{k}", every=0.02, for_=20.0
                )
                for k in range(3)
            ]
            await clock.run(_gather(*replies), within=300)
        return wire.sent

    assert await one_run() == await one_run()


async def _gather(*coros: Coroutine[Any, Any, bool]) -> list[bool]:
    """Run reply coroutines concurrently and return their results."""
    return list(await asyncio.gather(*coros))
