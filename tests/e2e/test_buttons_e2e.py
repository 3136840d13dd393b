"""End to end: every button press is answered (answerCallbackQuery), whatever its data, and
a repeated or racing press on a /model or /settings menu is harmless."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bench.fake_telegram import Call, StoredMessage
from bot.texts import t
from tests.e2e.conftest import BotRunner, World, settle

pytestmark = pytest.mark.timeout(30)

CHAT = USER = 1301
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)


async def open_menu(world: World, command: str) -> StoredMessage:
    """USER sends ``command`` (/model, /settings); returns the menu the bot posts."""
    world.telegram.push_text(chat_id=CHAT, user_id=USER, text=command)
    await settle(lambda: any(m.reply_markup for m in world.telegram.bot_messages(CHAT)))
    return next(m for m in world.telegram.bot_messages(CHAT) if m.reply_markup)


def button(menu: StoredMessage, label_part: str) -> str:
    """The callback data of the menu's button whose label contains ``label_part``."""
    buttons = [b for row in menu.reply_markup["inline_keyboard"] for b in row]
    return str(next(b for b in buttons if label_part in b["text"])["callback_data"])


async def press(world: World, menu: StoredMessage, data: str) -> None:
    """USER presses a button with ``data`` on ``menu``; waits until the press is answered."""
    answered = len(world.telegram.calls_of("answerCallbackQuery"))
    world.telegram.push_callback(chat_id=CHAT, user_id=USER, message_id=menu.message_id, data=data)
    await settle(lambda: len(world.telegram.calls_of("answerCallbackQuery")) > answered)


def menu_edits(world: World, menu: StoredMessage, method: str) -> list[Call]:
    """The ``method`` calls (editMessageText, editMessageReplyMarkup) that edit ``menu``."""
    return [
        c for c in world.telegram.calls_of(method) if int(c.params["message_id"]) == menu.message_id
    ]


def error_free(world: World, caplog: pytest.LogCaptureFixture) -> bool:
    """True when the chat shows no "something went wrong" and nothing was logged as an error."""
    generic = t("error_generic", "en")
    return all(m.text != generic for m in world.telegram.bot_messages(CHAT)) and not [
        r for r in caplog.records if r.levelno >= logging.ERROR
    ]


async def test_unknown_and_garbled_button_data_is_answered(
    world: World, bot: BotRunner, caplog: pytest.LogCaptureFixture
) -> None:
    """Presses with data no menu knows (garbled, an old format, a /model or /settings press
    without an owner, an unknown setting) are each answered "this button no longer works"
    and change nothing."""
    garbled = [
        "zzz",
        "model:local:model-b",
        "m|local:model-b",
        "s|reasoning|hide",
        f"s|{USER}|colour|red",
        f"s|{USER}|reasoning|loud",
        "",
        "m|",
    ]
    async with bot():
        menu = await open_menu(world, "/model")
        for data in garbled:
            await press(world, menu, data)
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="which model?")
        await settle(lambda: len(world.openai.requests) == 1)
    answers = world.telegram.calls_of("answerCallbackQuery")
    assert [(c.params["text"], c.params["show_alert"]) for c in answers] == [
        (t("button_unknown", "en"), True)
    ] * len(garbled)
    assert not menu_edits(world, menu, "editMessageText")
    assert not menu_edits(world, menu, "editMessageReplyMarkup")
    assert world.openai.requests[0]["model"] == "model-a"
    assert error_free(world, caplog)


async def test_the_same_model_button_twice_changes_once(
    world: World, bot: BotRunner, caplog: pytest.LogCaptureFixture
) -> None:
    """Pressing the same /model button twice changes the model and the menu once; the second
    press is answered "already selected" and posts no error (Telegram would refuse an edit
    to the same content, so one is queued to fail with "message is not modified")."""
    async with bot():
        menu = await open_menu(world, "/model")
        data = button(menu, "model-b")
        await press(world, menu, data)
        await settle(lambda: bool(menu_edits(world, menu, "editMessageText")))
        world.telegram.inject("editMessageText", status=400, description=NOT_MODIFIED)
        await press(world, menu, data)
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="which model?")
        await settle(lambda: len(world.openai.requests) == 1)
        await asyncio.sleep(0.1)
    first, second = world.telegram.calls_of("answerCallbackQuery")
    assert first.params["text"] == t("model_set", "en", model="model-b")
    assert second.params["text"] == t("model_already", "en", model="model-b")
    (edit,) = menu_edits(world, menu, "editMessageText")
    assert edit.error_code is None
    assert world.openai.requests[0]["model"] == "model-b"
    assert error_free(world, caplog)


async def test_an_edit_refused_as_not_modified_is_harmless(
    world: World, bot: BotRunner, caplog: pytest.LogCaptureFixture
) -> None:
    """When the menu edit after a model change is refused "message is not modified" (two
    presses racing), the change holds, the press is answered and no error is posted."""
    async with bot():
        menu = await open_menu(world, "/model")
        world.telegram.inject("editMessageText", status=400, description=NOT_MODIFIED)
        await press(world, menu, button(menu, "model-b"))
        await settle(lambda: bool(menu_edits(world, menu, "editMessageText")))
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="which model?")
        await settle(lambda: len(world.openai.requests) == 1)
        await asyncio.sleep(0.1)
    (answer,) = world.telegram.calls_of("answerCallbackQuery")
    assert answer.params["text"] == t("model_set", "en", model="model-b")
    assert [c.error_code for c in menu_edits(world, menu, "editMessageText")] == [400]
    assert world.openai.requests[0]["model"] == "model-b"
    assert error_free(world, caplog)


async def test_the_same_settings_toggle_twice_edits_once(
    world: World, bot: BotRunner, caplog: pytest.LogCaptureFixture
) -> None:
    """A double tap on "hide reasoning" saves the setting, edits the menu once and answers
    both presses, with no error."""
    async with bot():
        menu = await open_menu(world, "/settings")
        data = button(menu, "")
        assert data.endswith("reasoning|hide")
        await press(world, menu, data)
        await settle(lambda: bool(menu_edits(world, menu, "editMessageReplyMarkup")))
        world.telegram.inject("editMessageReplyMarkup", status=400, description=NOT_MODIFIED)
        await press(world, menu, data)
        await asyncio.sleep(0.1)
    answers = world.telegram.calls_of("answerCallbackQuery")
    assert [c.params["text"] for c in answers] == [t("settings_saved", "en")] * 2
    (edit,) = menu_edits(world, menu, "editMessageReplyMarkup")
    assert edit.error_code is None
    assert (
        world.telegram.bot_messages(CHAT)[0]
        .reply_markup["inline_keyboard"][0][0]["callback_data"]
        .endswith("reasoning|show")
    )
    assert error_free(world, caplog)
