"""A sendMessage without an answer: never sent again when Telegram may have carried it out."""

from __future__ import annotations

import itertools
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from telegram.error import TimedOut

from bot.render.markdown import Rendered
from bot.reply.chain import MessageChain, unconfirmed


def timed_out(cause: Exception) -> TimedOut:
    """A ``TimedOut`` as PTB's ``HTTPXRequest`` raises it: ``raise TimedOut from cause``."""
    error = TimedOut()
    error.__cause__ = cause
    return error


class ScriptedBot:
    """A Bot stand-in: messages by id; ``send_message`` raises the scripted errors in turn
    (after carrying the send out when the error is a read timeout, as a slow Telegram does)."""

    def __init__(self, errors: list[TimedOut | None]) -> None:
        self.errors = errors
        self.texts: dict[int, str] = {}
        self.deleted: list[int] = []
        self._ids = itertools.count(1)

    async def send_message(self, chat_id: int, text: str, **_: Any) -> SimpleNamespace:
        """Record a new message, or raise the next scripted error."""
        error = self.errors.pop(0) if self.errors else None
        if error is None or isinstance(error.__cause__, httpx.ReadTimeout):
            message_id = next(self._ids)
            self.texts[message_id] = text
        if error is not None:
            raise error
        return SimpleNamespace(message_id=message_id)

    async def edit_message_text(self, text: str, *, message_id: int, **_: Any) -> None:
        """Replace a message's text."""
        self.texts[message_id] = text

    async def delete_message(self, chat_id: int, message_id: int) -> None:
        """Forget a message."""
        self.deleted.append(message_id)
        self.texts.pop(message_id)


def test_only_a_timeout_after_the_request_was_written_is_unconfirmed() -> None:
    """A read timeout may have been carried out; connect, pool and write timeouts cannot."""
    request = httpx.Request("POST", "http://bot.invalid/sendMessage")
    assert unconfirmed(timed_out(httpx.ReadTimeout("slow", request=request)))
    for cause in (httpx.ConnectTimeout, httpx.PoolTimeout, httpx.WriteTimeout):
        assert not unconfirmed(timed_out(cause("no", request=request)))


async def test_an_unconfirmed_live_message_is_frozen_and_the_rest_follows_once() -> None:
    """The first send times out after Telegram carried it out: it is not sent again nor
    edited; the final step sends only the text after it."""
    request = httpx.Request("POST", "http://bot.invalid/sendMessage")
    bot = ScriptedBot([timed_out(httpx.ReadTimeout("slow", request=request))])
    chain = MessageChain(bot, 7)  # type: ignore[arg-type]
    assert await chain.step(Rendered("one two"))
    assert chain.message_ids == [None] and chain.awaiting_final
    assert await chain.step(Rendered("one two three four"))
    assert list(bot.texts.values()) == ["one two", " three four"]
    assert chain.message_ids[0] is None and chain.message_ids[1] == 2


async def test_a_connect_timeout_raises_and_the_send_goes_once_on_the_next_step() -> None:
    """A send that never left raises (the caller retries); the retry sends it once."""
    request = httpx.Request("POST", "http://bot.invalid/sendMessage")
    bot = ScriptedBot([timed_out(httpx.ConnectTimeout("down", request=request))])
    chain = MessageChain(bot, 7)  # type: ignore[arg-type]
    with pytest.raises(TimedOut):
        await chain.step(Rendered("hello"))
    assert await chain.step(Rendered("hello"))
    assert list(bot.texts.values()) == ["hello"] and chain.message_ids == [1]
    assert not chain.awaiting_final


async def test_rewind_keeps_unconfirmed_messages_and_starts_after_them() -> None:
    """A retried stream cannot replace an unconfirmed message: it stays, the confirmed one
    after it is edited with the new text, later ones are deleted."""
    bot = ScriptedBot([])
    bot.texts = {1: "partial", 2: "second", 3: "third"}
    chain = MessageChain(bot, 7)  # type: ignore[arg-type]
    chain.message_ids, chain.frozen, chain.frozen_units = [None, 2, 3], 2, 13
    chain.sent = [Rendered("partial"), Rendered("second"), Rendered("third")]
    chain.awaiting_final = True
    await chain.rewind()
    assert bot.deleted == [3]
    assert chain.message_ids == [None, 2] and (chain.frozen, chain.frozen_units) == (1, 0)
    assert not chain.awaiting_final
    assert await chain.step(Rendered("a new attempt"))
    assert bot.texts == {1: "partial", 2: "a new attempt"}
