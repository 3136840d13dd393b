"""Conversation identity: which conversation ("scope") a Telegram message belongs to.

- private chat: one conversation per user — ``u:<user_id>``;
- group / supergroup: one per (chat, user) — ``c:<chat_id>:u:<user_id>``;
- forum topic or channel discussion thread: one per (chat, thread, user) —
  ``c:<chat_id>:t:<thread_id>:u:<user_id>``;
- a group switched to one shared conversation drops the ``:u:<user_id>`` part.
"""

from __future__ import annotations

from telegram import Chat, Message

__all__ = ["scope_of", "thread_of"]


def thread_of(message: Message) -> int | None:
    """The forum topic or discussion thread ``message`` belongs to, if any."""
    if message.chat.type == Chat.PRIVATE:
        return None
    if message.is_topic_message or _is_discussion_comment(message):
        return message.message_thread_id
    return None


def _is_discussion_comment(message: Message) -> bool:
    """A comment under a channel post: it replies to the post's automatic forward, or
    carries a thread id in a group that is not a forum."""
    reply = message.reply_to_message
    if reply is not None and reply.is_automatic_forward:
        return True
    return bool(message.message_thread_id) and message.chat.is_forum is not True


def scope_of(message: Message, *, user_id: int, shared: bool = False) -> str:
    """Return the scope key of ``message`` sent by ``user_id``.

    ``shared`` is the chat's "one shared conversation" switch (groups only).
    """
    chat = message.chat
    if chat.type == Chat.PRIVATE:
        return f"u:{user_id}"
    base = f"c:{chat.id}"
    thread = thread_of(message)
    if thread is not None:
        base += f":t:{thread}"
    return base if shared else f"{base}:u:{user_id}"
