"""The benchmark's fake flood limits: Telegram-like 429 decisions per chat, group and bot."""

from __future__ import annotations

import dataclasses

from bench.flood import FloodGate
from bot.scheduler.limits import TELEGRAM_LIMITS


def _send(gate: FloodGate, chat_id: int, at: float, method: str = "sendMessage") -> float | None:
    return gate(method, {"chat_id": chat_id, "text": "x"}, at)


def test_a_private_chat_gets_a_burst_of_three_then_one_per_second() -> None:
    """Three calls at once pass, the fourth is refused for about a second, then one passes."""
    gate = FloodGate(jitter=0.0)
    assert [_send(gate, 7, 0.0) for _ in range(3)] == [None, None, None]
    wait = _send(gate, 7, 0.0)
    assert wait is not None and 0.9 < wait <= 1.0
    assert _send(gate, 7, 1.0) is None
    assert _send(gate, 7, 1.5) is not None
    assert gate.rejected == {"sendMessage": 2} and gate.violated == {"chat": 2}


def test_a_group_allows_twenty_calls_per_minute_shared_by_all_replies() -> None:
    """Spaced 3 s apart a group takes 20 calls in a minute; a 21st within the minute is refused."""
    gate = FloodGate(jitter=0.0)
    assert all(_send(gate, -100, 3.0 * i, "editMessageText") is None for i in range(20))
    wait = _send(gate, -100, 59.5, "sendChatAction")
    assert wait is not None and wait > 0
    assert gate.violated.get("group") == 1
    assert _send(gate, -100, 60.0) is None  # the first call of the minute has expired


def test_the_bot_gets_bursts_of_ten_and_thirty_calls_per_second_across_chats() -> None:
    """Ten calls to ten chats at once pass, an eleventh is refused; no window holds 31 calls."""
    gate = FloodGate(jitter=0.0)
    assert all(_send(gate, 1000 + i, 0.0) is None for i in range(10))
    assert _send(gate, 2000, 0.0) is not None
    limits = dataclasses.replace(TELEGRAM_LIMITS, global_burst=100)  # only the 1 s window is left
    gate = FloodGate(limits, jitter=0.0)
    assert all(_send(gate, 1000 + i, 0.5) is None for i in range(30))
    assert _send(gate, 2000, 1.49) is not None
    assert _send(gate, 2000, 1.5) is None
    assert gate.violated == {"global": 1}


def test_jitter_forgives_a_call_that_arrives_slightly_early() -> None:
    """With 50 ms of jitter forgiven, a call 30 ms early passes; 80 ms early it is refused."""
    gate = FloodGate(jitter=0.05)
    for _ in range(3):
        assert _send(gate, 5, 0.0) is None
    assert _send(gate, 5, 0.97) is None
    assert _send(gate, 5, 1.92) is not None


def test_uncounted_methods_always_pass() -> None:
    """getUpdates, deleteMessage and the like are never refused nor counted."""
    gate = FloodGate(jitter=0.0)
    assert all(gate("deleteMessage", {"chat_id": 1}, 0.0) is None for _ in range(100))
    assert all(_send(gate, 1, 0.0) is None for _ in range(3))


def test_rich_messages_share_the_classic_buckets() -> None:
    """sendRichMessageDraft and sendRichMessage count in a chat's bucket like their classic
    twins: after two rich drafts and a message the chat's burst of three is spent."""
    gate = FloodGate(jitter=0.0)
    assert _send(gate, 9, 0.0, "sendRichMessageDraft") is None
    assert _send(gate, 9, 0.0, "sendRichMessageDraft") is None
    assert _send(gate, 9, 0.0) is None
    assert _send(gate, 9, 0.1, "sendRichMessage") is not None
    assert gate.rejected == {"sendRichMessage": 1}
