"""The gate: runs before every other handler; drops duplicate updates and unknown users,
and keeps the settings of the user and chat of every update let through alive."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ApplicationHandlerStop

from bot.conversation.scope import settings_owners
from bot.texts import t
from handlers.common import lang_of
from handlers.context import BotContext

__all__ = ["gate_update"]

log = logging.getLogger(__name__)


async def gate_update(update: Update, context: BotContext) -> None:
    """Stop duplicate updates (seen ``update_id``) and users outside ``ALLOWED_USER_IDS``;
    refresh the TTL of the settings of the user and chat of any other update."""
    services = context.services
    if not await services.store.mark_update_seen(update.update_id):
        log.info("dropping duplicate update %s", update.update_id)
        raise ApplicationHandlerStop
    allowed = services.settings.allowed_user_ids
    user = update.effective_user
    if allowed and (user is None or str(user.id) not in allowed):
        if update.effective_message is not None and update.effective_chat is not None \
                and update.effective_chat.type == "private":
            await update.effective_message.reply_text(t("not_allowed", lang_of(update)))
        raise ApplicationHandlerStop
    await services.store.touch_settings(*settings_owners(user, update.effective_chat))
