"""Message handlers: a text message (or a photo with a caption) starts a conversation turn."""

from __future__ import annotations

from telegram import Update

from bot.conversation.groups import thread_context
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

__all__ = ["answer_message"]


async def answer_message(update: Update, context: BotContext) -> None:
    """Answer a text message as one conversation turn, streaming the reply."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    lang = lang_of(update)
    text = question_text(message, context.bot.username)
    if not text:
        await message.reply_text(t("empty_message", lang))
        return
    if await refused_for_quota(context, message, user, lang):
        return
    services = context.services
    scope = await scope_for(context, message, user)
    about = await thread_context(services.store, message)
    reply = services.replies.open(
        message,
        lang=lang,
        show_reasoning=await shows_reasoning(context, user.id),
        on_forbidden=lambda: services.conversations.stop(scope),
    )
    await services.conversations.run_turn(TurnInput(scope, user.id, text, context=about), reply)
