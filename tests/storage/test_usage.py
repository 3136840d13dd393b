"""Usage per quota day: the day's boundaries in a zone at a reset hour, and the ledger's
counts on real Redis and on the embedded backend, with an injected clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from storage import ConversationStore
from storage.keys import bot_usage_key, chat_usage_key, user_total_key, user_usage_key
from storage.usage import (
    CHAT_QUOTA_SETTING,
    DAY_TTL,
    QuotaDay,
    Tally,
    UsageCount,
    UsageLedger,
    parse_quota,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
SHANGHAI_4AM = QuotaDay(SHANGHAI, 4)


class Clock:
    """A settable wall clock: the ledger's ``now``."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def local(day: str, hhmm: str, zone: ZoneInfo = SHANGHAI) -> datetime:
    """An aware local time, e.g. ``local("2026-03-11", "03:59")``."""
    return datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=zone)


# -- the quota day ---------------------------------------------------------------------


def test_the_day_starts_at_the_reset_hour_in_the_zone() -> None:
    """With a reset at 04:00 Asia/Shanghai, 03:59 local belongs to the day before, 04:00
    to the new one, whatever the UTC date."""
    assert SHANGHAI_4AM.day_of(local("2026-03-11", "03:59")) == date(2026, 3, 10)
    assert SHANGHAI_4AM.day_of(local("2026-03-11", "04:00")) == date(2026, 3, 11)
    # 20:00 UTC on the 10th is 04:00 on the 11th in Shanghai
    assert SHANGHAI_4AM.day_of(datetime(2026, 3, 10, 20, 0, tzinfo=UTC)) == date(2026, 3, 11)
    assert QuotaDay().day_of(datetime(2026, 3, 10, 23, 59, tzinfo=UTC)) == date(2026, 3, 10)


def test_next_reset_and_the_time_until_it() -> None:
    """The next reset is the next local reset hour; the seconds until it count real time."""
    now = local("2026-03-11", "03:59")
    assert SHANGHAI_4AM.next_reset(now) == local("2026-03-11", "04:00")
    assert SHANGHAI_4AM.seconds_to_reset(now) == 60
    later = local("2026-03-11", "21:30")
    assert SHANGHAI_4AM.next_reset(later) == local("2026-03-12", "04:00")
    assert SHANGHAI_4AM.seconds_to_reset(later) == 6.5 * 3600


def test_a_day_with_a_clock_change_is_shorter() -> None:
    """New York moves its clocks forward on 2026-03-08: the quota day from 03:00 on the 7th
    to 03:00 on the 8th lasts 23 hours, not 24."""
    day = QuotaDay(NEW_YORK, 3)
    start = local("2026-03-07", "03:00", NEW_YORK)
    assert day.next_reset(start) == local("2026-03-08", "03:00", NEW_YORK)
    assert day.seconds_to_reset(start) == 23 * 3600


def test_days_back_and_a_bad_hour() -> None:
    """The 7 days of a report end with today's, newest first; an hour past 23 is refused."""
    days = SHANGHAI_4AM.days_back(local("2026-03-11", "03:00"), 3)
    assert days == [date(2026, 3, 10), date(2026, 3, 9), date(2026, 3, 8)]
    with pytest.raises(ValueError, match="0-23"):
        QuotaDay(UTC, 24)


def test_a_tally_reads_totals_and_breakdowns() -> None:
    """A usage hash's fields become totals and per-model, -platform and -user counts; a
    model key with a colon is kept whole."""
    tally = Tally.from_hash({
        "requests": "3", "tokens": "90",
        "requests|model|local:m-a": "2", "tokens|model|local:m-a": "60",
        "requests|user|42": "3", "tokens|user|42": "90", "other": "7",
    })  # fmt: skip
    assert tally.total == UsageCount(3, 90)
    assert tally.models == {"local:m-a": UsageCount(2, 60)}
    assert tally.users == {"42": UsageCount(3, 90)}
    assert tally.platforms == {}
    assert tally.active_users == 1


def test_stored_group_quotas_read_back() -> None:
    """A group quota is a positive decimal; empty (removed) or garbage is none."""
    assert parse_quota("500") == 500
    assert parse_quota(b"7") == 7
    assert [parse_quota(raw) for raw in ("", None, "0", "-3", "x")] == [None] * 5


# -- the ledger on each backend ----------------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    """A clock at 2026-03-11 03:59 Asia/Shanghai (still quota day 2026-03-10)."""
    return Clock(local("2026-03-11", "03:59"))


@pytest.fixture
def ledger(store: ConversationStore, clock: Clock) -> UsageLedger:
    """The store's ledger on a 04:00 Asia/Shanghai quota day, on ``clock``."""
    store.usage.day = SHANGHAI_4AM
    store.usage.now = clock
    return store.usage


