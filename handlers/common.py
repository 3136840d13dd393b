"""Small helpers shared by the handlers: language, scope, and addressing."""

from __future__ import annotations

from telegram import Message, Update, User

from bot.context import BotContext
from bot.scope import scope_of
from bot.texts import Lang, language_of

__all__ = ["lang_of", "question_text", "scope_for", "shows_reasoning"]


def lang_of(update: Update) -> Lang:
    """The catalogue language of the update's user."""
    user = update.effective_user
    return language_of(user.language_code if user else None)


def scope_for(message: Message, user: User) -> str:
    """The conversation scope of ``message`` sent by ``user``."""
    return scope_of(message, user_id=user.id)


def question_text(message: Message, bot_username: str | None) -> str:
    """The message text (or caption) with a leading ``@bot`` mention removed."""
    text = message.text or message.caption or ""
    if bot_username:
        mention = f"@{bot_username}"
        if text.lower().startswith(mention.lower()):
            text = text[len(mention):]
    return text.strip()


async def shows_reasoning(context: BotContext, user_id: int) -> bool:
    """The user's /settings choice: show the model's reasoning (default) or hide it."""
    options = await context.services.store.get_options(f"u:{user_id}")
    return options.get("reasoning", "show") != "hide"
