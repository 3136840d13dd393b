"""The conversation, free of Telegram's wire: one turn (history in, provider stream
out, answer stored), what a failure tells the user and the operator, which
conversation ("scope") a message belongs to, group switches and discussion-thread
context, and images prepared for vision models. The reply it streams to is any
:class:`ReplySink`; :mod:`bot.reply` is the Telegram one."""

from bot.conversation.failures import describe_failure, log_failure
from bot.conversation.turn import ConversationService
from bot.conversation.types import ImageLoader, Outcome, ReplySink, StreamState, TurnInput

__all__ = [
    "ConversationService",
    "ImageLoader",
    "Outcome",
    "ReplySink",
    "StreamState",
    "TurnInput",
    "describe_failure",
    "log_failure",
]
