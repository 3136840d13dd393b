"""Scopes, conversation scopes in groups, the shared switch, and discussion-thread context."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from fnmatch import fnmatchcase

import pytest
from telegram import Chat, Message, User

from bot.conversation.groups import conversation_scope, set_shared, thread_context
from bot.conversation.scope import (
    chat_scope,
    local_scope,
    scope_of,
    settings_owners,
    thread_scope,
    user_scope,
)
from storage import ConversationStore, key, open_store
from storage.keys import chat_key_patterns, user_usage_key

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
STUDENT = User(7, "Student", is_bot=False)


def message(
    chat: Chat,
    *,
    thread: int | None = None,
    topic: bool = False,
    reply_to: Message | None = None,
    text: str = "q",
) -> Message:
    """A message from STUDENT in ``chat``."""
    return Message(
        1,
        NOW,
        chat,
        from_user=STUDENT,
        text=text,
        message_thread_id=thread,
        is_topic_message=topic or None,
        reply_to_message=reply_to,
    )


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


def test_scope_builders() -> None:
    """Each builder spells its documented scope."""
    assert user_scope(7) == "u:7"
    assert chat_scope(-100) == "c:-100"
    assert thread_scope(-100, 5) == "c:-100:t:5"
    assert local_scope("ana") == "t:ana"


def test_storage_finds_the_scopes_the_bot_builds() -> None:
    """The storage patterns for a group match every scope built for it and nothing of another
    group or user; per-user usage keys name the user's scope."""
    group, forum = Chat(-5, Chat.SUPERGROUP), Chat(-5, Chat.SUPERGROUP, is_forum=True)
    ours = [
        chat_scope(-5),
        scope_of(message(group), user_id=7),
        scope_of(message(forum, thread=3, topic=True), user_id=7),
        scope_of(message(forum, thread=3, topic=True), user_id=7, shared=True),
    ]
    others = [chat_scope(-55), scope_of(message(Chat(-55, Chat.GROUP)), user_id=7), user_scope(5)]

    def matched(scope: str) -> bool:
        return any(fnmatchcase(key(scope, "history"), p) for p in chat_key_patterns(-5))

    assert all(matched(scope) for scope in ours)
    assert not any(matched(scope) for scope in others)
    assert user_usage_key(7, day="2026-01-01") == f"cb:usage:{user_scope(7)}:2026-01-01"


def test_settings_owners_are_the_user_and_a_group() -> None:
    """An update keeps the user's settings alive, and a group's; a private chat adds nothing."""
    assert settings_owners(STUDENT, Chat(-100, Chat.SUPERGROUP)) == ("u:7", "c:-100")
    assert settings_owners(STUDENT, Chat(7, Chat.PRIVATE)) == ("u:7",)
    assert settings_owners(None, Chat(-100, Chat.CHANNEL)) == ("c:-100",)
    assert settings_owners(STUDENT, None) == ("u:7",)


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
    post = Message(
        50,
        NOW,
        discussion,
        text="Homework 3: prove that √2 is irrational.",
        is_automatic_forward=True,
    )
    first = message(discussion, thread=50, reply_to=post)
    context = await thread_context(store, first)
    assert context is not None and context.endswith("Homework 3: prove that √2 is irrational.")
    other_comment = Message(60, NOW, discussion, from_user=STUDENT, text="me too")
    deeper = message(discussion, thread=50, reply_to=other_comment)
    assert await thread_context(store, deeper) == context
    assert await thread_context(store, message(discussion)) is None
