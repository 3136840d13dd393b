"""The gate: runs before every other handler; drops unknown users and duplicate updates,
and keeps the settings of the user and chat of every update let through alive.

It fails closed. The allow-list comes from the settings, so a stranger is refused
whatever Redis does. Anything the gate's Redis calls raise stops the update with
``ApplicationHandlerStop``: an exception in a handler does not stop PTB's later handler
groups, only ``ApplicationHandlerStop`` does
(https://docs.python-telegram-bot.org/en/stable/telegram.ext.application.html#telegram.ext.Application.add_handler),
so no update reaches a command or the model without the gate having run.
"""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ApplicationHandlerStop

from bot.conversation.scope import settings_owners
from handlers.access import admitted
from handlers.context import BotContext
from handlers.errors import tell_unavailable
from storage import redis_unavailable

__all__ = ["gate_update"]

log = logging.getLogger(__name__)


async def gate_update(update: Update, context: BotContext) -> None:
    """Stop updates the allow-lists refuse (:func:`handlers.access.admitted`; no Redis
    needed: a stranger is told their id, an unlisted group ignored or left), duplicate
    updates (seen ``update_id``), and every update while Redis fails (the user is told,
    see :func:`handlers.errors.tell_unavailable`); refresh the TTL of the settings of
    the user and chat of any other update. Always either returns or raises
    ``ApplicationHandlerStop``."""
    services = context.services
    user = update.effective_user
    # The allow-lists (ALLOWED_USER_IDS, ADMIN_USER_IDS, ALLOWED_CHAT_IDS): handlers.access
    if not await admitted(update, context):
        raise ApplicationHandlerStop
    try:
        first = await services.store.mark_update_seen(update.update_id)
        if first:
            await services.store.touch_settings(*settings_owners(user, update.effective_chat))
    except Exception as exc:  # fail closed, whatever went wrong
        if redis_unavailable(exc):
            log.warning(
                "storage unavailable: update %s not handled: %s: %s",
                update.update_id,
                type(exc).__name__,
                exc,
            )
        else:
            log.error("the gate failed: update %s not handled", update.update_id, exc_info=exc)
        await tell_unavailable(update, context)
        raise ApplicationHandlerStop from None
    if not first:
        log.info("dropping duplicate update %s", update.update_id)
        raise ApplicationHandlerStop
