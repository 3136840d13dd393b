"""A restart, piece by piece: a turn ended by a shutdown, the record of a turn in flight,
what the next start does with it, and the update processor a shutdown closes."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator, Iterator
from typing import cast

import pytest
import stamina
from telegram import Bot, Chat, Message, Update, User

from bot.app.inflight import InflightTracker, recover_interrupted
from bot.app.shutdown import DrainingUpdateProcessor
from bot.conversation.restart import RESTART_MARK, RESTART_PLACEHOLDER
from bot.conversation.turn import Outcome, TurnInput
from bot.reply.chain import MessageChain
from bot.reply.stream import TelegramReply
from bot.scheduler.clock import MonotonicClock
from bot.scheduler.core import Limits, SendScheduler
from providers.types import AnswerDelta
from storage import ConversationStore, StoredMessage, open_store
from storage.inflight import InflightTurns
from storage.keys import key
from tests.bot.test_turn import FakeClient, RecordingSink, Script, answer, service

pytestmark = pytest.mark.timeout(20)


@pytest.fixture(autouse=True)
def no_waits() -> Iterator[None]:
    """Provider retries do not sleep in tests (stamina's testing mode)."""
    stamina.set_testing(True, attempts=10, cap=True)
    yield
    stamina.set_testing(False)


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[ConversationStore]:
    """A store on a clean real Redis."""
    opened, _ = await open_store(redis_url, max_turns=20, max_tokens=10000, ttl_seconds=600)
    yield opened
    await opened.aclose()


# ----- the turn -----------------------------------------------------------------------


async def test_end_for_restart_ends_a_streaming_answer_marked_and_stored(
    store: ConversationStore,
) -> None:
    """The stream is closed, the sink shows the restart mark, and the partial answer is
    stored as interrupted."""
    client = FakeClient([Script([AnswerDelta("partial ")], hold=asyncio.Event())])
    turns, sink = service(store, client), RecordingSink()
    running = asyncio.create_task(turns.run_turn(TurnInput("u:1", 1, "long?"), sink))
    await sink.first_update.wait()
    assert turns.end_for_restart() == 1
    assert await running is Outcome.INTERRUPTED
    assert sink.final is not None and sink.final.notice == RESTART_MARK
    assert client.closed_streams == 1
    assert await store.load_history("u:1") == [
        StoredMessage("user", "long?"),
        StoredMessage("assistant", "partial ", interrupted=True),
    ]


async def test_a_turn_after_the_end_asks_nothing_and_retry_redoes_it(
    store: ConversationStore,
) -> None:
    """A turn that reaches its answer after ``end_for_restart`` sends no request, shows the
    mark and stores the placeholder; after the restart /retry asks that question again."""
    client = FakeClient([answer("the real answer")])
    ending = service(store, client)
    ending.end_for_restart()
    sink = RecordingSink()
    assert await ending.run_turn(TurnInput("u:2", 2, "asked late"), sink) is Outcome.INTERRUPTED
    assert client.requests == [] and sink.final is not None
    assert sink.final.notice == RESTART_MARK
    assert await store.load_history("u:2") == [
        StoredMessage("user", "asked late"),
        StoredMessage("assistant", RESTART_PLACEHOLDER, interrupted=True),
    ]
    again = RecordingSink()
    outcome = await service(store, client).retry_last("u:2", 2, again, load_images=None)
    assert outcome is Outcome.COMPLETED
    assert client.requests[0].messages[-1].content == "asked late"
    assert await store.load_history("u:2") == [
        StoredMessage("user", "asked late"),
        StoredMessage("assistant", "the real answer"),
    ]


# ----- the record of a turn in flight -------------------------------------------------


def telegram_reply(scheduler: SendScheduler) -> TelegramReply:
    """A reply in topic 7 of chat -100, answering message 55, in Chinese; never sends."""
    chain = MessageChain(cast(Bot, None), -100, reply_to=55, thread_id=7)
    return TelegramReply(chain, scheduler.open_stream(-100), lang="zh")


@pytest.fixture
def scheduler() -> SendScheduler:
    """A scheduler that is never started (the replies here send nothing)."""
    return SendScheduler(limits=Limits(), clock=MonotonicClock())


async def test_a_turn_is_recorded_while_it_runs_and_removed_when_it_ends(
    store: ConversationStore, scheduler: SendScheduler
) -> None:
    """The record says where to tell the user and what was asked; the first message's id is
    added when it is sent; the record goes when the block ends."""
    turns = InflightTurns(store.redis)
    tracker, sink = InflightTracker(turns), telegram_reply(scheduler)
    turn = TurnInput("c:-100:t:7", 3, "what?", image_file_ids=("f1",))
    async with tracker.track(turn, sink):
        (record,) = await turns.all()
        assert (record.scope, record.chat_id, record.thread_id, record.lang) == (
            "c:-100:t:7",
            -100,
            7,
            "zh",
        )
        assert (record.reply_to, record.message_id) == (55, None)
        assert record.question == StoredMessage("user", "what?", image_file_ids=("f1",))
        assert sink.on_first_message is not None
        sink.on_first_message(901)
        await asyncio.sleep(0.05)
        assert [r.message_id for r in await turns.all()] == [901]
    assert await turns.all() == []
    assert sink.on_first_message is None


async def test_a_cancelled_turn_keeps_its_record_and_other_sinks_make_none(
    store: ConversationStore, scheduler: SendScheduler
) -> None:
    """A block cancelled (a shutdown gave up on the turn) leaves the record for the next
    start; a sink that is not a Telegram reply is not recorded."""
    turns = InflightTurns(store.redis)
    tracker = InflightTracker(turns)

    async def cut_short() -> None:
        async with tracker.track(TurnInput("u:4", 4, "q"), telegram_reply(scheduler)):
            await asyncio.Event().wait()

    task = asyncio.create_task(cut_short())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [r.scope for r in await turns.all()] == ["u:4"]
    async with tracker.track(TurnInput("u:5", 5, "q"), RecordingSink()):
        assert [r.scope for r in await turns.all()] == ["u:4"]


async def test_the_next_start_frees_the_lock_and_keeps_the_question_once(
    store: ConversationStore, scheduler: SendScheduler
) -> None:
    """Recovery deletes the lock of each record, stores its question with the placeholder
    (not again when the history already ends with it), and keeps the record, without its
    question, for the notice."""
    turns = InflightTurns(store.redis)
    tracker = InflightTracker(turns)
    await store.append_exchange(
        "c:-100:t:7", StoredMessage("user", "done"), StoredMessage("assistant", "yes")
    )
    lost, done = TurnInput("u:6", 6, "lost?"), TurnInput("c:-100:t:7", 3, "done")

    async def killed(turn: TurnInput) -> None:
        async with tracker.track(turn, telegram_reply(scheduler)):
            await store.redis.set(key(turn.scope, "lock"), "dead process", px=30000)
            raise asyncio.CancelledError  # as if the process had died here

    for turn in (lost, done):
        with pytest.raises(asyncio.CancelledError):
            await killed(turn)
    records = await recover_interrupted(store, turns)
    assert sorted(r.scope for r in records) == ["c:-100:t:7", "u:6"]
    for scope in ("u:6", "c:-100:t:7"):
        assert await store.redis.exists(key(scope, "lock")) == 0
    assert await store.load_history("u:6") == [
        StoredMessage("user", "lost?"),
        StoredMessage("assistant", RESTART_PLACEHOLDER, interrupted=True),
    ]
    assert len(await store.load_history("c:-100:t:7")) == 2
    assert [r.question for r in await turns.all()] == [None, None]
    await recover_interrupted(store, turns)  # a second start stores nothing more
    assert len(await store.load_history("u:6")) == 2


# ----- the update processor -----------------------------------------------------------


def message_update(update_id: int, user_id: int) -> Update:
    """A private text message of ``user_id``."""
    user = User(user_id, "U", is_bot=False)
    message = Message(
        update_id,
        datetime.datetime.now(datetime.UTC),
        Chat(user_id, Chat.PRIVATE),
        from_user=user,
        text="hi",
    )
    return Update(update_id, message=message)


async def test_a_closed_processor_sets_aside_what_has_not_begun() -> None:
    """Closing lets the running update go on; the one waiting behind it in its conversation,
    and any that arrives later, are set aside without running."""
    processor = DrainingUpdateProcessor(8)
    release, ran = asyncio.Event(), []

    async def work(name: str, *, hold: bool = False) -> None:
        ran.append(name)
        if hold:
            await release.wait()

    first = asyncio.create_task(
        processor.process_update(message_update(1, 10), work("first", hold=True))
    )
    await asyncio.sleep(0.01)
    behind = asyncio.create_task(processor.process_update(message_update(2, 10), work("behind")))
    await asyncio.sleep(0.01)
    assert processor.running == 1
    assert processor.close() == 1
    await processor.process_update(message_update(3, 11), work("late"))
    assert await processor.wait_idle(0.05) is False
    release.set()
    assert await processor.wait_idle(1.0) is True
    await first
    with pytest.raises(asyncio.CancelledError):
        await behind
    assert ran == ["first"]
    assert [cast(Update, u).update_id for u in processor.take_set_aside()] == [2, 3]
    assert processor.take_set_aside() == []


async def test_wait_idle_ends_early_on_hurry_and_cancel_running_stops_the_rest() -> None:
    """A second signal (``hurry``) ends the wait before its time; ``cancel_running``
    cancels what still runs, which is then not set aside (it had begun)."""
    processor = DrainingUpdateProcessor(8)
    hurry = asyncio.Event()
    task = asyncio.create_task(
        processor.process_update(message_update(1, 10), asyncio.Event().wait())
    )
    await asyncio.sleep(0.01)
    asyncio.get_running_loop().call_later(0.05, hurry.set)
    started = asyncio.get_running_loop().time()
    assert await processor.wait_idle(5.0, hurry) is False
    assert asyncio.get_running_loop().time() - started < 1.0
    assert processor.cancel_running() == 1
    with pytest.raises(asyncio.CancelledError):
        await task
    assert processor.running == 0 and processor.take_set_aside() == []
