"""End to end through the fake Bot API: who may use the bot (ALLOWED_USER_IDS,
ADMIN_USER_IDS, ALLOWED_CHAT_IDS, UNLISTED_CHAT_ACTION; handlers.access)."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from bench.fake_openai import Answer
from bench.fake_telegram import BOT_ID, BOT_USERNAME
from bot.texts import t
from tests.e2e.conftest import BotRunner, World, replied, settle

pytestmark = pytest.mark.timeout(30)

USER, OPERATOR, STRANGER, ZH_STRANGER = 801, 802, 803, 804
LISTED, UNLISTED = -1000000000801, -1000000000802
ASK = f"@{BOT_USERNAME} what is 2+2?"
QUIET = 0.3
"""Seconds after a sync point in which an update the bot must not answer would have been
answered (each update here takes a few milliseconds)."""


def _access_records(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == "handlers.access" and r.levelno == level
    ]


async def test_a_stranger_in_private_is_told_their_id(world: World, bot: BotRunner) -> None:
    """A user outside ALLOWED_USER_IDS gets their numeric id in their language; nothing
    reaches the model."""
    async with bot(allowed_user_ids=[USER]):
        world.telegram.push_text(chat_id=STRANGER, user_id=STRANGER, text="/start")
        world.telegram.push_text(
            chat_id=ZH_STRANGER, user_id=ZH_STRANGER, text="你好", language_code="zh-hans"
        )
        await settle(lambda: replied(world, STRANGER, t("not_allowed", "en", user_id=STRANGER)))
        await settle(
            lambda: replied(world, ZH_STRANGER, t("not_allowed", "zh", user_id=ZH_STRANGER))
        )
    assert f"your id {STRANGER} to its operator" in world.telegram.bot_messages(STRANGER)[0].text
    assert [len(world.telegram.bot_messages(c)) for c in (STRANGER, ZH_STRANGER)] == [1, 1]
    assert not world.openai.requests


async def test_an_operator_outside_allowed_user_ids_is_answered(
    world: World, bot: BotRunner
) -> None:
    """ADMIN_USER_IDS are let in though ALLOWED_USER_IDS does not name them."""
    world.openai.script.append(Answer("Four."))
    async with bot(allowed_user_ids=[USER], admin_user_ids=[OPERATOR]):
        world.telegram.push_text(chat_id=OPERATOR, user_id=OPERATOR, text="what is 2+2?")
        await settle(lambda: replied(world, OPERATOR, "Four."))
    assert [r["messages"][-1]["content"] for r in world.openai.requests] == ["what is 2+2?"]


async def test_an_unlisted_group_is_ignored_and_a_listed_one_answered(
    world: World, bot: BotRunner, caplog: pytest.LogCaptureFixture
) -> None:
    """With ALLOWED_CHAT_IDS, an unlisted group gets nothing (an operator included), the
    bot stays in it and logs its id once; in a listed group a member outside
    ALLOWED_USER_IDS is answered."""
    caplog.set_level(logging.INFO)
    world.openai.script.append(Answer("Four, in the listed group."))
    async with bot(allowed_chat_ids=[LISTED], allowed_user_ids=[USER], admin_user_ids=[OPERATOR]):
        world.telegram.push_text(chat_id=UNLISTED, user_id=USER, text=ASK, chat_type="supergroup")
        world.telegram.push_text(
            chat_id=UNLISTED, user_id=OPERATOR, text="/help", chat_type="supergroup"
        )
        world.telegram.push_text(chat_id=LISTED, user_id=STRANGER, text=ASK, chat_type="supergroup")
        await settle(lambda: replied(world, LISTED, "Four, in the listed group."))
        await asyncio.sleep(QUIET)
    assert not world.telegram.bot_messages(UNLISTED)
    assert not world.telegram.calls_of("leaveChat")
    assert len(world.openai.requests) == 1
    noted = [m for m in _access_records(caplog, logging.INFO) if str(UNLISTED) in m]
    assert noted == [f"chat {UNLISTED} (supergroup) is not in ALLOWED_CHAT_IDS: ignoring it"]


async def test_leave_says_goodbye_and_leaves_once(world: World, bot: BotRunner) -> None:
    """UNLISTED_CHAT_ACTION=leave: of three updates from an unlisted group, one message
    with the chat's id and one leaveChat; added back, the bot leaves again."""
    added_back = {
        "message": {
            "message_id": 950,
            "date": int(time.time()),
            "chat": {"id": UNLISTED, "type": "supergroup", "title": "Class"},
            "from": {"id": USER, "is_bot": False, "first_name": "U"},
            "new_chat_members": [
                {"id": BOT_ID, "is_bot": True, "first_name": "Bot", "username": BOT_USERNAME}
            ],
        }
    }
    goodbye = t("chat_not_allowed", "en", chat_id=UNLISTED)
    async with bot(allowed_chat_ids=[LISTED], unlisted_chat_action="leave"):
        for _ in range(3):
            world.telegram.push_text(
                chat_id=UNLISTED, user_id=USER, text=ASK, chat_type="supergroup"
            )
        await settle(lambda: len(world.telegram.calls_of("leaveChat")) == 1)
        await asyncio.sleep(QUIET)
        assert [m.text for m in world.telegram.bot_messages(UNLISTED)] == [goodbye]
        assert len(world.telegram.calls_of("leaveChat")) == 1
        world.telegram.push_update(added_back)
        await settle(lambda: len(world.telegram.calls_of("leaveChat")) == 2)
        await asyncio.sleep(QUIET)
    assert [m.text for m in world.telegram.bot_messages(UNLISTED)] == [goodbye, goodbye]
    leaves = world.telegram.calls_of("leaveChat")
    assert [int(c.params["chat_id"]) for c in leaves] == [UNLISTED, UNLISTED]
    assert all(c.error_code is None for c in leaves)
    assert not world.openai.requests
    assert str(UNLISTED) in goodbye


