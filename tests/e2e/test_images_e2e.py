"""End to end: photos and image documents through the real Application, the fake Bot API
(getFile and file downloads) and a fake vision model."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from typing import Any

import pytest
from PIL import Image

from bench.fake_openai import Answer
from bench.fake_telegram import BOT_USERNAME
from bot.texts import t
from handlers.photos import MAX_DOWNLOAD_BYTES
from tests.e2e.conftest import BotRunner, World, history_of, replied, settle

pytestmark = pytest.mark.timeout(30)

CHAT = 601
USER = 601
GROUP = -100601
JPEG_MAGIC = b"\xff\xd8\xff"
DATA_URL_PREFIX = "data:image/jpeg;base64,"


def png_bytes(size: tuple[int, int] = (2400, 1200)) -> bytes:
    """A PNG with a red left half and a blue right half."""
    image = Image.new("RGB", size, (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, size[0] // 2, size[1]))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def user_content(request: dict[str, Any]) -> Any:
    """The ``content`` of the last message of a chat-completions request body."""
    return request["messages"][-1]["content"]


def image_urls(content: Any) -> list[str]:
    """The image URLs of a content-parts list."""
    assert isinstance(content, list), f"expected content parts, got {content!r}"
    return [p["image_url"]["url"] for p in content if p["type"] == "image_url"]


def text_parts(content: Any) -> list[str]:
    """The texts of a content-parts list."""
    return [p["text"] for p in content if p["type"] == "text"]


def jpeg_of(url: str) -> bytes:
    """The bytes of a ``data:image/jpeg;base64,…`` URL, checked to be a JPEG."""
    assert url.startswith(DATA_URL_PREFIX)
    data = base64.b64decode(url.removeprefix(DATA_URL_PREFIX), validate=True)
    assert data.startswith(JPEG_MAGIC)
    return data


async def test_captioned_photo_reaches_a_vision_model(world: World, bot: BotRunner) -> None:
    """A captioned photo reaches a vision model as content parts: caption and JPEG data URL."""
    file_id = world.telegram.add_file(png_bytes())
    world.openai.script.append(Answer("Red and blue."))
    async with bot(openai_vision_models=["model-a"]):
        world.telegram.push_photo(
            chat_id=CHAT, user_id=USER, file_id=file_id, caption="What colours?"
        )
        await settle(lambda: replied(world, CHAT, "Red and blue."))
    assert world.telegram.downloads == [f"photos/{file_id}.jpg"]
    (request,) = world.openai.requests
    content = user_content(request)
    assert text_parts(content) == ["What colours?"]
    (url,) = image_urls(content)
    with Image.open(io.BytesIO(jpeg_of(url))) as sent:
        assert sent.size == (1568, 784)


async def test_non_vision_model_refuses_and_stores_nothing(world: World, bot: BotRunner) -> None:
    """With a model without vision the user is told to pick a 👁 model; nothing is sent or kept."""
    file_id = world.telegram.add_file(png_bytes())
    async with bot():
        world.telegram.push_photo(chat_id=CHAT, user_id=USER, file_id=file_id, caption="see?")
        expected = t("image_needs_vision", "en", model="model-a")
        await settle(lambda: any("👁" in m.text for m in world.telegram.bot_messages(CHAT)))
        await asyncio.sleep(0.1)
    assert [m.text for m in world.telegram.bot_messages(CHAT)] == [expected]
    assert world.openai.requests == []
    assert world.telegram.downloads == []
    assert await history_of(world.redis_url, f"u:{USER}") == []


async def test_history_keeps_the_file_id_not_the_bytes(world: World, bot: BotRunner) -> None:
    """History keeps the photo's file_id; the next request has a text placeholder, no base64."""
    file_id = world.telegram.add_file(png_bytes())
    world.openai.script += [Answer("A flag."), Answer("Yes.")]
    async with bot(openai_vision_models=["model-a"]):
        world.telegram.push_photo(
            chat_id=CHAT, user_id=USER, file_id=file_id, caption="What is it?"
        )
        await settle(lambda: replied(world, CHAT, "A flag."))
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="Sure?")
        await settle(lambda: replied(world, CHAT, "Yes."))
    history = await history_of(world.redis_url, f"u:{USER}")
    assert history[0]["images"] == [file_id]
    assert all(len(json.dumps(entry)) < 500 for entry in history), "no image bytes stored"
    second = world.openai.requests[1]
    earlier = [m["content"] for m in second["messages"][1:-1]]
    assert earlier == ["[image] What is it?", "A flag."]
    assert "base64" not in json.dumps(second)


