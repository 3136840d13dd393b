"""End to end: a conversation through the real Application, the fake Bot API and a fake model."""

from __future__ import annotations

import asyncio

import pytest

from bench.fake_openai import Answer, Failure, default_answer
from bot.render.markdown import ReplyStrings, compose_reply, split_rendered
from bot.texts import t
from tests.e2e.conftest import BotRunner, World, history_of, settle, stored_history

pytestmark = pytest.mark.timeout(30)

CHAT = 501
USER = 501


def rendered_parts(markdown: str) -> list[tuple[str, list[dict[str, object]]]]:
    """The (text, entities) of each message the bot should end with for ``markdown``."""
    strings = ReplyStrings(thinking=t("thinking", "en"), thought_for=t("thought_for", "en"))
    whole = compose_reply(markdown, partial=False, strings=strings)
    return [(p.text, [e.to_dict() for e in p.entities]) for p in split_rendered(whole)]


async def test_text_message_gets_one_streamed_reply(world: World, bot: BotRunner) -> None:
    """A text message gets one reply whose final text and entities equal the rendered answer.

    The model takes 0.4 s to start, so ``typing`` shows meanwhile.
    """
    answer = "Hello **world**, here is `code` and 你好 😀.\n\n1. first\n2. second"
    world.openai.script.append(Answer(answer, piece=4, delay=0.01, first_delay=0.4))
    async with bot():
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="hi there")
        await settle(
            lambda: (
                len(world.openai.answers) == 1
                and bool(world.telegram.bot_messages(CHAT))
                and world.telegram.bot_messages(CHAT)[-1].text == rendered_parts(answer)[0][0]
            )
        )
        await asyncio.sleep(0.2)
    messages = world.telegram.bot_messages(CHAT)
    assert [(m.text, m.entities) for m in messages] == rendered_parts(answer)
    assert world.telegram.calls_of("sendChatAction"), "typing was shown first"
    history = await stored_history(world.redis_url, f"u:{USER}", 2)
    assert [(m["role"], m["content"]) for m in history] == [
        ("user", "hi there"),
        ("assistant", answer),
    ]


async def test_reset_empties_history(world: World, bot: BotRunner) -> None:
    """/reset clears the stored conversation and confirms."""
    async with bot():
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="remember me")
        await settle(lambda: len(world.openai.answers) == 1)
        assert len(await stored_history(world.redis_url, f"u:{USER}", 2)) == 2
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="/reset")
        await settle(
            lambda: any(m.text == t("reset_done", "en") for m in world.telegram.bot_messages(CHAT))
        )
    assert await history_of(world.redis_url, f"u:{USER}") == []


async def test_model_button_changes_model(world: World, bot: BotRunner) -> None:
    """/model then a button press changes the model the provider receives."""
    async with bot():
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="/model")
        await settle(lambda: any(m.reply_markup for m in world.telegram.bot_messages(CHAT)))
        menu = next(m for m in world.telegram.bot_messages(CHAT) if m.reply_markup)
        buttons = [b for row in menu.reply_markup["inline_keyboard"] for b in row]
        target = next(b for b in buttons if "model-b" in b["text"])
        world.telegram.push_callback(
            chat_id=CHAT, user_id=USER, message_id=menu.message_id, data=target["callback_data"]
        )
        await settle(lambda: bool(world.telegram.calls_of("answerCallbackQuery")))
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="which model?")
        await settle(lambda: len(world.openai.requests) == 1)
    assert world.openai.requests[0]["model"] == "model-b"


async def test_button_press_by_someone_else_is_refused(world: World, bot: BotRunner) -> None:
    """A press on another user's /model menu is refused with an alert and changes nothing."""
    async with bot():
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="/model")
        await settle(lambda: any(m.reply_markup for m in world.telegram.bot_messages(CHAT)))
        menu = next(m for m in world.telegram.bot_messages(CHAT) if m.reply_markup)
        data = menu.reply_markup["inline_keyboard"][-1][0]["callback_data"]
        world.telegram.push_callback(
            chat_id=CHAT, user_id=999, message_id=menu.message_id, data=data
        )
        await settle(lambda: bool(world.telegram.calls_of("answerCallbackQuery")))
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="still a?")
        await settle(lambda: len(world.openai.requests) == 1)
    call = world.telegram.calls_of("answerCallbackQuery")[0]
    assert call.params["show_alert"] is True
    assert call.params["text"] == t("not_your_menu", "en")
    assert world.openai.requests[0]["model"] == "model-a"


async def test_back_to_back_messages_answered_in_order(world: World, bot: BotRunner) -> None:
    """Two messages back to back are answered in order, the second with the first in context."""
    world.openai.script += [Answer("first answer", piece=2, delay=0.02), Answer("second answer")]
    async with bot():
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="question one")
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="question two")
        await settle(
            lambda: (
                len(world.openai.requests) == 2
                and len(world.telegram.bot_messages(CHAT)) == 2
                and world.telegram.bot_messages(CHAT)[-1].text == "second answer"
            )
        )
    first, second = world.openai.requests
    assert first["messages"][-1]["content"] == "question one"
    assert [m["content"] for m in second["messages"][1:]] == [
        "question one",
        "first answer",
        "question two",
    ]
    assert [m.text for m in world.telegram.bot_messages(CHAT)] == ["first answer", "second answer"]


async def test_provider_500_gives_clear_message_and_stores_nothing(
    world: World, bot: BotRunner
) -> None:
    """A provider 500 (after retries) yields the clear message and no stored turn."""
    world.openai.script += [Failure(500, message="boom")] * 3
    async with bot():
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="will fail")
        await settle(
            lambda: any(
                m.text == t("error_server", "en") for m in world.telegram.bot_messages(CHAT)
            )
        )
    assert len(world.openai.requests) == 3, "two retries after the first failure"
    assert await history_of(world.redis_url, f"u:{USER}") == []


async def test_new_application_continues_conversation(world: World, bot: BotRunner) -> None:
    """A new Application on the same Redis continues the conversation."""
    world.openai.script.append(Answer("I will remember 42."))
    async with bot():
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="remember 42")
        await settle(
            lambda: any(m.text == "I will remember 42." for m in world.telegram.bot_messages(CHAT))
        )
        await asyncio.sleep(0.1)
    async with bot():
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="what number?")
        await settle(lambda: len(world.openai.requests) == 2)
    contents = [m["content"] for m in world.openai.requests[1]["messages"]]
    assert contents[1:] == ["remember 42", "I will remember 42.", "what number?"]


async def test_chinese_language_code_gets_chinese_texts(world: World, bot: BotRunner) -> None:
    """A user whose language_code is zh gets the Chinese texts."""
    async with bot():
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="/reset", language_code="zh-hans")
        await settle(lambda: bool(world.telegram.bot_messages(CHAT)))
    assert world.telegram.bot_messages(CHAT)[0].text == t("reset_done", "zh")


async def test_default_answer_renders_in_full(world: World, bot: BotRunner) -> None:
    """The default fake answer (lists, code, Chinese, emoji) arrives as its rendering."""
    async with bot():
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="echo")
        expected = rendered_parts(default_answer({"messages": [{"content": "echo"}]}))
        await settle(
            lambda: [(m.text, m.entities) for m in world.telegram.bot_messages(CHAT)] == expected
        )
