"""End to end: Telegram's refusals and failures during a reply, and the bot's start-up calls."""

from __future__ import annotations

import logging

import pytest

from bench.fake_openai import Answer
from bench.fake_telegram import StoredMessage
from bot.texts import t
from tests.e2e.conftest import TOKEN, BotRunner, World, replied, settle

pytestmark = pytest.mark.timeout(30)

CHAT = USER = 801
FAST = {"limit_per_chat_per_second": 50.0}


async def test_rejected_entities_fall_back_to_plain_text(world: World, bot: BotRunner) -> None:
    """When Telegram cannot parse a frame's entities, that frame goes out as plain text."""
    world.openai.script.append(Answer("**bold** answer"))
    world.telegram.inject(
        "sendMessage", status=400, description="Bad Request: can't parse entities: unsupported tag"
    )
    async with bot(**FAST):
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="hi")
        await settle(lambda: replied(world, CHAT, "bold answer"))
    sends = world.telegram.calls_of("sendMessage")
    assert sends[0].error_code == 400 and sends[0].params.get("entities")
    assert "entities" not in sends[1].params


async def test_network_errors_are_retried_and_final_text_arrives(
    world: World, bot: BotRunner
) -> None:
    """Edits that fail with 502 Bad Gateway are retried; the final text still arrives whole."""
    answer = "one two three four five six seven eight nine ten"
    world.openai.script.append(Answer(answer, piece=5, delay=0.03))
    world.telegram.inject("editMessageText", status=502, description="Bad Gateway", times=3)
    async with bot(**FAST):
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="count")
        await settle(lambda: replied(world, CHAT, answer), within=15)
    failed = [c for c in world.telegram.calls_of("editMessageText") if c.error_code == 502]
    assert len(failed) == 3


async def test_blocked_bot_stops_the_reply(world: World, bot: BotRunner) -> None:
    """A Forbidden answer (bot blocked) stops the reply, closes the provider stream, and
    releases the conversation for the user's next message."""
    world.openai.script += [Answer("word " * 400, piece=5, delay=0.02), Answer("welcome back")]
    world.telegram.inject(
        "sendMessage", status=403, description="Forbidden: bot was blocked by the user"
    )
    async with bot(**FAST):
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="hi")
        await settle(lambda: world.openai.disconnects == 1, within=10)
        assert len(world.telegram.calls_of("sendMessage")) == 1, "nothing more to that chat"
        assert world.telegram.calls_of("editMessageText") == []
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="unblocked")
        await settle(lambda: replied(world, CHAT, "welcome back"))


async def test_start_help_and_registered_commands(world: World, bot: BotRunner) -> None:
    """/start names the model, /help lists commands, and both languages' commands are set."""
    async with bot():
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="/start")
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="/help", language_code="zh")
        await settle(lambda: len(world.telegram.bot_messages(CHAT)) == 2)
    start, help_text = (m.text for m in world.telegram.bot_messages(CHAT))
    assert start == t("start", "en", model="model-a")
    assert help_text == t("help", "zh")
    registered = world.telegram.calls_of("setMyCommands")
    assert {c.params.get("language_code") for c in registered} == {None, "zh"}
    names = [command["command"] for command in registered[0].params["commands"]]
    assert names == [
        "start",
        "help",
        "model",
        "settings",
        "reset",
        "stop",
        "retry",
        "usage",
        "shared",
        "quota",
        "stats",
        "system",
        "triggers",
        "private_answers",
    ]


async def test_failed_command_registration_is_not_fatal(
    world: World, bot: BotRunner, caplog: pytest.LogCaptureFixture
) -> None:
    """If setMyCommands fails, the bot logs it and answers messages all the same."""
    world.telegram.inject("setMyCommands", status=400, description="Bad Request: nope", times=2)
    async with bot():
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="/help")
        await settle(lambda: replied(world, CHAT, t("help", "en")))
    assert any("could not register the bot commands" in r.getMessage() for r in caplog.records)


async def test_start_up_line_names_providers_and_storage_not_secrets(
    world: World, bot: BotRunner, caplog: pytest.LogCaptureFixture
) -> None:
    """One start-up log line names the base URL, default model and storage, and no secret."""
    with caplog.at_level(logging.INFO, logger="bot.app.wiring"):
        async with bot():
            pass
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("starting:")]
    assert f"local@http://127.0.0.1:{world.openai_port}/v1" in line
    assert "default_model=local:model-a" in line and "storage=redis" in line
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert TOKEN not in everything and "sk-test-key" not in everything


async def test_daily_limit_and_usage(world: World, bot: BotRunner) -> None:
    """With USER_DAILY_TURNS=1 the second question is refused, and so is /retry (it asks
    the model again); /usage shows the count."""
    world.openai.script.append(Answer("first and only"))
    refusal_start = t("daily_limit", "en", limit=1) + "\n"
    async with bot(user_daily_turns=1):
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="one")
        await settle(lambda: replied(world, CHAT, "first and only"))
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="two")

        def refusals() -> list[StoredMessage]:
            return [
                m for m in world.telegram.bot_messages(CHAT) if m.text.startswith(refusal_start)
            ]

        await settle(lambda: len(refusals()) == 1)
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="/retry")
        await settle(lambda: len(refusals()) == 2)
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="/usage")
        await settle(lambda: world.telegram.bot_messages(CHAT)[-1].text.startswith("Today"))
    usage = world.telegram.bot_messages(CHAT)[-1].text.splitlines()
    assert usage[0] == t("usage_today", "en", start="00:00 UTC", requests=1, tokens=30)
    assert usage[-1] == t("usage_limit", "en", limit=1, left=0)
    assert len(world.openai.requests) == 1


async def test_asking_faster_than_the_pace_is_refused_with_the_wait(
    world: World, bot: BotRunner
) -> None:
    """USER_TURNS_PER_MINUTE=2: the third question within a minute is refused with the
    seconds to wait, and never reaches the model; another user is still answered."""
    world.openai.script += [Answer("one"), Answer("two"), Answer("other")]
    async with bot(user_turns_per_minute=2, user_daily_turns=10):
        for text, answer in (("q1", "one"), ("q2", "two")):
            world.telegram.push_text(chat_id=CHAT, user_id=USER, text=text)
            await settle(lambda answer=answer: replied(world, CHAT, answer))
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="q3")
        prefix = t("too_fast", "en", limit=2, seconds=0).split(" 0 s")[0]
        await settle(
            lambda: any(m.text.startswith(prefix) for m in world.telegram.bot_messages(CHAT))
        )
        world.telegram.push_text(chat_id=CHAT + 1, user_id=USER + 1, text="q")
        await settle(lambda: replied(world, CHAT + 1, "other"))
    (refusal,) = [m.text for m in world.telegram.bot_messages(CHAT) if m.text.startswith(prefix)]
    seconds = int(refusal.removeprefix(prefix).split()[0])
    assert 50 <= seconds <= 60
    assert [r["messages"][-1]["content"] for r in world.openai.requests] == ["q1", "q2", "q"]


async def test_allow_list_refuses_strangers(world: World, bot: BotRunner) -> None:
    """With ALLOWED_USER_IDS set, a stranger hears the bot is private; a listed user is answered."""
    world.openai.script.append(Answer("hello friend"))
    async with bot(allowed_user_ids=[str(USER)]):
        world.telegram.push_text(chat_id=999, user_id=999, text="let me in")
        await settle(lambda: replied(world, 999, t("not_allowed", "en", user_id=999)))
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="hi")
        await settle(lambda: replied(world, CHAT, "hello friend"))
    assert len(world.openai.requests) == 1, "the stranger's message never reached the model"
