"""A group that became a supergroup: its conversations go on under the new chat id."""

from __future__ import annotations

import logging

from telegram import Update

from handlers.context import BotContext

__all__ = ["follow_migration"]

log = logging.getLogger(__name__)


async def follow_migration(update: Update, context: BotContext) -> None:
    """Move the group's stored conversations when Telegram says it migrated.

    Telegram posts ``migrate_to_chat_id`` in the old group and ``migrate_from_chat_id``
    in the new supergroup (Bot API ``Message``); either one moves the state
    (:meth:`storage.ConversationStore.move_chat` is idempotent). Runs before the gate,
    so the allow-list does not keep a group's history behind.
    """
    message = update.effective_message
    if message is None:
        return
    if message.migrate_to_chat_id is not None:
        old, new = message.chat_id, message.migrate_to_chat_id
    elif message.migrate_from_chat_id is not None:
        old, new = message.migrate_from_chat_id, message.chat_id
    else:
        return
    moved = await context.services.store.move_chat(old, new)
    log.info("chat %s became %s: moved %d stored keys", old, new, moved)