async def test_a_listed_group_that_becomes_a_supergroup_is_still_served(
    world: World, bot: BotRunner, caplog: pytest.LogCaptureFixture
) -> None:
    """After ``migrate_to_chat_id`` a listed group's supergroup is answered (not left), and
    a WARNING names the new id to add."""
    old, new = -801, -1000000000899
    world.openai.script.append(Answer("Still here."))
    async with bot(allowed_chat_ids=[old], unlisted_chat_action="leave"):
        world.telegram.push_update(
            {
                "message": {
                    "message_id": 960,
                    "date": int(time.time()),
                    "from": {"id": USER, "is_bot": False, "first_name": "A"},
                    "chat": {"id": old, "type": "group", "title": "Class"},
                    "migrate_to_chat_id": new,
                }
            }
        )
        await settle(lambda: any(str(new) in m for m in _access_records(caplog, logging.WARNING)))
        world.telegram.push_text(chat_id=new, user_id=USER, text=ASK, chat_type="supergroup")
        await settle(lambda: replied(world, new, "Still here."))
    assert not world.telegram.calls_of("leaveChat")
    (warning,) = [m for m in _access_records(caplog, logging.WARNING) if str(old) in m]
    assert f"add {new} to ALLOWED_CHAT_IDS" in warning


@pytest.mark.parametrize(
    ("overrides", "warned"),
    [
        ({}, "the bot is open to everyone"),
        ({"admin_user_ids": [OPERATOR]}, "the bot is open to everyone"),
        ({"allowed_chat_ids": [LISTED]}, "private chats are open to everyone"),
        ({"allowed_user_ids": [USER]}, None),
        ({"allowed_user_ids": [USER], "allowed_chat_ids": [LISTED]}, None),
    ],
)
async def test_the_open_to_everyone_warning_at_start(
    bot: BotRunner,
    caplog: pytest.LogCaptureFixture,
    overrides: dict[str, object],
    warned: str | None,
) -> None:
    """Open settings log one WARNING naming the settings to set when the bot starts;
    restricted ones log none."""
    caplog.set_level(logging.INFO)
    async with bot(**overrides):
        pass
    warnings = _access_records(caplog, logging.WARNING)
    if warned is None:
        assert warnings == []
    else:
        (line,) = warnings
        assert line.startswith(warned) and "ALLOWED_USER_IDS" in line
