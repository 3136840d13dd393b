"""End to end: a question that replies to (or quotes) a message carries it to the model, through
the real Application, the fake Bot API (getFile and file downloads) and the fake
OpenAI-compatible server, whose recorded requests show what the model was sent."""

from __future__ import annotations

import base64
import io
import time
from typing import Any

import pytest
from PIL import Image

from bench.fake_openai import Answer
from bench.fake_telegram import BOT_ID, BOT_USERNAME
from tests.e2e.conftest import BotRunner, World, replied, settle

pytestmark = pytest.mark.timeout(30)

GROUP = -100800
ALICE, BOB = 801, 802
CHAT = {"id": GROUP, "type": "supergroup", "title": "Class"}
MENTION = f"@{BOT_USERNAME}"
DATA_URL_PREFIX = "data:image/jpeg;base64,"


def person(user_id: int, first_name: str) -> dict[str, Any]:
    """A Bot API ``User`` of a classmate."""
    return {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "en"}


def message(message_id: int, sender: dict[str, Any] | None, **fields: Any) -> dict[str, Any]:
    """A Bot API ``Message`` in the group, sent by ``sender`` (``None``: on behalf of a chat)."""
    body: dict[str, Any] = {"message_id": message_id, "date": int(time.time()), "chat": CHAT}
    if sender is not None:
        body["from"] = sender
    return body | fields


def ask(world: World, message_id: int, text: str, reply_to: dict[str, Any], **fields: Any) -> None:
    """Bob's question ``text`` (starting with the bot's mention), replying to ``reply_to``."""
    entities = (
        [{"type": "mention", "offset": 0, "length": len(MENTION)}]
        if text.startswith(MENTION)
        else []
    )
    world.telegram.push_update(
        {
            "message": message(
                message_id,
                person(BOB, "Bob"),
                text=text,
                entities=entities,
                reply_to_message=reply_to,
                **fields,
            )
        }
    )


def photo(file_id: str, size: int) -> list[dict[str, Any]]:
    """A photo's sizes as Telegram lists them: a thumbnail, then the full size ``file_id``."""
    return [
        {"file_id": f"{file_id}-thumb", "file_unique_id": "t", "width": 90, "height": 90},
        {
            "file_id": file_id,
            "file_unique_id": "f",
            "width": 1280,
            "height": 960,
            "file_size": size,
        },
    ]


def png_bytes(size: tuple[int, int]) -> bytes:
    """A PNG of ``size`` pixels."""
    out = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(out, format="PNG")
    return out.getvalue()


def image_sizes(content: Any) -> list[tuple[int, int]]:
    """The pixel sizes of the JPEG data-URL images in a content-parts list."""
    assert isinstance(content, list), f"expected content parts, got {content!r}"
    sizes = []
    for part in content:
        if part["type"] == "image_url":
            url = part["image_url"]["url"]
            assert url.startswith(DATA_URL_PREFIX)
            data = base64.b64decode(url.removeprefix(DATA_URL_PREFIX))
            with Image.open(io.BytesIO(data)) as image:
                sizes.append(image.size)
    return sizes


def text_of(content: Any) -> str:
    """The text of a message's ``content``: the string, or its text parts joined."""
    if isinstance(content, str):
        return content
    return "".join(part["text"] for part in content if part["type"] == "text")


async def test_a_reply_to_a_classmate_carries_her_message_and_name(
    world: World, bot: BotRunner
) -> None:
    """Bob's question replying to Alice's two lines reaches the model after them, quoted under
    her name; the next question of the conversation sees that quote in the history."""
    alice = message(50, person(ALICE, "Alice"), text="d/dx x² = 2x\nso the slope at 3 is 6")
    world.openai.script += [Answer("Yes, right."), Answer("8.")]
    async with bot():
        ask(world, 51, f"{MENTION} is this right?", alice)
        await settle(lambda: replied(world, GROUP, "Yes, right."))
        world.telegram.push_text(
            chat_id=GROUP, user_id=BOB, chat_type="supergroup", text=f"{MENTION} and at 4?"
        )
        await settle(lambda: replied(world, GROUP, "8."))
    first, second = world.openai.requests
    quoted = "[Quoted from Alice]\n> d/dx x² = 2x\n> so the slope at 3 is 6\n\nis this right?"
    assert first["messages"][-1] == {"role": "user", "content": quoted}
    assert [m["content"] for m in second["messages"][1:]] == [quoted, "Yes, right.", "and at 4?"]


async def test_a_bare_mention_replying_to_a_message_asks_about_it(
    world: World, bot: BotRunner
) -> None:
    """Replying to Alice with only the bot's mention asks the model to explain her message."""
    alice = message(52, person(ALICE, "Alice"), text="Why is the sky blue?")
    async with bot():
        ask(world, 53, MENTION, alice)
        await settle(lambda: len(world.openai.requests) == 1)
    assert world.openai.requests[0]["messages"][-1]["content"] == (
        "[Quoted from Alice]\n> Why is the sky blue?\n\nExplain the quoted message."
    )


async def test_a_reply_to_a_photo_sends_the_photo_to_a_vision_model(
    world: World, bot: BotRunner
) -> None:
    """A question replying to Alice's captioned photo reaches a vision model with the photo,
    downloaded through getFile, as its image, and the caption quoted."""
    data = png_bytes((400, 200))
    file_id = world.telegram.add_file(data)
    alice = message(54, person(ALICE, "Alice"), photo=photo(file_id, len(data)), caption="Fig. 3")
    world.openai.script.append(Answer("A blue rectangle."))
    async with bot(openai_vision_models=["model-a"]):
        ask(world, 55, f"{MENTION} what is shown?", alice)
        await settle(lambda: replied(world, GROUP, "A blue rectangle."))
    assert world.telegram.downloads == [f"photos/{file_id}.jpg"]
    content = world.openai.requests[0]["messages"][-1]["content"]
    assert text_of(content) == (
        "[Quoted photo from Alice (the first image)]\n> Fig. 3\n\nwhat is shown?"
    )
    assert image_sizes(content) == [(400, 200)]


