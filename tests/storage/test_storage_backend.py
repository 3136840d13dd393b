"""Opening the backend: embedded fakeredis (with Lua) or a real server."""

from __future__ import annotations

import socket

import fakeredis
import pytest

from storage import ConversationStore, StorageUnavailable, StoredMessage, connect, open_store

pytestmark = pytest.mark.timeout(10)


@pytest.mark.parametrize("url", ["", "memory://"])
async def test_memory_urls_open_private_embedded_backends(url: str) -> None:
    """ "" and memory:// open an embedded backend that runs Lua and shares no data."""
    first, embedded = await connect(url)
    second, _ = await connect(url)
    try:
        assert embedded is True
        assert await first.eval("return redis.call('SET', KEYS[1], ARGV[1])", 1, "k", "v")
        assert await first.get("k") == "v"
        assert await second.get("k") is None
    finally:
        await first.aclose()
        await second.aclose()


async def test_redis_url_opens_real_server(redis_url: str) -> None:
    """A redis:// URL opens a real, non-embedded client with decoded responses."""
    client, embedded = await connect(redis_url)
    try:
        assert embedded is False
        await client.set("k", "值")
        assert await client.get("k") == "值"
    finally:
        await client.aclose()


async def test_unreachable_server_raises_without_password() -> None:
    """A server that does not answer raises StorageUnavailable naming host, not password."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(StorageUnavailable) as caught:
        await connect(f"redis://:hunter2secret@127.0.0.1:{port}/0")
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "hunter2secret" not in str(caught.value)


async def test_unsupported_scheme_is_refused() -> None:
    """A URL scheme other than memory/redis/rediss/unix is refused with StorageUnavailable."""
    with pytest.raises(StorageUnavailable, match="scheme"):
        await connect("http://127.0.0.1:6379")


async def test_open_store_reports_embedded_and_closes(store_backend_url: str) -> None:
    """open_store returns the embedded flag and a store whose aclose closes its client."""
    store, embedded = await open_store(
        store_backend_url, max_turns=2, max_tokens=500, ttl_seconds=60
    )
    assert embedded is (store_backend_url == "memory://")
    assert await store.redis.ping()
    await store.aclose()


async def test_store_accepts_client_returning_bytes() -> None:
    """A store given a client with decode_responses=False still returns str values."""

    client = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer(), decode_responses=False)
    store = ConversationStore(client, max_turns=2, max_tokens=500, ttl_seconds=60)
    user, assistant = StoredMessage("user", "q"), StoredMessage("assistant", "a")
    await store.append_exchange("u:1", user, assistant)
    await store.set_model("u:1", "m")
    await store.set_option("u:1", "reasoning", "show")
    assert await store.load_history("u:1") == [user, assistant]
    assert await store.get_model("u:1") == "m"
    assert await store.get_options("u:1") == {"reasoning": "show"}
    async with store.lock("u:1", ttl=5, wait=0):
        pass
    assert await store.pop_last_exchange("u:1") == (user, assistant)
    await store.aclose()  # not owned: the client stays open
    assert await client.ping()
    await client.aclose()
