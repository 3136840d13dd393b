"""End to end: the real Application while its redis-server is down, restarted or out of memory.

Each test runs its own redis-server (``redis_process``), which it stops and starts again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator

import pytest
import redis.asyncio as redis

from bench.fake_openai import Answer
from bot.texts import t
from tests.conftest import RedisProcess
from tests.e2e.conftest import BotRunner, World, settle, stored_history

pytestmark = pytest.mark.timeout(60)

USER = 601
STRANGER = 602
GROUP = -6001
UNAVAILABLE = t("storage_unavailable", "en")
NOT_ALLOWED = t("not_allowed", "en", user_id=STRANGER)
ERROR = t("error_generic", "en")


@pytest.fixture(autouse=True)
def no_retry_waits() -> Iterator[None]:
    """Retries wait for real here (not stamina's testing mode): the store's retries must
    outlast a Redis outage of seconds."""
    yield


def texts(world: World, chat_id: int) -> list[str]:
    """The texts of the bot's messages in ``chat_id``, oldest first."""
    return [m.text for m in world.telegram.bot_messages(chat_id)]


def gate_refusals(caplog: pytest.LogCaptureFixture) -> int:
    """How many updates the gate stopped because the storage failed."""
    return sum(
        r.name == "handlers.gate" and "not handled" in r.getMessage() for r in caplog.records
    )


async def test_gate_with_redis_down_answers_no_stranger_and_tells_a_user_once(
    world: World, bot: BotRunner, redis_process: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    """With Redis stopped, a stranger is refused, an allowed user's three messages get one
    "temporarily unavailable" notice and no model answer, a group message not meant for
    the bot gets nothing; once Redis is back the user is answered."""
    caplog.set_level(logging.WARNING, logger="handlers.gate")
    async with bot(redis_url=redis_process.url, allowed_user_ids=[str(USER)]):
        await asyncio.to_thread(redis_process.stop)
        world.telegram.push_text(chat_id=STRANGER, user_id=STRANGER, text="let me in")
        for n in range(3):
            world.telegram.push_text(chat_id=USER, user_id=USER, text=f"question {n}")
        world.telegram.push_text(chat_id=GROUP, user_id=USER, text="chatting", chat_type="group")
        await settle(lambda: gate_refusals(caplog) == 4)  # the stranger never reaches Redis
        assert texts(world, STRANGER) == [NOT_ALLOWED]
        assert texts(world, USER) == [UNAVAILABLE]
        assert texts(world, GROUP) == []
        assert world.openai.requests == []

        await asyncio.to_thread(redis_process.start)
        world.telegram.push_text(chat_id=USER, user_id=USER, text="are you back?")
        await settle(lambda: len(world.openai.answers) == 1 and len(texts(world, USER)) == 2)
    assert texts(world, USER)[0] == UNAVAILABLE
    assert ERROR not in texts(world, USER)


async def test_redis_out_of_memory_closes_the_gate(
    world: World, bot: BotRunner, redis_process: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis refusing writes (``-OOM``): the stranger is refused, the user gets one notice
    (sent again when Telegram answers 502), no model answer and no trace in the chat."""
    caplog.set_level(logging.WARNING, logger="handlers.gate")
    admin = redis.from_url(redis_process.url)
    try:
        async with bot(redis_url=redis_process.url, allowed_user_ids=[str(USER)]):
            await admin.config_set("maxmemory-policy", "noeviction")
            await admin.config_set("maxmemory", "1")
            world.telegram.push_text(chat_id=STRANGER, user_id=STRANGER, text="let me in")
            await settle(lambda: texts(world, STRANGER) == [NOT_ALLOWED])
            world.telegram.inject("sendMessage", status=502, description="Bad Gateway")
            world.telegram.push_text(chat_id=USER, user_id=USER, text="question 1")
            world.telegram.push_text(chat_id=USER, user_id=USER, text="question 2")
            await settle(lambda: gate_refusals(caplog) == 2 and len(texts(world, USER)) == 1)
            assert texts(world, USER) == [UNAVAILABLE]
            sends = [c.error_code for c in world.telegram.calls_of("sendMessage")
                     if str(c.params.get("chat_id")) == str(USER)]  # fmt: skip
            assert sends == [502, None], "the notice refused with 502 was sent again"
            assert world.openai.requests == []
            assert any("OutOfMemoryError" in r.getMessage() for r in caplog.records)
            await admin.config_set("maxmemory", "0")
            world.telegram.push_text(chat_id=USER, user_id=USER, text="question 3")
            await settle(lambda: len(world.openai.answers) == 1 and len(texts(world, USER)) == 2)
    finally:
        await admin.aclose()
    assert not any("OOM" in text or "Traceback" in text for text in texts(world, USER))


async def test_finished_answer_is_delivered_and_stored_once_through_a_blip(
    world: World, bot: BotRunner, redis_process: RedisProcess
) -> None:
    """An answer ending while Redis is down is shown in full, with no error; Redis back 2 s
    later, the exchange is stored once, the lock is freed at once, and the next question
    goes to the model with the exact history."""
    first, second = "The first answer.", "The second answer, finished while Redis was down."
    finish = asyncio.Event()
    world.openai.script.append(Answer(first))
    world.openai.script.append(Answer(second, piece=6, delay=0.01, hold=finish))
    world.openai.script.append(Answer("The third answer."))
    async with bot(redis_url=redis_process.url):
        world.telegram.push_text(chat_id=USER, user_id=USER, text="question 1")
        assert len(await stored_history(redis_process.url, f"u:{USER}", 2)) == 2
        world.telegram.push_text(chat_id=USER, user_id=USER, text="question 2")
        await settle(lambda: any(second[:12] in text for text in texts(world, USER)))

        await asyncio.to_thread(redis_process.stop, keep_data=True)
        down_at = time.monotonic()
        finish.set()
        await settle(lambda: texts(world, USER)[-1] == second)
        assert redis_process.process is None, "the answer was delivered while Redis was down"
        await asyncio.sleep(max(0.0, 2.0 - (time.monotonic() - down_at)))
        await asyncio.to_thread(redis_process.start)

        history = await stored_history(redis_process.url, f"u:{USER}", 4)
        back_at = time.monotonic()
        world.telegram.push_text(chat_id=USER, user_id=USER, text="question 3")
        await settle(lambda: len(world.openai.requests) == 3, within=20)
        assert time.monotonic() - back_at < 10, "the lock was released, not left to expire"
        await settle(lambda: texts(world, USER)[-1] == "The third answer.")
    assert [(m["role"], m["content"]) for m in history] == [
        ("user", "question 1"),
        ("assistant", first),
        ("user", "question 2"),
        ("assistant", second),
    ]
    sent = [(m["role"], m["content"]) for m in world.openai.requests[2]["messages"]]
    assert sent[1:] == [
        ("user", "question 1"),
        ("assistant", first),
        ("user", "question 2"),
        ("assistant", second),
        ("user", "question 3"),
    ]
    assert ERROR not in texts(world, USER) and UNAVAILABLE not in texts(world, USER)
