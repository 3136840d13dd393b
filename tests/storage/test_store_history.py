"""Conversation history: append, load, trim, TTL, clear, pop — on both backends."""

from __future__ import annotations

import pytest

from storage import ConversationStore, StoredMessage, key, open_store

pytestmark = pytest.mark.timeout(10)


def exchange(n: int, *, size: int = 10) -> tuple[StoredMessage, StoredMessage]:
    """Return a user/assistant pair whose contents start with ``q<n>``/``a<n>``."""
    return (
        StoredMessage("user", f"q{n}".ljust(size, ".")),
        StoredMessage("assistant", f"a{n}".ljust(size, ".")),
    )


async def test_append_then_load_returns_messages_oldest_first(store: ConversationStore) -> None:
    """Two appended exchanges load back as user, assistant, user, assistant in order."""
    await store.append_exchange("u:1", *exchange(1))
    await store.append_exchange("u:1", *exchange(2))
    history = await store.load_history("u:1")
    assert [m.content[:2] for m in history] == ["q1", "a1", "q2", "a2"]
    assert [m.role for m in history] == ["user", "assistant", "user", "assistant"]


async def test_load_history_of_unknown_scope_is_empty(store: ConversationStore) -> None:
    """A scope never written has an empty history."""
    assert await store.load_history("u:404") == []


async def test_scopes_do_not_share_history(store: ConversationStore) -> None:
    """An exchange in one scope is not visible in another."""
    await store.append_exchange("c:-100:u:1", *exchange(1))
    assert await store.load_history("c:-100:u:2") == []


async def test_trim_keeps_at_most_max_turns_newest_exchanges(store: ConversationStore) -> None:
    """With max_turns exchanges exceeded, the oldest exchanges are dropped first."""
    for n in range(store.max_turns + 2):
        await store.append_exchange("u:1", *exchange(n))
    history = await store.load_history("u:1")
    assert len(history) == 2 * store.max_turns
    assert history[0].content.startswith("q2")
    assert history[-1].content.startswith(f"a{store.max_turns + 1}")


async def test_trim_by_token_budget_drops_oldest(store: ConversationStore) -> None:
    """When the token estimate exceeds max_tokens, whole oldest exchanges are dropped."""
    half = store.max_tokens // 2  # tokens per exchange: two messages of half/2 tokens each
    for n in range(3):
        await store.append_exchange("u:1", *exchange(n, size=half * 2))
    history = await store.load_history("u:1")
    assert [m.content[:2] for m in history] == ["q1", "a1", "q2", "a2"]
    assert sum(m.tokens for m in history) <= store.max_tokens


async def test_trim_keeps_newest_exchange_even_over_budget(store: ConversationStore) -> None:
    """An exchange larger than the whole budget is still kept, alone."""
    await store.append_exchange("u:1", *exchange(1))
    huge = exchange(2, size=store.max_tokens * 8)
    await store.append_exchange("u:1", *huge)
    history = await store.load_history("u:1")
    assert history == list(huge)


async def test_cjk_text_counts_toward_token_budget(store: ConversationStore) -> None:
    """CJK text (about one token per character) triggers the trim at the right size."""
    cjk = "你" * (store.max_tokens // 2)
    await store.append_exchange("u:1", StoredMessage("user", cjk), StoredMessage("assistant", "好"))
    await store.append_exchange("u:1", StoredMessage("user", cjk), StoredMessage("assistant", "行"))
    history = await store.load_history("u:1")
    assert [m.content for m in history] == [cjk, "行"]


async def test_append_sets_and_refreshes_ttl(store: ConversationStore) -> None:
    """Appending sets the history TTL and resets a shorter TTL on history and model keys."""
    await store.set_model("u:1", "glm-4")
    await store.append_exchange("u:1", *exchange(1))
    history_key, model_key = key("u:1", "history"), key("u:1", "model")
    assert 0 < await store.redis.ttl(history_key) <= store.ttl_seconds
    await store.redis.expire(history_key, 100)
    await store.redis.expire(model_key, 100)
    await store.append_exchange("u:1", *exchange(2))
    assert await store.redis.ttl(history_key) > 100
    assert await store.redis.ttl(model_key) > 100


async def test_append_rejects_swapped_roles(store: ConversationStore) -> None:
    """An exchange must be a user message then an assistant message."""
    user, assistant = exchange(1)
    with pytest.raises(ValueError, match="user message then an assistant"):
        await store.append_exchange("u:1", assistant, user)
    assert await store.load_history("u:1") == []


async def test_clear_deletes_history_only(store: ConversationStore) -> None:
    """/reset's clear empties the history but keeps the chosen model and options."""
    await store.append_exchange("u:1", *exchange(1))
    await store.set_model("u:1", "qwen-max")
    await store.set_option("u:1", "reasoning", "hide")
    await store.clear("u:1")
    assert await store.load_history("u:1") == []
    assert await store.get_model("u:1") == "qwen-max"
    assert await store.get_options("u:1") == {"reasoning": "hide"}


async def test_pop_last_exchange_removes_and_returns_newest_pair(
    store: ConversationStore,
) -> None:
    """pop_last_exchange returns the newest (user, assistant) and leaves the older ones."""
    await store.append_exchange("u:1", *exchange(1))
    await store.append_exchange("u:1", *exchange(2))
    assert await store.pop_last_exchange("u:1") == exchange(2)
    assert await store.load_history("u:1") == list(exchange(1))
    assert await store.pop_last_exchange("u:1") == exchange(1)
    assert await store.pop_last_exchange("u:1") is None


async def test_images_and_interrupted_survive_storage(store: ConversationStore) -> None:
    """Image file_ids and the interrupted flag come back unchanged from Redis."""
    user = StoredMessage("user", "看图", image_file_ids=("AgACAgI1", "AgACAgI2"))
    assistant = StoredMessage("assistant", "partial answer", interrupted=True)
    await store.append_exchange("u:1", user, assistant)
    assert await store.load_history("u:1") == [user, assistant]


async def test_unreadable_history_element_is_skipped(store: ConversationStore) -> None:
    """A corrupt element in the history list is skipped instead of failing the load."""
    await store.append_exchange("u:1", *exchange(1))
    await store.redis.rpush(key("u:1", "history"), "not json")
    assert await store.load_history("u:1") == list(exchange(1))


async def test_two_stores_on_one_redis_share_history(redis_url: str) -> None:
    """A store opened later on the same Redis URL sees what an earlier one wrote (restart)."""
    first, embedded = await open_store(redis_url, max_turns=5, max_tokens=5000, ttl_seconds=60)
    await first.append_exchange("c:-100123:t:7:u:42", *exchange(1))
    await first.aclose()
    second, _ = await open_store(redis_url, max_turns=5, max_tokens=5000, ttl_seconds=60)
    try:
        assert await second.load_history("c:-100123:t:7:u:42") == list(exchange(1))
    finally:
        await second.aclose()
    assert embedded is False
