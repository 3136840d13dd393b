"""Deploys end to end: the real ``python -m bot`` process stopped mid-reply by SIGTERM (as
``docker compose stop`` does) or killed by SIGKILL, against the fake Bot API, a slow fake
provider and a real redis-server."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as redis

from bench.fake_openai import Answer
from bench.loopback import TOKEN
from bot.app.webhook import SECRET_HEADER
from bot.texts import t
from tests.e2e.conftest import World, free_port, replied, settle, stored_history

pytestmark = pytest.mark.timeout(60)

CHAT = USER = 901
SCOPE = f"u:{USER}"
LONG = "word " * 400
"""An answer that streams for 20 s (400 pieces of 5 characters, 50 ms apart)."""
MARK = t("mark_restart", "en")
NOTICE = t("restart_notice", "en")
END_MARGIN = 4.0
"""Seconds past the grace the process may take to exit (END_SECONDS, closing, start-up
jitter of the test machine)."""
URL = "https://bot.example.test/telegram/hook"
SECRET = "deploy-Secret_901"


class BotProcess:
    """One ``python -m bot`` process against the world's fakes; its output is collected."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.output = ""

    async def stop(self, sig: signal.Signals, *, within: float) -> float:
        """Send ``sig``; return the seconds until the process exited (fails after ``within``)."""
        started = time.monotonic()
        self.process.send_signal(sig)
        out, _ = await asyncio.wait_for(self.process.communicate(), within)
        self.output = out.decode()
        return time.monotonic() - started


@asynccontextmanager
async def bot_process(
    world: World, home: Path, *, grace: float, webhook_port: int | None = None
) -> AsyncIterator[BotProcess]:
    """Run ``python -m bot`` (polling, or webhook on ``webhook_port``) until it is listening
    (polling: its ``deleteWebhook``, just before it polls; webhook: ``/healthz``); killed if
    the block leaves it running."""
    env = world.process_env(
        home,
        {"use_drafts": False, "private_edit_interval": 0.05, "shutdown_grace_seconds": grace},
    )
    if webhook_port is not None:
        env |= {
            "WEBHOOK_URL": URL,
            "WEBHOOK_SECRET": SECRET,
            "WEBHOOK_LISTEN": "127.0.0.1",
            "WEBHOOK_PORT": str(webhook_port),
        }
    polls = len(world.telegram.calls_of("deleteWebhook"))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        env=env,
        cwd=str(Path(__file__).parents[2]),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    running = BotProcess(process)
    try:
        if webhook_port is None:
            await settle(lambda: len(world.telegram.calls_of("deleteWebhook")) > polls, within=15)
            # Let the first long poll connect: a poll cancelled while PTB's only getUpdates
            # connection is being opened orphans it (httpcore #1093), and PTB's confirming
            # getUpdates on stop then fails with a logged PoolTimeout.
            await asyncio.sleep(0.3)
        else:
            await _wait_listening(webhook_port)
        yield running
    finally:
        if process.returncode is None:
            process.kill()
            out, _ = await process.communicate()
            running.output = out.decode()
        print(running.output)  # shown when the test fails


