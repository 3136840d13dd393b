"""Send scheduler behaviour on a virtual clock: coalescing, priority, pauses, retries, actions."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from bot.scheduler.clock import FakeClock
from bot.scheduler.core import (
    Limits,
    SendOutcome,
    SendScheduler,
    StreamClosedError,
)
from bot.scheduler.stream import SendCallback
from tests.bot.test_scheduler_limits import stream_reply

pytestmark = pytest.mark.timeout(10)


@dataclass
class Wire:
    """The fake Telegram edge: records (virtual time, chat_id, frame); scripted outcomes."""

    clock: FakeClock
    latency: float = 0.0
    sent: list[tuple[float, int, str]] = field(default_factory=list)

    def to(self, chat_id: int, outcomes: Sequence[SendOutcome | None] = ()) -> SendCallback[str]:
        """Return a send callback for ``chat_id``; it answers ``outcomes`` in turn, then SENT."""
        script = list(outcomes)

        async def deliver(frame: str) -> SendOutcome | None:
            self.sent.append((self.clock.now(), chat_id, frame))
            if self.latency:
                await self.clock.sleep(self.latency)
            return script.pop(0) if script else None

        return deliver

    def frames(self, chat_id: int) -> list[tuple[float, str]]:
        """Return (time, frame) of the sends to one chat."""
        return [(t, f) for t, c, f in self.sent if c == chat_id]


async def test_only_the_newest_frame_goes_out_and_duplicates_are_skipped() -> None:
    """Frames queued behind the bucket collapse to the newest; a repeat of the last is not sent."""
    clock = FakeClock()
    wire = Wire(clock)
    async with SendScheduler(limits=Limits(per_chat_burst=1), clock=clock) as scheduler:
        handle, send = scheduler.open_stream(7), wire.to(7)

        async def scenario() -> bool:
            handle.submit("a", kind="first", send=send)
            await clock.sleep(0.1)
            for text in ("ab", "abc", "abcd"):
                handle.submit(text, kind="intermediate", send=send)
            await clock.sleep(1.5)
            handle.submit("abcd", kind="intermediate", send=send)
            await clock.sleep(0.1)
            handle.submit("abcd", kind="final", send=send)
            return await handle.close()

        assert await clock.run(scenario(), within=10)
    assert wire.frames(7) == [(0.0, "a"), (1.0, "abcd")]
    assert (scheduler.stats.superseded, scheduler.stats.duplicates) == (2, 2)
    assert handle.final_delivered


async def test_first_and_final_frames_overtake_intermediate_ones() -> None:
    """With the group budget spent, a first frame and a final frame go before intermediates."""
    clock = FakeClock()
    wire = Wire(clock)
    limits = Limits(per_group_per_minute=20, per_group_burst=1)  # one token every 3 s
    async with SendScheduler(limits=limits, clock=clock) as scheduler:
        a, b = scheduler.open_stream(-1), scheduler.open_stream(-1)
        send = wire.to(-1)

        async def scenario() -> None:
            a.submit("A0", kind="first", send=send)  # t=0, spends the token
            await clock.sleep(0.5)
            a.submit("A1", kind="intermediate", send=send)
            await clock.sleep(0.5)
            b.submit("B0", kind="first", send=send)  # t=1, waits like A1
            await clock.sleep(3.0)
            b.submit("B1", kind="intermediate", send=send)  # t=4
            await clock.sleep(1.0)
            b.submit("B final", kind="final", send=send)  # t=5, B served after A
            await clock.sleep(5.0)
            a.submit("A final", kind="final", send=send)  # t=10, after A1 went at 9
            assert await a.close() and await b.close()

        await clock.run(scenario(), within=60)
    frames = wire.frames(-1)
    assert [f for _, f in frames] == ["A0", "B0", "B final", "A1", "A final"]
    assert [t for t, _ in frames] == pytest.approx([0.0, 3.0, 6.0, 9.0, 12.0])


async def test_first_and_final_frames_of_older_replies_go_first() -> None:
    """With the global budget spent, first and final frames go in the order their replies
    opened, not the order they were queued: the reply that started first ends first."""
    clock = FakeClock()
    wire = Wire(clock)
    limits = Limits(global_per_second=1, global_burst=1, action_reserve=0)
    async with SendScheduler(limits=limits, clock=clock) as scheduler:
        a, b, c = (scheduler.open_stream(chat) for chat in (1, 2, 3))

        async def scenario() -> list[bool]:
            a.submit("A0", kind="first", send=wire.to(1))  # t=0, spends the token
            await clock.sleep(0.1)
            c.submit("C final", kind="final", send=wire.to(3))  # queued first …
            await clock.sleep(0.1)
            b.submit("B final", kind="final", send=wire.to(2))
            await clock.sleep(0.1)
            a.submit("A final", kind="final", send=wire.to(1))  # … and last
            return [await handle.close() for handle in (a, b, c)]

        assert all(await clock.run(scenario(), within=30))
    assert [(t, f) for t, _, f in wire.sent] == [
        (0.0, "A0"),
        (1.0, "A final"),
        (2.0, "B final"),
        (3.0, "C final"),
    ]


async def test_an_unsent_first_frame_carries_the_newest_content() -> None:
    """A first frame held by a pause goes once, with the newest text; an equal final is skipped."""
    clock = FakeClock()
    wire = Wire(clock)
    async with SendScheduler(limits=Limits(), clock=clock) as scheduler:
        scheduler.pause_chat(3, 5.0)
        handle, send = scheduler.open_stream(3), wire.to(3)
        handle.submit("a", kind="first", send=send)
        handle.submit("ab", kind="intermediate", send=send)
        handle.submit("abc", kind="final", send=send)
        assert await clock.run(handle.close(), within=10)
    assert wire.frames(3) == [(5.0, "abc")]
    assert handle.final_delivered


async def test_pause_chat_defers_that_chat_and_the_newest_frame_follows() -> None:
    """During pause_chat nothing goes to that chat, others go on; then the newest frame goes."""
    clock = FakeClock()
    wire = Wire(clock)
    async with SendScheduler(limits=Limits(), clock=clock) as scheduler:
        one, two = scheduler.open_stream(1), scheduler.open_stream(2)

        async def pause_later() -> None:
            await clock.sleep(5.0)
            scheduler.pause_chat(1, 10.0)

        await clock.run(
            asyncio.gather(
                stream_reply(one, wire, clock, every=0.1, for_=20.0),
                stream_reply(two, wire, clock, every=0.1, for_=20.0),
                pause_later(),
            ),
            within=60,
        )
    one_frames = wire.frames(1)
    assert not [t for t, _ in one_frames if 5.0 < t < 15.0]
    resumed = [(t, f) for t, f in one_frames if t >= 15.0]
    # The pause leaves one token; intermediate frames wait for a full bucket (the
    # burst is kept for the final: the final reserve), 2 s later.
    assert resumed[0][0] == pytest.approx(17.0)
    assert int(resumed[0][1]) >= 169  # the newest frame at 17 s, not one from 5 s
    assert resumed[1][0] >= 18.0 - 1e-6  # one token at a time after a pause, not a burst
    assert len([t for t, _ in wire.frames(2) if 5.0 < t < 15.0]) >= 9


async def test_retry_after_pause_resends_the_newest_frame() -> None:
    """A send answering RETRY after pause_chat is re-queued; after the pause the newest goes."""
    clock = FakeClock()
    calls: list[tuple[float, str]] = []
    async with SendScheduler(limits=Limits(), clock=clock) as scheduler:
        handle = scheduler.open_stream(9)

        async def send(frame: str) -> SendOutcome | None:
            calls.append((clock.now(), frame))
            if len(calls) == 2:  # Telegram said "retry after 7"
                scheduler.pause_chat(9, 7.0)
                return SendOutcome.RETRY
            return None

        async def scenario() -> bool:
            handle.submit("0", kind="first", send=send)
            for n in range(1, 200):
                await clock.sleep(0.1)
                handle.submit(str(n), kind="intermediate", send=send)
            handle.submit("final", kind="final", send=send)
            return await handle.close()

        assert await clock.run(scenario(), within=60)
    failed_at = calls[1][0]
    # 7 s of pause, then 2 s more: a pause leaves one token, and intermediate frames
    # wait for a full bucket (the burst is kept for the final: the final reserve).
    assert calls[2][0] == pytest.approx(failed_at + 9.0)
    assert int(calls[2][1]) >= int(calls[1][1]) + 89
    assert calls[-1][1] == "final"
    assert scheduler.stats.retries == 1


async def test_pause_all_stops_every_chat() -> None:
    """pause_all holds every chat; all of them resume right after the pause."""
    clock = FakeClock()
    wire = Wire(clock)
    async with SendScheduler(limits=Limits(), clock=clock) as scheduler:
        handles = [scheduler.open_stream(chat_id) for chat_id in (1, 2, -3)]

        async def pause_later() -> None:
            await clock.sleep(2.0)
            scheduler.pause_all(4.0)

        await clock.run(
            asyncio.gather(
                *(stream_reply(h, wire, clock, every=0.1, for_=10.0) for h in handles),
                pause_later(),
            ),
            within=60,
        )
    assert not [t for t, _, _ in wire.sent if 2.0 < t < 6.0]
    for chat_id in (1, 2, -3):
        assert [t for t, _ in wire.frames(chat_id) if 6.0 <= t < 6.5]


async def test_a_failed_final_frame_is_retried_until_delivered() -> None:
    """A final frame answered RETRY is sent again after the back-off, then counts as delivered."""
    clock = FakeClock()
    wire = Wire(clock)
    async with SendScheduler(limits=Limits(), clock=clock) as scheduler:
        handle = scheduler.open_stream(4)
        handle.submit("a", kind="first", send=wire.to(4))
        await clock.advance(0.5)
        handle.submit("ab", kind="final", send=wire.to(4, [SendOutcome.RETRY]))
        assert await clock.run(handle.close(), within=10)
    assert wire.frames(4) == [(0.0, "a"), (0.5, "ab"), (1.5, "ab")]
    assert handle.final_delivered and not handle.failed


async def test_a_final_frame_is_given_up_after_the_bound(caplog: pytest.LogCaptureFixture) -> None:
    """A final frame that keeps failing is retried with back-off, then given up and logged."""
    clock = FakeClock()
    wire = Wire(clock)
    always_retry = [SendOutcome.RETRY] * 100
    async with SendScheduler(limits=Limits(), clock=clock, give_up_seconds=60) as scheduler:
        handle = scheduler.open_stream(4)

        async def scenario() -> bool:
            handle.submit("a", kind="first", send=wire.to(4))
            await clock.sleep(0.5)
            handle.submit("ab", kind="final", send=wire.to(4, always_retry))
            return await handle.close()

        with caplog.at_level(logging.WARNING):
            assert await clock.run(scenario(), within=100) is False
        assert clock.now() == pytest.approx(60.5)
    attempts = [t for t, f in wire.frames(4) if f == "ab"]
    assert attempts == pytest.approx([0.5, 1.5, 3.5, 7.5, 15.5, 31.5, 47.5])
    assert handle.failed and not handle.final_delivered
    assert scheduler.stats.streams_failed == 1
    assert "given up" in caplog.text


async def test_a_send_in_flight_of_a_cancelled_reply_is_not_retried() -> None:
    """A reply cancelled during a send that then asks for a retry sends nothing more."""
    clock = FakeClock()
    wire = Wire(clock, latency=20.0)
    async with SendScheduler(limits=Limits(), clock=clock) as scheduler:
        handle = scheduler.open_stream(4)
        handle.submit("a", kind="first", send=wire.to(4, [SendOutcome.RETRY]))
        await clock.advance(1.0)
        handle.cancel()
        await clock.run(handle.flush(), within=60)
        assert clock.now() == 20.0
        await clock.advance(60.0)
    assert wire.frames(4) == [(0.0, "a")]


async def test_actions_leave_the_last_token_to_frames() -> None:
    """A chat action waits while only one token is left; a frame takes that token at once."""
    clock = FakeClock()
    wire = Wire(clock)
    # The chat level's action reserve in isolation: no final reserve, a roomy global burst.
    limits = Limits(per_chat_burst=3, final_reserve=0, global_burst=10)
    async with SendScheduler(limits=limits, clock=clock) as scheduler:
        handle, send = scheduler.open_stream(5), wire.to(5)

        async def scenario() -> bool:
            handle.submit("f0", kind="first", send=send)
            handle.submit("typing", kind="action", send=send)
            await clock.sleep(0.1)
            handle.submit("typing", kind="action", send=send)  # one token left: waits
            await clock.sleep(0.1)
            handle.submit("f1", kind="intermediate", send=send)  # takes the last token
            await clock.sleep(2.5)
            handle.submit("f1", kind="final", send=send)
            return await handle.close()

        assert await clock.run(scenario(), within=10)
    expected = [(0.0, "f0"), (0.0, "typing"), (0.2, "f1"), (2.0, "typing")]
    assert [t for t, _ in wire.frames(5)] == pytest.approx([t for t, _ in expected])
    assert [f for _, f in wire.frames(5)] == [f for _, f in expected]


async def test_actions_never_slow_a_streaming_reply() -> None:
    """Typing actions of another stream in the group never take a token a slow reply needs.

    While a reply has sends owed in the chat, its intermediate frames take every token
    above the savings kept for finals, so the actions find none.
    """

    async def run(with_actions: bool) -> tuple[list[float], int]:
        clock = FakeClock()
        frames, actions = Wire(clock, latency=4.0), Wire(clock)  # slow edits: tokens come
        async with SendScheduler(limits=Limits(), clock=clock) as scheduler:  # mid-flight
            reply = scheduler.open_stream(-8)

            async def typing() -> None:
                typist = scheduler.open_stream(-8)
                await clock.sleep(0.05)  # from when answer frames are pending
                for _ in range(59):
                    typist.submit("typing", kind="action", send=actions.to(-8))
                    await clock.sleep(0.5)
                await typist.close()

            await clock.run(
                asyncio.gather(
                    stream_reply(reply, frames, clock, every=0.01, for_=30.0),
                    *([typing()] if with_actions else []),
                ),
                within=100,
            )
        return [t for t, _ in frames.frames(-8)], len(actions.sent)

    with_actions, actions_sent = await run(with_actions=True)
    without_actions, _ = await run(with_actions=False)
    assert with_actions == without_actions
    assert actions_sent == 0


async def test_min_interval_spaces_intermediate_frames_but_not_the_final() -> None:
    """With min_interval=3, intermediate frames go 3 s apart; the final goes as soon as it comes."""
    clock = FakeClock()
    wire = Wire(clock)
    async with SendScheduler(limits=Limits(), clock=clock) as scheduler:
        handle, send = scheduler.open_stream(6, min_interval=3.0), wire.to(6)

        async def scenario() -> bool:
            handle.submit("0", kind="first", send=send)
            for n in range(1, 71):
                await clock.sleep(0.1)
                handle.submit(str(n), kind="intermediate", send=send)
            handle.submit("final", kind="final", send=send)
            return await handle.close()

        assert await clock.run(scenario(), within=30)
    assert [t for t, _ in wire.frames(6)] == pytest.approx([0.0, 3.0, 6.0, 7.0])
    assert wire.frames(6)[-1][1] == "final"


async def test_a_slow_send_does_not_hold_other_chats_but_holds_its_reply() -> None:
    """Sends to different chats overlap; a reply's next frame waits for its send in flight."""
    clock = FakeClock()
    slow, fast = Wire(clock, latency=10.0), Wire(clock)
    async with SendScheduler(limits=Limits(), clock=clock) as scheduler:
        a, b = scheduler.open_stream(1), scheduler.open_stream(2)
        a.submit("a0", kind="first", send=slow.to(1))
        b.submit("b0", kind="first", send=fast.to(2))
        await clock.advance(2.0)
        a.submit("a1", kind="final", send=slow.to(1))
        b.submit("b1", kind="final", send=fast.to(2))
        results = await clock.run(asyncio.gather(a.close(), b.close()), within=60)
    assert list(results) == [True, True]
    assert fast.frames(2) == [(0.0, "b0"), (2.0, "b1")]
    assert slow.frames(1) == [(0.0, "a0"), (10.0, "a1")]


