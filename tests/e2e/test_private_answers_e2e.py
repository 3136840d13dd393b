"""End to end: a group that answers in private (the fake Bot API knows which users started
the bot; it refuses the others' private chats with 403). A started student gets one short
line in the group and the whole answer, streamed through drafts, in private under a quote
of the question; a student who has not started the bot gets a deep link in the group and
the answer once after pressing Start; a stranger's press of that link learns nothing of
the question; with the setting off, the group is answered as before."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest
from PIL import Image

from bench.fake_openai import Answer
from bench.fake_telegram import BOT_USERNAME, StoredMessage
from bot.texts import Lang, t
from tests.e2e.conftest import BotRunner, World, replied, settle, stored_history

pytestmark = pytest.mark.timeout(40)

GROUP = -100900
ADMIN, STUDENT, STRANGER = 901, 902345678, 903
QUESTION = "what is an eigenvalue?"
ANSWER = "An **eigenvalue** of A is a number λ with Av = λv for some v ≠ 0."
SHOWN = "An eigenvalue of A is a number λ with Av = λv for some v ≠ 0."  # the bold as an entity


def say(world: World, user_id: int, text: str, *, lang: Lang = "en") -> int:
    """``user_id`` writes ``text`` in GROUP; returns the message id."""
    return world.telegram.push_text(
        chat_id=GROUP, user_id=user_id, text=text, chat_type="supergroup", language_code=lang
    )


def ask(world: World, user_id: int, *, lang: Lang = "en") -> int:
    """``user_id`` asks QUESTION in GROUP, mentioning the bot; returns the message id."""
    return say(world, user_id, f"@{BOT_USERNAME} {QUESTION}", lang=lang)


async def switch_on(world: World) -> None:
    """The group's admin turns answers in private on."""
    world.telegram.admins.add(ADMIN)
    say(world, ADMIN, "/private_answers on")
    await settle(lambda: replied(world, GROUP, t("private_answers_on", "en")))


def sent_to(world: World, chat_id: int, method: str = "sendMessage") -> list[dict[str, Any]]:
    """The parameters of every successful ``method`` call into ``chat_id``."""
    return [
        c.params
        for c in world.telegram.calls_of(method)
        if int(c.params.get("chat_id", 0)) == chat_id and c.error_code is None
    ]


def reply_target(params: dict[str, Any]) -> int | None:
    """The message id a ``sendMessage`` replies to (``reply_parameters``), if any."""
    reply = params.get("reply_parameters")
    if isinstance(reply, str):
        reply = json.loads(reply)
    return None if reply is None else int(reply["message_id"])


def private_answer(world: World, chat_id: int) -> tuple[StoredMessage, StoredMessage] | None:
    """The quote of the question and the answer in private chat ``chat_id``, once both exist."""
    messages = world.telegram.bot_messages(chat_id)
    return (messages[0], messages[1]) if len(messages) >= 2 else None


def start_link_of(message: StoredMessage) -> str:
    """The URL of the one button under ``message``."""
    ((button,),) = message.reply_markup["inline_keyboard"]
    return str(button["url"])


async def test_a_started_student_is_answered_in_private(world: World, bot: BotRunner) -> None:
    """With the setting on, the group gets only 'Answered you in private.' as a reply to the
    question; the private chat gets the question quoted, then the answer streamed through
    drafts as a reply to that quote; the exchange belongs to the student's group
    conversation, which /reset in the group clears."""
    world.openai.script.append(Answer(ANSWER, piece=4, delay=0.02))
    async with bot(use_drafts=True):
        await switch_on(world)
        question_id = ask(world, STUDENT)
        await settle(lambda: replied(world, STUDENT, SHOWN))
        await settle(lambda: replied(world, GROUP, t("private_answered", "en")))

        quote, answer = private_answer(world, STUDENT) or pytest.fail("no private answer")
        assert quote.text == f"{t('private_question_header', 'en', chat='Class')}\n{QUESTION}"
        assert [(e["type"], e["length"]) for e in quote.entities] == [("blockquote", 22)]
        assert answer.text == SHOWN
        final = [p for p in sent_to(world, STUDENT) if p["text"] == SHOWN]
        assert [reply_target(p) for p in final] == [quote.message_id]
        assert sent_to(world, STUDENT, "sendMessageDraft"), "the answer streamed as drafts"

        group = world.telegram.bot_messages(GROUP)
        assert [m.text for m in group][-1] == t("private_answered", "en")
        notice = next(p for p in sent_to(world, GROUP) if p["text"] == group[-1].text)
        assert reply_target(notice) == question_id
        assert not any(SHOWN in m.text or "eigenvalue" in m.text for m in group)

        scope = f"c:{GROUP}:u:{STUDENT}"
        stored = await stored_history(world.redis_url, scope, 2)
        assert [m["content"] for m in stored] == [QUESTION, ANSWER]
        assert await stored_history(world.redis_url, f"u:{STUDENT}", 0) == []
        say(world, STUDENT, "/reset")
        await settle(lambda: replied(world, GROUP, t("reset_done", "en")))
    assert await stored_history(world.redis_url, scope, 0) == []