async def _wait_listening(port: int) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        for _ in range(300):  # up to 15 s for the process to start
            with suppress(httpx.TransportError):
                if (await client.get("/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.05)
    raise AssertionError("the webhook server did not start")


def _last_bot_text(world: World) -> str:
    messages = world.telegram.bot_messages(CHAT)
    return messages[-1].text if messages else ""


def _clean_exit(process: BotProcess) -> None:
    assert process.process.returncode == 0, process.output
    assert "Traceback" not in process.output, process.output
    assert TOKEN not in process.output


async def _redis_state(url: str) -> tuple[dict[str, Any], list[Any], bool]:
    """The in-flight records (turn id → record), the deferred updates, and whether the
    conversation lock of :data:`SCOPE` exists."""
    client = redis.from_url(url, decode_responses=True)
    try:
        records = {str(k): json.loads(v) for k, v in (await client.hgetall("cb:inflight")).items()}
        deferred = [json.loads(item) for item in await client.lrange("cb:deferred-updates", 0, -1)]
        locked = bool(await client.exists(f"cb:{{{SCOPE}}}:lock"))
        return records, deferred, locked
    finally:
        await client.aclose()


async def _first_message_recorded(url: str) -> None:
    """Wait (up to 3 s) until the in-flight record names the reply's first message."""
    for _ in range(60):
        records, _, _ = await _redis_state(url)
        if any(record["message"] for record in records.values()):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no in-flight record names the reply's message: {records}")


def _user_texts_asked(world: World) -> list[str]:
    return [request["messages"][-1]["content"] for request in world.openai.requests]


async def test_sigterm_mid_reply_ends_it_marked_and_stored(world: World, tmp_path: Path) -> None:
    """SIGTERM while a reply streams (polling): after the grace the provider stream is closed,
    the partial answer is shown finished under the restart mark and stored as interrupted,
    and the process exits 0 within the grace plus a few seconds."""
    world.openai.script.append(Answer(LONG, piece=5, delay=0.05))
    grace = 1.0
    async with bot_process(world, tmp_path, grace=grace) as bot:
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="tell me a long story")
        await settle(lambda: _last_bot_text(world).startswith("word word"), within=10)
        took = await bot.stop(signal.SIGTERM, within=grace + 10)
    _clean_exit(bot)
    assert took < grace + END_MARGIN, took
    shown = _last_bot_text(world)
    assert shown.endswith(MARK) and shown.startswith("word word")
    assert len(shown) < len(LONG)  # cut, not finished
    await settle(lambda: world.openai.disconnects == 1, within=2)
    history = await stored_history(world.redis_url, SCOPE, 2)
    assert [(e["role"], e["interrupted"]) for e in history] == [
        ("user", False),
        ("assistant", True),
    ]
    assert history[0]["content"] == "tell me a long story"
    assert history[1]["content"].startswith("word word")
    assert shown.startswith(history[1]["content"].strip())
    records, deferred, locked = await _redis_state(world.redis_url)
    assert (records, deferred, locked) == ({}, [], False)


async def test_sigterm_lets_a_reply_finish_within_the_grace(world: World, tmp_path: Path) -> None:
    """SIGTERM while a short reply streams: it finishes in full, unmarked, and the process
    exits as soon as it has, well within the grace."""
    text = "a short answer that ends soon"
    world.openai.script.append(Answer(text, piece=4, delay=0.2))  # ~1.6 s
    grace = 8.0
    async with bot_process(world, tmp_path, grace=grace) as bot:
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="a short question")
        await settle(lambda: bool(_last_bot_text(world)), within=10)
        took = await bot.stop(signal.SIGTERM, within=grace + 10)
    _clean_exit(bot)
    assert took < grace / 2, took
    assert _last_bot_text(world) == text
    history = await stored_history(world.redis_url, SCOPE, 2)
    assert [(e["content"], e["interrupted"]) for e in history] == [
        ("a short question", False),
        (text, False),
    ]
    assert world.openai.disconnects == 0


async def test_updates_not_begun_at_sigterm_are_answered_after_the_restart(
    world: World, tmp_path: Path
) -> None:
    """A message waiting behind its conversation's streaming reply at SIGTERM is not begun:
    it is saved (Telegram would not deliver it again: it was confirmed) and the next start
    answers it, before anything else."""
    world.openai.script.append(Answer(LONG, piece=5, delay=0.05))
    async with bot_process(world, tmp_path, grace=0.5) as bot:
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="first, long")
        await settle(lambda: _last_bot_text(world).startswith("word"), within=10)
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="second, waiting")
        await settle(lambda: not world.telegram.updates, within=5)  # fetched and confirmed
        await bot.stop(signal.SIGTERM, within=10)
    _clean_exit(bot)
    assert _user_texts_asked(world) == ["first, long"]
    _, deferred, _ = await _redis_state(world.redis_url)
    assert [u["message"]["text"] for u in deferred] == ["second, waiting"]
    async with bot_process(world, tmp_path, grace=1) as again:
        await settle(lambda: _user_texts_asked(world)[-1:] == ["second, waiting"], within=10)
        await settle(lambda: "Echo: second, waiting" in _last_bot_text(world), within=10)
        await again.stop(signal.SIGTERM, within=10)
    _clean_exit(again)
    _, deferred, _ = await _redis_state(world.redis_url)
    assert deferred == []


