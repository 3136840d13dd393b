"""End to end: /stats for the bot's operators (bot-wide) and a group's admins (their
group), as text and as a CSV document, with exact figures from the turns made."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bench.fake_openai import Answer
from bench.fake_telegram import BOT_USERNAME, StoredMessage
from bot.app.wiring import BotApplication
from bot.texts import t
from handlers.reports import CSV_COLUMNS
from tests.e2e.conftest import BotRunner, World, replied, settle

pytestmark = pytest.mark.timeout(30)

SHANGHAI = ZoneInfo("Asia/Shanghai")
OPERATOR, USER = 901, 902
GROUP = -100900
ADMIN, MEMBER = 911, 912
START = "04:00 Asia/Shanghai"


class Clock:
    """The usage ledger's wall clock, moved by the test."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def group_text(world: World, user_id: int, text: str) -> None:
    """A group message from ``user_id``."""
    world.telegram.push_text(chat_id=GROUP, user_id=user_id, text=text, chat_type="supergroup")


async def make_turns(world: World, app: BotApplication) -> None:
    """Yesterday (2026-03-09) USER asks once privately (30 tokens, model-a); today
    (2026-03-10) MEMBER asks twice in the group (30 each, model-a) and ADMIN once
    (12 tokens, model-b)."""
    clock = Clock(datetime(2026, 3, 9, 10, 0, tzinfo=SHANGHAI))
    services = app.bot_data.services
    services.store.usage.now = clock
    world.openai.script += [Answer("p1"), Answer("g1"), Answer("g2"), Answer("g3", usage=(5, 7))]
    world.telegram.push_text(chat_id=USER, user_id=USER, text="private question")
    await settle(lambda: replied(world, USER, "p1"))
    clock.at = datetime(2026, 3, 10, 10, 0, tzinfo=SHANGHAI)
    for answer in ("g1", "g2"):
        group_text(world, MEMBER, f"@{BOT_USERNAME} question")
        await settle(lambda answer=answer: replied(world, GROUP, answer))
    await services.store.set_model(f"c:{GROUP}:u:{ADMIN}", "local:model-b")
    group_text(world, ADMIN, f"@{BOT_USERNAME} question")
    await settle(lambda: replied(world, GROUP, "g3"))


def last(world: World, chat_id: int) -> StoredMessage:
    """The bot's newest message in ``chat_id``."""
    return world.telegram.bot_messages(chat_id)[-1]


def csv_rows(message: StoredMessage) -> list[list[str]]:
    """The rows of a CSV document the bot sent (UTF-8 with a BOM)."""
    assert message.document is not None
    return list(csv.reader(io.StringIO(message.document.data.decode("utf-8-sig"))))


async def test_an_operator_gets_the_whole_bot_as_text_and_csv(world: World, bot: BotRunner) -> None:
    """An operator's /stats in a private chat counts every chat: today 2 users, 3
    questions, 72 tokens; 7 days 3 users, 4 questions, 102 tokens; by model and platform.
    /stats csv sends the same figures as a document; another user is refused."""
    async with bot(
        admin_user_ids=[str(OPERATOR)], quota_timezone="Asia/Shanghai", quota_reset_hour=4
    ) as app:
        await make_turns(world, app)
        world.telegram.push_text(chat_id=OPERATOR, user_id=OPERATOR, text="/stats")
        await settle(lambda: bool(world.telegram.bot_messages(OPERATOR)))
        text = last(world, OPERATOR).text
        world.telegram.push_text(chat_id=OPERATOR, user_id=OPERATOR, text="/stats csv")
        await settle(lambda: last(world, OPERATOR).document is not None)
        document = last(world, OPERATOR)
        world.telegram.push_text(chat_id=USER, user_id=USER, text="/stats")
        await settle(lambda: replied(world, USER, t("stats_refused", "en")))
    assert text.splitlines() == [
        t("stats_title_bot", "en", start=START),
        t("stats_today", "en", users=2, requests=3, tokens=72),
        t("stats_week", "en", users=3, requests=4, tokens=102),
        t("stats_by_model", "en"),
        t(
            "stats_row",
            "en",
            name="local:model-a",
            requests_today=2,
            requests_week=3,
            tokens_today=60,
            tokens_week=90,
        ),
        t(
            "stats_row",
            "en",
            name="local:model-b",
            requests_today=1,
            requests_week=1,
            tokens_today=12,
            tokens_week=12,
        ),
        t("stats_by_platform", "en"),
        t(
            "stats_row",
            "en",
            name="local",
            requests_today=3,
            requests_week=4,
            tokens_today=72,
            tokens_week=102,
        ),
    ]
    assert document.text == t("stats_csv_caption", "en")
    assert document.document is not None
    assert document.document.filename == "usage-bot-2026-03-10.csv"
    today, week = ["today", "2026-03-10", "2026-03-10"], ["7d", "2026-03-04", "2026-03-10"]
    assert csv_rows(document) == [
        list(CSV_COLUMNS),
        [*today, "total", "", "", "2", "3", "72"],
        [*today, "model", "local:model-a", "", "", "2", "60"],
        [*today, "model", "local:model-b", "", "", "1", "12"],
        [*today, "platform", "local", "", "", "3", "72"],
        [*week, "total", "", "", "3", "4", "102"],
        [*week, "model", "local:model-a", "", "", "3", "90"],
        [*week, "model", "local:model-b", "", "", "1", "12"],
        [*week, "platform", "local", "", "", "4", "102"],
    ]


