"""Message handlers: a text message (or a photo with a caption) starts a conversation turn,
with the message it replies to or quotes as context."""

from __future__ import annotations

from dataclasses import replace

from telegram import Update

from bot.conversation.groups import thread_context
from bot.conversation.quoted import load_quoted, quoted_source
from bot.conversation.turn import TurnInput
from bot.texts import t
from handlers.common import (
    lang_of,
    question_text,
    refused_for_quota,
    scope_for,
    shows_reasoning,
)
from handlers.context import BotContext
from handlers.photos import MAX_DOWNLOAD_BYTES
from handlers.private_answers import answered_in_private

__all__ = ["answer_message"]


async def answer_message(update: Update, context: BotContext) -> None:
    """Answer a text message as one conversation turn, streaming the reply.

    The message it replies to (or the part of it quoted) goes along, marked as quoted
    (:mod:`bot.conversation.quoted`); a reply that only mentions the bot asks about that
    message (``quoted_prompt``).
    """
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    lang = lang_of(update)
    text = question_text(message, context.bot.username)
    services = context.services
    about = await thread_context(services.store, message)
    source = quoted_source(message, bot_id=context.bot.id, post_shown=about is not None)
    if not text and source is None:
        await message.reply_text(t("empty_message", lang))
        return
    if await refused_for_quota(context, message, user, lang):
        return
    scope = await scope_for(context, message, user)
    turn = TurnInput(scope, user.id, text or t("quoted_prompt", lang), context=about)
    if source is not None:
        model = await services.conversations.current_model(scope)
        quoted = await load_quoted(
            source, context.bot, vision=model.vision, max_bytes=MAX_DOWNLOAD_BYTES
        )
        turn = replace(
            turn, quoted=quoted.block, images=quoted.images, image_file_ids=quoted.file_ids
        )
    if await answered_in_private(context, message, turn, lang):  # the group's setting
        return
    reply = services.replies.open(
        message,
        lang=lang,
        show_reasoning=await shows_reasoning(context, user.id),
        on_forbidden=lambda: services.conversations.stop(scope),
    )
    await services.conversations.run_turn(turn, reply)
