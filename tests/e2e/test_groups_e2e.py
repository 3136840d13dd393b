"""End to end in groups: the admins' shared-conversation switch and class Q&A threads."""

from __future__ import annotations

import asyncio
import time

import pytest

from bench.fake_openai import Answer
from bench.fake_telegram import BOT_USERNAME
from bot.texts import t
from tests.e2e.conftest import BotRunner, World, replied, settle

pytestmark = pytest.mark.timeout(30)

GROUP = -100700
ADMIN, MEMBER = 701, 702


async def test_only_admins_switch_and_shared_history_is_shared(
    world: World, bot: BotRunner
) -> None:
    """/shared is refused to a member, accepted from an admin; then members share one history."""
    world.telegram.admins.add(ADMIN)
    world.openai.script += [Answer("Noted: 7."), Answer("It was 7.")]
    async with bot():
        world.telegram.push_text(
            chat_id=GROUP, user_id=MEMBER, text="/shared", chat_type="supergroup"
        )
        await settle(lambda: replied(world, GROUP, t("shared_admins_only", "en")))
        world.telegram.push_text(
            chat_id=GROUP, user_id=ADMIN, text="/shared", chat_type="supergroup"
        )
        await settle(lambda: replied(world, GROUP, t("shared_on", "en")))
        world.telegram.push_text(
            chat_id=GROUP, user_id=ADMIN, chat_type="supergroup", text=f"@{BOT_USERNAME} remember 7"
        )
        await settle(lambda: replied(world, GROUP, "Noted: 7."))
        world.telegram.push_text(
            chat_id=GROUP,
            user_id=MEMBER,
            chat_type="supergroup",
            text=f"@{BOT_USERNAME} what number?",
        )
        await settle(lambda: replied(world, GROUP, "It was 7."))
    contents = [m["content"] for m in world.openai.requests[1]["messages"]]
    assert contents[1:] == ["remember 7", "Noted: 7.", "what number?"]


async def test_discussion_comment_carries_the_channel_post(world: World, bot: BotRunner) -> None:
    """A question under a channel post is asked with the post as context."""
    post = {
        "message_id": 40,
        "date": int(time.time()),
        "text": "Lecture 5: eigenvalues.",
        "chat": {"id": GROUP, "type": "supergroup", "title": "Course chat"},
        "is_automatic_forward": True,
        "sender_chat": {"id": -100999, "type": "channel", "title": "Course"},
    }
    question = {
        "message_id": 41,
        "date": int(time.time()),
        "message_thread_id": 40,
        "chat": {"id": GROUP, "type": "supergroup", "title": "Course chat"},
        "from": {"id": MEMBER, "is_bot": False, "first_name": "S"},
        "text": f"@{BOT_USERNAME} what is an eigenvalue?",
        "entities": [{"type": "mention", "offset": 0, "length": len(BOT_USERNAME) + 1}],
        "reply_to_message": post,
    }
    async with bot():
        world.telegram.push_update({"message": question})
        await settle(lambda: len(world.openai.requests) == 1)
    messages = world.openai.requests[0]["messages"]
    assert messages[1]["role"] == "system" and "Lecture 5: eigenvalues." in messages[1]["content"]
    assert messages[-1] == {"role": "user", "content": "what is an eigenvalue?"}


OLD_GROUP, NEW_GROUP = -700, -1000000000700


async def test_a_group_that_becomes_a_supergroup_keeps_its_conversations(
    world: World, bot: BotRunner
) -> None:
    """After ``migrate_to_chat_id``, a member's conversation goes on under the new id, even
    with an allow-list that does not name the admin who upgraded the group."""
    world.openai.script += [Answer("Noted: 7."), Answer("It was 7.")]
    admin = {"id": ADMIN, "is_bot": False, "first_name": "A"}
    async with bot(allowed_user_ids=[str(MEMBER)]):
        world.telegram.push_text(
            chat_id=OLD_GROUP, user_id=MEMBER, chat_type="group", text=f"@{BOT_USERNAME} remember 7"
        )
        await settle(lambda: replied(world, OLD_GROUP, "Noted: 7."))
        world.telegram.push_update(
            {
                "message": {
                    "message_id": 900,
                    "date": int(time.time()),
                    "from": admin,
                    "chat": {"id": OLD_GROUP, "type": "group", "title": "Class"},
                    "migrate_to_chat_id": NEW_GROUP,
                }
            }
        )
        await asyncio.sleep(0.3)  # the service message is handled before the next one
        world.telegram.push_text(
            chat_id=NEW_GROUP,
            user_id=MEMBER,
            chat_type="supergroup",
            text=f"@{BOT_USERNAME} what number?",
        )
        await settle(lambda: replied(world, NEW_GROUP, "It was 7."))
    contents = [m["content"] for m in world.openai.requests[1]["messages"]]
    assert contents[-3:] == ["remember 7", "Noted: 7.", "what number?"]


async def test_a_reply_streaming_when_the_group_migrates_goes_on_in_the_new_chat(
    world: World, bot: BotRunner
) -> None:
    """Telegram answers ChatMigrated: the reply starts over in the new supergroup and ends
    there with the whole answer."""
    answer = "This answer was asked in a group and ends in its supergroup."
    world.openai.script.append(Answer(answer, piece=8, delay=0.01))
    world.telegram.inject(
        "sendMessage",
        status=400,
        description="Bad Request: group chat was upgraded to a supergroup chat",
        parameters={"migrate_to_chat_id": NEW_GROUP},
    )
    async with bot():
        world.telegram.push_text(
            chat_id=OLD_GROUP, user_id=MEMBER, chat_type="group", text=f"@{BOT_USERNAME} tell me"
        )
        await settle(lambda: replied(world, NEW_GROUP, answer), within=10)
    assert world.telegram.injections[0].times == 0, "the first send met ChatMigrated"
    assert not world.telegram.bot_messages(OLD_GROUP)
    sent = [
        c
        for c in world.telegram.calls_of("sendMessage")
        if str(c.params.get("chat_id")) == str(NEW_GROUP)
    ]
    assert sent and "reply_parameters" not in sent[0].params