async def test_sigkill_mid_reply_is_told_once_at_the_next_start(
    world: World, tmp_path: Path
) -> None:
    """SIGKILL mid-reply leaves an in-flight record and the conversation lock; the next start
    tells the user once (a reply to the cut answer), frees the lock, and keeps the question,
    so /retry at once answers that question again."""
    world.openai.script.append(Answer(LONG, piece=5, delay=0.05))
    async with bot_process(world, tmp_path, grace=1) as killed:
        world.telegram.push_text(
            chat_id=CHAT, user_id=USER, text="the cut question", language_code="zh"
        )
        await settle(lambda: _last_bot_text(world).startswith("word word"), within=10)
        cut = world.telegram.bot_messages(CHAT)[0].message_id
        await _first_message_recorded(world.redis_url)
        await killed.stop(signal.SIGKILL, within=5)
    assert killed.process.returncode == -signal.SIGKILL
    records, _, locked = await _redis_state(world.redis_url)
    (record,) = records.values()
    assert (record["chat"], record["lang"], record["message"]) == (CHAT, "zh", cut)
    assert locked
    notice = t("restart_notice", "zh")
    async with bot_process(world, tmp_path, grace=1) as restarted:
        await settle(lambda: replied(world, CHAT, notice), within=10)
        (sent,) = [c for c in world.telegram.calls_of("sendMessage") if c.params["text"] == notice]
        assert sent.params["reply_parameters"]["message_id"] == cut
        asked = time.monotonic()
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="/retry", language_code="zh")
        await settle(lambda: _user_texts_asked(world)[-1:] == ["the cut question"], within=10)
        assert time.monotonic() - asked < 5  # not the lock's 30 s TTL
        await settle(lambda: "Echo: the cut question" in _last_bot_text(world), within=10)
        await restarted.stop(signal.SIGTERM, within=10)
    _clean_exit(restarted)
    assert sum(m.text == notice for m in world.telegram.bot_messages(CHAT)) == 1
    records, _, locked = await _redis_state(world.redis_url)
    assert (records, locked) == ({}, False)
    history = await stored_history(world.redis_url, SCOPE, 2)
    assert [(e["role"], e["interrupted"]) for e in history] == [
        ("user", False),
        ("assistant", False),
    ]
    assert history[0]["content"] == "the cut question"
    assert history[1]["content"].startswith("**Echo:** the cut question")


async def test_a_reply_that_cannot_end_in_time_is_told_at_the_next_start(
    world: World, tmp_path: Path
) -> None:
    """A reply whose final text Telegram holds back (429 on every edit) is given up after
    the grace and the end time: the process still exits 0 in time, the partial answer is
    stored, and the next start tells the user, once."""
    world.openai.script.append(Answer(LONG, piece=5, delay=0.05))
    grace = 0.5
    async with bot_process(world, tmp_path, grace=grace) as bot:
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="held back")
        await settle(lambda: _last_bot_text(world).startswith("word word"), within=10)
        world.telegram.throttle = lambda method, params, at: (
            30 if method == "editMessageText" else None
        )
        took = await bot.stop(signal.SIGTERM, within=grace + 10)
    _clean_exit(bot)
    assert took < grace + END_MARGIN, took
    assert not _last_bot_text(world).endswith(MARK)  # the final edit never went out
    records, _, locked = await _redis_state(world.redis_url)
    assert len(records) == 1 and not locked
    history = await stored_history(world.redis_url, SCOPE, 2)
    assert [(e["content"][:4], e["interrupted"]) for e in history] == [
        ("held", False),
        ("word", True),
    ]
    world.telegram.throttle = None
    async with bot_process(world, tmp_path, grace=1) as again:
        await settle(lambda: replied(world, CHAT, NOTICE), within=10)
        await again.stop(signal.SIGTERM, within=10)
    _clean_exit(again)
    assert sum(m.text == NOTICE for m in world.telegram.bot_messages(CHAT)) == 1
    assert len(await stored_history(world.redis_url, SCOPE, 2)) == 2  # the question once
    records, _, _ = await _redis_state(world.redis_url)
    assert records == {}


