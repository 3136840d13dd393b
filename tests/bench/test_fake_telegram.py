"""The fake Bot API's shutdown: ``close`` answers the long polls it holds."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from bench.fake_telegram import FakeTelegram
from bench.loopback import TOKEN, serve

pytestmark = pytest.mark.timeout(10)


async def test_close_answers_a_pending_long_poll_at_once() -> None:
    """A getUpdates long poll in progress gets ``[]`` as soon as the fake closes (the fake
    holds a poll up to 1 s, so an unreleased one would still be waiting 0.5 s later)."""
    telegram = FakeTelegram()
    async with serve(telegram.app) as port, httpx.AsyncClient() as client:
        url = f"http://127.0.0.1:{port}/bot{TOKEN}/getUpdates"
        poll = asyncio.create_task(client.post(url, json={"timeout": 30}))
        await asyncio.sleep(0.2)
        assert not poll.done()
        closed_at = time.monotonic()
        telegram.close()
        response = await asyncio.wait_for(poll, 0.5)
        assert time.monotonic() - closed_at < 0.5
        assert response.json() == {"ok": True, "result": []}


async def test_a_closed_fake_answers_long_polls_without_waiting() -> None:
    """After ``close``, a getUpdates with a timeout returns the pending updates at once."""
    telegram = FakeTelegram()
    async with serve(telegram.app) as port, httpx.AsyncClient() as client:
        telegram.close()
        url = f"http://127.0.0.1:{port}/bot{TOKEN}/getUpdates"
        empty = await asyncio.wait_for(client.post(url, json={"timeout": 30}), 0.5)
        telegram.push_text(chat_id=5, user_id=5, text="hello")
        pending = await asyncio.wait_for(client.post(url, json={"timeout": 30}), 0.5)
    assert empty.json()["result"] == []
    assert [u["message"]["text"] for u in pending.json()["result"]] == ["hello"]
