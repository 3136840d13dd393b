"""Messages the bot cannot act on: kinds it cannot read, and commands it does not know.

Both get one short line, so a user is never left without an answer; in groups only
when the message is addressed to the bot (the filters in :mod:`bot.app.wiring` decide).
"""

from __future__ import annotations

from collections import OrderedDict

from telegram import Update

from bot.texts import t
from handlers.common import lang_of
from handlers.context import BotContext

__all__ = ["hint_unknown_command", "tell_unsupported"]

_ALBUMS_REMEMBERED = 1024
"""Albums (``media_group_id``) whose users were already told; the oldest are forgotten."""

_told_albums: OrderedDict[tuple[int, str], None] = OrderedDict()


def _first_of_album(chat_id: int, media_group_id: str | None) -> bool:
    """True for a message outside an album, and for the first one seen of each album.

    An album arrives as one update per item (Bot API "media_group_id"); five videos
    get one answer, not five.
    """
    if media_group_id is None:
        return True
    album = (chat_id, media_group_id)
    if album in _told_albums:
        return False
    _told_albums[album] = None
    if len(_told_albums) > _ALBUMS_REMEMBERED:
        _told_albums.popitem(last=False)
    return True


async def tell_unsupported(update: Update, context: BotContext) -> None:
    """Say what the bot reads (text; photos and image files for vision models) in answer
    to a sticker, voice message, video, file or other kind it cannot read; once per album."""
    message = update.effective_message
    if message is None or not _first_of_album(message.chat_id, message.media_group_id):
        return
    await message.reply_text(t("unsupported_kind", lang_of(update)))


async def hint_unknown_command(update: Update, context: BotContext) -> None:
    """Point an unknown command (``/foo``, ``/foo@thisbot``) to /help."""
    if update.effective_message is not None:
        await update.effective_message.reply_text(t("unknown_command", lang_of(update)))
