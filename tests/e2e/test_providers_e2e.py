"""End to end across platforms: one conversation moves between a ZJU-style model and USTB,
and provider errors reach the user as the right short messages."""

from __future__ import annotations

from typing import Any

import pytest

from bench.fake_openai import Answer, Failure
from bot.texts import t
from storage import open_store
from tests.e2e.conftest import BotRunner, World, serve, settle
from tests.e2e.fake_ustb import FakeUSTB

pytestmark = pytest.mark.timeout(30)

CHAT = USER = 612
SESSION = "a" * 32


def platform_settings(world: World, ustb_port: int) -> dict[str, Any]:
    """ZJU (served by the fake OpenAI server) and USTB enabled; the quick-start endpoint off."""
    return {
        "openai_base_url": "",
        "openai_models": [],
        "zju_api_key": "sk-" + "z" * 48,
        "zju_base_url": f"http://127.0.0.1:{world.openai_port}/v1",
        "ustb_easy_session": SESSION,
        "ustb_base_url": f"http://127.0.0.1:{ustb_port}",
        "default_model": "zju:deepseek-v3-671b",
    }


async def choose(world: World, key: str) -> None:
    """Open /model and press the button of the model ``key``."""
    before = len(world.telegram.calls_of("answerCallbackQuery"))
    command_id = world.telegram.push_text(chat_id=CHAT, user_id=USER, text="/model")

    def menus() -> list[Any]:
        return [
            m
            for m in world.telegram.bot_messages(CHAT)
            if m.reply_markup and m.message_id > command_id
        ]

    await settle(lambda: bool(menus()))
    menu = menus()[0]
    buttons = [b for row in menu.reply_markup["inline_keyboard"] for b in row]
    button = next(b for b in buttons if b["callback_data"].endswith(f"|{key}"))
    world.telegram.push_callback(
        chat_id=CHAT, user_id=USER, message_id=menu.message_id, data=button["callback_data"]
    )
    await settle(lambda: len(world.telegram.calls_of("answerCallbackQuery")) > before)


async def ask(world: World, text: str, expected_answers: int) -> None:
    """Send ``text`` and wait until the bot has finished that many answers."""
    world.telegram.push_text(chat_id=CHAT, user_id=USER, text=text)
    await settle(
        lambda: (
            sum(1 for m in world.telegram.bot_messages(CHAT) if not m.reply_markup and m.text)
            >= expected_answers
        )
    )


async def test_conversation_moves_between_zju_and_ustb(world: World, bot: BotRunner) -> None:
    """A conversation switches from a ZJU-style model to USTB and back and keeps its history."""
    ustb = FakeUSTB(session=SESSION, answers=["USTB answer"])
    world.openai.script += [Answer("ZJU answer one"), Answer("ZJU answer two")]
    async with serve(ustb.app) as ustb_port, bot(**platform_settings(world, ustb_port)):
        await ask(world, "first question", 1)
        await choose(world, "ustb:DeepSeek")
        await ask(world, "second question", 2)
        await choose(world, "zju:deepseek-v3-671b")
        await ask(world, "third question", 3)
    assert world.openai.requests[0]["model"] == "deepseek-v3-671b"
    form = ustb.forms[0]
    assert form[0] == ("content", "second question")
    assert form[1:5] == [
        ("history[0][role]", "user"),
        ("history[0][content]", "Be brief.\n\nfirst question"),
        ("history[1][role]", "assistant"),
        ("history[1][content]", "ZJU answer one"),
    ]
    assert ("model_name", "DeepSeek") in form
    contents = [m["content"] for m in world.openai.requests[1]["messages"]]
    assert contents == [
        "Be brief.",
        "first question",
        "ZJU answer one",
        "second question",
        "USTB answer",
        "third question",
    ]


async def test_refreshed_ustb_cookie_survives_restart(world: World, bot: BotRunner) -> None:
    """A cookie USTB refreshes with Set-Cookie is stored and used by the next Application."""
    ustb = FakeUSTB(session=SESSION, set_cookie="b" * 32)
    settings = platform_settings(world, 0)
    settings["default_model"] = "ustb:DeepSeek"
    async with serve(ustb.app) as port:
        settings["ustb_base_url"] = f"http://127.0.0.1:{port}"
        async with bot(**settings):
            await ask(world, "hello", 1)
        store, _ = await open_store(world.redis_url, max_turns=5, max_tokens=1000, ttl_seconds=60)
        try:
            assert (await store.get_provider_session("ustb"))["easy_session"] == "b" * 32
        finally:
            await store.aclose()
        async with bot(**settings):
            await ask(world, "again", 2)
    assert len(ustb.forms) == 2, "the second Application was let in with the refreshed cookie"