async def test_a_second_sigterm_ends_the_grace_at_once(world: World, tmp_path: Path) -> None:
    """Webhook mode with a 30 s grace: a second SIGTERM ends the reply in flight at once
    (marked and stored), so the process exits in seconds, not after the grace."""
    world.openai.script.append(Answer(LONG, piece=5, delay=0.05))
    port = free_port()
    async with (
        bot_process(world, tmp_path, grace=30, webhook_port=port) as bot,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
    ):
        posted = await client.post(
            "/telegram/hook", json=_update(7101, "long again"), headers={SECRET_HEADER: SECRET}
        )
        await settle(lambda: _last_bot_text(world).startswith("word"), within=10)
        bot.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(1.0)
        assert bot.process.returncode is None  # still in the grace
        took = await bot.stop(signal.SIGTERM, within=10)
    _clean_exit(bot)
    assert posted.status_code == 200
    assert took < END_MARGIN, took
    assert _last_bot_text(world).endswith(MARK)
    history = await stored_history(world.redis_url, SCOPE, 2)
    assert [e["interrupted"] for e in history] == [False, True]


async def test_webhook_sigterm_mid_reply(world: World, tmp_path: Path) -> None:
    """Webhook mode: SIGTERM mid-reply stops the server, ends the reply under the restart
    mark and stores it; an update queued behind it (answered 200) is saved for the next
    start, which answers it; the process exits 0 within the grace plus a few seconds."""
    world.openai.script.append(Answer(LONG, piece=5, delay=0.05))
    port, grace = free_port(), 1.0
    async with (
        bot_process(world, tmp_path, grace=grace, webhook_port=port) as bot,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
    ):
        statuses = []
        for update_id, text in ((7001, "long, by webhook"), (7002, "queued, by webhook")):
            posted = await client.post(
                "/telegram/hook", json=_update(update_id, text), headers={SECRET_HEADER: SECRET}
            )
            statuses.append(posted.status_code)
            await settle(lambda: _last_bot_text(world).startswith("word"), within=10)
        took = await bot.stop(signal.SIGTERM, within=grace + 10)
    _clean_exit(bot)
    assert statuses == [200, 200]
    assert took < grace + END_MARGIN, took
    assert _last_bot_text(world).endswith(MARK)
    history = await stored_history(world.redis_url, SCOPE, 2)
    assert [(e["content"][:4], e["interrupted"]) for e in history] == [
        ("long", False),
        ("word", True),
    ]
    _, deferred, _ = await _redis_state(world.redis_url)
    assert [u["update_id"] for u in deferred] == [7002]
    async with bot_process(world, tmp_path, grace=1) as again:  # polling takes over
        await settle(lambda: "Echo: queued, by webhook" in _last_bot_text(world), within=10)
        await again.stop(signal.SIGTERM, within=10)
    _clean_exit(again)


def _update(update_id: int, text: str) -> dict[str, Any]:
    """A private text message update, as Telegram POSTs it."""
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(time.time()),
            "text": text,
            "chat": {"id": CHAT, "type": "private", "first_name": "W"},
            "from": {"id": USER, "is_bot": False, "first_name": "W", "language_code": "en"},
        },
    }