async def test_a_count_lands_on_the_quota_day_of_its_time(
    ledger: UsageLedger, clock: Clock
) -> None:
    """A question at 03:59 counts for the day before, one at 04:00 for the new day; the
    user's all-time totals hold both, and today's spending only the new day's."""
    await ledger.record(user_id=7, tokens=30, model="local:m-a", platform="local")
    clock.at = local("2026-03-11", "04:00")
    await ledger.record(user_id=7, tokens=12, model="local:m-b", platform="local")
    assert (await ledger.user_day(7, date(2026, 3, 10))).total == UsageCount(1, 30)
    today = await ledger.user_day(7)
    assert today.total == UsageCount(1, 12)
    assert today.models == {"local:m-b": UsageCount(1, 12)}
    total = await ledger.user_total(7)
    assert total.total == UsageCount(2, 42)
    assert total.models == {"local:m-a": UsageCount(1, 30), "local:m-b": UsageCount(1, 12)}
    spent = await ledger.spent_today(7, chat_id=None)
    assert spent.user == UsageCount(1, 12) and spent.chat is None


async def test_groups_and_the_bot_count_by_model_platform_and_user(
    ledger: UsageLedger, clock: Clock
) -> None:
    """A group's day and the bot's day break the count down by model, platform and user;
    a private question counts for the bot but no group; the report's days are newest
    first and the old day is still among the last 7."""
    await ledger.record(user_id=1, tokens=10, model="a:x", platform="a", chat_id=-100)
    clock.at = local("2026-03-11", "05:00")
    await ledger.record(user_id=1, tokens=20, model="a:x", platform="a", chat_id=-100)
    await ledger.record(user_id=2, tokens=5, model="b:y", platform="b", chat_id=-100)
    await ledger.record(user_id=3, tokens=7, model="b:y", platform="b")  # private chat
    days = await ledger.days(-100, 7)
    assert [day for day, _ in days][:2] == [date(2026, 3, 11), date(2026, 3, 10)]
    today, yesterday = days[0][1], days[1][1]
    assert today.total == UsageCount(2, 25) and yesterday.total == UsageCount(1, 10)
    assert today.models == {"a:x": UsageCount(1, 20), "b:y": UsageCount(1, 5)}
    assert today.platforms == {"a": UsageCount(1, 20), "b": UsageCount(1, 5)}
    assert today.users == {"1": UsageCount(1, 20), "2": UsageCount(1, 5)}
    week = Tally.merged(tally for _, tally in days)
    assert week.total == UsageCount(3, 35) and week.active_users == 2
    assert week.users["1"] == UsageCount(2, 30)
    bot_today = (await ledger.days(None, 1))[0][1]
    assert bot_today.total == UsageCount(3, 32) and bot_today.active_users == 3
    spent = await ledger.spent_today(1, chat_id=-100)
    assert spent.user == UsageCount(1, 20) and spent.chat == UsageCount(2, 25)


async def test_a_day_older_than_the_report_leaves_it(ledger: UsageLedger, clock: Clock) -> None:
    """Seven quota days later the first day is no longer in the 7-day report."""
    await ledger.record(user_id=1, tokens=10, chat_id=-5)
    clock.at += timedelta(days=6)
    assert Tally.merged(t for _, t in await ledger.days(-5, 7)).total == UsageCount(1, 10)
    clock.at += timedelta(days=1)
    assert Tally.merged(t for _, t in await ledger.days(-5, 7)).total == UsageCount()


async def test_daily_keys_expire_and_totals_stay(ledger: UsageLedger) -> None:
    """Each day's hash lives DAY_TTL seconds; the user's all-time totals never expire."""
    await ledger.record(user_id=9, tokens=1, model="a:x", platform="a", chat_id=-9)
    day = "2026-03-10"
    for daily in (user_usage_key(9, day=day), chat_usage_key(-9, day=day), bot_usage_key(day=day)):
        assert DAY_TTL - 10 < await ledger.redis.ttl(daily) <= DAY_TTL
    assert await ledger.redis.ttl(user_total_key(9)) == -1


async def test_names_and_a_groups_own_quota_are_read_with_the_spending(
    ledger: UsageLedger, store: ConversationStore
) -> None:
    """The spending check stores the asker's display name (kept DAY_TTL) and reads the
    quota the group's admins set in the chat's settings; a removed quota reads as none."""
    await store.set_setting("c:-100", CHAT_QUOTA_SETTING, "500")
    spent = await ledger.spent_today(1, chat_id=-100, name="Ada Lovelace")
    assert spent.chat_quota == 500 and spent.chat == UsageCount()
    assert await ledger.names(["1", "2"]) == {"1": "Ada Lovelace"}
    await store.delete_setting("c:-100", CHAT_QUOTA_SETTING)
    assert (await ledger.spent_today(1, chat_id=-100)).chat_quota is None
    assert await ledger.chat_quota(-100) is None


async def test_the_store_counts_through_its_ledger(
    ledger: UsageLedger, store: ConversationStore
) -> None:
    """count_usage feeds the ledger (user, group, bot) and the conversation's counter, and
    get_user_usage reads the ledger's quota day."""
    await store.count_usage(
        "c:-100:u:42", user_id=42, tokens=30, model="a:x", platform="a", chat_id=-100
    )
    assert await store.get_user_usage(42) == {"requests": 1, "tokens": 30}
    assert await store.get_user_usage(42, day="2026-03-10") == {"requests": 1, "tokens": 30}
    assert await store.get_user_usage(42, day="2026-03-11") == {"requests": 0, "tokens": 0}
    assert await store.get_scope_usage("c:-100:u:42") == {"requests": 1, "tokens": 30}
    assert (await ledger.days(-100, 1))[0][1].users == {"42": UsageCount(1, 30)}
