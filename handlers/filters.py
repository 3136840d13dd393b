"""Update filters of the bot's own: which messages are addressed to it."""

from __future__ import annotations

from telegram import Message
from telegram.ext import filters

from handlers.common import addressed_to_bot

__all__ = ["AddressedText"]


class AddressedText(filters.MessageFilter):
    """Text (not a command) addressed to the bot: any in private chats; in groups one that
    mentions the bot or replies to it (:func:`handlers.common.addressed_to_bot`)."""

    def filter(self, message: Message) -> bool:
        """True when the bot should answer ``message``."""
        if not message.text or message.text.startswith("/"):
            return False
        return addressed_to_bot(message, message.text)