async def test_a_model_without_vision_gets_only_the_photos_caption(
    world: World, bot: BotRunner
) -> None:
    """For a model without vision, the replied photo is not downloaded: its caption is quoted
    and the header says the photo is not shown."""
    data = png_bytes((40, 20))
    file_id = world.telegram.add_file(data)
    alice = message(56, person(ALICE, "Alice"), photo=photo(file_id, len(data)), caption="Fig. 4")
    async with bot():
        ask(world, 57, f"{MENTION} what is shown?", alice)
        await settle(lambda: len(world.openai.requests) == 1)
    assert world.telegram.downloads == []
    assert world.openai.requests[0]["messages"][-1]["content"] == (
        "[Quoted photo from Alice (not shown)]\n> Fig. 4\n\nwhat is shown?"
    )


async def test_a_photo_replying_to_a_photo_sends_the_quoted_one_first(
    world: World, bot: BotRunner
) -> None:
    """Bob's captioned photo replying to Alice's photo: both go, Alice's first, as the header
    says."""
    hers, his = png_bytes((300, 100)), png_bytes((100, 300))
    her_id, his_id = world.telegram.add_file(hers), world.telegram.add_file(his)
    alice = message(58, person(ALICE, "Alice"), photo=photo(her_id, len(hers)))
    world.openai.script.append(Answer("Rotated."))
    async with bot(openai_vision_models=["model-a"]):
        world.telegram.push_update(
            {
                "message": message(
                    59,
                    person(BOB, "Bob"),
                    photo=photo(his_id, len(his)),
                    caption=f"{MENTION} how do they differ?",
                    reply_to_message=alice,
                )
            }
        )
        await settle(lambda: replied(world, GROUP, "Rotated."))
    content = world.openai.requests[0]["messages"][-1]["content"]
    assert text_of(content) == "[Quoted photo from Alice (the first image)]\n\nhow do they differ?"
    assert image_sizes(content) == [(300, 100), (100, 300)]


async def test_a_quote_sends_only_the_quoted_part(world: World, bot: BotRunner) -> None:
    """With a quote of part of Alice's message, only that part reaches the model."""
    text = "Step 1: add the rows. Step 2: multiply by the pivot. Step 3: divide."
    alice = message(60, person(ALICE, "Alice"), text=text)
    quote = {"text": "Step 2: multiply by the pivot.", "position": 22, "is_manual": True}
    async with bot():
        ask(world, 61, f"{MENTION} why?", alice, quote=quote)
        await settle(lambda: len(world.openai.requests) == 1)
    messages = world.openai.requests[0]["messages"]
    assert messages[-1]["content"] == (
        "[Quoted from Alice]\n> Step 2: multiply by the pivot.\n\nwhy?"
    )
    assert not any("Step 1" in text_of(m["content"]) for m in messages)


async def test_a_reply_to_the_bot_quotes_its_answer_only_by_hand(
    world: World, bot: BotRunner
) -> None:
    """Replying to the bot's answer adds nothing (it is in the history already); quoting part
    of it by hand sends that part, attributed to the earlier answer."""
    world.openai.script += [Answer("2+2 is 4, and 3+3 is 6."), Answer("Counting."), Answer("Ok.")]
    async with bot():
        world.telegram.push_text(
            chat_id=GROUP, user_id=BOB, chat_type="supergroup", text=f"{MENTION} sums?"
        )
        await settle(lambda: replied(world, GROUP, "2+2 is 4, and 3+3 is 6."))
        (answer,) = world.telegram.bot_messages(GROUP)
        bot_json = message(
            answer.message_id,
            {"id": BOT_ID, "is_bot": True, "first_name": "Bot", "username": BOT_USERNAME},
            text=answer.text,
        )
        ask(world, 62, "how?", bot_json)
        await settle(lambda: replied(world, GROUP, "Counting."))
        quote = {"text": "3+3 is 6", "position": 14, "is_manual": True}
        ask(world, 63, "why?", bot_json, quote=quote)
        await settle(lambda: replied(world, GROUP, "Ok."))
    _, plain, quoted = world.openai.requests
    assert plain["messages"][-1]["content"] == "how?"
    assert quoted["messages"][-1]["content"] == (
        "[Quoted from your earlier answer]\n> 3+3 is 6\n\nwhy?"
    )


async def test_a_channel_post_comment_is_not_doubled(world: World, bot: BotRunner) -> None:
    """A comment replying to a channel post's automatic forward gets the post once: as the
    thread's context, not quoted again in the question."""
    post = message(
        40,
        None,
        text="Lecture 5: eigenvalues.",
        is_automatic_forward=True,
        sender_chat={"id": -100999, "type": "channel", "title": "Course"},
    )
    async with bot():
        ask(world, 64, f"{MENTION} what is an eigenvalue?", post, message_thread_id=40)
        await settle(lambda: len(world.openai.requests) == 1)
    messages = world.openai.requests[0]["messages"]
    assert sum("Lecture 5: eigenvalues." in text_of(m["content"]) for m in messages) == 1
    assert messages[1]["role"] == "system" and "Lecture 5" in messages[1]["content"]
    assert messages[-1] == {"role": "user", "content": "what is an eigenvalue?"}
