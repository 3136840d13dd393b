"""Adaptive flood control on a virtual clock: a 429 lowers the blamed level's budget, which
climbs back over minutes, so a Telegram stricter than its published limits refuses the bot
at most once an hour."""

from __future__ import annotations

import asyncio
import itertools
import math
from dataclasses import dataclass, field

import pytest

from bot.scheduler.adapt import BOUND, MEMORY, Adaptation, excess
from bot.scheduler.clock import FakeClock
from bot.scheduler.core import Limits, SendOutcome, SendScheduler, StreamHandle
from bot.scheduler.stream import SendCallback

GROUP = -100
GROUP_RATE = 20 / 60  # Limits' default per_group_per_minute, per second


@dataclass
class StrictGroup:
    """A fake Telegram stricter than the published limits: per group a GCRA of one send per
    ``interval`` s with bursts of ``burst``, judged when a send arrives (``latency`` s after
    its launch, drawn in turn from ``jitter``); a refused send answers 429 like Telegram."""

    clock: FakeClock
    interval: float = 3.0
    burst: int = 3
    jitter: tuple[float, ...] = (0.0,)
    tat: dict[int, float] = field(default_factory=dict)  # theoretical arrival time per chat
    sent: list[tuple[float, int, str]] = field(default_factory=list)
    refused: list[tuple[float, int]] = field(default_factory=list)
    _latencies: itertools.cycle[float] = field(init=False)

    def __post_init__(self) -> None:
        self._latencies = itertools.cycle(self.jitter)

    def to(self, handle: StreamHandle) -> SendCallback[str]:
        """A send callback for ``handle``'s reply, as the reply stream does it on 429."""

        async def deliver(frame: str) -> SendOutcome | None:
            latency = next(self._latencies)
            if latency:
                await self.clock.sleep(latency)
            now, chat = self.clock.now(), handle.chat_id
            tat = max(self.tat.get(chat, -math.inf), now)
            if now < tat - (self.burst - 1) * self.interval - 1e-9:
                wait = tat - (self.burst - 1) * self.interval - now
                self.refused.append((now, chat))
                handle.retry_after(max(1, math.ceil(wait)))
                return SendOutcome.RETRY
            self.tat[chat] = tat + self.interval
            self.sent.append((now, chat, frame))
            return None

        return deliver


async def stream(
    handle: StreamHandle, wire: StrictGroup, clock: FakeClock, *, every: float, for_: float
) -> bool:
    """Submit a first frame, one intermediate frame every ``every`` s for ``for_`` s, a final;
    return whether the final was delivered."""
    send = wire.to(handle)
    handle.submit("0", kind="first", send=send)
    for n in range(1, int(for_ / every)):
        await clock.sleep(every)
        handle.submit(str(n), kind="intermediate", send=send)
    handle.submit("final", kind="final", send=send)
    return await handle.close()


def test_excess_counts_the_sends_a_paced_level_could_not_explain() -> None:
    """Four sends in 0.1 s at one per 3 s exceed the pace by ~4; sends at the pace by 1."""
    assert excess([0.0, 0.03, 0.06, 0.1], rate=1 / 3) == pytest.approx(4 - 0.1 / 3)
    assert excess([0.0, 3.0, 6.0], rate=1 / 3) == pytest.approx(1.0)
    assert excess([0.0, 1.0, 2.0, 3.0, 4.0], rate=1 / 3) == pytest.approx(5 - 4 / 3)
    assert excess([], rate=1.0) == 0.0


def test_adaptation_cuts_then_climbs_to_its_bound_then_back_to_nominal() -> None:
    """After a cut the rate is halved and the burst below the run; the rate climbs to 3/4 of
    the old one within minutes, stays there for the memory, then returns to nominal."""
    adaptation = Adaptation(nominal_rate=GROUP_RATE, nominal_burst=10)
    assert adaptation.cut(100.0, run_excess=3.9, until=105.0)
    assert adaptation.rate(100.0) == pytest.approx(GROUP_RATE / 2)
    assert adaptation.burst(100.0) == 3
    assert adaptation.rate(160.0) == pytest.approx(GROUP_RATE * 0.6)  # +10 % a minute
    assert adaptation.rate(100.0 + 30 * 60) == pytest.approx(GROUP_RATE * BOUND)
    assert adaptation.burst(100.0 + MEMORY - 1) == 3
    assert not adaptation.cut(104.0, run_excess=5.0, until=110.0), "an echo inside the pause"
    later = 100.0 + MEMORY + 20 * 60
    assert adaptation.rate(later) == pytest.approx(GROUP_RATE)
    assert adaptation.burst(later) == 10 and adaptation.settled(later)
    assert not adaptation.settled(100.0 + MEMORY)


