"""The conversation turn, independent of Telegram: storing, retrying, stopping, trimming."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest

from bot.conversation.turn import ConversationService, Outcome, StreamState, TurnInput
from providers.catalogue import Catalogue, ModelInfo, PlatformInfo
from providers.errors import (
    ContentBlockedError,
    ContextTooLongError,
    ProviderError,
    TruncatedStream,
)
from providers.types import AnswerDelta, ChatRequest, Chunk, Finish, ReasoningDelta
from storage import ConversationStore, StoredMessage
from tests.bot.turn_fixtures import memory_store, no_provider_waits

pytestmark = pytest.mark.timeout(20)

MODEL = ModelInfo(key="fake:m", platform="fake", model="m", display_name="M")


@dataclass
class Script:
    """One scripted provider answer: chunks, then optionally an error, optionally a pause."""

    chunks: list[Chunk]
    error: ProviderError | None = None
    hold: asyncio.Event | None = None


@dataclass
class FakeClient:
    """A ChatClient that plays scripts and records requests (the provider edge, faked)."""

    scripts: list[Script]
    name: str = "fake"
    requests: list[ChatRequest] = field(default_factory=list)
    closed_streams: int = 0

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        self.requests.append(request)
        script = self.scripts.pop(0)
        try:
            for chunk in script.chunks:
                yield chunk
                await asyncio.sleep(0)
            if script.hold is not None:
                await script.hold.wait()
            if script.error is not None:
                raise script.error
        finally:
            self.closed_streams += 1

    async def aclose(self) -> None:
        return None


@dataclass
class RecordingSink:
    """A ReplySink that records what the turn told it."""

    events: list[str] = field(default_factory=list)
    updates: int = 0
    final: StreamState | None = None
    outcome: Outcome | None = None
    error: ProviderError | None = None
    first_update: asyncio.Event = field(default_factory=asyncio.Event)

    async def begin(self) -> None:
        self.events.append("begin")

    def update(self, state: StreamState) -> None:
        self.updates += 1
        self.first_update.set()

    async def restart(self, state: StreamState) -> None:
        self.events.append("restart")

    async def finish(self, state: StreamState, outcome: Outcome) -> None:
        self.events.append("finish")
        self.final, self.outcome = state, outcome

    async def fail(self, state: StreamState, error: ProviderError) -> None:
        self.events.append("fail")
        self.final, self.error = state, error

    async def abandon(self) -> None:
        self.events.append("abandon")


def answer(*texts: str) -> Script:
    """A complete answer made of ``texts``."""
    return Script([AnswerDelta(text) for text in texts] + [Finish("stop")])


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


def service(store: ConversationStore, client: FakeClient) -> ConversationService:
    """A service with one platform, ``fake``, and the system prompt "sys"."""
    catalogue = Catalogue(
        [PlatformInfo("fake", "Fake", "openai", "http://fake")], [MODEL], enabled=["fake"]
    )
    return ConversationService(
        store=store,
        clients={"fake": client},
        catalogue=catalogue,
        default_model=MODEL,
        system_prompt="sys",
    )


async def test_completed_turn_stores_exchange_without_reasoning(store: ConversationStore) -> None:
    """A completed answer is stored with its question; the reasoning is not."""
    client = FakeClient([Script([ReasoningDelta("hmm"), AnswerDelta("4"), Finish("stop")])])
    sink = RecordingSink()
    outcome = await service(store, client).run_turn(TurnInput("u:1", 1, "2+2?"), sink)
    assert outcome is Outcome.COMPLETED
    assert sink.events == ["begin", "finish"] and sink.final is not None
    assert sink.final.reasoning == "hmm" and sink.final.answer == "4"
    assert await store.load_history("u:1") == [
        StoredMessage("user", "2+2?"),
        StoredMessage("assistant", "4"),
    ]


async def test_broken_stream_after_text_is_retried_once(store: ConversationStore) -> None:
    """A stream that breaks after text was shown restarts once and the new answer replaces it."""
    broken = Script([AnswerDelta("partial")], error=TruncatedStream("cut"))
    client = FakeClient([broken, answer("whole ", "answer")])
    sink = RecordingSink()
    outcome = await service(store, client).run_turn(TurnInput("u:1", 1, "q"), sink)
    assert outcome is Outcome.COMPLETED and sink.events == ["begin", "restart", "finish"]
    assert sink.final is not None and sink.final.answer == "whole answer"
    assert (await store.load_history("u:1"))[1] == StoredMessage("assistant", "whole answer")


async def test_stream_broken_twice_keeps_partial_marked(store: ConversationStore) -> None:
    """When the retry breaks too, the partial text is kept, marked interrupted, and stored so."""
    client = FakeClient(
        [
            Script([AnswerDelta("one")], error=TruncatedStream("cut")),
            Script([AnswerDelta("two")], error=TruncatedStream("cut")),
        ]
    )
    sink = RecordingSink()
    outcome = await service(store, client).run_turn(TurnInput("u:1", 1, "q"), sink)
    assert outcome is Outcome.INTERRUPTED
    assert (await store.load_history("u:1"))[1] == StoredMessage(
        "assistant", "two", interrupted=True
    )


async def test_failure_before_text_is_not_stored(store: ConversationStore) -> None:
    """A failure with nothing shown goes to the sink's fail and stores nothing."""
    client = FakeClient([Script([], error=ContextTooLongError("long", status=400))])
    sink = RecordingSink()
    outcome = await service(store, client).run_turn(TurnInput("u:1", 1, "q"), sink)
    assert outcome is Outcome.FAILED and isinstance(sink.error, ContextTooLongError)
    assert await store.load_history("u:1") == []


