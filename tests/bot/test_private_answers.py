"""Answers in private (bot.conversation.private_answers): the chat setting, the deep link's
start parameter, the quote above a private answer, and a kept question's turn."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.conversation.private_answers import (
    QUESTION_SHOWN_MAX,
    answers_in_private,
    pending_of,
    question_header,
    set_answers_in_private,
    start_link,
    token_of,
    turn_of,
)
from bot.conversation.types import TurnInput
from bot.texts import t
from providers.types import ImagePart
from storage import ConversationStore, open_store

pytestmark = pytest.mark.timeout(20)

GROUP = -100321


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[ConversationStore]:
    """A store on the real, emptied Redis."""
    opened, _ = await open_store(redis_url, max_turns=5, max_tokens=1000, ttl_seconds=3600)
    yield opened
    await opened.aclose()


async def test_the_setting_is_off_until_switched_on(store: ConversationStore) -> None:
    """A group answers in the group until its setting is on, and again once it is off."""
    assert not await answers_in_private(store, GROUP)
    await set_answers_in_private(store, GROUP, True)
    assert await answers_in_private(store, GROUP)
    assert not await answers_in_private(store, GROUP - 1)  # another group is unaffected
    await set_answers_in_private(store, GROUP, False)
    assert not await answers_in_private(store, GROUP)


def test_a_start_link_carries_its_token_back() -> None:
    """The deep link opens the bot with ``start=q_<token>``, and that parameter gives the
    token back."""
    token = "AbC_d-0123456789xyzW"
    link = start_link("class_helper_bot", token)
    assert link == f"https://t.me/class_helper_bot?start=q_{token}"
    assert token_of(link.partition("start=")[2]) == token


@pytest.mark.parametrize(
    "payload",
    [
        "",
        "hello",
        "q_",
        "q_short",
        "x_AbC_d-0123456789xyzW",
        "q_AbC_d-0123456789xyz!",
        "q_" + "a" * 63,
    ],
)
def test_other_start_parameters_are_not_tokens(payload: str) -> None:
    """Another prefix, a character a start parameter cannot hold, or a wrong length is no token."""
    assert token_of(payload) is None


def test_the_quote_marks_the_question_in_utf16_units() -> None:
    """The header names the group; the blockquote entity covers exactly the question, counted
    in UTF-16 code units (an emoji in the title is two)."""
    text, entities = question_header("什么是特征值？", chat_title="Class 😀", images=0, lang="en")
    head = t("private_question_header", "en", chat="Class 😀")
    assert text == f"{head}\n什么是特征值？"
    (quote,) = entities
    assert quote.type == "blockquote"
    assert quote.offset == len(head.encode("utf-16-le")) // 2 + 1
    assert quote.length == len("什么是特征值？")


def test_a_long_question_is_cut_and_images_are_marked() -> None:
    """A question past QUESTION_SHOWN_MAX characters ends in an ellipsis; each image shows
    as 🖼 before it; the Chinese header is used for zh."""
    text, entities = question_header(
        "x" * (QUESTION_SHOWN_MAX + 50), chat_title="班级", images=2, lang="zh"
    )
    head, _, shown = text.partition("\n")
    assert head == t("private_question_header", "zh", chat="班级")
    assert shown == "🖼 🖼 " + "x" * QUESTION_SHOWN_MAX + "…"
    assert entities[0].length == len(shown.encode("utf-16-le")) // 2


def test_a_kept_question_is_answered_as_it_was_asked() -> None:
    """The turn of a kept question has the original scope, asker, text, quoted block,
    context and image file ids, with the images fetched again."""
    turn = TurnInput(
        "c:-100321:u:5",
        5,
        "and this one?",
        images=(ImagePart(b"\xff\xd8 jpeg bytes"),),
        image_file_ids=("f1",),
        context="post",
        quoted="[Quoted]\n> x",
    )
    kept = pending_of(turn, chat_id=GROUP, chat_title="Class", message_id=9)
    assert (kept.chat_id, kept.message_id, kept.user_id) == (GROUP, 9, 5)
    again = turn_of(kept, turn.images)
    assert again == turn
