"""The store against a real redis-server that stops, restarts, or loses a reply."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import pytest

from storage import ConversationStore, StoredMessage, key, open_store
from tests.conftest import RedisProcess

pytestmark = pytest.mark.timeout(30)

SCOPE = "u:1"


def exchange(n: int) -> tuple[StoredMessage, StoredMessage]:
    """The n-th question and its answer."""
    return StoredMessage("user", f"question {n}"), StoredMessage("assistant", f"answer {n}")


async def opened(url: str) -> ConversationStore:
    """A store on ``url`` (20 turns, 10 000 tokens, 1 h TTL)."""
    store, _ = await open_store(url, max_turns=20, max_tokens=10_000, ttl_seconds=3600)
    return store


@pytest.fixture
async def store_on_process(redis_process: RedisProcess) -> AsyncIterator[ConversationStore]:
    """A store on this test's own redis-server."""
    store = await opened(redis_process.url)
    yield store
    await store.aclose()


class ReplyDroppingProxy:
    """A loopback TCP proxy to Redis that can lose one reply: after :meth:`drop_reply_to`,
    the next command named so runs on the server, but the proxy closes the client's
    connection instead of passing its reply on (the client retries it on a new one)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.dropped = 0
        self._marker: bytes | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def drop_reply_to(self, command: str) -> None:
        """Lose the reply to the next ``command`` (e.g. ``"EVALSHA"``) sent on any connection."""
        self._marker = f"${len(command)}\r\n{command}\r\n".encode()  # RESP bulk string

    async def start(self) -> int:
        """Listen on a free loopback port; return it."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def aclose(self) -> None:
        """Stop listening and cut every proxied connection."""
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        server_in, server_out = await asyncio.open_connection("127.0.0.1", self.target_port)
        lose_next = asyncio.Event()
        upstream = asyncio.create_task(self._pump(client_in, server_out, lose_next))
        try:
            while data := await server_in.read(65536):
                if lose_next.is_set():
                    self.dropped += 1
                    break
                client_out.write(data)
                await client_out.drain()
        finally:
            upstream.cancel()
            for writer in (client_out, server_out):
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
            self._tasks.discard(task)

    async def _pump(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, lose_next: asyncio.Event
    ) -> None:
        with contextlib.suppress(OSError):
            while data := await source.read(65536):
                if self._marker is not None and self._marker in data:
                    self._marker = None
                    lose_next.set()  # the client waits for this reply: it is the next one
                sink.write(data)
                await sink.drain()


@pytest.fixture
async def lossy_store(
    redis_url: str,
) -> AsyncIterator[tuple[ConversationStore, ReplyDroppingProxy]]:
    """A store on the shared redis-server through a :class:`ReplyDroppingProxy`."""
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    proxy = ReplyDroppingProxy(port)
    proxy_port = await proxy.start()
    store = await opened(f"redis://127.0.0.1:{proxy_port}/0")
    yield store, proxy
    await store.aclose()
    await proxy.aclose()


async def test_append_with_the_same_turn_id_stores_once(store: ConversationStore) -> None:
    """A second append with the same turn id changes nothing and returns False."""
    assert await store.append_exchange(SCOPE, *exchange(1), turn_id="t1") is True
    assert await store.append_exchange(SCOPE, *exchange(1), turn_id="t1") is False
    assert await store.append_exchange(SCOPE, *exchange(1), turn_id="t2") is True
    assert await store.load_history(SCOPE) == [*exchange(1), *exchange(1)]


async def test_append_whose_reply_was_lost_is_stored_once(
    lossy_store: tuple[ConversationStore, ReplyDroppingProxy],
) -> None:
    """The client retries an append whose reply was lost; the exchange is stored once."""
    store, proxy = lossy_store
    await store.append_exchange("u:2", *exchange(0))  # the script is loaded
    await store.append_exchange(SCOPE, *exchange(1))
    proxy.drop_reply_to("EVALSHA")
    await store.append_exchange(SCOPE, *exchange(2))
    assert proxy.dropped == 1
    assert await store.load_history(SCOPE) == [*exchange(1), *exchange(2)]


async def test_pop_whose_reply_was_lost_removes_one_exchange(
    lossy_store: tuple[ConversationStore, ReplyDroppingProxy],
) -> None:
    """A retried /retry removal takes the newest exchange only, not the one before it."""
    store, proxy = lossy_store
    for n in (1, 2, 3):
        await store.append_exchange(SCOPE, *exchange(n))
    await store.append_exchange("u:2", *exchange(0))
    await store.pop_last_exchange("u:2")  # the script is loaded
    proxy.drop_reply_to("EVALSHA")
    assert await store.pop_last_exchange(SCOPE) == exchange(3)
    assert proxy.dropped == 1
    assert await store.load_history(SCOPE) == [*exchange(1), *exchange(2)]


async def test_update_marker_whose_reply_was_lost_counts_as_first(
    lossy_store: tuple[ConversationStore, ReplyDroppingProxy],
) -> None:
    """An update seen for the first time is not taken for a duplicate when SET's reply is lost."""
    store, proxy = lossy_store
    proxy.drop_reply_to("SET")
    assert await store.mark_update_seen(77) is True
    assert proxy.dropped == 1
    assert await store.mark_update_seen(77) is False