async def test_a_groups_admin_gets_the_group_with_its_top_users(
    world: World, bot: BotRunner
) -> None:
    """In the group, its admin's /stats counts only the group's turns and names its top
    users (as Telegram named them when they asked); a member is refused; /stats csv lists
    the users with their ids and names."""
    world.telegram.admins.add(ADMIN)
    async with bot(quota_timezone="Asia/Shanghai", quota_reset_hour=4) as app:
        await make_turns(world, app)
        group_text(world, MEMBER, "/stats")
        await settle(lambda: replied(world, GROUP, t("stats_refused", "en")))
        group_text(world, ADMIN, "/stats")
        await settle(lambda: last(world, GROUP).text.startswith("Usage in this group"))
        text = last(world, GROUP).text
        group_text(world, ADMIN, "/stats csv")
        await settle(lambda: last(world, GROUP).document is not None)
        document = last(world, GROUP)
    assert text.splitlines() == [
        t("stats_title_chat", "en", start=START),
        t("stats_today", "en", users=2, requests=3, tokens=72),
        t("stats_week", "en", users=2, requests=3, tokens=72),
        t("stats_by_model", "en"),
        t(
            "stats_row",
            "en",
            name="local:model-a",
            requests_today=2,
            requests_week=2,
            tokens_today=60,
            tokens_week=60,
        ),
        t(
            "stats_row",
            "en",
            name="local:model-b",
            requests_today=1,
            requests_week=1,
            tokens_today=12,
            tokens_week=12,
        ),
        t("stats_by_platform", "en"),
        t(
            "stats_row",
            "en",
            name="local",
            requests_today=3,
            requests_week=3,
            tokens_today=72,
            tokens_week=72,
        ),
        t("stats_top", "en"),
        t("stats_user", "en", rank=1, name=f"U{MEMBER}", requests=2, tokens=60),
        t("stats_user", "en", rank=2, name=f"U{ADMIN}", requests=1, tokens=12),
    ]
    assert document.document is not None
    assert document.document.filename == f"usage-chat{GROUP}-2026-03-10.csv"
    rows = csv_rows(document)
    users = [row[3:] for row in rows if row[3] == "user"]
    assert (
        users
        == [
            ["user", str(MEMBER), f"U{MEMBER}", "", "2", "60"],
            ["user", str(ADMIN), f"U{ADMIN}", "", "1", "12"],
        ]
        * 2
    )  # today, then the 7 days
    assert [row[3:] for row in rows if row[3] == "total"] == [["total", "", "", "2", "3", "72"]] * 2


async def test_an_operator_in_a_group_sees_that_group_only(world: World, bot: BotRunner) -> None:
    """An operator who is not the group's admin still gets its report there, not the whole
    bot's (which would show other chats' figures to the group)."""
    async with bot(admin_user_ids=[str(OPERATOR)]) as app:
        await make_turns(world, app)
        group_text(world, OPERATOR, "/stats")
        await settle(lambda: last(world, GROUP).text.startswith("Usage in this group"))
    assert t("stats_week", "en", users=2, requests=3, tokens=72) in last(world, GROUP).text
