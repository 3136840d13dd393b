"""The application's error handler, and the notice that the bot's storage is unavailable."""

from __future__ import annotations

import logging
import time

from telegram import Message, Update
from telegram.error import TelegramError

from bot.texts import t
from handlers.common import addressed_to_bot, lang_of
from handlers.context import BotContext
from storage import redis_unavailable

__all__ = ["UNAVAILABLE_NOTICE_EVERY", "report_error", "tell_unavailable"]

log = logging.getLogger(__name__)

UNAVAILABLE_NOTICE_EVERY = 60.0
"""Seconds: a chat is told that the storage is unavailable at most once in this window."""
_NOTICED_AT = "storage_unavailable_noticed_at"
"""``context.chat_data`` key: ``time.monotonic()`` of the chat's last unavailable notice."""


async def report_error(update: object, context: BotContext) -> None:
    """Tell the user briefly what went wrong; never a trace.

    An error that means Redis cannot serve now (:func:`storage.redis_unavailable`) is
    logged as one WARNING line and answered with :func:`tell_unavailable`; any other
    is logged with its traceback and answered with one short line.
    """
    error = context.error
    if error is not None and redis_unavailable(error):
        log.warning(
            "storage unavailable while handling an update: %s: %s", type(error).__name__, error
        )
        if isinstance(update, Update):
            await tell_unavailable(update, context)
        return
    log.error("unhandled error while processing an update", exc_info=error)
    if not isinstance(update, Update) or update.effective_message is None:
        return
    await _send_notice(update.effective_message, t("error_generic", lang_of(update)))


async def tell_unavailable(update: Update, context: BotContext) -> None:
    """Say "temporarily unavailable, try again in a minute" for an update not handled
    because Redis cannot serve.

    A button press is answered (its toast) every time; a message is answered only
    when it was meant for the bot (a private chat, a command, a mention or a reply to
    the bot) and only once per chat per :data:`UNAVAILABLE_NOTICE_EVERY` seconds
    (counted in this process, in ``context.chat_data``), so an outage costs a chat one
    notice, not one per message. Updates without a user (channel posts) get nothing.
    Never raises a Telegram error (logged).
    """
    if update.effective_user is None:
        return
    text = t("storage_unavailable", lang_of(update))
    query = update.callback_query
    if query is not None:
        try:
            await query.answer(text)
        except TelegramError as exc:
            log.warning("could not answer a button press during the outage: %s", exc)
        return
    message = update.effective_message
    if message is None or not _meant_for_bot(message) or not _notice_due(context):
        return
    await _send_notice(message, text)


def _meant_for_bot(message: Message) -> bool:
    text = message.text or message.caption or ""
    return text.startswith("/") or addressed_to_bot(message, text)


def _notice_due(context: BotContext) -> bool:
    """True (and the time noted) when the chat had no notice in the last window."""
    chat_data = context.chat_data
    if chat_data is None:
        return False
    now = time.monotonic()
    last = chat_data.get(_NOTICED_AT)
    if last is not None and now - last < UNAVAILABLE_NOTICE_EVERY:
        return False
    chat_data[_NOTICED_AT] = now
    return True


async def _send_notice(message: Message, text: str) -> None:
    """Reply ``text`` to ``message``; a failure is logged. A 502 or a network error is
    retried by the bot's one path to the Bot API (its rate limiter,
    ``bot.app.bot_api.BotApiPath``), never a send whose outcome is unknown."""
    try:
        await message.reply_text(text)
    except TelegramError as exc:
        log.warning("could not tell the user about the error: %s", exc)
