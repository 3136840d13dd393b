"""The daily quotas: which one refuses a question and when it may be asked again, a
group's own quota under the operator's, the token estimate, and the refusal's text."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.conversation.quota import (
    QuotaAboveOperator,
    QuotaLimits,
    Quotas,
    Refusal,
    estimated_tokens,
    hours_and_minutes,
)
from bot.texts import t
from handlers.usage_texts import refusal_text
from providers.types import ChatMessage, ImagePart
from storage import IMAGE_TOKENS, ConversationStore, open_store
from storage.usage import QuotaDay

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 10, 21, 30, tzinfo=SHANGHAI)  # 6 h 30 min before 04:00


@pytest.fixture
async def store() -> AsyncIterator[ConversationStore]:
    """An embedded store whose quota day starts at 04:00 Asia/Shanghai, at :data:`NOW`."""
    opened, _ = await open_store("memory://", max_turns=5, max_tokens=1000, ttl_seconds=3600)
    opened.usage.day = QuotaDay(SHANGHAI, 4)
    opened.usage.now = lambda: NOW
    yield opened
    await opened.aclose()


def test_hours_and_minutes_round_up() -> None:
    """A wait is shown in whole minutes, rounded up, so "0 min" never means "not yet"."""
    assert hours_and_minutes(61) == (0, 2)
    assert hours_and_minutes(6.5 * 3600) == (6, 30)
    assert hours_and_minutes(0) == (0, 0)


def test_the_estimate_counts_what_was_sent_and_received() -> None:
    """Without reported usage: a token per 4 characters (or CJK character) of every message,
    the answer and the reasoning, and the flat image charge per image."""
    image = ImagePart(b"\x89PNG")
    messages = [ChatMessage("system", "abcd" * 3), ChatMessage("user", "你好", images=(image,))]
    assert estimated_tokens(messages, answer="abcdefgh", reasoning="") == 3 + 2 + IMAGE_TOKENS + 2


def test_a_groups_own_quota_never_passes_the_operators(store: ConversationStore) -> None:
    """The quota in force is the group's own under the operator's, either alone if the
    other is unset."""
    quotas = Quotas(store, QuotaLimits(chat_daily_tokens=1000))
    assert [quotas.chat_limit(own) for own in (None, 300, 5000)] == [1000, 300, 1000]
    unlimited = Quotas(store, QuotaLimits())
    assert [unlimited.chat_limit(own) for own in (None, 300)] == [0, 300]


async def test_each_quota_refuses_with_the_next_reset(store: ConversationStore) -> None:
    """Questions, then the user's tokens, then the group's tokens refuse once reached, each
    naming the quota and the next 04:00 local; under them the question is admitted."""
    quotas = Quotas(
        store, QuotaLimits(user_daily_turns=3, user_daily_tokens=100, chat_daily_tokens=150)
    )
    assert await quotas.admit(1, chat_id=-5) is None
    await store.usage.record(user_id=1, tokens=99, chat_id=-5)
    await store.usage.record(user_id=2, tokens=50, chat_id=-5)
    assert await quotas.admit(1, chat_id=-5) is None  # 99 < 100, 149 < 150
    await store.usage.record(user_id=1, tokens=1, chat_id=-5)
    refusal = await quotas.admit(1, chat_id=-5)
    assert refusal == Refusal(
        "user_tokens", 100, datetime(2026, 3, 11, 4, tzinfo=SHANGHAI), 6.5 * 3600
    )
    assert (await quotas.admit(2, chat_id=-5)) == Refusal(
        "chat_tokens", 150, refusal.resets_at, refusal.seconds
    )
    assert await quotas.admit(2, chat_id=None) is None  # the group's quota is the group's
    await store.usage.record(user_id=1, tokens=0)
    assert (await quotas.admit(1, chat_id=None)) == Refusal(
        "turns", 3, refusal.resets_at, refusal.seconds
    )


async def test_admins_lower_the_group_quota_within_the_operators(
    store: ConversationStore,
) -> None:
    """A group's own quota applies once set, is refused above the operator's, and removing
    it brings back the operator's."""
    quotas = Quotas(store, QuotaLimits(chat_daily_tokens=1000))
    assert (await quotas.set_chat_quota(-5, 40)).limit == 40
    await store.usage.record(user_id=1, tokens=40, chat_id=-5)
    assert (await quotas.admit(1, chat_id=-5)) is not None
    with pytest.raises(QuotaAboveOperator) as raised:
        await quotas.set_chat_quota(-5, 1001)
    assert raised.value.limit == 1000
    removed = await quotas.set_chat_quota(-5, None)
    assert (removed.limit, removed.own, removed.used.tokens) == (1000, None, 40)
    assert await quotas.admit(1, chat_id=-5) is None


def test_the_refusal_says_when_in_both_languages() -> None:
    """The refusal names the quota, the local time of the reset with its zone, and the wait."""
    refusal = Refusal("chat_tokens", 150, datetime(2026, 3, 11, 4, tzinfo=SHANGHAI), 6.5 * 3600)
    assert refusal_text(refusal, "en") == (
        "This group has used today's quota of 150 tokens.\n"
        "You can ask again at 04:00 Asia/Shanghai, in 6 h 30 min."
    )
    assert refusal_text(refusal, "zh") == (
        t("token_limit_chat", "zh", limit=150)
        + "\n"
        + "你可以在 04:00 Asia/Shanghai 之后再次提问，还有 6 小时 30 分钟。"
    )