async def test_a_student_who_never_started_the_bot_gets_a_start_link(
    world: World, bot: BotRunner
) -> None:
    """A student the bot may not write to gets, in the group (zh), the start link as a button;
    the model is not asked; pressing Start (``/start <payload>`` in private) brings the
    question quoted and its answer there, once; a second press only says it is gone."""
    world.telegram.unstarted.add(STUDENT)
    world.openai.script.append(Answer(ANSWER))
    async with bot(use_drafts=True):
        await switch_on(world)
        question_id = ask(world, STUDENT, lang="zh")
        await settle(lambda: replied(world, GROUP, t("private_start_needed", "zh")))
        link_message = world.telegram.bot_messages(GROUP)[-1]
        link = start_link_of(link_message)
        assert link.startswith(f"https://t.me/{BOT_USERNAME}?start=q_")
        payload = link.partition("start=")[2]
        assert str(STUDENT) not in payload
        notice = next(p for p in sent_to(world, GROUP) if p["text"] == link_message.text)
        assert reply_target(notice) == question_id
        await asyncio.sleep(0.3)
        assert world.openai.requests == []
        assert world.telegram.bot_messages(STUDENT) == []

        world.telegram.push_text(
            chat_id=STUDENT, user_id=STUDENT, text=f"/start {payload}", language_code="zh"
        )
        await settle(lambda: replied(world, STUDENT, SHOWN))
        quote, answer = private_answer(world, STUDENT) or pytest.fail("no private answer")
        assert quote.text == f"{t('private_question_header', 'zh', chat='Class')}\n{QUESTION}"
        assert answer.text == SHOWN
        assert len(world.openai.requests) == 1
        assert world.openai.requests[0]["messages"][-1]["content"] == QUESTION

        world.telegram.push_text(chat_id=STUDENT, user_id=STUDENT, text=f"/start {payload}")
        await settle(lambda: replied(world, STUDENT, t("private_link_gone", "en")))
        await asyncio.sleep(0.3)
    assert len(world.openai.requests) == 1
    assert [m.text for m in world.telegram.bot_messages(STUDENT)].count(SHOWN) == 1
    stored = await stored_history(world.redis_url, f"c:{GROUP}:u:{STUDENT}", 2)
    assert [m["content"] for m in stored] == [QUESTION, ANSWER]


async def test_someone_elses_start_link_gives_nothing_of_the_question(
    world: World, bot: BotRunner
) -> None:
    """A stranger pressing a student's start link is told it is not theirs, sees nothing of
    the question, and the model is not asked; the student's own press still answers it."""
    world.telegram.unstarted.add(STUDENT)
    world.openai.script.append(Answer(ANSWER))
    async with bot():
        await switch_on(world)
        ask(world, STUDENT)
        await settle(lambda: replied(world, GROUP, t("private_start_needed", "en")))
        payload = start_link_of(world.telegram.bot_messages(GROUP)[-1]).partition("start=")[2]

        world.telegram.push_text(chat_id=STRANGER, user_id=STRANGER, text=f"/start {payload}")
        await settle(lambda: replied(world, STRANGER, t("private_link_not_yours", "en")))
        await asyncio.sleep(0.3)
        assert world.openai.requests == []
        seen = [m.text for m in world.telegram.bot_messages(STRANGER)]
        assert seen == [t("private_link_not_yours", "en")]
        assert not any("eigenvalue" in p["text"] for p in sent_to(world, STRANGER))

        world.telegram.push_text(chat_id=STUDENT, user_id=STUDENT, text=f"/start {payload}")
        await settle(lambda: replied(world, STUDENT, SHOWN))
    assert len(world.openai.requests) == 1


