"""End-to-end fixtures: the real PTB Application, polling a fake Bot API server, talking to a
fake OpenAI-compatible server, both served by uvicorn on loopback.

The fakes and the loopback runner live in ``bench/`` (:mod:`bench.fake_telegram`,
:mod:`bench.fake_openai`, :mod:`bench.loopback`), which the benchmark shares; the tests
import ``TOKEN``, ``serve`` and ``running_bot`` from here or from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis
import stamina

from bench.fake_openai import FakeOpenAI
from bench.fake_telegram import FakeTelegram
from bench.loopback import TOKEN, running_bot, serve_all
from bench.loopback import serve as serve  # re-exported: tests serve their own fakes
from bot.app.wiring import BotApplication
from bot.settings import Settings


@dataclass
class World:
    """The fake servers and the ports they listen on."""

    telegram: FakeTelegram
    openai: FakeOpenAI
    telegram_port: int
    openai_port: int
    redis_url: str

    def settings(self, **overrides: Any) -> Settings:
        """Settings pointing the bot at the fakes; ``overrides`` replace any field."""
        values: dict[str, Any] = {
            "telegram_bot_token": TOKEN,
            "telegram_base_url": f"http://127.0.0.1:{self.telegram_port}/bot",
            "telegram_base_file_url": f"http://127.0.0.1:{self.telegram_port}/file/bot",
            "redis_url": self.redis_url,
            "openai_name": "local",
            "openai_base_url": f"http://127.0.0.1:{self.openai_port}/v1",
            "openai_api_key": "sk-test-key-abcdefghijklmnop",
            "openai_models": ["model-a", "model-b"],
            "default_model": "local:model-a",
            "system_prompt": "Be brief.",
            "private_edit_interval": 0.05,
            "group_edit_interval": 0.1,
            "draft_interval": 0.05,
            "use_drafts": False,
            "_env_file": None,
        }
        values.update(overrides)
        return Settings(**values)

    def process_env(self, home: Path, settings: Mapping[str, object] = {}) -> dict[str, str]:
        """The environment of a ``python -m bot`` process against these fakes, plus
        ``settings`` (setting name → value; lists comma-joined, booleans lower-case)."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_BASE_URL": f"http://127.0.0.1:{self.telegram_port}/bot",
            "TELEGRAM_BASE_FILE_URL": f"http://127.0.0.1:{self.telegram_port}/file/bot",
            "REDIS_URL": self.redis_url,
            "OPENAI_NAME": "local",
            "OPENAI_MODELS": "model-a",
            "OPENAI_BASE_URL": f"http://127.0.0.1:{self.openai_port}/v1",
            "OPENAI_API_KEY": "sk-test-key-abcdefghijklmnop",
        }
        for name, value in settings.items():
            if isinstance(value, list | tuple):
                value = ",".join(str(item) for item in value)
            env[name.upper()] = str(value).lower() if isinstance(value, bool) else str(value)
        return env


def free_port() -> int:
    """A loopback TCP port nothing listens on (bound once, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(autouse=True)
def no_retry_waits() -> Iterator[None]:
    """Provider retries keep their attempt count but do not wait (stamina's testing mode)."""
    stamina.set_testing(True, attempts=10, cap=True)
    yield
    stamina.set_testing(False)


@pytest.fixture
async def world(redis_url: str) -> AsyncIterator[World]:
    """Both fake servers, running; a clean real Redis.

    On teardown the fake Bot API answers its pending long poll at once
    (:meth:`~bench.fake_telegram.FakeTelegram.close`) and both servers stop together, so
    neither the poll's timeout nor a second uvicorn shutdown is waited out.
    """
    telegram, openai = FakeTelegram(), FakeOpenAI()
    async with serve_all(telegram.app, openai.app) as (tg_port, ai_port):
        try:
            yield World(telegram, openai, tg_port, ai_port, redis_url)
        finally:
            telegram.close()


BotRunner = Callable[..., contextlib.AbstractAsyncContextManager[BotApplication]]


@pytest.fixture
def bot(world: World) -> BotRunner:
    """``async with bot(**setting_overrides) as app:`` runs the bot against the fakes."""

    def start(**overrides: Any) -> contextlib.AbstractAsyncContextManager[BotApplication]:
        return running_bot(world.settings(**overrides))

    return start


async def settle(predicate: Callable[[], bool], within: float = 10.0) -> None:
    """Wait until ``predicate()`` holds, polling every 10 ms; fails after ``within`` s."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 (polls state of two fake servers, no one event)
            await asyncio.sleep(0.01)


async def history_of(redis_url: str, scope: str) -> list[dict[str, Any]]:
    """The stored history entries of ``scope``, read straight from Redis and parsed."""
    client = redis.from_url(redis_url)
    try:
        entries: list[dict[str, Any]] = []
        async for key in client.scan_iter(match=f"*{{{scope}}}*"):
            if await client.type(key) == b"list":
                entries += [json.loads(e) for e in await client.lrange(key, 0, -1)]
        return entries
    finally:
        await client.aclose()


async def stored_history(redis_url: str, scope: str, count: int) -> list[dict[str, Any]]:
    """Wait until ``scope`` holds ``count`` history entries (within 3 s); return them."""
    entries: list[dict[str, Any]] = []
    for _ in range(150):
        entries = await history_of(redis_url, scope)
        if len(entries) >= count:
            break
        await asyncio.sleep(0.02)
    return entries


def replied(world: World, chat_id: int, text: str) -> bool:
    """True once the bot has a message in ``chat_id`` reading ``text``."""
    return any(m.text == text for m in world.telegram.bot_messages(chat_id))