async def test_a_raising_send_fails_the_reply_and_close_reraises() -> None:
    """An exception from a send callback fails the reply and surfaces from close()."""
    clock = FakeClock()

    async def broken(frame: str) -> None:
        raise ValueError(f"cannot send {frame!r}")

    async with SendScheduler(limits=Limits(), clock=clock) as scheduler:
        handle = scheduler.open_stream(1)
        handle.submit("a", kind="first", send=broken)
        with pytest.raises(ValueError, match="cannot send"):
            await clock.run(handle.close(), within=10)
    assert handle.failed
    assert scheduler.stats.errors == 1


async def test_a_dropped_first_frame_fails_the_reply() -> None:
    """DROP on the first frame fails the reply: later frames are ignored and close() is False."""
    clock = FakeClock()
    wire = Wire(clock)
    async with SendScheduler(limits=Limits(), clock=clock) as scheduler:
        handle = scheduler.open_stream(1)
        handle.submit("a", kind="first", send=wire.to(1, [SendOutcome.DROP]))
        await clock.advance(1.0)
        handle.submit("ab", kind="intermediate", send=wire.to(1))
        handle.submit("abc", kind="final", send=wire.to(1))
        assert await clock.run(handle.close(), within=10) is False
    assert wire.frames(1) == [(0.0, "a")]


