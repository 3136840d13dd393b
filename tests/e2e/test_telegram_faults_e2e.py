"""End to end: a Bot API server that lacks drafts, refuses them, answers late, or speaks for a
user who blocked the bot; the answer still arrives exactly once, or the reply ends quietly."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

import pytest

from bench.fake_openai import Answer
from bench.fake_telegram import BOT_USERNAME, Call
from bench.flood import FloodGate
from bot.render.markdown import ReplyStrings, compose_reply
from bot.scheduler.limits import TELEGRAM_LIMITS
from bot.texts import t
from tests.e2e.conftest import BotRunner, World, settle

pytestmark = pytest.mark.timeout(30)

CHAT = USER = 901
GROUP = -100901
FAST: dict[str, Any] = {"limit_per_chat_per_second": 50.0, "limit_per_group_per_minute": 3000}
STRINGS = ReplyStrings(thinking=t("thinking", "en"), thought_for=t("thought_for", "en"))


def final_text(markdown: str) -> str:
    """The text of the finished reply to ``markdown`` (one message)."""
    return compose_reply(markdown, partial=False, strings=STRINGS).text


def to_chat(world: World, chat_id: int, method: str | None = None) -> list[Call]:
    """The recorded calls to ``chat_id`` (of ``method``, if given), in order."""
    return [
        c
        for c in world.telegram.calls
        if str(c.params.get("chat_id")) == str(chat_id) and method in (None, c.method)
    ]


def texts(world: World, chat_id: int) -> list[str]:
    """The texts of the bot's messages in ``chat_id``, oldest first."""
    return [m.text for m in world.telegram.bot_messages(chat_id)]


@pytest.mark.parametrize("refusal", ["404 no such method", "400", "403"])
async def test_refused_drafts_fall_back_to_messages_and_the_answer_arrives_once(
    world: World, bot: BotRunner, refusal: str
) -> None:
    """Every sendMessageDraft refused (a server without the method, 400, 403): each of two
    answers arrives exactly once by sendMessage and edits; after a 404 the process drafts no
    more, after a 400 that chat drafts no more, after a 403 the next reply tries again."""
    first, second = "The first answer, through messages. " * 4, "The second answer. " * 3
    world.openai.script += [Answer(first, piece=6, delay=0.02), Answer(second, piece=6)]
    if refusal.startswith("404"):
        world.telegram.missing.add("sendMessageDraft")
    else:
        description = "Bad Request: drafts are off" if refusal == "400" else "Forbidden: no drafts"
        world.telegram.inject(
            "sendMessageDraft", status=int(refusal), description=description, times=100
        )
    async with bot(use_drafts=True, **FAST):
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="one")
        await settle(lambda: texts(world, CHAT) == [final_text(first)], within=5)
        mark = len(world.telegram.calls)
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="two")
        await settle(lambda: texts(world, CHAT)[1:] == [final_text(second)], within=5)
        await asyncio.sleep(0.3)
    assert texts(world, CHAT) == [final_text(first), final_text(second)]
    drafts = to_chat(world, CHAT, "sendMessageDraft")
    assert drafts and all(c.error_code == int(refusal[:3]) for c in drafts)
    later = [c.method for c in world.telegram.calls[mark:]]
    assert later.count("sendMessage") == 1
    assert ("sendMessageDraft" in later) == (refusal == "403")


async def test_a_late_answer_to_the_final_send_does_not_send_it_twice(
    world: World, bot: BotRunner, caplog: pytest.LogCaptureFixture
) -> None:
    """Drafts on, sendMessage answered after 1 s while the bot waits 0.5 s: the final message,
    carried out by Telegram, is not sent again; the chat holds the answer once."""
    answer = "A slow Telegram still shows this answer exactly once."
    world.openai.script.append(Answer(answer, piece=8, delay=0.02))
    world.telegram.slow["sendMessage"] = 1.0
    async with bot(use_drafts=True, **FAST) as app:
        app.bot_data.services.replies.send_timeout = 0.5
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="go")
        await settle(lambda: bool(texts(world, CHAT)), within=5)
        await asyncio.sleep(2.0)  # time for a resend, were there one
    sends = to_chat(world, CHAT, "sendMessage")
    assert len(sends) == 1 and sends[0].result is not None, "one send, carried out"
    assert texts(world, CHAT) == [final_text(answer)]
    assert any("it may have been delivered" in r.getMessage() for r in caplog.records)


