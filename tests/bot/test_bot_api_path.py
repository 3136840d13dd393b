"""BotApiPath: every Bot API call within the flood budget, 429s waited out, network errors
and 5xx retried within a bound, a send whose outcome is unknown never repeated."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import stamina
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.app.bot_api import ATTEMPTS, RETRY_WINDOW, BotApiPath, may_repeat, outcome_unknown
from bot.scheduler.clock import FakeClock
from bot.scheduler.core import Limits, SendOutcome, SendScheduler

GROUP = -300
USER = 42
ONE_PER_3_S = Limits(per_group_per_minute=20, per_group_burst=1)  # one group send every 3 s


def bad_gateway() -> NetworkError:
    """What PTB raises for Telegram's 502 answer (``BaseRequest._request_wrapper``)."""
    return NetworkError("Bad Gateway")


def timed_out(cause: httpx.TimeoutException) -> TimedOut:
    """What PTB's ``HTTPXRequest`` raises for an httpx timeout: ``TimedOut`` from it."""
    try:
        raise TimedOut from cause
    except TimedOut as exc:
        return exc


def broken(cause: httpx.TransportError) -> NetworkError:
    """What PTB's ``HTTPXRequest`` raises for another httpx error: ``NetworkError`` from it."""
    try:
        raise NetworkError(f"httpx.{type(cause).__name__}: {cause}") from cause
    except NetworkError as exc:
        return exc


class Telegram:
    """The callback PTB hands the rate limiter: records (time, method, chat) per call,
    raises the scripted errors in turn (after ``delay`` seconds of ``clock`` when set),
    then answers like the Bot API."""

    def __init__(
        self,
        clock: FakeClock | None = None,
        errors: list[Exception] | None = None,
        delay: float = 0.0,
    ) -> None:
        self.clock = clock
        self.errors = list(errors or [])
        self.delay = delay
        self.calls: list[tuple[float, str, Any]] = []

    async def post(self, endpoint: str, data: dict[str, Any]) -> Any:
        """Answer the call (a message, or ``True`` for a method without one), or raise."""
        now = self.clock.now() if self.clock else time.monotonic()
        self.calls.append((now, endpoint, data.get("chat_id")))
        if self.delay and self.clock:
            await self.clock.sleep(self.delay)
        if self.errors:
            raise self.errors.pop(0)
        return {"message_id": len(self.calls)} if endpoint.startswith("send") else True


async def call(path: BotApiPath, telegram: Telegram, endpoint: str, **data: Any) -> Any:
    """One call of ``endpoint`` with ``data`` through ``path``, as ``ExtBot._do_post`` makes it."""
    return await path.process_request(telegram.post, (endpoint, data), {}, endpoint, data, None)


@pytest.fixture
def no_waits() -> Iterator[None]:
    """stamina's backoff does not sleep (its testing mode); the attempt count stays."""
    stamina.set_testing(True, attempts=10, cap=True)
    yield
    stamina.set_testing(False)


def test_only_calls_that_create_something_are_never_repeated_blindly() -> None:
    """Sends, copies and forwards create a message each time; edits, button answers, chat
    actions, drafts, deletes and getters do not."""
    for endpoint in (
        "sendMessage",
        "sendRichMessage",
        "sendDocument",
        "sendPhoto",
        "copyMessage",
        "forwardMessage",
    ):
        assert not may_repeat(endpoint), endpoint
    for endpoint in (
        "editMessageText",
        "answerCallbackQuery",
        "sendChatAction",
        "sendMessageDraft",
        "sendRichMessageDraft",
        "deleteMessage",
        "getChatMember",
        "setMyCommands",
    ):
        assert may_repeat(endpoint), endpoint


def test_an_outcome_is_unknown_only_once_telegram_may_have_the_request() -> None:
    """A read timeout or a connection broken after the request leaves it open; an error
    answer, a refused connection, or a timeout before the request was written does not."""
    assert outcome_unknown(timed_out(httpx.ReadTimeout("read")))
    assert outcome_unknown(broken(httpx.RemoteProtocolError("Server disconnected")))
    assert not outcome_unknown(bad_gateway())
    assert not outcome_unknown(timed_out(httpx.ConnectTimeout("connect")))
    assert not outcome_unknown(timed_out(httpx.PoolTimeout("pool")))
    assert not outcome_unknown(broken(httpx.ConnectError("refused")))


async def test_a_429_outside_the_budget_is_waited_out_then_made_again(no_waits: None) -> None:
    """A button answer refused with retry_after 5 is made again once, 5 s later, and the
    caller gets the answer."""
    clock = FakeClock()
    telegram, path = Telegram(clock, [RetryAfter(5)]), BotApiPath()
    async with SendScheduler(limits=Limits(), clock=clock) as scheduler:
        path.attach(scheduler)
        answer = await clock.run(
            call(path, telegram, "answerCallbackQuery", callback_query_id="q"), within=30
        )
    assert answer is True
    assert [at for at, _, _ in telegram.calls] == [0.0, 5.0]


