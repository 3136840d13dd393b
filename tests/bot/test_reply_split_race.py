"""A reply whose final frame is queued while a split step of an earlier frame is in flight."""

from __future__ import annotations

import asyncio
import itertools
from types import SimpleNamespace
from typing import Any

import pytest

from bot.conversation.turn import Outcome, StreamState
from bot.render.markdown import ReplyStrings, compose_reply
from bot.reply.chain import MessageChain
from bot.reply.stream import TelegramReply
from bot.scheduler.clock import MonotonicClock
from bot.scheduler.core import Limits, SendScheduler

ROOMY = Limits(
    per_chat_per_second=100.0,
    per_chat_burst=100,
    per_group_per_minute=6000,
    per_group_burst=100,
    global_per_second=1000,
    global_burst=100,
)


class HoldingBot:
    """A Bot stand-in: keeps the texts it is sent; the first ``send_message`` waits for
    ``release``."""

    def __init__(self) -> None:
        self.texts: dict[int, str] = {}
        self.sending = asyncio.Event()
        self.release = asyncio.Event()
        self._ids = itertools.count(1)

    async def send_message(self, chat_id: int, text: str, **_: Any) -> SimpleNamespace:
        """Record a new message (the first one waits until released)."""
        if not self.texts:
            self.sending.set()
            await self.release.wait()
        message_id = next(self._ids)
        self.texts[message_id] = text
        return SimpleNamespace(message_id=message_id)

    async def edit_message_text(self, text: str, *, message_id: int, **_: Any) -> None:
        """Replace a message's text."""
        self.texts[message_id] = text


@pytest.mark.timeout(10)
async def test_final_frame_queued_during_a_split_step_is_delivered() -> None:
    """The final text is shown in full even if it was queued while a frame was being split."""
    bot = HoldingBot()
    answer = "word " * 1200  # about 6,000 characters: two messages
    async with SendScheduler(limits=ROOMY, clock=MonotonicClock()) as scheduler:
        chain = MessageChain(bot, 42)  # type: ignore[arg-type]
        reply = TelegramReply(chain, scheduler.open_stream(42), lang="en")
        reply.update(StreamState(answer=answer))
        await asyncio.wait_for(bot.sending.wait(), 5)  # the first part of the split is in flight
        finish = asyncio.create_task(
            reply.finish(StreamState(answer=answer + "end"), Outcome.COMPLETED)
        )
        await asyncio.sleep(0.05)  # the final frame is queued meanwhile
        bot.release.set()
        await asyncio.wait_for(finish, 5)
    whole = compose_reply(answer + "end", partial=False, strings=ReplyStrings())
    assert len(bot.texts) == 2
    assert "".join(bot.texts[i] for i in sorted(bot.texts)) == whole.text


@pytest.mark.timeout(10)
async def test_chain_counts_the_sends_its_final_still_needs() -> None:
    """sends_owed: 2 while one message holds the reply (final + a continuation); one more per
    part still to freeze once the text outgrows a message; 2 again once it is frozen."""
    bot = HoldingBot()
    bot.release.set()
    chain = MessageChain(bot, 42)  # type: ignore[arg-type]
    short = compose_reply("word " * 100, partial=True, strings=ReplyStrings())
    assert await chain.step(short)
    assert chain.sends_owed == 2
    long = compose_reply("word " * 1200, partial=True, strings=ReplyStrings())
    assert not await chain.step(long)  # this step froze the first message
    assert chain.sends_owed == 3  # computed before the call: the first part was still to freeze
    assert await chain.step(long)  # the continuation
    assert chain.sends_owed == 2
    assert len(bot.texts) == 2
