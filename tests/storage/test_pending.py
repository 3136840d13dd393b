"""Pending questions (storage.pending): kept under an opaque token for a day, claimed once,
by their asker only (a real Redis and the embedded backend)."""

from __future__ import annotations

import re

import pytest

from storage import ConversationStore
from storage.keys import pending_question_key
from storage.pending import PENDING_TTL, Claim, PendingQuestion, PendingQuestions

pytestmark = pytest.mark.timeout(20)

ASKER, OTHER = 987654321, 987654322
QUESTION = PendingQuestion(
    user_id=ASKER,
    chat_id=-100500,
    chat_title="Linear algebra 线性代数",
    message_id=77,
    scope="c:-100500:u:987654321",
    text="What is an eigenvalue?",
    quoted="[Quoted from Ann]\n> see page 3",
    context="The question below was asked under this post",
    image_file_ids=("photo-1",),
    asked_at=1_700_000_000.5,
)


def test_a_question_reads_back_as_written() -> None:
    """Every field of a pending question survives its JSON form."""
    assert PendingQuestion.from_json(QUESTION.to_json()) == QUESTION


@pytest.mark.parametrize(
    "raw",
    ["[]", '{"user": "41"}', '{"user": 41, "chat": -1, "message": 1, "title": "t", "scope": ""}'],
)
def test_a_malformed_record_is_refused(raw: str) -> None:
    """A record without a valid user, chat, message or scope is a ValueError, not a guess."""
    with pytest.raises(ValueError, match="pending question"):
        PendingQuestion.from_json(raw)


async def test_the_asker_claims_a_question_once(store: ConversationStore) -> None:
    """The asker gets the question back once; a second claim finds it gone."""
    pending = PendingQuestions(store.redis)
    token = await pending.put(QUESTION)
    assert await pending.claim(token, ASKER) == QUESTION
    assert await pending.claim(token, ASKER) is Claim.GONE


async def test_someone_else_cannot_claim_it_and_it_stays(store: ConversationStore) -> None:
    """Another user's claim is refused as not theirs and leaves the question to its asker."""
    pending = PendingQuestions(store.redis)
    token = await pending.put(QUESTION)
    assert await pending.claim(token, OTHER) is Claim.NOT_YOURS
    assert await pending.claim(token, ASKER) == QUESTION


async def test_a_token_is_opaque_random_and_fits_a_deep_link(store: ConversationStore) -> None:
    """Tokens differ per question, hold no user id, and use only the 64 characters of
    ``A-Z a-z 0-9 _ -`` a start parameter may (prefix included)."""
    pending = PendingQuestions(store.redis)
    tokens = {await pending.put(QUESTION) for _ in range(5)}
    assert len(tokens) == 5
    for token in tokens:
        assert re.fullmatch(r"[A-Za-z0-9_-]{20,60}", token)
        assert str(ASKER) not in token


async def test_a_question_waits_a_day(store: ConversationStore) -> None:
    """The record's TTL is PENDING_TTL (24 h) from when it was put."""
    pending = PendingQuestions(store.redis)
    token = await pending.put(QUESTION)
    ttl = await store.redis.ttl(pending_question_key(token))
    assert PENDING_TTL - 5 <= ttl <= PENDING_TTL == 24 * 3600


async def test_an_unknown_or_unreadable_token_is_gone(store: ConversationStore) -> None:
    """A token never put, and one whose record does not parse (then removed), are gone."""
    pending = PendingQuestions(store.redis)
    assert await pending.claim("never-put-token-abcdef", ASKER) is Claim.GONE
    await store.redis.set(pending_question_key("broken-token-abcdefgh"), "{not json")
    assert await pending.claim("broken-token-abcdefgh", ASKER) is Claim.GONE
    assert await store.redis.exists(pending_question_key("broken-token-abcdefgh")) == 0
