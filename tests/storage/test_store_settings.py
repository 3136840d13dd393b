"""Per-conversation and per-owner settings and global state: model, options, user and
chat settings, de-dup, sessions, usage."""

from __future__ import annotations

import asyncio
import time

import pytest

from storage import ConversationStore, StoredMessage, key, open_store

pytestmark = pytest.mark.timeout(10)


async def test_model_is_none_until_set_then_round_trips(store: ConversationStore) -> None:
    """get_model is None for a new scope and returns what set_model stored."""
    assert await store.get_model("u:1") is None
    await store.set_model("u:1", "deepseek-chat")
    await store.set_model("u:1", "glm-4.5")
    assert await store.get_model("u:1") == "glm-4.5"
    assert await store.get_model("u:2") is None
    assert 0 < await store.redis.ttl(key("u:1", "model")) <= store.ttl_seconds


async def test_options_accumulate_and_overwrite(store: ConversationStore) -> None:
    """set_option adds or replaces one option; get_options returns all of them."""
    assert await store.get_options("u:1") == {}
    await store.set_option("u:1", "reasoning", "show")
    await store.set_option("u:1", "lang", "zh")
    await store.set_option("u:1", "reasoning", "hide")
    assert await store.get_options("u:1") == {"reasoning": "hide", "lang": "zh"}
    assert 0 < await store.redis.ttl(key("u:1", "options")) <= store.ttl_seconds


async def test_mark_update_seen_is_true_only_the_first_time(store: ConversationStore) -> None:
    """An update_id is new once; later calls report a duplicate; the marker has a TTL."""
    assert await store.mark_update_seen(1001) is True
    assert await store.mark_update_seen(1001) is False
    assert await store.mark_update_seen(1002, ttl=60) is True
    assert 0 < await store.redis.ttl("cb:update:1002") <= 60


async def test_provider_session_round_trip_and_replace(store: ConversationStore) -> None:
    """Stored cookies read back exactly, a new set replaces the old one, and no TTL is set."""
    assert await store.get_provider_session("ustb") == {}
    await store.set_provider_session("ustb", {"easy_session": "a" * 32, "cookie_vjuid_login": "x"})
    await store.set_provider_session("ustb", {"easy_session": "b" * 32})
    assert await store.get_provider_session("ustb") == {"easy_session": "b" * 32}
    assert await store.redis.ttl("cb:provider:ustb:session") == -1
    await store.set_provider_session("ustb", {})
    assert await store.get_provider_session("ustb") == {}


async def test_count_usage_adds_to_user_day_and_scope(store: ConversationStore) -> None:
    """Each count adds one request and its tokens to the user's day and the scope counters."""
    await store.count_usage("c:-100:u:42", user_id=42, tokens=120)
    await store.count_usage("c:-100:u:42", user_id=42, tokens=30)
    await store.count_usage("u:42", user_id=42, tokens=5)
    assert await store.get_user_usage(42) == {"requests": 3, "tokens": 155}
    assert await store.get_scope_usage("c:-100:u:42") == {"requests": 2, "tokens": 150}
    assert await store.get_user_usage(7) == {"requests": 0, "tokens": 0}
    assert await store.get_user_usage(42, day="2000-01-01") == {"requests": 0, "tokens": 0}


async def test_settings_round_trip_apart_from_conversation_options(
    store: ConversationStore,
) -> None:
    """A user's and a chat's settings read back, each its own hash beside the scope's
    conversation options, with the store's TTL."""
    assert await store.get_settings("u:1") == {}
    await store.set_setting("u:1", "reasoning", "show")
    await store.set_setting("u:1", "reasoning", "hide")
    await store.set_setting("c:-100", "shared", "1")
    await store.set_option("c:-100", "post", "a channel post")
    assert await store.get_settings("u:1") == {"reasoning": "hide"}
    assert await store.get_settings("c:-100") == {"shared": "1"}
    assert await store.get_options("c:-100") == {"post": "a channel post"}
    assert 0 < await store.redis.ttl(key("u:1", "settings")) <= store.ttl_seconds


async def test_settings_live_while_their_owner_is_active_elsewhere(
    store_backend_url: str,
) -> None:
    """With a 2 s TTL, a user who only asks in a group keeps their setting past the TTL,
    and so does the group; an idle user's and an idle group's settings expire."""
    short, _ = await open_store(store_backend_url, max_turns=3, max_tokens=1000, ttl_seconds=2)
    try:
        for owner, name in (
            ("u:1", "reasoning"),
            ("u:2", "reasoning"),
            ("c:-100", "shared"),
            ("c:-200", "shared"),
        ):
            await short.set_setting(owner, name, "hide" if name == "reasoning" else "1")
        started = time.monotonic()
        while time.monotonic() - started < 3.5:  # user 1 asks in group -100 twice a second
            await short.touch_settings("u:1", "c:-100")
            await short.append_exchange(
                "c:-100:u:1", StoredMessage("user", "q"), StoredMessage("assistant", "a")
            )
            await asyncio.sleep(0.5)
        assert await short.get_settings("u:1") == {"reasoning": "hide"}
        assert await short.get_settings("c:-100") == {"shared": "1"}
        assert await short.get_settings("u:2") == {}
        assert await short.get_settings("c:-200") == {}
    finally:
        await short.aclose()


async def test_touch_without_settings_creates_nothing(store: ConversationStore) -> None:
    """Touching an owner that has no settings leaves no key behind."""
    await store.touch_settings("u:3", "c:-300")
    await store.touch_settings()
    assert await store.redis.exists(key("u:3", "settings"), key("c:-300", "settings")) == 0


async def test_settings_kept_as_conversation_options_are_taken_over(
    store: ConversationStore,
) -> None:
    """Settings an older version kept as the owner scope's ``options`` are read as settings
    (moved, TTL kept); settings already stored win over such leftovers."""
    await store.redis.hset(key("u:1", "options"), "reasoning", "hide")
    await store.redis.expire(key("u:1", "options"), 100)
    assert await store.get_settings("u:1") == {"reasoning": "hide"}
    assert await store.redis.exists(key("u:1", "options")) == 0
    assert 0 < await store.redis.ttl(key("u:1", "settings")) <= 100
    await store.redis.hset(key("c:-100", "options"), "shared", "1")
    await store.set_setting("c:-100", "shared", "0")
    assert await store.get_settings("c:-100") == {"shared": "0"}
