"""Small helpers shared by the handlers: language, scope, and addressing."""

from __future__ import annotations

import math

from telegram import Message, Update, User
from telegram.constants import ChatType

from bot.conversation.groups import conversation_scope
from bot.conversation.scope import user_scope
from bot.texts import Lang, language_of, t
from handlers.context import BotContext
from handlers.usage_texts import refusal_text

__all__ = [
    "addressed_to_bot",
    "lang_of",
    "question_text",
    "refused_for_quota",
    "scope_for",
    "shows_reasoning",
]


def lang_of(update: Update) -> Lang:
    """The catalogue language of the update's user."""
    user = update.effective_user
    return language_of(user.language_code if user else None)


async def scope_for(context: BotContext, message: Message, user: User) -> str:
    """The conversation scope of ``message`` sent by ``user`` (honours the shared switch)."""
    return await conversation_scope(context.services.store, message, user.id)


def addressed_to_bot(message: Message, text: str) -> bool:
    """True in private chats; in groups when ``text`` mentions ``@bot`` or it replies to the bot.

    ``text`` is the message text or caption. A reply to the forum-topic creation
    message is not a reply to the bot (every topic message replies to it;
    docs/telegram.md "PTB architecture notes").
    """
    if message.chat.type == ChatType.PRIVATE:
        return True
    bot = message.get_bot()
    reply = message.reply_to_message
    if reply is not None and reply.from_user is not None and reply.from_user.id == bot.id:
        return not reply.forum_topic_created
    username = (bot.username or "").lower()
    return bool(username) and f"@{username}" in text.lower()


def question_text(message: Message, bot_username: str | None) -> str:
    """The message text (or caption) with a leading ``@bot`` mention removed."""
    text = message.text or message.caption or ""
    if bot_username:
        mention = f"@{bot_username}"
        if text.lower().startswith(mention.lower()):
            text = text[len(mention) :]
    return text.strip()


async def shows_reasoning(context: BotContext, user_id: int) -> bool:
    """The user's /settings choice: show the model's reasoning (default) or hide it."""
    settings = await context.services.store.get_settings(user_scope(user_id))
    return settings.get("reasoning", "show") != "hide"


async def refused_for_quota(context: BotContext, message: Message, user: User, lang: Lang) -> bool:
    """Tell the user and return True when a daily quota is used up (their questions, their
    tokens, or in a group the group's tokens: :mod:`bot.conversation.quota`; the answer
    says when they can ask again), or when they ask faster than the per-minute pace
    (``USER_TURNS_PER_MINUTE``) allows. Stores the user's display name for ``/stats``."""
    conversations = context.services.conversations
    group = message.chat.id if message.chat.type != ChatType.PRIVATE else None
    refusal = await conversations.quotas.admit(user.id, chat_id=group, name=user.full_name)
    if refusal is not None:
        await message.reply_text(refusal_text(refusal, lang))
        return True
    wait = await conversations.wait_before_turn(user.id)
    if wait <= 0:
        return False
    await message.reply_text(
        t("too_fast", lang, limit=conversations.turns_per_minute, seconds=math.ceil(wait))
    )
    return True