async def test_late_answers_to_sends_in_a_group_never_show_text_twice(
    world: World, bot: BotRunner
) -> None:
    """A group reply (edits) whose every sendMessage is answered after 1 s, the bot waiting
    0.5 s: the first message cannot be edited, so the rest comes in one more message with the
    final frame; together they read the answer once, and no send is repeated."""
    answer = "one two three four five six seven eight nine ten eleven twelve thirteen"
    world.openai.script.append(Answer(answer, piece=5, delay=0.05))
    world.telegram.slow["sendMessage"] = 1.0
    async with bot(**FAST) as app:
        app.bot_data.services.replies.send_timeout = 0.5
        world.telegram.push_text(
            chat_id=GROUP, user_id=USER, chat_type="supergroup", text=f"@{BOT_USERNAME} count"
        )
        await settle(lambda: "".join(texts(world, GROUP)) == final_text(answer), within=8)
        await asyncio.sleep(1.5)
    sends = to_chat(world, GROUP, "sendMessage")
    assert len(sends) == len(texts(world, GROUP)) == 2, [c.params["text"] for c in sends]
    assert all(c.result is not None for c in sends), "every send was carried out"
    assert "".join(texts(world, GROUP)) == final_text(answer)
    assert not to_chat(world, GROUP, "editMessageText"), "an unconfirmed message is not edited"


async def test_a_user_who_blocked_the_bot_ends_the_reply_quietly(
    world: World, bot: BotRunner, caplog: pytest.LogCaptureFixture
) -> None:
    """Every call to the chat answers 403 (blocked), drafts on: the provider stream is closed
    long before its end, nothing is sent after the refusal (no error message), the turn ends
    once, and nothing is logged above INFO."""
    world.openai.script.append(Answer("word " * 400, piece=5, delay=0.02))  # ~8 s
    world.telegram.blocked.add(CHAT)
    with caplog.at_level(logging.INFO):
        async with bot(use_drafts=True, **FAST):
            started = len(caplog.records)  # start-up lines are not the reply's
            world.telegram.push_text(chat_id=CHAT, user_id=USER, text="hi")
            await settle(lambda: world.openai.disconnects == 1, within=4)
            await asyncio.sleep(0.5)
            records = caplog.records[started:]
    calls = to_chat(world, CHAT)
    assert calls and all(c.error_code == 403 for c in calls)
    assert [c.method for c in calls][-1] != "sendMessageDraft", "a message send met the 403"
    assert len(calls) <= 3, [c.method for c in calls]  # the draft, then typing or a message
    turns = [r.getMessage() for r in records if r.getMessage().startswith("turn:")]
    assert len(turns) == 1 and "outcome=stopped" in turns[0], turns
    loud = [r for r in records if r.levelno > logging.INFO or r.exc_info]
    assert not loud, [r.getMessage() for r in loud]
    assert any("blocked" in r.getMessage() for r in records if r.levelno == logging.INFO)


# Telegram's limits sped up six times (per chat 6/s, per group 120 a minute), on both sides,
# so twenty replies fit in seconds; the fake forgives its usual 50 ms of arrival jitter.
SPED_UP = dataclasses.replace(TELEGRAM_LIMITS, per_chat_per_second=6.0, per_group_per_minute=120)
SPED_UP_BOT: dict[str, Any] = {"limit_per_chat_per_second": 6.0, "limit_per_group_per_minute": 120}


@pytest.mark.parametrize("users", ["one user past the pace", "twenty users"])
async def test_twenty_mentions_in_a_group_within_a_second_draw_no_429(
    world: World, bot: BotRunner, users: str
) -> None:
    """Twenty mentions in one group within a second, from one user allowed three questions a
    minute (three answers, seventeen refusals sent by the handler) or from twenty users
    (twenty answers): every reply arrives and Telegram refuses nothing."""
    one = users.startswith("one")
    world.telegram.throttle = gate = FloodGate(SPED_UP)
    world.openai.script += [Answer(f"Answer {n}.", piece=4, delay=0.01) for n in range(20)]
    refusal = t("too_fast", "en", limit=3, seconds=0).split(" 0 s")[0]
    async with bot(user_turns_per_minute=3 if one else 0, **SPED_UP_BOT):
        for n in range(20):
            world.telegram.push_text(
                chat_id=GROUP,
                user_id=USER if one else USER + n,
                chat_type="supergroup",
                text=f"@{BOT_USERNAME} question {n}",
            )
            await asyncio.sleep(0.04)
        await settle(lambda: len(texts(world, GROUP)) >= 20, within=20)
        await asyncio.sleep(0.5)
    shown = texts(world, GROUP)
    answers = [x for x in shown if x.startswith("Answer")]
    assert len(answers) == (3 if one else 20) and len(shown) == 20, shown
    assert sum(x.startswith(refusal) for x in shown) == (17 if one else 0)
    assert gate.rejected == {}, gate.violated
    assert not any(c.error_code for c in to_chat(world, GROUP))