async def test_submitting_out_of_turn_raises() -> None:
    """A non-final frame after the final, or any frame after close, raises StreamClosedError."""
    clock = FakeClock()
    wire = Wire(clock)
    async with SendScheduler(limits=Limits(), clock=clock) as scheduler:
        handle = scheduler.open_stream(1)
        handle.submit("a", kind="final", send=wire.to(1))
        with pytest.raises(StreamClosedError):
            handle.submit("b", kind="intermediate", send=wire.to(1))
        assert await clock.run(handle.close(), within=10)
        with pytest.raises(StreamClosedError):
            handle.submit("c", kind="final", send=wire.to(1))


async def test_cancel_drops_pending_frames_and_aclose_fails_open_replies() -> None:
    """cancel() drops what is pending; aclose() releases waiters of open replies with False."""
    clock = FakeClock()
    wire = Wire(clock)
    scheduler = SendScheduler(limits=Limits(), clock=clock)
    await scheduler.start()
    scheduler.pause_chat(1, 30.0)
    dropped, waiting = scheduler.open_stream(1), scheduler.open_stream(1)
    dropped.submit("a", kind="first", send=wire.to(1))
    dropped.cancel()
    waiting.submit("b", kind="first", send=wire.to(1))
    flushed = asyncio.ensure_future(waiting.flush())
    await clock.advance(1.0)
    await scheduler.aclose()
    assert await flushed is False
    assert wire.sent == []
