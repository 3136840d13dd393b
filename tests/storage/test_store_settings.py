"""Per-conversation settings and global state: model, options, de-dup, sessions, usage."""

from __future__ import annotations

import pytest

from storage import ConversationStore, key

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
