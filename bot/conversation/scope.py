"""Scopes: the one producer of the strings naming a conversation, a user or a chat.

A scope names whose state a Redis key holds (:mod:`storage.keys` puts it in every
key's hash tag and defines the formats; nothing outside this module spells them):

- :func:`user_scope` ``u:<user_id>``: the user's private chat with the bot, and the
  user's own settings (``/settings``), wherever they talk;
- :func:`chat_scope` ``c:<chat_id>``: a group's settings (the ``/shared`` switch), and
  its one shared conversation;
- :func:`thread_scope` ``c:<chat_id>:t:<thread_id>``: a forum topic or a channel
  post's comment thread (its shared conversation, the post it hangs under);
- :func:`scope_of` a message's conversation: in a group one per (chat, member)
  ``c:<chat_id>:u:<user_id>``, in a thread ``c:<chat_id>:t:<thread_id>:u:<user_id>``;
  a group switched to one shared conversation drops the ``:u:<user_id>`` part;
- :func:`local_scope` ``t:<name>``: the operator's terminal chat.

:func:`chat_of` reads the group back out of a scope (its chat settings apply to every
conversation in it, :mod:`bot.conversation.chat_settings`).
"""

from __future__ import annotations

from telegram import Chat, Message, User

from storage.keys import CHAT_SCOPE, LOCAL_SCOPE, MEMBER_PART, THREAD_PART, USER_SCOPE

__all__ = [
    "chat_of",
    "chat_scope",
    "local_scope",
    "scope_of",
    "settings_owners",
    "thread_of",
    "thread_scope",
    "user_scope",
]


def user_scope(user_id: int) -> str:
    """``u:<user_id>``: the user's private conversation and the user's settings."""
    return USER_SCOPE.format(user_id=int(user_id))


def chat_scope(chat_id: int) -> str:
    """``c:<chat_id>``: the group's settings and its shared conversation."""
    return CHAT_SCOPE.format(chat_id=int(chat_id))


def thread_scope(chat_id: int, thread_id: int) -> str:
    """``c:<chat_id>:t:<thread_id>``: one forum topic or comment thread of a group."""
    return chat_scope(chat_id) + THREAD_PART.format(thread_id=int(thread_id))


def local_scope(name: str) -> str:
    """``t:<name>``: the terminal chat of OS user ``name`` (must hold no ``{`` or ``}``)."""
    return LOCAL_SCOPE.format(name=name)


def chat_of(scope: str) -> int | None:
    """The group a scope belongs to: ``<chat_id>`` of ``c:<chat_id>`` and of every scope
    under it (topics, threads, members); ``None`` for a user's or the terminal's scope."""
    prefix = CHAT_SCOPE.partition("{")[0]
    if not scope.startswith(prefix):
        return None
    head = scope[len(prefix) :].partition(":")[0]
    return int(head) if head.lstrip("-").isdigit() else None


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
    """Return the scope of the conversation ``message`` sent by ``user_id`` belongs to.

    ``shared`` is the chat's "one shared conversation" switch (groups only).
    """
    chat = message.chat
    if chat.type == Chat.PRIVATE:
        return user_scope(user_id)
    thread = thread_of(message)
    base = chat_scope(chat.id) if thread is None else thread_scope(chat.id, thread)
    return base if shared else base + MEMBER_PART.format(user_id=int(user_id))


def settings_owners(user: User | None, chat: Chat | None) -> tuple[str, ...]:
    """The scopes whose settings an update from ``user`` in ``chat`` keeps alive.

    The user's (wherever they write) and, outside private chats, the chat's; either is
    left out when the update has no user (a channel post) or no chat (an inline query).
    """
    owners: list[str] = []
    if user is not None:
        owners.append(user_scope(user.id))
    if chat is not None and chat.type != Chat.PRIVATE:
        owners.append(chat_scope(chat.id))
    return tuple(owners)
