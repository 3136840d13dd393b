"""An empty answer (nothing, whitespace, only reasoning, only an empty code block) ends the
turn EMPTY with the empty_answer notice and is not stored."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from bot.conversation.turn import Outcome, TurnInput, is_empty_answer
from providers.types import AnswerDelta, Chunk, Finish, ReasoningDelta
from storage import ConversationStore, StoredMessage
from tests.bot.test_turn import FakeClient, RecordingSink, Script, answer, service
from tests.bot.turn_fixtures import memory_store, no_provider_waits

pytestmark = pytest.mark.timeout(20)


@pytest.fixture(autouse=True)
def no_waits() -> Iterator[None]:
    """Provider retries do not sleep in tests (stamina's testing mode)."""
    with no_provider_waits():
        yield


@pytest.fixture
async def store() -> AsyncIterator[ConversationStore]:
    """An embedded store."""
    async with memory_store() as opened:
        yield opened


EMPTY_ANSWERS: dict[str, list[Chunk]] = {
    "nothing": [Finish("stop")],
    "whitespace": [AnswerDelta("  \n"), AnswerDelta("\t "), Finish("stop")],
    "only reasoning": [ReasoningDelta("let me think"), Finish("stop")],
    "empty code block": [AnswerDelta("```\n```"), Finish("stop")],
    "empty fenced block in pieces": [
        AnswerDelta("``"),
        AnswerDelta("`python\n\n"),
        AnswerDelta("```\n"),
        Finish("stop"),
    ],
    "cut by the length limit while reasoning": [ReasoningDelta("long…"), Finish("length")],
}


@pytest.mark.parametrize("chunks", EMPTY_ANSWERS.values(), ids=EMPTY_ANSWERS.keys())
async def test_empty_answer_gets_the_notice_and_is_not_stored(
    store: ConversationStore, chunks: list[Chunk]
) -> None:
    """The sink finishes once with an empty answer and the empty_answer notice; the history
    stays as it was."""
    client = FakeClient([answer("first answer"), Script(chunks)])
    conversations = service(store, client)
    await conversations.run_turn(TurnInput("u:1", 1, "first"), RecordingSink())
    before = await store.load_history("u:1")
    sink = RecordingSink()
    outcome = await conversations.run_turn(TurnInput("u:1", 1, "second"), sink)
    assert outcome is Outcome.EMPTY
    assert sink.events == ["begin", "finish"] and sink.outcome is Outcome.EMPTY
    assert sink.final is not None
    assert sink.final.answer == "" and sink.final.notice == "empty_answer"
    assert await store.load_history("u:1") == before
    assert len(before) == 2


async def test_retry_that_answers_empty_keeps_the_old_answer(store: ConversationStore) -> None:
    """/retry whose new answer is empty puts the previous answer back."""
    client = FakeClient([answer("old"), Script([Finish("stop")])])
    conversations = service(store, client)
    await conversations.run_turn(TurnInput("u:1", 1, "q"), RecordingSink())
    sink = RecordingSink()
    outcome = await conversations.retry_last("u:1", 1, sink, load_images=None)
    assert outcome is Outcome.EMPTY and sink.final is not None
    assert sink.final.notice == "empty_answer"
    assert await store.load_history("u:1") == [
        StoredMessage("user", "q"),
        StoredMessage("assistant", "old"),
    ]


@pytest.mark.parametrize(
    ("text", "empty"),
    [
        ("", True),
        (" \n\t", True),
        ("```\n```", True),
        ("~~~\n\n~~~", True),
        ("```js\n \n```\n\n```\n```", True),
        ("0", False),
        ("```\nprint(1)\n```", False),
        ("```\n```\nafter", False),
        ("`inline`", False),
    ],
)
def test_is_empty_answer(text: str, empty: bool) -> None:
    """Whitespace and empty fenced blocks are empty; any other character is an answer."""
    assert is_empty_answer(text) is empty
