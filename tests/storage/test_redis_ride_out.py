"""The client waits out the first seconds of a Redis outage (storage.backend.RIDE_OUT): a
restart of a second or two fails no command; a longer outage fails the first command after
the ride-out and the next ones at once, until the server answers again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from redis.exceptions import ConnectionError

from storage import ConversationStore, StoredMessage, open_store
from storage.backend import RIDE_OUT
from tests.conftest import RedisProcess

pytestmark = pytest.mark.timeout(30)

SCOPE = "u:77"
EXCHANGE = (StoredMessage("user", "question"), StoredMessage("assistant", "answer"))


@pytest.fixture
async def store(redis_process: RedisProcess) -> AsyncIterator[ConversationStore]:
    """A store on this test's own redis-server."""
    opened, _ = await open_store(redis_process.url, max_turns=5, max_tokens=1000, ttl_seconds=60)
    yield opened
    await opened.aclose()


async def start_after(redis_process: RedisProcess, seconds: float) -> None:
    """Start the stopped server again ``seconds`` from now."""
    await asyncio.sleep(seconds)
    await asyncio.to_thread(redis_process.start)


async def test_commands_and_pipelines_wait_out_a_restart(
    redis_process: RedisProcess, store: ConversationStore
) -> None:
    """Redis stopped (data kept) for 1.5 s: a command and a pipeline sent meanwhile answer
    once it is back, with the data, instead of raising ConnectionError."""
    await store.append_exchange(SCOPE, *EXCHANGE)
    await store.set_setting(SCOPE, "lang", "zh")
    await asyncio.to_thread(redis_process.stop, keep_data=True)
    restart = asyncio.create_task(start_after(redis_process, 1.5))
    sent = time.monotonic()
    history, settings = await asyncio.gather(
        store.load_history(SCOPE),  # one command
        store.get_settings(SCOPE),  # a pipeline
    )
    await restart
    assert time.monotonic() - sent >= 1.4  # they waited for the server
    assert history == list(EXCHANGE)
    assert settings["lang"] == "zh"


async def test_a_longer_outage_fails_once_waited_out_then_at_once(
    redis_process: RedisProcess, store: ConversationStore
) -> None:
    """Redis down for good: the first command fails after about RIDE_OUT s, the next at
    once; once the server answers again the next outage is waited out again."""
    await asyncio.to_thread(redis_process.stop)
    sent = time.monotonic()
    with pytest.raises(ConnectionError):
        await store.load_history(SCOPE)
    assert RIDE_OUT <= time.monotonic() - sent < RIDE_OUT + 2
    sent = time.monotonic()
    with pytest.raises(ConnectionError):
        await store.get_settings(SCOPE)
    assert time.monotonic() - sent < 1.5  # redis-py's own retries only
    await asyncio.to_thread(redis_process.start)
    assert await store.load_history(SCOPE) == []
    await asyncio.to_thread(redis_process.stop)
    restart = asyncio.create_task(start_after(redis_process, 1.0))
    assert await store.load_history(SCOPE) == []  # waited out: the outage was reset
    await restart