async def test_a_429_longer_than_the_window_goes_back_to_the_caller(no_waits: None) -> None:
    """A retry_after beyond RETRY_WINDOW is not waited out: the caller gets the RetryAfter
    at once, after one call."""
    clock = FakeClock()
    telegram, path = Telegram(clock, [RetryAfter(int(RETRY_WINDOW) + 5)]), BotApiPath()
    async with SendScheduler(limits=Limits(), clock=clock) as scheduler:
        path.attach(scheduler)
        with pytest.raises(RetryAfter):
            await clock.run(
                call(path, telegram, "getChatMember", chat_id=GROUP, user_id=1), within=1
            )
    assert len(telegram.calls) == 1


async def test_a_502_twice_then_success_takes_a_token_per_attempt(no_waits: None) -> None:
    """A command reply in a group answered 502 twice is made a third time and delivered;
    each attempt went through the group's budget (three sends, 3 s apart)."""
    clock = FakeClock()
    telegram, path = Telegram(clock, [bad_gateway(), bad_gateway()]), BotApiPath()
    async with SendScheduler(limits=ONE_PER_3_S, clock=clock) as scheduler:
        path.attach(scheduler)
        answer = await clock.run(
            call(path, telegram, "sendMessage", chat_id=GROUP, text="h"), within=30
        )
        assert scheduler.stats.sends_by_group[GROUP] == 3
    assert answer == {"message_id": 3}
    assert [at for at, _, _ in telegram.calls] == pytest.approx([0.0, 3.0, 6.0])


async def test_network_errors_end_after_the_attempts(no_waits: None) -> None:
    """A getter answered 502 every time is tried ATTEMPTS times; the caller gets the error."""
    telegram, path = Telegram(errors=[bad_gateway()] * (ATTEMPTS + 2)), BotApiPath()
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await call(path, telegram, "getChatMember", chat_id=GROUP, user_id=1)
    assert len(telegram.calls) == ATTEMPTS


async def test_a_timed_out_send_message_is_not_made_again(no_waits: None) -> None:
    """A sendMessage whose answer did not come in time may have been delivered: the caller
    gets TimedOut after one call, never a second message."""
    telegram = Telegram(errors=[timed_out(httpx.ReadTimeout("read"))])
    with pytest.raises(TimedOut):
        await call(BotApiPath(), telegram, "sendMessage", chat_id=USER, text="notice")
    assert len(telegram.calls) == 1


async def test_a_send_message_cut_after_the_request_is_not_made_again(no_waits: None) -> None:
    """A connection broken while Telegram had the sendMessage leaves it open: one call."""
    telegram = Telegram(errors=[broken(httpx.RemoteProtocolError("Server disconnected"))])
    with pytest.raises(NetworkError):
        await call(BotApiPath(), telegram, "sendMessage", chat_id=USER, text="notice")
    assert len(telegram.calls) == 1


async def test_a_send_message_that_never_left_is_made_again(no_waits: None) -> None:
    """A connect timeout or a refused connection leaves nothing sent: the sendMessage is made
    again and delivered."""
    errors: list[Exception] = [
        timed_out(httpx.ConnectTimeout("c")),
        broken(httpx.ConnectError("r")),
    ]
    telegram = Telegram(errors=errors)
    answer = await call(BotApiPath(), telegram, "sendMessage", chat_id=USER, text="notice")
    assert answer == {"message_id": 3}


async def test_a_timed_out_edit_is_made_again(no_waits: None) -> None:
    """An editMessageText that timed out changes nothing when repeated: it is made again."""
    telegram = Telegram(errors=[timed_out(httpx.ReadTimeout("read"))])
    answer = await call(
        BotApiPath(), telegram, "editMessageText", chat_id=USER, message_id=5, text="menu"
    )
    assert answer is True
    assert [endpoint for _, endpoint, _ in telegram.calls] == ["editMessageText"] * 2


async def test_a_repeat_refused_as_already_done_is_a_success(no_waits: None) -> None:
    """After a lost answer, Telegram's "message is not modified" to the repeated edit and
    "query is too old" to the repeated button answer mean the first attempt did it."""
    for endpoint, said in (
        (
            "editMessageText",
            "Bad Request: message is not modified: specified new message "
            "content and reply markup are exactly the same",
        ),
        (
            "answerCallbackQuery",
            "Bad Request: query is too old and response timeout expired or query id is invalid",
        ),
    ):
        telegram = Telegram(errors=[timed_out(httpx.ReadTimeout("read")), BadRequest(said)])
        assert await call(BotApiPath(), telegram, endpoint, chat_id=USER) is True
        assert len(telegram.calls) == 2


