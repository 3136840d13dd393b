"""Group conversations: the shared-conversation switch and class Q&A discussion threads.

- A chat admin may switch a group to one shared conversation (``/shared``); the
  switch is stored as the ``shared`` setting of the chat's scope ``c:<chat_id>``
  (kept while the chat is active, see :meth:`storage.ConversationStore.touch_settings`).
- In a channel's linked discussion group, every question in a post's comment thread
  is asked with that channel post as context. The post is remembered (option
  ``post`` of the thread scope ``c:<chat_id>:t:<thread_id>``) the first time a comment
  replying to the post's automatic forward reaches the bot, so deeper replies in the
  thread get it too (docs/telegram.md, "Channels").
"""

from __future__ import annotations

from telegram import Chat, Message

from bot.conversation.scope import chat_scope, scope_of, thread_of, thread_scope
from storage import ConversationStore

__all__ = ["POST_CONTEXT_MAX", "conversation_scope", "is_shared", "set_shared", "thread_context"]

POST_CONTEXT_MAX = 4000  # characters of a channel post kept as context


async def is_shared(store: ConversationStore, chat_id: int) -> bool:
    """True when the group ``chat_id`` runs one shared conversation."""
    return (await store.get_settings(chat_scope(chat_id))).get("shared") == "1"


async def set_shared(store: ConversationStore, chat_id: int, shared: bool) -> None:
    """Switch the group ``chat_id`` to one shared conversation, or back to one per member."""
    await store.set_setting(chat_scope(chat_id), "shared", "1" if shared else "0")


async def conversation_scope(store: ConversationStore, message: Message, user_id: int) -> str:
    """The scope of ``message`` by ``user_id``, honouring the group's shared switch."""
    if message.chat.type == Chat.PRIVATE:
        return scope_of(message, user_id=user_id)
    shared = await is_shared(store, message.chat_id)
    return scope_of(message, user_id=user_id, shared=shared)


async def thread_context(store: ConversationStore, message: Message) -> str | None:
    """The channel post a discussion-thread question hangs under, framed for the model.

    ``None`` outside discussion threads, or when the post was never seen.
    """
    thread_id = thread_of(message)
    if thread_id is None or message.chat.is_forum:
        return None
    thread = thread_scope(message.chat_id, thread_id)
    reply = message.reply_to_message
    post: str | None = None
    if reply is not None and reply.is_automatic_forward:
        post = (reply.text or reply.caption or "")[:POST_CONTEXT_MAX]
        if post:
            await store.set_option(thread, "post", post)
    else:
        post = (await store.get_options(thread)).get("post")
    if not post:
        return None
    return "The question below was asked under this post of the course channel:\n\n" + post
