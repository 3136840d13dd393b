"""End to end: an update PTB cannot parse is skipped, logged once, and does not stop the others
(long polling against the fake Bot API, and webhook mode over loopback)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import pytest

from bench.loopback import serve
from bot.app.webhook import SECRET_HEADER, running_webhook_bot
from tests.e2e.conftest import BotRunner, World, settle

pytestmark = pytest.mark.timeout(30)

MARK = "POISON-BODY-do-not-log"
SECRET = "webhook-Secret_poison"
URL = "https://bot.example.test/telegram/hook"


def poison_message(message_id: int) -> dict[str, Any]:
    """A message whose ``chat`` has no ``id``: PTB 22.8's ``Chat`` raises ``TypeError``."""
    return {
        "message_id": message_id,
        "date": int(time.time()),
        "text": f"{MARK} text",
        "chat": {"type": "private", "first_name": MARK},
        "from": {"id": 5, "is_bot": False, "first_name": MARK},
    }


def good_message(message_id: int, chat_id: int, text: str) -> dict[str, Any]:
    """A private text message from user ``chat_id``."""
    return {
        "message_id": message_id,
        "date": int(time.time()),
        "text": text,
        "chat": {"id": chat_id, "type": "private", "first_name": "G"},
        "from": {"id": chat_id, "is_bot": False, "first_name": "G", "language_code": "en"},
    }


def answered(world: World, chat_id: int, question: str) -> bool:
    """True once the bot's (echoing) answer to ``question`` is in ``chat_id``."""
    return any(question in m.text for m in world.telegram.bot_messages(chat_id))


def poison_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The "skipped update" lines logged so far."""
    return [
        r
        for r in caplog.records
        if r.name == "bot.app.updates" and "skipped update" in r.getMessage()
    ]


def assert_body_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    """No record (message or traceback) holds the poison update's content, none is CRITICAL."""
    assert not [r for r in caplog.records if r.levelno >= logging.CRITICAL]
    assert MARK not in caplog.text


async def test_polling_skips_a_poison_update_between_two_good_ones(
    world: World, bot: BotRunner, caplog: pytest.LogCaptureFixture
) -> None:
    """One getUpdates batch of good, poison, good: both good ones are answered, the poison is
    logged once (id and exception class, not its body), and polling goes on after it."""
    caplog.set_level(logging.WARNING)
    world.telegram.push_update({"message": good_message(1, 901, "first question")})
    poison: dict[str, Any] = {"message": poison_message(2)}
    world.telegram.push_update(poison)
    world.telegram.push_update({"message": good_message(3, 902, "second question")})
    async with bot():
        await settle(
            lambda: (
                answered(world, 901, "first question") and answered(world, 902, "second question")
            )
        )
        world.telegram.push_update({"message": good_message(4, 901, "after the poison")})
        await settle(lambda: answered(world, 901, "after the poison"))
    (line,) = poison_lines(caplog)
    assert line.levelno == logging.WARNING
    assert f"update {poison['update_id']} " in line.getMessage()
    assert "TypeError" in line.getMessage() and "message" in line.getMessage()
    assert_body_never_logged(caplog)


async def test_polling_moves_past_a_poison_update_that_ends_the_batch(
    world: World, bot: BotRunner, caplog: pytest.LogCaptureFixture
) -> None:
    """A poison update with nothing after it is confirmed anyway (the next getUpdates offset is
    past it, so Telegram drops it) and logged once over several polls."""
    caplog.set_level(logging.WARNING)
    world.telegram.push_update({"message": good_message(1, 903, "before the poison")})
    poison: dict[str, Any] = {"message": poison_message(2)}
    world.telegram.push_update(poison)
    async with bot():
        await settle(lambda: answered(world, 903, "before the poison"))
        # the fake drops updates below the offset it is asked for
        await settle(
            lambda: not any(u["update_id"] == poison["update_id"] for u in world.telegram.updates)
        )
        await asyncio.sleep(1.5)  # more long polls (1 s each) come and go
        world.telegram.push_update({"message": good_message(3, 903, "later question")})
        await settle(lambda: answered(world, 903, "later question"))
    assert len(poison_lines(caplog)) == 1
    assert_body_never_logged(caplog)


async def test_webhook_answers_a_poison_update_200_and_serves_the_next(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """Posted good, poison, good, then the poison again (Telegram retrying): all 200, both
    good ones answered, the poison logged once and never queued."""
    caplog.set_level(logging.WARNING)
    settings = world.settings(webhook_url=URL, webhook_secret=SECRET)
    bodies = [
        {"update_id": 11, "message": good_message(1, 904, "webhook first")},
        {"update_id": 12, "message": poison_message(2)},
        {"update_id": 13, "message": good_message(3, 905, "webhook second")},
        {"update_id": 12, "message": poison_message(2)},
    ]
    async with (
        running_webhook_bot(settings) as asgi,
        serve(asgi) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
    ):
        statuses = [
            (
                await client.post("/telegram/hook", json=body, headers={SECRET_HEADER: SECRET})
            ).status_code
            for body in bodies
        ]
        await settle(
            lambda: answered(world, 904, "webhook first") and answered(world, 905, "webhook second")
        )
    assert statuses == [200, 200, 200, 200]
    (line,) = poison_lines(caplog)
    assert "update 12 " in line.getMessage() and "TypeError" in line.getMessage()
    assert sorted(r["messages"][-1]["content"] for r in world.openai.requests) == [
        "webhook first",
        "webhook second",
    ]
    assert_body_never_logged(caplog)
