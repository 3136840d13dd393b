"""One reply in one chat: the Telegram :class:`~bot.conversation.ReplySink` that shows
a turn as it grows (typing, drafts in private chats, edits elsewhere, the final text)
through the bot-wide send scheduler, and the chain of messages a long answer fills."""

from bot.reply.chain import MessageChain
from bot.reply.stream import ReplyFactory, TelegramReply

__all__ = ["MessageChain", "ReplyFactory", "TelegramReply"]
