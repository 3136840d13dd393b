"""End to end: daily token quotas per user and per group, on a quota day that starts at
04:00 Asia/Shanghai (the clock injected into the store's usage ledger), and /usage.

The fake provider reports the usage each answer sets (``Answer.usage``), or none.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bench.fake_openai import Answer
from bench.fake_telegram import BOT_USERNAME
from bot.app.wiring import BotApplication
from bot.texts import t
from storage import estimate_tokens
from tests.e2e.conftest import BotRunner, World, replied, settle

pytestmark = pytest.mark.timeout(30)

SHANGHAI = ZoneInfo("Asia/Shanghai")
QUOTA_DAY = {"quota_timezone": "Asia/Shanghai", "quota_reset_hour": 4}
CHAT = USER = 4242
GROUP = -100800
ADMIN, MEMBER, OTHER = 801, 802, 803


class Clock:
    """The usage ledger's wall clock, moved by the test."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def on_clock(app: BotApplication, at: datetime) -> Clock:
    """Put the running bot's usage ledger on a clock at ``at``; return the clock."""
    clock = Clock(at)
    app.bot_data.services.store.usage.now = clock
    return clock


def shanghai(day: int, hh: int, mm: int) -> datetime:
    """March ``day``, 2026, ``hh:mm`` in Asia/Shanghai."""
    return datetime(2026, 3, day, hh, mm, tzinfo=SHANGHAI)


def ask_again(hours: int, minutes: int) -> str:
    """The refusal's second line for a reset at 04:00 Asia/Shanghai."""
    return t("ask_again", "en", at="04:00 Asia/Shanghai", hours=hours, minutes=minutes)


async def test_the_users_token_quota_trips_at_its_count_and_resets_at_the_local_hour(
    world: World, bot: BotRunner
) -> None:
    """USER_DAILY_TOKENS=60: after 59 reported tokens a question is still answered; at 60
    the next is refused with the next reset (04:00 local, in 6 h 30 min), still refused
    at 03:59, and answered again at 04:00."""
    world.openai.script += [Answer("one", usage=(40, 19)), Answer("two", usage=(0, 1)),
                            Answer("three")]  # fmt: skip
    refusal = t("token_limit_user", "en", limit=60) + "\n" + ask_again(6, 30)
    async with bot(user_daily_tokens=60, **QUOTA_DAY) as app:
        clock = on_clock(app, shanghai(10, 21, 30))
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="q1")
        await settle(lambda: replied(world, CHAT, "one"))
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="q2")  # 59 < 60: answered
        await settle(lambda: replied(world, CHAT, "two"))
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="q3")
        await settle(lambda: replied(world, CHAT, refusal))
        clock.at = shanghai(11, 3, 59)
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="q4")
        late = t("token_limit_user", "en", limit=60) + "\n" + ask_again(0, 1)
        await settle(lambda: replied(world, CHAT, late))
        clock.at = shanghai(11, 4, 0)
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="q5")
        await settle(lambda: replied(world, CHAT, "three"))
    assert [r["messages"][-1]["content"] for r in world.openai.requests] == ["q1", "q2", "q5"]


async def test_a_provider_without_usage_is_charged_the_estimate(
    world: World, bot: BotRunner
) -> None:
    """An answer without reported usage counts the estimate of the request's messages and
    the answer, as /usage shows."""
    answer = "An answer of forty characters, exactly.."
    world.openai.script.append(Answer(answer, usage=None))
    async with bot(**QUOTA_DAY) as app:
        on_clock(app, shanghai(10, 12, 0))
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="hello there")
        await settle(lambda: replied(world, CHAT, answer))
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="/usage")
        await settle(lambda: world.telegram.bot_messages(CHAT)[-1].text.startswith("Today"))
    sent = world.openai.requests[0]["messages"]
    expected = sum(estimate_tokens(m["content"]) for m in sent) + estimate_tokens(answer)
    first = world.telegram.bot_messages(CHAT)[-1].text.splitlines()[0]
    assert first == t("usage_today", "en", start="04:00 Asia/Shanghai", requests=1, tokens=expected)


