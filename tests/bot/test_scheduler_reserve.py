"""Send scheduler on a virtual clock: the final reserve, global headroom, sends in flight, wakes."""

from __future__ import annotations

import asyncio
import itertools
import math

import pytest

from bot.scheduler.clock import FakeClock
from bot.scheduler.core import Limits, SendScheduler
from bot.scheduler.limits import TELEGRAM_LIMITS
from tests.bot.test_scheduler_limits import Wire, max_in_window, stream_reply

pytestmark = pytest.mark.timeout(20)

TOLERANCE = 1e-6  # float slack when comparing counts with rate * seconds


def bucket_excess(times: list[float], *, rate: float, burst: int) -> float:
    """Return how far ``times`` overdraw a bucket of ``rate``/s holding ``burst`` (0: never)."""
    tokens, last, worst = float(burst), -math.inf, 0.0
    for t in sorted(times):
        tokens = min(float(burst), tokens + (t - last) * rate) if last > -math.inf else tokens
        last = t
        tokens -= 1.0
        worst = max(worst, -tokens)
    return worst


async def staggered_group(
    limits: Limits, *, replies: int, lasting: float
) -> tuple[Wire, list[float]]:
    """``replies`` replies in one group, started 2 s apart, each streaming every 0.1 s.

    Returns the wire and, per reply, the seconds from its final's submission to its send.
    """
    clock = FakeClock()
    wire = Wire(clock, latency=0.1)
    group = -100500

    async def reply(k: int) -> float:
        await clock.sleep(2.0 * k)
        handle = scheduler.open_stream(group)
        return await stream_reply(handle, wire, clock, label=f"r{k}", every=0.1, for_=lasting)

    async with SendScheduler(limits=limits, clock=clock) as scheduler:
        coro = asyncio.gather(*(reply(k) for k in range(replies)))
        submitted = await clock.run(coro, within=600)
    delays = [wire.when(f"r{k} final") - submitted[k] for k in range(replies)]
    return wire, delays


async def test_five_staggered_replies_in_a_group_each_get_their_final_out_within_2_s() -> None:
    """Five replies in one group finishing 2 s apart: every final goes within 2 s, limits kept."""
    wire, delays = await staggered_group(Limits(), replies=5, lasting=40.0)
    assert max(delays) <= 2.0, delays
    times = wire.times()
    assert max_in_window(times, 60.0) <= 20
    assert bucket_excess(times, rate=20 / 60, burst=Limits().per_group_burst) <= TOLERANCE
    assert len(times) > 10  # intermediate frames went out too, not only first and final


async def test_without_the_reserve_finals_wait_for_the_group_budget() -> None:
    """With final_reserve=0 (the old rule) the same five replies wait long for their finals."""
    _, delays = await staggered_group(Limits(final_reserve=0), replies=5, lasting=40.0)
    assert max(delays) > 5.0, delays


