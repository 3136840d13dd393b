"""End to end: message kinds the bot cannot read, and commands it does not know, get one
short answer (in groups only when addressed to the bot); commands for other bots get none."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest

from bench.fake_telegram import BOT_ID, BOT_USERNAME
from bot.texts import t
from tests.e2e.conftest import BotRunner, World, settle

pytestmark = pytest.mark.timeout(30)

USER = 1101
GROUP = -1001101
PRIVATE_CHATS = 1200  # kind number i is sent in private chat PRIVATE_CHATS + i
UNSUPPORTED = t("unsupported_kind", "en")

_LOCATION = {"latitude": 39.9906, "longitude": 116.3533}
_FILE = {"file_unique_id": "unique", "file_size": 2048}
KINDS: dict[str, dict[str, Any]] = {
    "sticker": {
        "sticker": {
            **_FILE,
            "file_id": "st",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": "👍",
        }
    },
    "voice": {"voice": {**_FILE, "file_id": "vo", "duration": 3, "mime_type": "audio/ogg"}},
    "audio": {"audio": {**_FILE, "file_id": "au", "duration": 180, "title": "Lecture"}},
    "video": {"video": {**_FILE, "file_id": "vi", "width": 640, "height": 360, "duration": 9}},
    "video_note": {"video_note": {**_FILE, "file_id": "vn", "length": 240, "duration": 5}},
    "animation": {  # Telegram sends a GIF as an animation and, for old clients, a document
        "animation": {**_FILE, "file_id": "an", "width": 320, "height": 240, "duration": 2},
        "document": {**_FILE, "file_id": "an", "file_name": "a.mp4", "mime_type": "video/mp4"},
    },
    "pdf": {
        "document": {
            **_FILE,
            "file_id": "pd",
            "file_name": "notes.pdf",
            "mime_type": "application/pdf",
        }
    },
    "location": {"location": _LOCATION},
    "venue": {
        "location": _LOCATION,
        "venue": {"location": _LOCATION, "title": "Library", "address": "30 Xueyuan Road"},
    },
    "contact": {"contact": {"phone_number": "+8610000000", "first_name": "Ada"}},
    "poll": {  # persistent_id, allows_revoting (Bot API 9.6) and members_only (10.0): required
        "poll": {
            "id": "p1",
            "question": "Exam on Friday?",
            "total_voter_count": 0,
            "options": [
                {"text": answer, "voter_count": 0, "persistent_id": answer}
                for answer in ("yes", "no")
            ],
            "is_closed": False,
            "is_anonymous": True,
            "type": "regular",
            "allows_multiple_answers": False,
            "allows_revoting": False,
            "members_only": False,
        }
    },
    "dice": {"dice": {"emoji": "🎲", "value": 4}},
}

_message_ids = itertools.count(5000)


def push_kind(
    world: World, kind: str, *, chat_id: int, language_code: str = "en", **extra: Any
) -> int:
    """Queue a message of ``kind`` (a key of :data:`KINDS`) from USER; ``extra`` adds
    fields (``caption``, ``reply_to_message``, ``media_group_id``). Returns its id."""
    message_id = next(_message_ids)
    chat: dict[str, Any] = (
        {"id": chat_id, "type": "private", "first_name": "U"}
        if chat_id > 0
        else {"id": chat_id, "type": "supergroup", "title": "Class"}
    )
    sender = {"id": USER, "is_bot": False, "first_name": "U", "language_code": language_code}
    message = {
        "message_id": message_id,
        "date": int(time.time()),
        "chat": chat,
        "from": sender,
        **KINDS[kind],
        **extra,
    }
    world.telegram.push_update({"message": message})
    return message_id


def texts_in(world: World, chat_id: int) -> list[str]:
    """The texts of the bot's messages in ``chat_id``, oldest first."""
    return [m.text for m in world.telegram.bot_messages(chat_id)]


def replied_to(world: World, chat_id: int) -> list[int]:
    """The ids of the messages the bot's sendMessage calls in ``chat_id`` quote."""
    return [
        c.params["reply_parameters"]["message_id"]
        for c in world.telegram.calls_of("sendMessage")
        if int(c.params["chat_id"]) == chat_id and "reply_parameters" in c.params
    ]


