"""End to end: /settings and group switches outlive an idle conversation while their owner is
active anywhere; presses on menus too old for the bot to read change nothing."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest
import redis.asyncio as redis

from bench.fake_openai import Answer
from bench.fake_telegram import BOT_USERNAME
from bench.loopback import running_bot
from bot.texts import t
from tests.e2e.conftest import BotRunner, World, history_of, settle

pytestmark = pytest.mark.timeout(30)

GROUP = -100900
USER, IDLE, ADMIN = 901, 902, 903
TTL = 3  # seconds: HISTORY_TTL_SECONDS for the expiry test (the setting's floor is 60)
MENU = 5  # message id of the menu too old to read
REASONING = "I weigh the question step by step before I answer it. " * 2


async def hide_reasoning(world: World, user_id: int) -> None:
    """``user_id`` opens /settings in their private chat and presses "hide reasoning"."""
    presses = len(world.telegram.calls_of("answerCallbackQuery"))
    world.telegram.push_text(chat_id=user_id, user_id=user_id, text="/settings")
    await settle(lambda: any(m.reply_markup for m in world.telegram.bot_messages(user_id)))
    menu = next(m for m in world.telegram.bot_messages(user_id) if m.reply_markup)
    data = menu.reply_markup["inline_keyboard"][0][0]["callback_data"]
    assert data.endswith("reasoning|hide")
    world.telegram.push_callback(
        chat_id=user_id, user_id=user_id, message_id=menu.message_id, data=data
    )
    await settle(lambda: len(world.telegram.calls_of("answerCallbackQuery")) > presses)


async def asked_model(world: World, *, times: int) -> None:
    """Wait until the model has been asked ``times`` questions."""
    await settle(lambda: len(world.openai.requests) == times)


def last_text(world: World, chat_id: int) -> str:
    """The text of the bot's newest message in ``chat_id`` ("" when none)."""
    messages = world.telegram.bot_messages(chat_id)
    return messages[-1].text if messages else ""


async def test_settings_outlive_the_ttl_while_their_owner_is_active_in_a_group(
    world: World,
) -> None:
    """With HISTORY_TTL_SECONDS = 3: a user who hid reasoning in private and then only asks
    in a group keeps it past the TTL, and the group keeps its /shared switch; a user idle
    since hiding it gets reasoning shown again."""
    settings = world.settings().model_copy(update={"history_ttl_seconds": TTL})
    world.telegram.admins.add(ADMIN)
    async with running_bot(settings):
        await hide_reasoning(world, USER)
        await hide_reasoning(world, IDLE)
        world.telegram.push_text(
            chat_id=GROUP, user_id=ADMIN, text="/shared", chat_type="supergroup"
        )
        await settle(lambda: last_text(world, GROUP) == t("shared_on", "en"))
        set_at, asked = time.monotonic(), 0
        while time.monotonic() - set_at < TTL + 1.5:  # USER asks in the group only
            world.telegram.push_text(
                chat_id=GROUP,
                user_id=USER,
                chat_type="supergroup",
                text=f"@{BOT_USERNAME} question {asked}",
            )
            asked += 1
            await asked_model(world, times=asked)
            await asyncio.sleep(0.5)
        world.openai.script += [
            Answer("Group answer.", reasoning=REASONING),
            Answer("Private answer.", reasoning=REASONING),
        ]
        world.telegram.push_text(
            chat_id=GROUP, user_id=USER, chat_type="supergroup", text=f"@{BOT_USERNAME} think"
        )
        await settle(lambda: last_text(world, GROUP).endswith("Group answer."))
        world.telegram.push_text(chat_id=IDLE, user_id=IDLE, text="think")
        await settle(lambda: last_text(world, IDLE).endswith("Private answer."))
    assert last_text(world, GROUP) == "Group answer.", "USER's hidden reasoning was kept"
    assert last_text(world, IDLE).startswith("Thought for"), "IDLE's setting expired"
    shared = await history_of(world.redis_url, f"c:{GROUP}")
    assert [e["content"] for e in shared[-2:]] == ["think", "Group answer."], (
        "the group's shared switch was kept"
    )


def press_on_inaccessible_menu(
    world: World, *, chat: dict[str, Any], user_id: int, data: str, language_code: str
) -> None:
    """Queue a button press whose message the bot can no longer read: Telegram sends an
    ``InaccessibleMessage`` (``date`` 0; Bot API "MaybeInaccessibleMessage")."""
    world.telegram.push_update(
        {
            "callback_query": {
                "id": f"old-{user_id}-{data}",
                "chat_instance": "ci",
                "data": data,
                "from": {
                    "id": user_id,
                    "is_bot": False,
                    "first_name": "U",
                    "language_code": language_code,
                },
                "message": {"chat": chat, "message_id": MENU, "date": 0},
            }
        }
    )


async def test_a_press_on_a_menu_too_old_to_read_changes_nothing(
    world: World, bot: BotRunner, caplog: pytest.LogCaptureFixture
) -> None:
    """A /model press in a group and a /settings press in private on messages the bot can no
    longer read are answered "too old" (in the user's language), raise no error and change
    neither the model nor the setting."""
    group = {"id": GROUP, "type": "supergroup", "title": "Class"}
    private = {"id": USER, "type": "private", "first_name": "U"}
    async with bot():
        press_on_inaccessible_menu(
            world, chat=group, user_id=USER, language_code="en", data=f"m|{USER}|local:model-b"
        )
        press_on_inaccessible_menu(
            world, chat=private, user_id=USER, language_code="zh", data=f"s|{USER}|reasoning|hide"
        )
        await settle(lambda: len(world.telegram.calls_of("answerCallbackQuery")) == 2)
        world.telegram.push_text(
            chat_id=GROUP,
            user_id=USER,
            chat_type="supergroup",
            text=f"@{BOT_USERNAME} which model?",
        )
        await settle(lambda: len(world.openai.requests) == 1)
    answers = {
        (c.params["text"], c.params.get("show_alert"))
        for c in world.telegram.calls_of("answerCallbackQuery")
    }
    assert answers == {
        (t("menu_too_old", "en", command="/model"), True),
        (t("menu_too_old", "zh", command="/settings"), True),
    }
    assert not [c for c in world.telegram.calls if c.params.get("message_id") == MENU], (
        "the old menu was not touched"
    )
    assert world.openai.requests[0]["model"] == "model-a"
    client = redis.from_url(world.redis_url)
    try:
        assert await client.exists(f"cb:{{u:{USER}}}:settings") == 0
    finally:
        await client.aclose()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