async def test_a_single_reply_in_a_group_keeps_a_steady_pace_and_a_prompt_final() -> None:
    """One reply alone in a group: an edit every 3 s (the group's rate), its final at once."""
    wire, delays = await staggered_group(Limits(), replies=1, lasting=60.0)
    times = wire.times()
    gaps = sorted(b - a for a, b in itertools.pairwise(times[1:-1]))
    assert len(times) >= 20
    assert gaps[len(gaps) // 2] == pytest.approx(3.0)  # the median edit interval
    assert gaps[-1] <= 6.0 + TOLERANCE  # the window keeps room for the final: one step held
    assert delays[0] <= 0.1 + TOLERANCE  # at most the send in flight (latency 0.1 s)


async def test_a_new_reply_gets_its_first_frame_out_at_once_in_a_busy_group() -> None:
    """While two replies stream in a group, a third reply's first message goes at once."""
    clock = FakeClock()
    wire = Wire(clock, latency=0.1)
    group = -100501
    async with SendScheduler(limits=Limits(), clock=clock) as scheduler:

        async def late_reply() -> float:
            await clock.sleep(20.0)
            handle = scheduler.open_stream(group)
            await stream_reply(handle, wire, clock, label="late", every=0.1, for_=5.0)
            return 20.0

        busy = [
            stream_reply(
                scheduler.open_stream(group), wire, clock, label=f"b{k}", every=0.1, for_=40.0
            )
            for k in range(2)
        ]
        await clock.run(asyncio.gather(*busy, late_reply()), within=600)
    assert wire.when("late ") == pytest.approx(20.0)
    assert max_in_window(wire.times(), 60.0) <= 20


async def test_a_private_reply_keeps_a_token_for_its_own_final() -> None:
    """A private reply streaming fast: edits at 1/s, and its final never waits for the bucket."""
    clock = FakeClock()
    wire = Wire(clock, latency=0.05)
    async with SendScheduler(limits=Limits(), clock=clock) as scheduler:
        handle = scheduler.open_stream(77)
        coro = stream_reply(handle, wire, clock, label="p", every=0.01, for_=30.3)
        submitted = await clock.run(coro, within=120)
    assert wire.when("p final") == pytest.approx(submitted)
    assert len(wire.times()) >= 30
    assert bucket_excess(wire.times(), rate=1.0, burst=3) <= TOLERANCE


async def test_default_limits_keep_telegrams_global_limit_when_sends_arrive_bunched() -> None:
    """200 chats at the default limits: even when 0.35 s loop stalls bunch the sends' arrivals,
    Telegram's global limits (30/s, burst 10, 30 in any second) hold."""
    clock = FakeClock()
    wire = Wire(clock, latency=0.05)
    async with SendScheduler(limits=Limits(), clock=clock) as scheduler:
        replies = [
            stream_reply(
                scheduler.open_stream(1000 + k), wire, clock, label=f"u{k}", every=0.1, for_=10.0
            )
            for k in range(200)
        ]
        await clock.run(asyncio.gather(*replies), within=120)
    stall = 0.35
    arrivals = [math.ceil(t / stall - TOLERANCE) * stall for t in wire.times()]
    telegram = TELEGRAM_LIMITS
    assert max_in_window(arrivals, 1.0) <= telegram.global_per_second
    excess = bucket_excess(arrivals, rate=telegram.global_per_second, burst=telegram.global_burst)
    assert excess <= TOLERANCE
    assert len(arrivals) >= 25 * 9  # the headroom still leaves most of the budget in use


async def test_sends_in_flight_are_bounded_when_the_network_stalls() -> None:
    """With every send taking 5 s, at most max_in_flight are in flight; the rest then go."""
    clock = FakeClock()
    wire = Wire(clock, latency=5.0)
    limits = Limits(max_in_flight=8)
    async with SendScheduler(limits=limits, clock=clock) as scheduler:
        replies = [
            stream_reply(
                scheduler.open_stream(2000 + k), wire, clock, label=f"s{k}", every=0.5, for_=1.0
            )
            for k in range(30)
        ]
        await clock.run(asyncio.gather(*replies), within=300)
    assert wire.most_in_flight == 8
    assert all(f"s{k} final" in {f for _, _, f in wire.sent} for k in range(30))


async def test_replacing_a_pending_intermediate_frame_does_not_wake_the_dispatcher() -> None:
    """1,000 intermediate frames submitted while the reply waits on its budget wake the
    dispatcher only a bounded number of times, and only the newest of them is sent."""
    clock = FakeClock()
    wire = Wire(clock)
    async with SendScheduler(limits=Limits(), clock=clock) as scheduler:
        handle, send = scheduler.open_stream(-100502, min_interval=3.0), wire.to(-100502)
        handle.submit("f", kind="first", send=send)
        await clock.advance(0.5)
        handle.submit("i0", kind="intermediate", send=send)  # waits for min_interval
        await clock.advance(0.1)
        before = scheduler.stats.wakeups
        for n in range(1, 1001):
            handle.submit(f"i{n}", kind="intermediate", send=send)
            if n % 10 == 0:
                await clock.advance(0.001)  # let the dispatcher run if it was woken
        assert scheduler.stats.wakeups - before <= 3
        await clock.advance(3.0)
        handle.submit("end", kind="final", send=send)
        assert await clock.run(handle.close(), within=60)
    assert [f for _, _, f in wire.sent] == ["f", "i1000", "end"]


async def test_the_oldest_final_frame_goes_first_under_a_shared_budget() -> None:
    """Two finals waiting on the global budget go oldest first, not least recently served."""
    clock = FakeClock()
    wire = Wire(clock)
    limits = Limits(global_per_second=1, global_burst=1)
    async with SendScheduler(limits=limits, clock=clock) as scheduler:
        a, b = scheduler.open_stream(1), scheduler.open_stream(2)
        b.submit("b0", kind="first", send=wire.to(2))  # t=0, served first
        await clock.advance(0.5)
        a.submit("a0", kind="first", send=wire.to(1))  # goes at 1.0, served last
        await clock.advance(0.7)
        a.submit("a final", kind="final", send=wire.to(1))  # t=1.2, the older final
        await clock.advance(0.3)
        b.submit("b final", kind="final", send=wire.to(2))  # t=1.5
        assert await clock.run(asyncio.gather(a.close(), b.close()), within=10) == [True, True]
    assert [f for _, _, f in wire.sent] == ["b0", "a0", "a final", "b final"]
    assert [t for t, _, _ in wire.sent] == pytest.approx([0.0, 1.0, 2.0, 3.0])


async def test_sends_owed_by_a_reply_stay_free_in_the_group_window() -> None:
    """A reply with k sends owed at its end keeps k of the minute's 20 for them; ends at once."""
    counts: dict[int, int] = {}
    for sends_owed in (1, 6):
        clock = FakeClock()
        wire = Wire(clock, latency=0.1)
        async with SendScheduler(limits=Limits(), clock=clock) as scheduler:
            handle = scheduler.open_stream(-100600)
            handle.set_sends_owed(sends_owed)
            submitted = await clock.run(
                stream_reply(handle, wire, clock, label="r", every=0.1, for_=59.0), within=200
            )
        times = wire.times()
        counts[sends_owed] = sum(1 for t in times if t < 59.0)
        assert wire.when("r final") - submitted <= 0.1 + TOLERANCE
        assert max_in_window(times, 60.0) <= 20
    assert counts[1] == 20 - 1
    assert counts[6] == 20 - 6
