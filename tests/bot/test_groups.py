"""Conversation scopes in groups, the shared switch, and discussion-thread context."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest
from telegram import Chat, Message, User

from bot.conversation.groups import conversation_scope, set_shared, thread_context
from bot.conversation.scope import scope_of
from storage import ConversationStore, open_store

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
STUDENT = User(7, "Student", is_bot=False)


def message(chat: Chat, *, thread: int | None = None, topic: bool = False,
            reply_to: Message | None = None, text: str = "q") -> Message:
    """A message from STUDENT in ``chat``."""
    return Message(1, NOW, chat, from_user=STUDENT, text=text, message_thread_id=thread,
                   is_topic_message=topic or None, reply_to_message=reply_to)


@pytest.fixture
async def store() -> AsyncIterator[ConversationStore]:
    """An embedded store."""
    opened, _ = await open_store("memory://", max_turns=5, max_tokens=1000, ttl_seconds=600)
    yield opened
    await opened.aclose()


def test_scopes_per_chat_kind() -> None:
    """Private: per user; group: per member; forum topic: per topic and member."""
    private = Chat(7, Chat.PRIVATE)
    group = Chat(-100, Chat.SUPERGROUP)
    forum = Chat(-200, Chat.SUPERGROUP, is_forum=True)
    assert scope_of(message(private), user_id=7) == "u:7"
    assert scope_of(message(group), user_id=7) == "c:-100:u:7"
    assert scope_of(message(forum, thread=5, topic=True), user_id=7) == "c:-200:t:5:u:7"
    assert scope_of(message(group), user_id=7, shared=True) == "c:-100"


async def test_shared_switch_changes_the_scope(store: ConversationStore) -> None:
    """After an admin switches a group to shared, every member lands in one conversation."""
    group = Chat(-100, Chat.SUPERGROUP)
    assert await conversation_scope(store, message(group), 7) == "c:-100:u:7"
    await set_shared(store, -100, True)
    assert await conversation_scope(store, message(group), 7) == "c:-100"
    await set_shared(store, -100, False)
    assert await conversation_scope(store, message(group), 7) == "c:-100:u:7"


async def test_discussion_thread_gets_the_channel_post(store: ConversationStore) -> None:
    """A comment under a channel post gets the post as context, and so do later replies."""
    discussion = Chat(-300, Chat.SUPERGROUP)
    post = Message(50, NOW, discussion, text="Homework 3: prove that √2 is irrational.",
                   is_automatic_forward=True)
    first = message(discussion, thread=50, reply_to=post)
    context = await thread_context(store, first)
    assert context is not None and context.endswith("Homework 3: prove that √2 is irrational.")
    other_comment = Message(60, NOW, discussion, from_user=STUDENT, text="me too")
    deeper = message(discussion, thread=50, reply_to=other_comment)
    assert await thread_context(store, deeper) == context
    assert await thread_context(store, message(discussion)) is None
