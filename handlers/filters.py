"""Update filters of the bot's own: which messages are addressed to it, which commands are
meant for it, and which message kinds it cannot read."""

from __future__ import annotations

from telegram import Message, MessageEntity
from telegram.ext import filters

from handlers.common import addressed_to_bot

__all__ = ["UNSUPPORTED_KINDS", "AddressedMessage", "AddressedText", "CommandToThisBot"]


class AddressedText(filters.MessageFilter):
    """Text (not a command) addressed to the bot: any in private chats; in groups one that
    mentions the bot or replies to it (:func:`handlers.common.addressed_to_bot`)."""

    def filter(self, message: Message) -> bool:
        """True when the bot should answer ``message``."""
        if not message.text or message.text.startswith("/"):
            return False
        return addressed_to_bot(message, message.text)


class AddressedMessage(filters.MessageFilter):
    """Any message addressed to the bot: every one in private chats; in groups one whose
    text or caption mentions the bot, or that replies to the bot
    (:func:`handlers.common.addressed_to_bot`)."""

    def filter(self, message: Message) -> bool:
        """True when ``message`` is addressed to the bot."""
        return addressed_to_bot(message, message.text or message.caption or "")


class CommandToThisBot(filters.MessageFilter):
    """A message starting with a command meant for this bot: ``/name``, or
    ``/name@<this bot's username>``; not ``/name@otherbot``.

    Telegram marks a command with a ``bot_command`` entity whose span includes the
    ``@username`` suffix (Bot API "MessageEntity"; PTB's ``CommandHandler`` reads it the
    same way). Placed after the ``CommandHandler``\\ s of the known commands, it catches
    the unknown ones.
    """

    def filter(self, message: Message) -> bool:
        """True when ``message`` begins with a command addressed to this bot (or to all)."""
        if not message.text or not message.entities:
            return False
        first = message.entities[0]
        if first.type != MessageEntity.BOT_COMMAND or first.offset != 0:
            return False
        _, _, target = message.text[1 : first.length].partition("@")
        return not target or target.lower() == (message.get_bot().username or "").lower()


UNSUPPORTED_KINDS = (
    filters.Sticker.ALL
    | filters.VOICE
    | filters.AUDIO
    | filters.VIDEO
    | filters.VIDEO_NOTE
    | filters.ANIMATION
    | (filters.Document.ALL & ~filters.Document.IMAGE)
    | filters.LOCATION
    | filters.VENUE
    | filters.CONTACT
    | filters.POLL
    | filters.Dice.ALL
)
"""Message kinds the bot cannot read: stickers, voice, audio, video, video notes,
animations, documents that are not images (PDFs and the like), locations, venues,
contacts, polls and dice. Image documents go to the photo handler."""
