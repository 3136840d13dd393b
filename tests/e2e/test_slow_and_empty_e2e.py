"""End to end: a slow or silent model, and an empty answer.

- A model that never sends a first token is asked twice at most and the user hears the
  first-token-timeout message within 1.5 first-token timeouts.
- While the first token is awaited, the draft (or the message, without drafts) says how
  long the bot has waited, then the answer replaces it.
- An empty answer gets the empty_answer message once and leaves the history as it was.
- Every request carries max_tokens (MAX_TOKENS, 4096 by default).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from bench.fake_openai import Answer
from bench.fake_telegram import Call
from bot.conversation.scope import user_scope
from bot.texts import t
from tests.e2e.conftest import BotRunner, World, history_of, settle, stored_history

pytestmark = pytest.mark.timeout(30)

CHAT = USER = 623
SCOPE = user_scope(USER)  # a private chat's conversation
FAST: dict[str, Any] = {"limit_per_chat_per_second": 50.0}
WAITING_EVERY = 0.2  # seconds between two updates of the waiting text in these tests
WAITING = t("waiting", "en", seconds=0).split("0")[0].strip()  # "Waiting for the model…"


def chat_calls(world: World, method: str) -> list[Call]:
    """The recorded calls of ``method`` addressed to CHAT, in order."""
    return [c for c in world.telegram.calls_of(method) if str(c.params.get("chat_id")) == str(CHAT)]


def bot_texts(world: World) -> list[str]:
    """The texts of the bot's messages in CHAT, oldest first."""
    return [m.text for m in world.telegram.bot_messages(CHAT)]


async def test_silent_model_is_asked_twice_and_the_user_hears_the_timeout(
    world: World, bot: BotRunner
) -> None:
    """No first token: two requests at most, the timeout message within 1.5 timeouts."""
    timeout = 0.6
    world.openai.script += [Answer("late", first_delay=20), Answer("late", first_delay=20)]
    message = t("error_timeout", "en")
    async with bot(provider_first_token_timeout=timeout, **FAST):
        started = time.monotonic()
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="anyone there?")
        await settle(lambda: message in bot_texts(world), within=10)
        elapsed = time.monotonic() - started
        await settle(lambda: world.openai.disconnects == 2, within=5)
    assert len(world.openai.requests) == 2
    assert elapsed <= 1.5 * timeout + 0.5, elapsed
    assert bot_texts(world).count(message) == 1


async def test_waiting_draft_then_the_answer(world: World, bot: BotRunner) -> None:
    """With drafts, a first token later than the waiting interval shows a "waiting… N s"
    draft, then the answer replaces it as one final message."""
    world.openai.script.append(Answer("Here at last.", first_delay=0.9))
    async with bot(use_drafts=True, **FAST) as app:
        app.bot_data.services.replies.waiting_every = WAITING_EVERY
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="slow one")
        await settle(lambda: "Here at last." in bot_texts(world), within=10)
    drafts = chat_calls(world, "sendMessageDraft")
    texts = [str(c.params.get("text") or "") for c in drafts]
    waiting = [c for c, text in zip(drafts, texts, strict=True) if text.startswith(WAITING)]
    assert waiting, texts
    seconds = [int(str(c.params["text"]).removeprefix(WAITING).split()[0]) for c in waiting]
    assert seconds == sorted(seconds), "the count goes up"
    answer_drafts = [c for c, text in zip(drafts, texts, strict=True) if "Here" in text]
    final = chat_calls(world, "sendMessage")
    assert len(final) == 1
    assert all(c.at <= a.at for c in waiting for a in [*answer_drafts, *final])
    assert bot_texts(world) == ["Here at last."]
    assert not any(WAITING in text for text in bot_texts(world))


async def test_waiting_message_is_edited_into_the_answer(world: World, bot: BotRunner) -> None:
    """Without drafts, the waiting text is the reply's first message, and the answer is
    edited into that same message."""
    world.openai.script.append(Answer("Edited in.", first_delay=0.9))
    async with bot(use_drafts=False, **FAST) as app:
        app.bot_data.services.replies.waiting_every = WAITING_EVERY
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="slow one")
        await settle(lambda: bot_texts(world) == ["Edited in."], within=10)
    sends = chat_calls(world, "sendMessage")
    assert len(sends) == 1 and str(sends[0].params["text"]).startswith(WAITING)
    edits = [str(c.params["text"]) for c in chat_calls(world, "editMessageText")]
    assert edits[-1] == "Edited in."


async def test_fast_answer_shows_no_waiting_text(world: World, bot: BotRunner) -> None:
    """A first token sooner than the waiting interval: no waiting text at all."""
    world.openai.script.append(Answer("Quick."))
    async with bot(use_drafts=False, **FAST) as app:
        app.bot_data.services.replies.waiting_every = 2.0
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="fast one")
        await settle(lambda: bot_texts(world) == ["Quick."], within=10)
    texts = [str(c.params.get("text")) for c in world.telegram.calls if "text" in c.params]
    assert not any(WAITING in text for text in texts)


@pytest.mark.parametrize(
    "empty",
    [Answer(""), Answer(" \n "), Answer("", reasoning="thinking hard"), Answer("```\n```")],
    ids=["nothing", "whitespace", "only-reasoning", "empty-code-block"],
)
async def test_empty_answer_is_said_once_and_not_stored(
    world: World, bot: BotRunner, empty: Answer
) -> None:
    """An empty answer: the user reads the empty_answer message once; history keeps only
    the exchange before it."""
    world.openai.script += [Answer("A real answer."), empty]
    notice = t("empty_answer", "en")
    async with bot(**FAST):
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="first")
        await settle(lambda: "A real answer." in bot_texts(world))
        before = await stored_history(world.redis_url, SCOPE, 2)
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="second")
        await settle(lambda: any(notice in text for text in bot_texts(world)))
        after = await history_of(world.redis_url, SCOPE)
    assert [m["content"] for m in before] == ["first", "A real answer."]
    assert [m["content"] for m in after] == ["first", "A real answer."]
    assert sum(text.count(notice) for text in bot_texts(world)) == 1
    assert len(bot_texts(world)) == 2


async def test_requests_carry_max_tokens(world: World, bot: BotRunner) -> None:
    """Every chat-completions request carries max_tokens: MAX_TOKENS when set, else 4096."""
    async with bot(**FAST):
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="one")
        await settle(lambda: len(bot_texts(world)) == 1)
    async with bot(max_tokens=512, **FAST):
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="two")
        await settle(lambda: len(bot_texts(world)) == 2)
    assert [r.get("max_tokens") for r in world.openai.requests] == [4096, 512]