async def test_expired_ustb_session_is_reported(world: World, bot: BotRunner) -> None:
    """A 302 to the login page gives the session-expired message and stores nothing."""
    ustb = FakeUSTB(session="someone-else-session-cookie-0000")
    settings = platform_settings(world, 0)
    settings["default_model"] = "ustb:DeepSeek"
    async with serve(ustb.app) as port:
        settings["ustb_base_url"] = f"http://127.0.0.1:{port}"
        async with bot(**settings):
            world.telegram.push_text(chat_id=CHAT, user_id=USER, text="hello")
            await settle(
                lambda: any(
                    m.text == t("error_session_expired", "en")
                    for m in world.telegram.bot_messages(CHAT)
                )
            )


async def test_content_block_gives_the_blocked_message(world: World, bot: BotRunner) -> None:
    """A Zhipu-style 1301 safety block yields the 'declined under its content rules' message."""
    unsafe = "系统检测到输入或生成内容可能包含不安全或敏感内容"
    world.openai.script.append(Failure(400, code="1301", message=unsafe))
    async with bot():
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="something risky")
        await settle(lambda: bool(world.telegram.bot_messages(CHAT)))
        await settle(lambda: world.telegram.bot_messages(CHAT)[-1].text == t("error_blocked", "en"))
    assert len(world.openai.requests) == 1, "a safety block is not retried"


async def test_rate_limit_names_the_wait(world: World, bot: BotRunner) -> None:
    """A 429 with Retry-After 20, after the retries, tells the user to try again in 20 s."""
    world.openai.script += [Failure(429, message="busy", headers={"retry-after": "20"})] * 3
    async with bot():
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="hello", language_code="zh")
        await settle(
            lambda: any(
                m.text == t("error_rate_limited", "zh", seconds=20)
                for m in world.telegram.bot_messages(CHAT)
            )
        )
    assert len(world.openai.requests) == 3


async def test_operator_hears_about_a_rejected_key(
    world: World, bot: BotRunner, caplog: pytest.LogCaptureFixture
) -> None:
    """A 401 tells the user the operator was told, and logs an ERROR line without the key."""
    world.openai.script.append(
        Failure(401, code="invalid_api_key", message="bad key", headers={"x-request-id": "req-123"})
    )
    async with bot():
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="hello")
        await settle(
            lambda: any(m.text == t("error_auth", "en") for m in world.telegram.bot_messages(CHAT))
        )
    lines = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    line = next(line for line in lines if "provider failure" in line)
    assert "provider=local" in line and "model=model-a" in line and "status=401" in line
    assert "req-123" in line
    assert "sk-test-key" not in "\n".join(r.getMessage() for r in caplog.records)


async def test_model_menu_lists_enabled_models_by_platform(world: World, bot: BotRunner) -> None:
    """/model shows only enabled platforms' models, grouped, with vision/reasoning marks."""
    async with bot(**platform_settings(world, 9)):
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="/model")
        await settle(lambda: any(m.reply_markup for m in world.telegram.bot_messages(CHAT)))
    (menu,) = [m for m in world.telegram.bot_messages(CHAT) if m.reply_markup]
    labels = [row[0]["text"] for row in menu.reply_markup["inline_keyboard"]]
    platforms = [label.split("]")[0].strip("[") for label in labels]
    assert platforms == sorted(platforms, key=["zju", "ustb"].index), "grouped, in order"
    assert set(platforms) == {"zju", "ustb"}, "only the enabled platforms"
    by_key = {
        row[0]["callback_data"].split("|", 2)[2]: row[0]["text"]
        for row in menu.reply_markup["inline_keyboard"]
    }
    assert "🧠" in by_key["zju:deepseek-r1-671b"] and "👁" not in by_key["zju:deepseek-r1-671b"]
    assert "👁" in by_key["zju:llava-onevision-qwen2-7b-ov"]
    assert by_key["zju:deepseek-v3-671b"].startswith("[zju] ✅")