async def test_context_too_long_drops_older_half_and_says_so(store: ConversationStore) -> None:
    """Context too long: the turn retries once with the newer half of history and a notice."""
    for n in range(4):
        await store.append_exchange(
            "u:1", StoredMessage("user", f"q{n}"), StoredMessage("assistant", f"a{n}")
        )
    client = FakeClient(
        [Script([], error=ContextTooLongError("long", status=400)), answer("short enough")]
    )
    sink = RecordingSink()
    outcome = await service(store, client).run_turn(TurnInput("u:1", 1, "q4"), sink)
    assert outcome is Outcome.COMPLETED
    assert sink.final is not None and sink.final.notice == "older_dropped"
    sent = [m.content for m in client.requests[1].messages]
    assert sent == ["sys", "q2", "a2", "q3", "a3", "q4"]


async def test_stop_closes_stream_and_stores_partial(store: ConversationStore) -> None:
    """stop() ends the turn at once, closes the provider stream, and stores the partial answer."""
    hold = asyncio.Event()
    client = FakeClient([Script([AnswerDelta("so far")], hold=hold)])
    sink = RecordingSink()
    conversations = service(store, client)
    turn = asyncio.create_task(conversations.run_turn(TurnInput("u:1", 1, "q"), sink))
    await sink.first_update.wait()
    assert conversations.stop("u:1"), "a reply is being written"
    assert await asyncio.wait_for(turn, 5) is Outcome.STOPPED
    assert client.closed_streams == 1 and not hold.is_set()
    assert (await store.load_history("u:1"))[1] == StoredMessage(
        "assistant", "so far", interrupted=True
    )
    assert not conversations.stop("u:1"), "nothing left to stop"


async def test_turns_of_one_conversation_run_one_at_a_time(store: ConversationStore) -> None:
    """A second turn waits for the first and sees its exchange in the history."""
    hold = asyncio.Event()
    client = FakeClient(
        [Script([AnswerDelta("first"), Finish("stop")], hold=hold), answer("second")]
    )
    conversations = service(store, client)
    first = asyncio.create_task(conversations.run_turn(TurnInput("u:1", 1, "one"), RecordingSink()))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(
        conversations.run_turn(TurnInput("u:1", 1, "two"), RecordingSink())
    )
    await asyncio.sleep(0.05)
    assert len(client.requests) == 1, "the second turn waits for the lock"
    hold.set()
    await asyncio.wait_for(asyncio.gather(first, second), 5)
    assert [m.content for m in client.requests[1].messages] == ["sys", "one", "first", "two"]


async def test_retry_last_replaces_the_answer(store: ConversationStore) -> None:
    """retry_last asks the same question again and replaces the stored answer."""
    await store.append_exchange(
        "u:1", StoredMessage("user", "q"), StoredMessage("assistant", "old")
    )
    client = FakeClient([answer("new")])
    outcome = await service(store, client).retry_last("u:1", 1, RecordingSink(), load_images=None)
    assert outcome is Outcome.COMPLETED
    assert [m.content for m in client.requests[0].messages] == ["sys", "q"]
    assert await store.load_history("u:1") == [
        StoredMessage("user", "q"),
        StoredMessage("assistant", "new"),
    ]


async def test_retry_last_that_fails_keeps_the_old_answer(store: ConversationStore) -> None:
    """A failed /retry leaves the previous exchange in place."""
    await store.append_exchange(
        "u:1", StoredMessage("user", "q"), StoredMessage("assistant", "old")
    )
    client = FakeClient([Script([], error=ContextTooLongError("x", status=400))])
    outcome = await service(store, client).retry_last("u:1", 1, RecordingSink(), load_images=None)
    assert outcome is Outcome.FAILED
    assert (await store.load_history("u:1"))[1].content == "old"


async def test_model_choice_falls_back_when_disabled(store: ConversationStore) -> None:
    """A stored model that is no longer enabled falls back to the default."""
    conversations = service(store, FakeClient([]))
    await store.set_model("u:1", "gone:model")
    assert await conversations.current_model("u:1") == MODEL
    assert await conversations.set_model("u:1", "gone:model") is None
    assert await conversations.set_model("u:1", "fake:m") == MODEL


async def test_sensitive_finish_without_answer_is_a_block(store: ConversationStore) -> None:
    """A stream that ends with finish_reason "sensitive" and no text is reported as blocked."""
    client = FakeClient([Script([Finish("sensitive")])])
    sink = RecordingSink()
    outcome = await service(store, client).run_turn(TurnInput("u:1", 1, "q"), sink)
    assert outcome is Outcome.FAILED and isinstance(sink.error, ContentBlockedError)
    assert await store.load_history("u:1") == []


async def test_length_finish_adds_a_notice(store: ConversationStore) -> None:
    """An answer cut by the length limit is kept and the user is told."""
    client = FakeClient([Script([AnswerDelta("long…"), Finish("length")])])
    sink = RecordingSink()
    assert await service(store, client).run_turn(TurnInput("u:1", 1, "q"), sink) is (
        Outcome.COMPLETED
    )
    assert sink.final is not None and sink.final.notice == "answer_cut_length"