async def test_telegrams_refusals_are_not_retried(no_waits: None) -> None:
    """BadRequest (a NetworkError in PTB) and Forbidden are Telegram's final word: one call,
    the error unchanged; a first-attempt "message is not modified" stays an error."""
    for error in (
        BadRequest("Bad Request: chat not found"),
        BadRequest("Bad Request: message is not modified"),
        Forbidden("Forbidden: bot was blocked by the user"),
    ):
        telegram = Telegram(errors=[error])
        with pytest.raises(type(error)):
            await call(BotApiPath(), telegram, "editMessageText", chat_id=USER, text="x")
        assert len(telegram.calls) == 1


async def test_no_retry_begins_after_the_window(no_waits: None) -> None:
    """Attempts that each take 11 s before failing: the first failure is retried, the second
    (11 s after the first) is past RETRY_WINDOW and goes back to the caller."""
    clock = FakeClock()
    telegram, path = Telegram(clock, [bad_gateway()] * 3, delay=11.0), BotApiPath()
    async with SendScheduler(limits=Limits(), clock=clock) as scheduler:
        path.attach(scheduler)
        with pytest.raises(NetworkError):
            await clock.run(
                call(path, telegram, "getChatMember", chat_id=GROUP, user_id=1), within=60
            )
    assert len(telegram.calls) == 2


async def test_a_command_reply_in_a_group_waits_for_the_groups_budget(no_waits: None) -> None:
    """With the group's token just spent by a reply stream, a command reply there goes out
    3 s later, counted in the group's sends."""
    clock = FakeClock()
    telegram, path = Telegram(clock), BotApiPath()
    async with SendScheduler(limits=ONE_PER_3_S, clock=clock) as scheduler:
        path.attach(scheduler)
        handle = scheduler.open_stream(GROUP)

        async def reply_send(frame: str) -> SendOutcome | None:
            await call(path, telegram, "sendMessage", chat_id=GROUP, text=frame)
            return None

        handle.submit("the answer", kind="first", send=reply_send)
        await clock.run(handle.close(), within=1)
        await clock.run(call(path, telegram, "sendMessage", chat_id=GROUP, text="/help"), within=10)
        assert scheduler.stats.sends_by_group[GROUP] == 2
    assert [at for at, _, _ in telegram.calls] == pytest.approx([0.0, 3.0])


async def test_a_reply_streams_own_call_is_neither_queued_nor_retried(no_waits: None) -> None:
    """Inside a scheduler send the call is made once, at once: the scheduler counted it and
    the stream decides what its 502 means."""
    clock = FakeClock()
    telegram, path = Telegram(clock, [bad_gateway()]), BotApiPath()
    errors: list[Exception] = []
    async with SendScheduler(limits=ONE_PER_3_S, clock=clock) as scheduler:
        path.attach(scheduler)
        handle = scheduler.open_stream(GROUP)

        async def reply_send(frame: str) -> SendOutcome | None:
            try:
                await call(path, telegram, "sendMessage", chat_id=GROUP, text=frame)
            except NetworkError as exc:
                errors.append(exc)
            return None

        handle.submit("the answer", kind="first", send=reply_send)
        await clock.run(handle.close(), within=1)
    assert len(telegram.calls) == 1 and len(errors) == 1


async def test_a_call_the_scheduler_gave_up_is_not_made_again(no_waits: None) -> None:
    """A chat paused past the scheduler's give-up time: an edit (repeatable) is given up
    (TimedOut) once, without a call to Telegram and without another wait."""
    clock = FakeClock()
    telegram, path = Telegram(clock), BotApiPath()
    async with SendScheduler(limits=Limits(), clock=clock, give_up_seconds=2.0) as scheduler:
        path.attach(scheduler)
        scheduler.pause_chat(USER, 100.0)
        with pytest.raises(TimedOut):
            await clock.run(
                call(path, telegram, "editMessageText", chat_id=USER, text="x"), within=10
            )
        assert clock.now() < 4.0
    assert telegram.calls == []


async def test_the_backoff_really_waits() -> None:
    """Outside stamina's testing mode, the retry after a 502 comes 0.5 to 1 s later."""
    telegram = Telegram(errors=[bad_gateway()])
    assert await call(BotApiPath(), telegram, "getChatMember", chat_id=GROUP, user_id=1)
    (first, _, _), (second, _, _) = telegram.calls
    assert 0.5 <= second - first < 1.5


async def test_without_a_scheduler_429s_wait_on_the_event_loop(no_waits: None) -> None:
    """Before the services attach the scheduler (start-up calls), a 429 on setMyCommands is
    still waited out (1 s, real time) and the call made again."""
    telegram = Telegram(errors=[RetryAfter(1)])
    started = time.monotonic()
    assert await asyncio.wait_for(call(BotApiPath(), telegram, "setMyCommands"), 5) is True
    assert time.monotonic() - started >= 1.0 and len(telegram.calls) == 2