async def test_lock_whose_acquire_reply_was_lost_is_held(
    lossy_store: tuple[ConversationStore, ReplyDroppingProxy],
) -> None:
    """A lock taken by a SET whose reply was lost is the caller's, not a stranger's to wait on."""
    store, proxy = lossy_store
    proxy.drop_reply_to("SET")
    async with store.lock(SCOPE, ttl=30, wait=0.5):
        assert proxy.dropped == 1
        assert await store.redis.exists(key(SCOPE, "lock")) == 1
    assert await store.redis.exists(key(SCOPE, "lock")) == 0


async def test_store_answers_right_after_a_restart(
    redis_process: RedisProcess, store_on_process: ConversationStore
) -> None:
    """The first command after a restart succeeds, though every pooled connection died."""
    await store_on_process.append_exchange(SCOPE, *exchange(1))
    await asyncio.to_thread(redis_process.stop)
    await asyncio.to_thread(redis_process.start)
    assert await store_on_process.load_history(SCOPE) == []  # data lost: no persistence
    await store_on_process.append_exchange(SCOPE, *exchange(2))
    assert await store_on_process.load_history(SCOPE) == list(exchange(2))


async def back_after(redis_process: RedisProcess, seconds: float) -> None:
    """Start the stopped server again after ``seconds``."""
    await asyncio.sleep(seconds)
    await asyncio.to_thread(redis_process.start)


async def test_lock_is_released_after_a_blip(
    redis_process: RedisProcess, store_on_process: ConversationStore
) -> None:
    """A holder done while Redis is down releases its lock once Redis is back (data kept)."""
    lock_key = key(SCOPE, "lock")
    async with store_on_process.lock(SCOPE, ttl=20, wait=0):
        await asyncio.to_thread(redis_process.stop, keep_data=True)
        restart = asyncio.create_task(back_after(redis_process, 2.0))
    await restart
    assert await store_on_process.redis.exists(lock_key) == 0
    async with store_on_process.lock(SCOPE, ttl=20, wait=0):
        pass


async def test_lock_not_released_in_time_expires_within_its_ttl(
    redis_process: RedisProcess,
    store_on_process: ConversationStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Redis down for longer than the lock's TTL: leaving the block logs but does not raise,
    and once Redis is back (with the lock persisted) the next acquire succeeds within the TTL."""
    ttl = 3.0
    with caplog.at_level(logging.WARNING, logger="storage.lock"):
        async with store_on_process.lock(SCOPE, ttl=ttl, wait=0):
            await asyncio.to_thread(redis_process.stop, keep_data=True)
            down_at = time.monotonic()
    assert time.monotonic() - down_at < ttl + 2
    assert any("could not release the lock" in r.getMessage() for r in caplog.records)
    await asyncio.to_thread(redis_process.start)
    back_at = time.monotonic()
    async with store_on_process.lock(SCOPE, ttl=ttl, wait=ttl):
        assert time.monotonic() - back_at <= ttl


async def test_finished_exchange_is_stored_once_after_a_blip(
    redis_process: RedisProcess, store_on_process: ConversationStore
) -> None:
    """An exchange saved while Redis is down for 2 s is stored once when it is back."""
    await store_on_process.append_exchange(SCOPE, *exchange(1))
    await asyncio.to_thread(redis_process.stop, keep_data=True)
    restart = asyncio.create_task(back_after(redis_process, 2.0))
    assert await store_on_process.save_exchange(SCOPE, *exchange(2)) is True
    await restart
    assert await store_on_process.load_history(SCOPE) == [*exchange(1), *exchange(2)]


async def test_save_gives_up_after_its_bound_without_raising(
    redis_process: RedisProcess,
    store_on_process: ConversationStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With Redis down for good, save_exchange returns False after about ``within`` s and logs."""
    await asyncio.to_thread(redis_process.stop)
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="storage.store"):
        assert await store_on_process.save_exchange(SCOPE, *exchange(1), within=1.0) is False
    assert time.monotonic() - started < 5
    assert any("was not stored" in r.getMessage() for r in caplog.records)
    assert all("question 1" not in r.getMessage() for r in caplog.records)


async def test_usage_count_with_redis_down_is_logged_not_raised(
    redis_process: RedisProcess,
    store_on_process: ConversationStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Counting the usage of a delivered answer while Redis is down logs a warning."""
    await asyncio.to_thread(redis_process.stop)
    with caplog.at_level(logging.WARNING, logger="storage.store"):
        await store_on_process.count_usage(SCOPE, user_id=1, tokens=10)
    assert any("not counted" in r.getMessage() for r in caplog.records)


async def test_out_of_memory_is_refused_not_stored(
    redis_process: RedisProcess, store_on_process: ConversationStore
) -> None:
    """With maxmemory 1 and noeviction, a save gives up (False) and nothing is stored."""
    await store_on_process.redis.config_set("maxmemory-policy", "noeviction")
    await store_on_process.redis.config_set("maxmemory", "1")
    try:
        assert await store_on_process.save_exchange(SCOPE, *exchange(1), within=0.5) is False
    finally:
        await store_on_process.redis.config_set("maxmemory", "0")
    assert await store_on_process.load_history(SCOPE) == []
