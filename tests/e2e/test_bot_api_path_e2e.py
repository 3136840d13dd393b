"""End to end: every Bot API call outside a reply stream (command replies, error notices,
button answers) takes the one path (bot.app.bot_api): retried after a 502, never sent twice
after a lost answer, and within the group's flood budget."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from bench.fake_telegram import Call
from bench.flood import FloodGate
from bot.scheduler.limits import TELEGRAM_LIMITS
from bot.texts import t
from tests.e2e.conftest import BotRunner, World, settle

pytestmark = pytest.mark.timeout(40)

USER = 901
GROUP = -100901
HELP = t("help", "en")

# Telegram's limits sped up six times (per chat 6/s, per group 120 a minute) on both sides,
# so twenty replies in one group fit in seconds.
SPED_UP = dataclasses.replace(TELEGRAM_LIMITS, per_chat_per_second=6.0, per_group_per_minute=120)
SPED_UP_BOT: dict[str, Any] = {"limit_per_chat_per_second": 6.0, "limit_per_group_per_minute": 120}


def texts(world: World, chat_id: int) -> list[str]:
    """The bot's messages in ``chat_id`` as the fake holds them, oldest first."""
    return [m.text for m in world.telegram.bot_messages(chat_id)]


def sends_to(world: World, chat_id: int) -> list[Call]:
    """The recorded ``sendMessage`` calls into ``chat_id``, in order."""
    calls = world.telegram.calls_of("sendMessage")
    return [c for c in calls if str(c.params.get("chat_id")) == str(chat_id)]


async def test_help_refused_once_with_502_arrives_once(world: World, bot: BotRunner) -> None:
    """/help whose reply Telegram answers 502 once: the reply is made again and the help
    text is in the chat exactly once."""
    world.telegram.inject("sendMessage", status=502, description="Bad Gateway")
    async with bot():
        world.telegram.push_text(chat_id=USER, user_id=USER, text="/help")
        await settle(lambda: texts(world, USER) == [HELP])
        await asyncio.sleep(0.3)  # nothing more comes
    assert texts(world, USER) == [HELP]
    assert [c.error_code for c in sends_to(world, USER)] == [502, None]


async def test_an_error_notice_that_meets_a_502_is_delivered_once(
    world: World, bot: BotRunner
) -> None:
    """A handler fails (its reply refused with 400), and the error notice meets a 502: the
    notice is made again and shown once; the refused reply is not repeated."""
    world.telegram.inject("sendMessage", status=400, description="Bad Request: chat not found")
    world.telegram.inject("sendMessage", status=502, description="Bad Gateway")
    async with bot():
        world.telegram.push_text(chat_id=USER, user_id=USER, text="/help")
        await settle(lambda: len(texts(world, USER)) == 1)
        await asyncio.sleep(0.3)
    assert texts(world, USER) == [t("error_generic", "en")]
    assert [c.error_code for c in sends_to(world, USER)] == [400, 502, None]


async def test_a_reply_whose_answer_is_lost_is_not_sent_twice(world: World, bot: BotRunner) -> None:
    """/help whose sendMessage Telegram carries out but answers after PTB's 5 s read timeout:
    not sent again (the help text is there once); the error notice after it goes through."""
    world.telegram.slow["sendMessage"] = 6.0
    async with bot():
        world.telegram.push_text(chat_id=USER, user_id=USER, text="/help")
        await settle(lambda: len(sends_to(world, USER)) == 1)
        world.telegram.slow.clear()  # the next calls are answered at once
        await settle(lambda: len(texts(world, USER)) == 2, within=15)
        await asyncio.sleep(0.3)
    assert texts(world, USER) == [HELP, t("error_generic", "en")]
    assert len(sends_to(world, USER)) == 2


async def test_a_button_answer_that_meets_a_502_is_answered(world: World, bot: BotRunner) -> None:
    """A button press whose answerCallbackQuery meets a 502: answered on the second call."""
    world.telegram.inject("answerCallbackQuery", status=502, description="Bad Gateway")
    async with bot():
        world.telegram.push_text(chat_id=USER, user_id=USER, text="/help")
        await settle(lambda: texts(world, USER) == [HELP])
        menu = world.telegram.bot_messages(USER)[0].message_id
        world.telegram.push_callback(chat_id=USER, user_id=USER, message_id=menu, data="zz|1")
        await settle(lambda: len(world.telegram.calls_of("answerCallbackQuery")) == 2)
        await asyncio.sleep(0.3)
    answers = world.telegram.calls_of("answerCallbackQuery")
    assert [c.error_code for c in answers] == [502, None]
    assert answers[1].params.get("text") == t("button_unknown", "en")


async def test_twenty_help_commands_in_a_group_within_a_second_draw_no_429(
    world: World, bot: BotRunner
) -> None:
    """Twenty /help commands from twenty users in one group within a second: every help
    text arrives, spread within the group's budget, and Telegram refuses nothing."""
    world.telegram.throttle = gate = FloodGate(SPED_UP)
    async with bot(**SPED_UP_BOT):
        for n in range(20):
            world.telegram.push_text(
                chat_id=GROUP, user_id=USER + n, chat_type="supergroup", text="/help"
            )
            await asyncio.sleep(0.04)
        await settle(lambda: len(texts(world, GROUP)) >= 20, within=25)
        await asyncio.sleep(0.3)
    assert texts(world, GROUP) == [HELP] * 20
    assert gate.rejected == {}, gate.violated
    assert not any(c.error_code for c in sends_to(world, GROUP))
