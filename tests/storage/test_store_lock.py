"""The per-conversation lock: exclusion, timeout, token safety, keep-alive."""

from __future__ import annotations

import asyncio

import pytest

from storage import ConversationStore, LockTimeout, key

pytestmark = pytest.mark.timeout(10)


async def test_second_acquirer_waits_until_first_releases(store: ConversationStore) -> None:
    """While one holder has the lock another waits, and gets it right after the release."""
    events: list[str] = []
    release_first = asyncio.Event()

    async def first() -> None:
        async with store.lock("u:1", ttl=5, wait=1):
            events.append("first in")
            await release_first.wait()
            events.append("first out")

    async def second() -> None:
        async with store.lock("u:1", ttl=5, wait=5):
            events.append("second in")

    first_task = asyncio.create_task(first())
    await asyncio.sleep(0.1)
    second_task = asyncio.create_task(second())
    await asyncio.sleep(0.3)
    assert events == ["first in"]
    release_first.set()
    await asyncio.gather(first_task, second_task)
    assert events == ["first in", "first out", "second in"]
    assert await store.redis.exists(key("u:1", "lock")) == 0


async def test_lock_timeout_when_wait_elapses(store: ConversationStore) -> None:
    """A waiter gives up with LockTimeout after `wait` seconds; other scopes are free."""
    async with store.lock("u:1", ttl=5, wait=1):
        with pytest.raises(LockTimeout) as caught:
            async with store.lock("u:1", ttl=5, wait=0.2):
                pytest.fail("acquired a lock that was held")
        assert caught.value.scope == "u:1"
        async with store.lock("u:2", ttl=5, wait=0.2):
            pass


async def test_lock_is_released_when_body_raises(store: ConversationStore) -> None:
    """An exception in the locked body still releases the lock."""
    with pytest.raises(RuntimeError):
        async with store.lock("u:1", ttl=5, wait=1):
            raise RuntimeError("boom")
    async with store.lock("u:1", ttl=5, wait=0):
        pass


async def test_expired_holder_does_not_release_new_holders_lock(store: ConversationStore) -> None:
    """A holder whose lock expired (simulated by deleting it) leaves the next holder's lock."""
    lock_key = key("u:1", "lock")
    second_in, release_second = asyncio.Event(), asyncio.Event()

    async def second() -> None:
        async with store.lock("u:1", ttl=5, wait=2):
            second_in.set()
            await release_second.wait()

    async with store.lock("u:1", ttl=5, wait=1):
        await store.redis.delete(lock_key)  # the first holder's lock "expires"
        second_task = asyncio.create_task(second())
        await asyncio.wait_for(second_in.wait(), timeout=2)
        second_token = await store.redis.get(lock_key)
    assert await store.redis.get(lock_key) == second_token
    with pytest.raises(LockTimeout):
        async with store.lock("u:1", ttl=5, wait=0.1):
            pass
    release_second.set()
    await second_task
    assert await store.redis.exists(lock_key) == 0


async def test_held_lock_is_kept_alive_past_its_ttl(store: ConversationStore) -> None:
    """While held, the lock is refreshed, so it outlives its ttl and still excludes others."""
    async with store.lock("u:1", ttl=0.3, wait=1):
        await asyncio.sleep(1.0)
        assert await store.redis.pttl(key("u:1", "lock")) > 0
        with pytest.raises(LockTimeout):
            async with store.lock("u:1", ttl=0.3, wait=0.1):
                pass


async def test_abandoned_lock_expires_after_ttl(store: ConversationStore) -> None:
    """A lock whose holder vanished (key left behind) is free again after its TTL."""
    await store.redis.set(key("u:1", "lock"), "crashed-holder", px=200)
    async with store.lock("u:1", ttl=5, wait=2):
        assert await store.redis.get(key("u:1", "lock")) != "crashed-holder"
