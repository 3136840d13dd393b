"""ScheduledSends: a handler's own sends into a chat go through the send scheduler's budget."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from telegram.error import BadRequest, RetryAfter

from bot.reply.sends import MAX_RETRIES, ScheduledSends, chat_of
from bot.scheduler.clock import FakeClock
from bot.scheduler.core import Limits, SendOutcome, SendScheduler

GROUP = -300
ONE_PER_3_S = Limits(per_group_per_minute=20, per_group_burst=1)  # one group send every 3 s


class Telegram:
    """The callback PTB hands the rate limiter: records (virtual time, chat) per call and
    raises the scripted errors in turn."""

    def __init__(self, clock: FakeClock, errors: list[Exception] | None = None) -> None:
        self.clock = clock
        self.errors = list(errors or [])
        self.calls: list[tuple[float, int]] = []

    async def post(self, endpoint: str, data: dict[str, Any]) -> dict[str, Any]:
        """Answer the call like the Bot API (a message), or raise the next error."""
        self.calls.append((self.clock.now(), int(data["chat_id"])))
        if self.errors:
            raise self.errors.pop(0)
        return {"message_id": len(self.calls)}


async def send(limiter: ScheduledSends, telegram: Telegram, chat_id: int) -> Any:
    """One ``sendMessage`` into ``chat_id`` through ``limiter``, as ``ExtBot`` makes it."""
    data = {"chat_id": chat_id, "text": "hi"}
    return await limiter.process_request(
        telegram.post, ("sendMessage", data), {}, "sendMessage", data, None
    )


def test_chat_of_names_the_chat_of_sends_only() -> None:
    """Sends, edits, copies and forwards into a numeric chat count; the rest does not."""
    assert chat_of("sendMessage", {"chat_id": -100}) == -100
    assert chat_of("editMessageText", {"chat_id": "42"}) == 42
    assert chat_of("copyMessage", {"chat_id": 7}) == 7
    assert chat_of("answerCallbackQuery", {"chat_id": 7}) is None
    assert chat_of("deleteMessage", {"chat_id": 7}) is None
    assert chat_of("sendMessage", {"chat_id": "@channel"}) is None
    assert chat_of("editMessageText", {"inline_message_id": "x"}) is None


async def test_sends_into_one_group_keep_to_its_budget() -> None:
    """Five handler sends into a group at once go one every 3 s, as the group's budget says,
    and each caller gets Telegram's answer."""
    clock = FakeClock()
    telegram, limiter = Telegram(clock), ScheduledSends()
    async with SendScheduler(limits=ONE_PER_3_S, clock=clock) as scheduler:
        limiter.attach(scheduler)
        answers = await clock.run(
            asyncio.gather(*(send(limiter, telegram, GROUP) for _ in range(5))), within=60
        )
    assert [t for t, _ in telegram.calls] == pytest.approx([0.0, 3.0, 6.0, 9.0, 12.0])
    assert sorted(a["message_id"] for a in answers) == [1, 2, 3, 4, 5]


async def test_a_call_made_inside_a_scheduler_send_goes_straight_through() -> None:
    """A reply stream's own call (inside its send callback) is not queued again: it is made
    at once even though the group's budget is spent."""
    clock = FakeClock()
    telegram, limiter = Telegram(clock), ScheduledSends()
    async with SendScheduler(limits=ONE_PER_3_S, clock=clock) as scheduler:
        limiter.attach(scheduler)
        handle = scheduler.open_stream(GROUP)

        async def reply_send(frame: str) -> SendOutcome | None:
            await send(limiter, telegram, GROUP)
            await send(limiter, telegram, GROUP)  # a repair inside the same send
            return None

        handle.submit("text", kind="first", send=reply_send)
        assert await clock.run(handle.close(), within=1)
    assert telegram.calls == [(0.0, GROUP), (0.0, GROUP)]


async def test_a_429_pauses_and_the_call_is_made_again_then_given_back() -> None:
    """A 429 pauses the chat for retry_after and the call is made again; after MAX_RETRIES
    refusals the caller gets the RetryAfter itself; other errors come back unchanged."""
    clock = FakeClock()
    limiter = ScheduledSends()
    async with SendScheduler(limits=Limits(), clock=clock) as scheduler:
        limiter.attach(scheduler)
        once = Telegram(clock, [RetryAfter(5)])
        assert await clock.run(send(limiter, once, 1), within=30) == {"message_id": 2}
        assert once.calls[1][0] >= 5.0
        always = Telegram(clock, [RetryAfter(1)] * (MAX_RETRIES + 1))
        with pytest.raises(RetryAfter):
            await clock.run(send(limiter, always, 2), within=60)
        assert len(always.calls) == MAX_RETRIES + 1
        refused = Telegram(clock, [BadRequest("Bad Request: chat not found")])
        with pytest.raises(BadRequest, match=r"(?i)chat not found"):
            await clock.run(send(limiter, refused, 3), within=5)


async def test_without_a_running_scheduler_calls_go_straight_through() -> None:
    """Before the services attach the scheduler (start-up calls), and once it is closed
    (shutting down), nothing is held."""
    clock = FakeClock()
    telegram = Telegram(clock)
    answers = [await send(ScheduledSends(), telegram, GROUP) for _ in range(3)]
    limiter = ScheduledSends()
    async with SendScheduler(limits=ONE_PER_3_S, clock=clock) as scheduler:
        limiter.attach(scheduler)
    answers += [await send(limiter, telegram, GROUP) for _ in range(3)]
    assert [a["message_id"] for a in answers] == [1, 2, 3, 4, 5, 6]
    assert {t for t, _ in telegram.calls} == {0.0}
