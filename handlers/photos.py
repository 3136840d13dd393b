"""Image handlers: a photo or image document (an album as one turn) for a vision model."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from telegram import Message, Update
from telegram.error import BadRequest

from bot.conversation.images import AlbumCollector, AlbumSlot, ImageError, prepare_image
from bot.conversation.quoted import QuotedContext, load_quoted, quoted_source
from bot.conversation.turn import TurnInput
from bot.texts import Lang, t
from handlers.common import (
    addressed_to_bot,
    lang_of,
    question_text,
    refused_for_quota,
    scope_for,
    shows_reasoning,
)
from handlers.context import BotContext
from handlers.private_answers import answered_in_private
from providers.types import ImagePart

__all__ = ["ALBUMS", "MAX_DOWNLOAD_BYTES", "answer_photo"]

log = logging.getLogger(__name__)

MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
"""Bots download files up to 20 MB with ``getFile`` (docs/telegram.md "Limits")."""


@dataclass(frozen=True)
class _Image:
    """One received image: the prepared bytes, its Telegram ``file_id``, its caption."""

    part: ImagePart
    file_id: str
    caption: str


ALBUMS: AlbumCollector[_Image] = AlbumCollector()
"""The albums being collected in this process (:class:`bot.conversation.images.AlbumCollector`)."""


async def answer_photo(update: Update, context: BotContext) -> None:
    """Answer a photo or image document (an album as one turn) when the model has vision."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    album = (message.chat_id, message.media_group_id) if message.media_group_id else None
    slot = ALBUMS.join(album, start=addressed_to_bot(message, message.caption or ""))
    if slot is None:
        return
    lang, scope = lang_of(update), await scope_for(context, message, user)
    model = await context.services.conversations.current_model(scope)
    image = None
    try:
        if not model.vision:
            if slot.first:
                await message.reply_text(t("image_needs_vision", lang, model=model.display_name))
            return
        image = await _read_image(message, context.bot.username, lang)
    finally:
        slot.fill(image)
    if not slot.first:
        return
    answer = _answer_images(context, message, scope=scope, lang=lang, slot=slot)
    if album is None:
        await answer
    else:  # not inline: the album's other updates are queued behind this one (bot.app.ordering)
        context.application.create_task(answer, update=update)


async def _answer_images(
    context: BotContext, message: Message, *, scope: str, lang: Lang, slot: AlbumSlot[_Image]
) -> None:
    """Run one turn with every image of the slot's album, the captions as the question, and
    the message the first one replies to or quotes (its image first, when it has one)."""
    images = await slot.collect()
    if not images or message.from_user is None:
        return
    if await refused_for_quota(context, message, message.from_user, lang):
        return
    user_id = message.from_user.id
    captions = "\n".join(image.caption for image in images if image.caption)
    text = captions or t("image_prompt" if len(images) == 1 else "images_prompt", lang)
    source = quoted_source(message, bot_id=context.bot.id)
    quoted = (
        await load_quoted(source, context.bot, vision=True, max_bytes=MAX_DOWNLOAD_BYTES)
        if source is not None
        else QuotedContext("")
    )
    services = context.services
    turn = TurnInput(
        scope,
        user_id,
        text,
        images=quoted.images + tuple(image.part for image in images),
        image_file_ids=quoted.file_ids + tuple(image.file_id for image in images),
        quoted=quoted.block or None,
    )
    if await answered_in_private(context, message, turn, lang):  # the group's setting
        return
    reply = services.replies.open(
        message,
        lang=lang,
        show_reasoning=await shows_reasoning(context, user_id),
        on_forbidden=lambda: services.conversations.stop(scope),
    )
    await services.conversations.run_turn(turn, reply)


async def _read_image(message: Message, bot_username: str | None, lang: Lang) -> _Image | None:
    """Download and prepare the message's image; tell the user and return None on failure."""
    attachment = message.photo[-1] if message.photo else message.document
    if attachment is None:
        return None
    if (attachment.file_size or 0) > MAX_DOWNLOAD_BYTES:
        await message.reply_text(t("image_too_large", lang))
        return None
    try:
        data = await (await attachment.get_file()).download_as_bytearray()
    except BadRequest as exc:  # "File is too big" when Telegram did not give file_size
        if "too big" not in exc.message.lower():
            raise
        await message.reply_text(t("image_too_large", lang))
        return None
    try:
        part = await asyncio.to_thread(prepare_image, bytes(data))
    except ImageError as exc:
        log.info("unreadable image in chat %s: %s", message.chat_id, exc)
        await message.reply_text(t("image_unreadable", lang))
        return None
    return _Image(part, attachment.file_id, question_text(message, bot_username))