async def test_each_unsupported_kind_in_private_is_answered_once(
    world: World, bot: BotRunner
) -> None:
    """A sticker, voice, audio, video, video note, animation, PDF, location, venue, contact,
    poll and dice in private each get the "text and images" message once; a Chinese
    user's gets the Chinese one."""
    chats = {kind: PRIVATE_CHATS + i for i, kind in enumerate(KINDS)}
    zh_chat = PRIVATE_CHATS + len(KINDS)
    async with bot():
        for kind, chat_id in chats.items():
            push_kind(world, kind, chat_id=chat_id)
        push_kind(world, "sticker", chat_id=zh_chat, language_code="zh-hans")
        await settle(lambda: all(texts_in(world, c) for c in [*chats.values(), zh_chat]))
        await asyncio.sleep(0.3)  # a second answer would have come by now
    for kind, chat_id in chats.items():
        assert texts_in(world, chat_id) == [UNSUPPORTED], kind
    assert texts_in(world, zh_chat) == [t("unsupported_kind", "zh")]
    assert not world.openai.requests


async def test_an_album_of_videos_is_answered_once(world: World, bot: BotRunner) -> None:
    """Three videos sent as one album (one update each, one media_group_id) get one answer."""
    chat_id = PRIVATE_CHATS - 1
    async with bot():
        for _ in range(3):
            push_kind(world, "video", chat_id=chat_id, media_group_id="album-1")
        push_kind(world, "dice", chat_id=chat_id)  # queued behind the album: marks its end
        await settle(lambda: len(texts_in(world, chat_id)) == 2)
        await asyncio.sleep(0.2)
    assert texts_in(world, chat_id) == [UNSUPPORTED, UNSUPPORTED]


async def test_in_a_group_only_addressed_unsupported_kinds_are_answered(
    world: World, bot: BotRunner
) -> None:
    """In a group, a sticker, voice message and PDF addressed to no one get nothing; a PDF
    whose caption mentions the bot and a sticker replying to the bot each get the message."""
    bot_message = {
        "message_id": 4000,
        "date": int(time.time()),
        "text": "An earlier answer.",
        "chat": {"id": GROUP, "type": "supergroup", "title": "Class"},
        "from": {"id": BOT_ID, "is_bot": True, "first_name": "Bot", "username": BOT_USERNAME},
    }
    mention = f"@{BOT_USERNAME} what is in this?"
    async with bot():
        push_kind(world, "sticker", chat_id=GROUP)
        push_kind(world, "voice", chat_id=GROUP)
        push_kind(world, "pdf", chat_id=GROUP, caption="for everyone")
        addressed = [
            push_kind(
                world,
                "pdf",
                chat_id=GROUP,
                caption=mention,
                caption_entities=[
                    {"type": "mention", "offset": 0, "length": len(BOT_USERNAME) + 1}
                ],
            ),
            push_kind(world, "sticker", chat_id=GROUP, reply_to_message=bot_message),
        ]
        await settle(lambda: len(texts_in(world, GROUP)) == 2)  # same user: in order
        await asyncio.sleep(0.2)
    assert texts_in(world, GROUP) == [UNSUPPORTED, UNSUPPORTED]
    assert replied_to(world, GROUP) == addressed


async def test_unknown_commands_get_a_hint_and_other_bots_commands_nothing(
    world: World, bot: BotRunner
) -> None:
    """/foo in private and in a group, and /foo@thisbot in a group, get the /help hint (in
    the user's language); /foo@otherbot and /help@otherbot get nothing; /help still works."""
    hint = t("unknown_command", "en")
    async with bot():
        world.telegram.push_text(chat_id=USER, user_id=USER, text="/foo")
        world.telegram.push_text(chat_id=USER, user_id=USER, text="/help")
        world.telegram.push_text(
            chat_id=USER + 1, user_id=USER + 1, text="/bar baz", language_code="zh"
        )
        for text in ("/foo@other_bot", "/help@other_bot", f"/foo@{BOT_USERNAME}", "/foo now"):
            world.telegram.push_text(chat_id=GROUP, user_id=USER, text=text, chat_type="supergroup")
        await settle(
            lambda: (
                len(texts_in(world, USER)) == 2
                and len(texts_in(world, GROUP)) == 2
                and bool(texts_in(world, USER + 1))
            )
        )
        await asyncio.sleep(0.2)
    assert texts_in(world, USER) == [hint, t("help", "en")]
    assert texts_in(world, USER + 1) == [t("unknown_command", "zh")]
    assert texts_in(world, GROUP) == [hint, hint]
    assert not world.openai.requests
