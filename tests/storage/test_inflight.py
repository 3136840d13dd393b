"""The records of turns in flight and the deferred updates, on real Redis and the embedded
backend."""

from __future__ import annotations

import dataclasses
import time

import pytest

from storage import ConversationStore, StoredMessage
from storage.inflight import DeferredUpdates, InflightTurn, InflightTurns
from storage.keys import deferred_updates_key, inflight_key, key

pytestmark = pytest.mark.timeout(10)


def record(turn_id: str = "t1", *, started_at: float | None = None) -> InflightTurn:
    """A record of a turn in a forum topic, with an image question."""
    return InflightTurn(
        turn_id=turn_id,
        scope="c:-100:t:7",
        chat_id=-100,
        thread_id=7,
        lang="zh",
        reply_to=55,
        message_id=None,
        started_at=time.time() if started_at is None else started_at,
        question=StoredMessage("user", "你好", image_file_ids=("f1",)),
    )


def test_a_record_reads_back_as_written() -> None:
    """JSON round trip keeps every field, ``None``s included; other JSON is refused."""
    written = record()
    assert InflightTurn.from_json(written.to_json()) == written
    told = InflightTurn(
        turn_id="t",
        scope="u:1",
        chat_id=1,
        thread_id=None,
        lang="en",
        reply_to=None,
        message_id=9,
        started_at=1.5,
        question=None,
    )
    assert InflightTurn.from_json(told.to_json()) == told
    for bad in ("[]", '{"turn": "t"}', told.to_json().replace('"chat":1', '"chat":"1"')):
        with pytest.raises(ValueError, match="in-flight record"):
            InflightTurn.from_json(bad)


async def test_records_are_put_replaced_listed_and_removed(store: ConversationStore) -> None:
    """A put record is listed (oldest first); a second put replaces it; remove drops it; the
    hash has a TTL."""
    turns = InflightTurns(store.redis, ttl=600)
    first, second = record("a", started_at=time.time() - 5), record("b")
    await turns.put(second)
    await turns.put(first)
    assert await turns.all() == [first, second]
    noted = dataclasses.replace(first, message_id=77)
    await turns.put(noted)
    assert await turns.all() == [noted, second]
    assert 0 < await store.redis.ttl(inflight_key()) <= 600
    await turns.remove("a")
    assert await turns.all() == [second]


async def test_old_and_unreadable_records_are_dropped(store: ConversationStore) -> None:
    """A record older than the TTL and one that does not parse are left out and removed."""
    turns = InflightTurns(store.redis, ttl=60)
    fresh = record("fresh")
    await turns.put(fresh)
    await turns.put(record("old", started_at=time.time() - 61))
    await store.redis.hset(inflight_key(), "junk", "{not json")
    assert await turns.all() == [fresh]
    assert await store.redis.hlen(inflight_key()) == 1


async def test_release_lock_deletes_the_conversation_lock(store: ConversationStore) -> None:
    """The lock of the record's scope goes, whoever held it; a second call finds none."""
    turns = InflightTurns(store.redis)
    await store.redis.set(key("c:-100:t:7", "lock"), "someone", px=30000)
    assert await turns.release_lock("c:-100:t:7") is True
    assert await store.redis.exists(key("c:-100:t:7", "lock")) == 0
    assert await turns.release_lock("c:-100:t:7") is False


async def test_deferred_updates_are_taken_once_in_order(store: ConversationStore) -> None:
    """Saved updates come back oldest first, once; the list has a TTL; nothing saved is []."""
    deferred = DeferredUpdates(store.redis, ttl=300)
    await deferred.save([])
    assert await store.redis.exists(deferred_updates_key()) == 0
    await deferred.save(['{"update_id": 1}', '{"update_id": 2}'])
    await deferred.save(['{"update_id": 3}'])
    assert 0 < await store.redis.ttl(deferred_updates_key()) <= 300
    assert await deferred.take() == ['{"update_id": 1}', '{"update_id": 2}', '{"update_id": 3}']
    assert await deferred.take() == []
