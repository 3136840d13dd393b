"""The reply stream queues at most one frame per reply, however fast chunks arrive."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from bot.conversation.turn import StreamState
from bot.reply.chain import MessageChain
from bot.reply.stream import TelegramReply


@dataclass
class RecordingHandle:
    """A scheduler handle stand-in that records what is submitted."""

    submitted: list[tuple[Any, str]] = field(default_factory=list)
    send: Any = None
    chat_id: int = 5
    cancelled: bool = False
    sends_owed: int = 1

    def submit(self, frame: Any, *, kind: str, send: Any) -> None:
        """Record the frame and its kind."""
        self.submitted.append((frame, kind))
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


@pytest.mark.timeout(5)
async def test_typing_repeats_until_the_first_message(monkeypatch: Any) -> None:
    """Without drafts, typing is queued after TYPING_AFTER, again every few seconds until text."""
    import asyncio

    import bot.reply.stream

    monkeypatch.setattr(bot.reply.stream, "TYPING_EVERY", 0.01)
    monkeypatch.setattr(bot.reply.stream, "TYPING_AFTER", 0.02)
    handle = RecordingHandle()
    reply = TelegramReply(MessageChain(TextBot(), 5), handle, lang="en")  # type: ignore[arg-type]
    await reply.begin()
    await asyncio.sleep(0.01)
    assert not handle.submitted, "no typing before TYPING_AFTER"
    await asyncio.sleep(0.065)
    actions = [kind for _, kind in handle.submitted if kind == "action"]
    assert len(actions) >= 3, "typing is repeated while the model works"
    reply.chain.message_ids.append(1)  # the first message is out
    await asyncio.sleep(0.03)
    assert len([k for _, k in handle.submitted if k == "action"]) <= len(actions) + 1
    await reply.abandon()
    assert handle.cancelled
