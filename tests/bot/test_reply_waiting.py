"""While no chunk has come, the reply shows how long it has waited, on the handle's clock."""

from __future__ import annotations

from typing import Any

from bot.conversation.turn import StreamState
from bot.reply.chain import MessageChain
from bot.reply.stream import TelegramReply
from bot.scheduler.clock import FakeClock
from bot.texts import t
from tests.bot.test_reply_frames import RecordingHandle

EVERY = 10.0


class EditBot:
    """A Bot stand-in that accepts any new message (id 1) and any edit."""

    async def send_message(self, chat_id: int, text: str, **_: Any) -> Any:
        """Pretend to send; message id 1."""
        return type("M", (), {"message_id": 1})()

    async def edit_message_text(self, text: str, **_: Any) -> bool:
        """Pretend to edit."""
        return True


def waiting_reply(clock: FakeClock) -> tuple[TelegramReply, RecordingHandle]:
    """A reply without drafts whose waiting text updates every EVERY virtual seconds."""
    handle = RecordingHandle(clock=clock)
    chain = MessageChain(EditBot(), 5)  # type: ignore[arg-type]
    reply = TelegramReply(chain, handle, lang="en", waiting_every=EVERY)  # type: ignore[arg-type]
    return reply, handle


def frames(handle: RecordingHandle) -> list[Any]:
    """The submitted frames that are not chat actions."""
    return [frame for frame, kind in handle.submitted if kind != "action"]


async def test_waiting_text_counts_up_until_the_first_chunk() -> None:
    """A frame at 10 s shows "waiting… 10 s"; sent late, the queued frame shows the newest
    count; after the first chunk the answer replaces it and the count stops."""
    clock = FakeClock()
    reply, handle = waiting_reply(clock)
    await reply.begin()
    await clock.advance(EVERY - 1)
    assert frames(handle) == [], "nothing before the first interval"
    await clock.advance(1)
    assert len(frames(handle)) == 1 and handle.times[-1] == EVERY
    await clock.advance(EVERY)
    assert len(frames(handle)) == 1, "one frame queued at a time"
    await handle.send(frames(handle)[0])
    assert reply.chain.sent[0].text == t("waiting", "en", seconds=20)
    state = StreamState()
    state.answer = "The answer."
    reply.update(state)
    await handle.send(frames(handle)[-1])
    assert reply.chain.sent[0].text == "The answer."
    await clock.advance(3 * EVERY)
    assert clock.next_deadline() is None, "the waiting loop has ended"
    await reply.abandon()


async def test_no_waiting_text_when_the_answer_comes_first() -> None:
    """A chunk before the first interval: no waiting frame ever, and the loop ends."""
    clock = FakeClock()
    reply, handle = waiting_reply(clock)
    await reply.begin()
    state = StreamState()
    state.reasoning = "thinking"
    reply.update(state)
    submitted = len(frames(handle))
    await clock.advance(2 * EVERY)
    assert len(frames(handle)) == submitted
    await reply.abandon()
    assert clock.next_deadline() is None


async def test_without_waiting_every_there_is_no_waiting_loop() -> None:
    """``waiting_every=None`` (the constructor's default) starts no waiting loop."""
    clock = FakeClock()
    handle = RecordingHandle(clock=clock)
    reply = TelegramReply(MessageChain(EditBot(), 5), handle, lang="zh")  # type: ignore[arg-type]
    await reply.begin()
    await clock.advance(5 * EVERY)
    assert frames(handle) == []
    await reply.abandon()
