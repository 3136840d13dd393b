"""The per-user question pace, on real Redis and on the embedded backend."""

from __future__ import annotations

import pytest

from storage import ConversationStore, QuestionPace
from storage.keys import PACE_PREFIX

pytestmark = pytest.mark.timeout(10)


async def test_the_fourth_question_in_a_minute_waits(store: ConversationStore) -> None:
    """3 a minute: three go, the fourth and fifth are told to wait and are not counted;
    another user is not affected; the counts live in the store's Redis."""
    pace = QuestionPace(store.redis, per_minute=3)
    assert [await pace.take(42) for _ in range(3)] == [0.0, 0.0, 0.0]
    fourth, fifth = await pace.take(42), await pace.take(42)
    assert 55 < fourth <= 60 and 55 < fifth <= 60
    assert await pace.take(43) == 0.0
    keys = [k async for k in store.redis.scan_iter(match=f"{PACE_PREFIX}*")]
    assert len(keys) == 2, keys


def test_a_pace_below_one_is_refused(store: ConversationStore) -> None:
    """per_minute must be at least 1."""
    with pytest.raises(ValueError, match="per_minute"):
        QuestionPace(store.redis, per_minute=0)