@pytest.mark.timeout(20)
async def test_album_is_answered_as_one_turn(world: World, bot: BotRunner) -> None:
    """Two photos of one album (same media_group_id) give one request with both images."""
    first, second = world.telegram.add_file(png_bytes()), world.telegram.add_file(png_bytes())
    world.openai.script.append(Answer("Two pictures."))
    async with bot(openai_vision_models=["model-a"]):
        world.telegram.push_photo(
            chat_id=CHAT, user_id=USER, file_id=first, caption="Compare", media_group_id="g1"
        )
        world.telegram.push_photo(chat_id=CHAT, user_id=USER, file_id=second, media_group_id="g1")
        await settle(lambda: replied(world, CHAT, "Two pictures."))
        await asyncio.sleep(0.3)
    (request,) = world.openai.requests
    content = user_content(request)
    assert text_parts(content) == ["Compare"]
    assert len(image_urls(content)) == 2
    history = await history_of(world.redis_url, f"u:{USER}")
    assert history[0]["images"] == [first, second]


async def test_image_document_without_caption_gets_default_prompt(
    world: World, bot: BotRunner
) -> None:
    """An image sent as a document is answered with the default prompt in the user's language."""
    file_id = world.telegram.add_file(png_bytes((300, 200)))
    world.openai.script.append(Answer("好的。"))
    async with bot(openai_vision_models=["model-a"]):
        world.telegram.push_photo(
            chat_id=CHAT, user_id=USER, file_id=file_id, as_document=True, language_code="zh-hans"
        )
        await settle(lambda: replied(world, CHAT, "好的。"))
    content = user_content(world.openai.requests[0])
    assert text_parts(content) == [t("image_prompt", "zh")]
    with Image.open(io.BytesIO(jpeg_of(image_urls(content)[0]))) as sent:
        assert sent.size == (300, 200)


async def test_undecodable_image_gets_a_clear_message(world: World, bot: BotRunner) -> None:
    """Bytes that are not an image get the unreadable-image text and no provider request."""
    file_id = world.telegram.add_file(b"this is not a picture")
    async with bot(openai_vision_models=["model-a"]):
        world.telegram.push_photo(chat_id=CHAT, user_id=USER, file_id=file_id, as_document=True)
        await settle(lambda: replied(world, CHAT, t("image_unreadable", "en")))
        await asyncio.sleep(0.1)
    assert world.openai.requests == []
    assert len(world.telegram.bot_messages(CHAT)) == 1


async def test_file_over_20_mb_is_refused_before_download(world: World, bot: BotRunner) -> None:
    """A file announced larger than 20 MB gets the too-large text and is never downloaded."""
    file_id = world.telegram.add_file(png_bytes((50, 50)))
    async with bot(openai_vision_models=["model-a"]):
        world.telegram.push_photo(
            chat_id=CHAT,
            user_id=USER,
            file_id=file_id,
            as_document=True,
            file_size=MAX_DOWNLOAD_BYTES + 1,
        )
        await settle(lambda: replied(world, CHAT, t("image_too_large", "en")))
    assert world.telegram.downloads == []
    assert world.openai.requests == []


async def test_group_photo_is_answered_only_when_addressed(world: World, bot: BotRunner) -> None:
    """In a group a photo without a mention is ignored; one whose caption mentions the bot is
    answered, without the mention in the question."""
    file_id = world.telegram.add_file(png_bytes((200, 200)))
    world.openai.script.append(Answer("A square."))
    async with bot(openai_vision_models=["model-a"]):
        world.telegram.push_photo(
            chat_id=GROUP,
            user_id=USER,
            file_id=file_id,
            caption="just sharing",
            chat_type="supergroup",
        )
        world.telegram.push_photo(
            chat_id=GROUP,
            user_id=USER,
            file_id=file_id,
            caption=f"@{BOT_USERNAME} what shape?",
            chat_type="supergroup",
        )
        await settle(lambda: replied(world, GROUP, "A square."))
    (request,) = world.openai.requests
    assert text_parts(user_content(request)) == ["what shape?"]


async def test_retry_of_a_photo_turn_sends_the_image_again(world: World, bot: BotRunner) -> None:
    """/retry after a photo turn downloads the photo again and sends it with the caption."""
    file_id = world.telegram.add_file(png_bytes((400, 200)))
    world.openai.script += [Answer("First look."), Answer("Second look.")]
    async with bot(openai_vision_models=["model-a"]):
        world.telegram.push_photo(chat_id=CHAT, user_id=USER, file_id=file_id, caption="Colours?")
        await settle(lambda: replied(world, CHAT, "First look."))
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="/retry")
        await settle(lambda: replied(world, CHAT, "Second look."))
    first, second = world.openai.requests
    assert text_parts(user_content(second)) == ["Colours?"]
    assert len(image_urls(user_content(second))) == 1
    assert len(second["messages"]) == len(first["messages"]), "the old answer is not in history"
