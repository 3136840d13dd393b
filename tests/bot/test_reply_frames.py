"""The reply stream queues at most one frame per reply, however fast chunks arrive."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.delivery import MessageChain
from bot.reply import TelegramReply
from bot.turn import StreamState


@dataclass
class RecordingHandle:
    """A scheduler handle stand-in that records what is submitted."""

    submitted: list[tuple[Any, str]] = field(default_factory=list)
    send: Any = None
    chat_id: int = 5

    def submit(self, frame: Any, *, kind: str, send: Any) -> None:
        """Record the frame and its kind."""
        self.submitted.append((frame, kind))
        self.send = send


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