async def test_a_429_in_a_group_lowers_that_group_and_it_recovers() -> None:
    """Five first frames at once into a group that takes bursts of 3: the fourth is refused,
    the group's rate halves and its burst drops to 3; the chat and global levels keep theirs;
    an hour and a half later the group is back at its configured budget."""
    clock = FakeClock()
    wire = StrictGroup(clock)
    async with SendScheduler(limits=Limits(), clock=clock) as scheduler:
        handles = [scheduler.open_stream(GROUP) for _ in range(5)]
        for n, handle in enumerate(handles):
            handle.submit(f"r{n}", kind="first", send=wire.to(handle))
        await clock.advance(1.5)  # three at once (the chat's burst), the fourth at 1 s
        assert len(wire.refused) == 1
        rates = scheduler.current_rates()
        assert rates.groups[GROUP].per_second == pytest.approx(GROUP_RATE / 2, rel=0.01)
        assert rates.groups[GROUP].burst == 3 and rates.groups[GROUP].nominal_burst == 10
        assert rates.chats == {} and rates.global_.per_second == Limits().global_per_second
        assert scheduler.stats.rate_cuts == {"group": 1}
        await clock.advance(5 * 60)
        assert scheduler.current_rates().groups[GROUP].per_second == pytest.approx(
            GROUP_RATE * BOUND
        )
        for handle in handles:
            handle.submit("final", kind="final", send=wire.to(handle))
        for handle in handles:
            assert await clock.run(handle.close(), within=120)
        await clock.advance(MEMORY + 10 * 60)
        assert GROUP not in scheduler.current_rates().groups
    assert len(wire.refused) == 1


@pytest.mark.parametrize("busy", [True, False])
async def test_429s_in_two_chats_within_a_second_of_a_busy_bot_lower_the_global_level(
    busy: bool,
) -> None:
    """A 429 in one chat lowers that chat; another chat's 429 within a second is blamed on the
    global level while the bot sends near its overall rate (twenty other chats at once), and
    on its own chat when it does not; a third chat's 429 three seconds later on its chat."""
    clock = FakeClock()
    async with SendScheduler(limits=Limits(), clock=clock) as scheduler:
        refuse_at: dict[int, float] = {1: 0.5, 2: 0.9, 3: 3.5}

        def refusing(handle: StreamHandle) -> SendCallback[str]:
            async def deliver(frame: str) -> SendOutcome | None:
                if clock.now() >= refuse_at.get(handle.chat_id, math.inf):
                    del refuse_at[handle.chat_id]
                    handle.retry_after(1)
                    return SendOutcome.RETRY
                return None

            return deliver

        async def chat(chat_id: int, at: float) -> bool:
            handle = scheduler.open_stream(chat_id)
            await clock.sleep(at)
            handle.submit("text", kind="first", send=refusing(handle))
            return await handle.close()

        replies = [chat(chat_id, at) for chat_id, at in refuse_at.items()]
        if busy:  # 20 sends from t=0 at the global rate (24/s): ~0.8 s of them
            replies += [chat(100 + n, 0.0) for n in range(20)]
        delivered = await clock.run(asyncio.gather(*replies), within=30)
        assert all(delivered)
        rates = scheduler.current_rates()
        if busy:
            assert scheduler.stats.rate_cuts == {"chat": 2, "global": 1}
            assert sorted(rates.chats) == [1, 3]
            assert rates.global_.per_second == pytest.approx(
                Limits().global_per_second / 2, rel=0.02
            )
        else:
            assert scheduler.stats.rate_cuts == {"chat": 3}
            assert sorted(rates.chats) == [1, 2, 3]
            assert rates.global_.per_second == Limits().global_per_second


@pytest.mark.timeout(60)
async def test_a_strict_jittery_group_refuses_a_long_busy_hour_at_most_once() -> None:
    """An hour in a group whose Telegram takes bursts of 3 and one send per 3 s, with up to
    0.3 s of arrival jitter: waves of five replies (streaming 20-60 s, finals close together)
    meet at most one 429, and every final is delivered."""
    clock = FakeClock()
    wire = StrictGroup(clock, jitter=(0.05, 0.3, 0.0, 0.17, 0.02, 0.26, 0.11))
    async with SendScheduler(limits=Limits(), clock=clock) as scheduler:

        async def wave(start: float) -> list[bool]:
            await clock.sleep(start)
            replies = [
                stream(scheduler.open_stream(GROUP), wire, clock, every=0.5, for_=20.0 + 10.0 * n)
                for n in range(5)
            ]
            return list(await asyncio.gather(*replies))

        async def hour() -> list[bool]:
            delivered: list[bool] = []
            for start in range(0, 3600, 150):
                delivered += await wave(start - clock.now())
            return delivered

        delivered = await clock.run(hour(), within=4000)
    assert all(delivered) and len(delivered) == 5 * 24
    assert len(wire.refused) <= 1, wire.refused
    assert len(wire.sent) >= 24 * 5 * 2, "the budget is used: a first and a final per reply"