async def test_usage_shows_today_and_in_total_by_model(world: World, bot: BotRunner) -> None:
    """/usage counts the turns made today and in total, by model, with what is left of the
    quotas; on the next quota day today is empty and the totals remain."""
    world.openai.script += [Answer("a1"), Answer("a2"), Answer("b1", usage=(5, 7))]
    async with bot(user_daily_tokens=1000, user_daily_turns=10, **QUOTA_DAY) as app:
        clock = on_clock(app, shanghai(10, 9, 0))
        for question, answer in (("q1", "a1"), ("q2", "a2")):
            world.telegram.push_text(chat_id=CHAT, user_id=USER, text=question)
            await settle(lambda answer=answer: replied(world, CHAT, answer))
        await app.bot_data.services.store.set_model(f"u:{USER}", "local:model-b")
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="q3")
        await settle(lambda: replied(world, CHAT, "b1"))
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="/usage")
        await settle(lambda: world.telegram.bot_messages(CHAT)[-1].text.startswith("Today"))
        today = world.telegram.bot_messages(CHAT)[-1].text
        clock.at = shanghai(11, 4, 0)
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="/usage")
        await settle(lambda: world.telegram.bot_messages(CHAT)[-1].text != today)
        tomorrow = world.telegram.bot_messages(CHAT)[-1].text
    by_model = [
        t("usage_model", "en", model="local:model-a", requests=2, tokens=60),
        t("usage_model", "en", model="local:model-b", requests=1, tokens=12),
    ]
    start = "04:00 Asia/Shanghai"
    assert today.splitlines() == [
        t("usage_today", "en", start=start, requests=3, tokens=72),
        *by_model,
        t("usage_total", "en", requests=3, tokens=72),
        *by_model,
        t("usage_limit", "en", limit=10, left=7),
        t("usage_token_limit", "en", limit=1000, left=928),
    ]
    assert tomorrow.splitlines() == [
        t("usage_today", "en", start=start, requests=0, tokens=0),
        t("usage_total", "en", requests=3, tokens=72),
        *by_model,
        t("usage_limit", "en", limit=10, left=10),
        t("usage_token_limit", "en", limit=1000, left=1000),
    ]


def group_text(world: World, user_id: int, text: str) -> None:
    """A group message from ``user_id``."""
    world.telegram.push_text(chat_id=GROUP, user_id=user_id, text=text, chat_type="supergroup")


async def test_admins_lower_the_group_quota_and_the_group_shares_it(
    world: World, bot: BotRunner
) -> None:
    """CHAT_DAILY_TOKENS=100: a member may not set the group's quota, an admin may not
    raise it above 100 but may lower it to 50; /quota shows it; then two members' 30-token
    answers use it up and the next question is refused for the whole group, with when."""
    world.telegram.admins.add(ADMIN)
    world.telegram.statuses[OTHER] = "left"
    world.openai.script += [Answer("first"), Answer("second")]
    async with bot(chat_daily_tokens=100, **QUOTA_DAY) as app:
        on_clock(app, shanghai(10, 22, 15))
        group_text(world, MEMBER, "/quota 10")
        await settle(lambda: replied(world, GROUP, t("shared_admins_only", "en")))
        group_text(world, ADMIN, "/quota 500")
        await settle(lambda: replied(world, GROUP, t("quota_too_high", "en", limit=100)))
        group_text(world, ADMIN, "/quota lots")
        await settle(lambda: replied(world, GROUP, t("quota_bad", "en")))
        group_text(world, ADMIN, "/quota 50")
        await settle(lambda: replied(world, GROUP, t("quota_set", "en", limit=50)))
        group_text(world, MEMBER, f"@{BOT_USERNAME} one")
        await settle(lambda: replied(world, GROUP, "first"))
        group_text(world, ADMIN, f"@{BOT_USERNAME} two")
        await settle(lambda: replied(world, GROUP, "second"))
        group_text(world, MEMBER, "/quota")
        await settle(lambda: world.telegram.bot_messages(GROUP)[-1].text.startswith("Daily"))
        shown = world.telegram.bot_messages(GROUP)[-1].text
        group_text(world, OTHER, f"@{BOT_USERNAME} three")
        refusal = t("token_limit_chat", "en", limit=50) + "\n" + ask_again(5, 45)
        await settle(lambda: replied(world, GROUP, refusal))
    assert shown.splitlines() == [
        t("quota_title", "en", start="04:00 Asia/Shanghai"),
        t("quota_turns", "en", limit="no limit"),
        t("quota_user_tokens", "en", limit="no limit"),
        t("quota_chat_tokens", "en", limit="50", used=60),
        t("quota_chat_own", "en", operator="100"),
        t("quota_hint", "en"),
    ]
    assert len(world.openai.requests) == 2


async def test_removing_the_groups_quota_brings_back_the_operators(
    world: World, bot: BotRunner
) -> None:
    """An admin's /quota off removes the group's own quota (the operator's applies again),
    and /quota with a number in a private chat is for groups only; a creator is an admin."""
    world.telegram.statuses[ADMIN] = "creator"
    async with bot(chat_daily_tokens=100):
        group_text(world, ADMIN, "/quota 20")
        await settle(lambda: replied(world, GROUP, t("quota_set", "en", limit=20)))
        group_text(world, ADMIN, "/quota off")
        await settle(lambda: replied(world, GROUP, t("quota_removed", "en", limit="100")))
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="/quota 5")
        await settle(lambda: replied(world, CHAT, t("shared_groups_only", "en")))
    assert len(world.telegram.calls_of("getChatMember")) == 1  # remembered for a minute
