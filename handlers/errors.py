"""The application's error handler: log the traceback, tell the user briefly."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import TelegramError

from bot.texts import t
from handlers.common import lang_of
from handlers.context import BotContext

__all__ = ["report_error"]

log = logging.getLogger(__name__)


async def report_error(update: object, context: BotContext) -> None:
    """Log an unhandled error with its traceback; the chat gets one short line, never a trace."""
    log.error("unhandled error while processing an update", exc_info=context.error)
    if not isinstance(update, Update) or update.effective_message is None:
        return
    try:
        await update.effective_message.reply_text(t("error_generic", lang_of(update)))
    except TelegramError as exc:
        log.warning("could not tell the user about the error: %s", exc)