async def test_with_the_setting_off_the_group_is_answered_as_before(
    world: World, bot: BotRunner
) -> None:
    """A member cannot turn the setting on; off (never set, or switched off by an admin), the
    answer is written in the group and nothing goes to the student's private chat."""
    world.telegram.admins.add(ADMIN)
    world.openai.script += [Answer(ANSWER), Answer("Second answer.")]
    async with bot():
        say(world, STUDENT, "/private_answers on")
        await settle(lambda: replied(world, GROUP, t("chat_admins_only", "en")))
        ask(world, STUDENT)
        await settle(lambda: replied(world, GROUP, SHOWN))

        say(world, ADMIN, "/private_answers on")
        await settle(lambda: replied(world, GROUP, t("private_answers_on", "en")))
        say(world, ADMIN, "/private_answers off")
        await settle(lambda: replied(world, GROUP, t("private_answers_off", "en")))
        say(world, STUDENT, "/private_answers")
        await settle(lambda: replied(world, GROUP, t("private_answers_state_off", "en")))
        ask(world, STUDENT)
        await settle(lambda: replied(world, GROUP, "Second answer."))
    assert world.telegram.bot_messages(STUDENT) == []
    assert sent_to(world, STUDENT, "sendMessageDraft") == []
    assert not replied(world, GROUP, t("private_answered", "en"))


def png_bytes() -> bytes:
    """A small red PNG."""
    out = io.BytesIO()
    Image.new("RGB", (64, 32), (255, 0, 0)).save(out, format="PNG")
    return out.getvalue()


async def test_a_kept_photo_question_is_answered_with_its_photo(
    world: World, bot: BotRunner
) -> None:
    """A captioned photo from a student who has not started the bot waits with its file id;
    after Start, the quote marks the image and the vision model gets the photo, downloaded
    again, with the caption."""
    world.telegram.unstarted.add(STUDENT)
    file_id = world.telegram.add_file(png_bytes())
    world.openai.script.append(Answer("Red."))
    async with bot(openai_vision_models=["model-a"]):
        await switch_on(world)
        world.telegram.push_photo(
            chat_id=GROUP,
            user_id=STUDENT,
            file_id=file_id,
            caption=f"@{BOT_USERNAME} which colour?",
            chat_type="supergroup",
        )
        await settle(lambda: replied(world, GROUP, t("private_start_needed", "en")))
        payload = start_link_of(world.telegram.bot_messages(GROUP)[-1]).partition("start=")[2]
        world.telegram.push_text(chat_id=STUDENT, user_id=STUDENT, text=f"/start {payload}")
        await settle(lambda: replied(world, STUDENT, "Red."))
    quote = world.telegram.bot_messages(STUDENT)[0]
    assert quote.text.endswith("\n🖼 which colour?")
    assert world.telegram.downloads == [f"photos/{file_id}.jpg"] * 2  # asked, then answered
    (request,) = world.openai.requests
    content = request["messages"][-1]["content"]
    assert [p["text"] for p in content if p["type"] == "text"] == ["which colour?"]
    assert [p["type"] for p in content].count("image_url") == 1


async def test_a_listed_class_outside_the_user_list_gets_its_private_answers(
    world: World, bot: BotRunner
) -> None:
    """With the group in ALLOWED_CHAT_IDS and the student outside ALLOWED_USER_IDS, the
    student's Start on their own deep link is answered in private (the link is theirs);
    a stranger's link-shaped /start is told it is gone, never greeted nor answered, and a
    stranger's plain /start still gets the refusal with their id."""
    world.telegram.unstarted.add(STUDENT)
    world.openai.script.append(Answer(ANSWER))
    async with bot(allowed_chat_ids=[GROUP], allowed_user_ids=[ADMIN]):
        await switch_on(world)
        ask(world, STUDENT)
        await settle(lambda: replied(world, GROUP, t("private_start_needed", "en")))
        payload = start_link_of(world.telegram.bot_messages(GROUP)[-1]).partition("start=")[2]

        world.telegram.push_text(chat_id=STUDENT, user_id=STUDENT, text=f"/start {payload}")
        await settle(lambda: replied(world, STUDENT, SHOWN))

        world.telegram.push_text(chat_id=STRANGER, user_id=STRANGER, text="/start q_" + "A" * 22)
        await settle(lambda: replied(world, STRANGER, t("private_link_gone", "en")))
        world.telegram.push_text(chat_id=STRANGER, user_id=STRANGER, text="/start")
        refusal = t("not_allowed", "en", user_id=STRANGER)
        await settle(lambda: replied(world, STRANGER, refusal))
        await asyncio.sleep(0.3)
    assert len(world.openai.requests) == 1
    seen = [m.text for m in world.telegram.bot_messages(STRANGER)]
    assert seen == [t("private_link_gone", "en"), refusal]
