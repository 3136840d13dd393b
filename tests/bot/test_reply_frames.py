"""The reply stream queues at most one frame per reply, and times "typing" on the handle's clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from bot.conversation.turn import StreamState
from bot.reply.chain import MessageChain
from bot.reply.stream import TYPING_AFTER, TYPING_EVERY, TelegramReply
from bot.scheduler.clock import FakeClock


@dataclass
class RecordingHandle:
    """A scheduler handle stand-in that records what is submitted, and when on its clock."""

    clock: FakeClock = field(default_factory=FakeClock)
    submitted: list[tuple[Any, str]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    send: Any = None
    chat_id: int = 5
    cancelled: bool = False
    sends_owed: int = 1

    def submit(self, frame: Any, *, kind: str, send: Any) -> None:
        """Record the frame, its kind and the clock's time."""
        self.submitted.append((frame, kind))
        self.times.append(self.clock.now())
        self.send = send

    def cancel(self) -> None:
        """Forget everything queued."""
        self.cancelled = True

    def set_sends_owed(self, sends: int) -> None:
        """Record the sends owed at the reply's end."""
        self.sends_owed = sends


class TextBot:
    """A Bot stand-in that accepts any edit or message."""

    async def send_message(self, chat_id: int, text: str, **_: Any) -> Any:
        """Pretend to send; message id 1."""
        return type("M", (), {"message_id": 1})()


async def test_thousand_chunks_queue_one_frame_until_it_is_sent() -> None:
    """1,000 updates queue one frame; once it is sent, the next update queues the next one."""
    handle = RecordingHandle()
    reply = TelegramReply(MessageChain(TextBot(), 5), handle, lang="en")  # type: ignore[arg-type]
    state = StreamState()
    for n in range(1000):
        state.answer += f"{n % 10}"
        reply.update(state)
    assert len(handle.submitted) == 1 and handle.submitted[0][1] == "first"
    await handle.send(handle.submitted[0][0])
    assert reply.chain.sent[0].text == state.answer, "the newest text went out"
    state.answer += "more"
    reply.update(state)
    reply.update(state)
    assert [kind for _, kind in handle.submitted] == ["first", "intermediate"]


async def test_typing_repeats_on_the_handle_clock_until_the_first_message() -> None:
    """Without drafts, typing is queued at TYPING_AFTER, then every TYPING_EVERY virtual
    seconds of the handle's clock, and stops once the first message exists."""
    clock = FakeClock()
    handle = RecordingHandle(clock=clock)
    reply = TelegramReply(MessageChain(TextBot(), 5), handle, lang="en")  # type: ignore[arg-type]
    await reply.begin()
    await clock.advance(TYPING_AFTER / 2)
    assert handle.submitted == [], "no typing before TYPING_AFTER"
    await clock.advance(TYPING_AFTER / 2 + 2 * TYPING_EVERY + 1.0)
    assert [kind for _, kind in handle.submitted] == ["action"] * 3
    assert handle.times == pytest.approx([TYPING_AFTER + k * TYPING_EVERY for k in range(3)])
    reply.chain.message_ids.append(1)  # the first message is out
    await clock.advance(TYPING_EVERY)
    assert len(handle.submitted) == 3, "no typing once a message shows the answer"
    assert clock.next_deadline() is None, "the typing loop has ended"
    await reply.abandon()
    assert handle.cancelled
