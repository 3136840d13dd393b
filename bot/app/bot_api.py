"""One path for every Bot API call: the flood budget, Telegram's ``retry_after``, bounded retries.

:class:`BotApiPath` is the bot's ``rate_limiter`` (PTB ``telegram.ext.BaseRateLimiter``:
``ExtBot._do_post`` hands it every Bot API call but ``getUpdates``, whose long poll
therefore goes straight to Telegram). Command replies, menus, button answers, refusals
and error notices all pass through it, so none of them reaches Telegram unbudgeted or is
lost to one 502. What it does with a call:

- **Reply streams' own calls** (made inside a send the
  :class:`~bot.scheduler.core.SendScheduler` launched, :data:`bot.scheduler.core.IN_SEND`)
  go straight through: the scheduler counted them already, and the stream decides about
  their errors (``RetryAfter``, network errors, an unconfirmed ``sendMessage``).
- **The flood budget**: a call into a chat (:func:`bot.reply.sends.chat_of`: ``send*``,
  ``edit*``, ``copy*``, ``forward*`` with a numeric ``chat_id``, ``sendChatAction``
  included) takes a token from that chat's, its group's and the bot-wide budget of the
  send scheduler (one scheduled send, :class:`bot.reply.sends.ScheduledSends`, which this
  class extends); a 429 on it pauses the chat and lowers the level blamed, as a reply's
  does, and the call is made again (:data:`bot.reply.sends.MAX_RETRIES` times).
  ``answerCallbackQuery`` takes no token: Telegram's flood limits count messages into a
  chat (Bot FAQ "My bot is hitting limits": 1 message a second in a chat, 20 a minute in
  a group, 30 a second overall), and a button answer is a toast that puts nothing into
  the chat. Neither do getters (``getChatMember``, ``getFile``, …), ``deleteMessage``,
  ``leaveChat`` or ``setMyCommands``.
- **``retry_after`` of calls outside the budget**: a 429 is waited out (Bot API
  ``ResponseParameters.retry_after``: "the number of seconds left to wait before the
  request can be repeated") and the call made again, at most
  :data:`bot.reply.sends.MAX_RETRIES` times, and only within :data:`RETRY_WINDOW`.
- **Network errors and 5xx** (PTB raises ``NetworkError`` for an error status other than
  400, 401, 403, 404 and 409, and for a broken connection; ``TimedOut`` for a timeout):
  retried with stamina, :data:`ATTEMPTS` attempts in all, waiting
  ``min(WAIT_MAX, WAIT_INITIAL · 2^(n-1) + U(0, WAIT_JITTER))`` before retry *n*
  (0.5–1.0 s, then 1.0–1.5 s), no retry beginning more than :data:`RETRY_WINDOW` seconds
  after the call's first failure. ``BadRequest`` (a ``NetworkError`` subclass in PTB),
  ``Forbidden``, ``ChatMigrated`` and the rest are Telegram's final word: never retried.
- **Never a blind repeat of a send whose outcome is unknown**: a call that creates
  something in a chat (:func:`may_repeat` is false: ``sendMessage``, ``sendRichMessage``,
  ``sendDocument``, ``sendPhoto``, ``copyMessage``, ``forwardMessage``, …) is not made
  again after an error that leaves open whether Telegram carried it out
  (:func:`outcome_unknown`: a timeout after the request was written, or a connection
  that broke after it): a doubled message is worse than a missing one (the reply chain's
  rule, :mod:`bot.reply.chain`). An error *answer* (5xx), a refused connection, or a
  timeout before the request was written leave nothing done, and are retried. Edits,
  ``answerCallbackQuery``, ``sendChatAction``, drafts (``sendMessageDraft``,
  ``sendRichMessageDraft``), deletes and getters change nothing when repeated, so they
  are retried after any network error; when such a repeat is refused with "message is
  not modified" or "query is too old", the earlier attempt did it, and the caller gets
  success (``True``).
- A call the scheduler never made (it gave the call up, or closed) is not retried: it
  waited its give-up time already.

The caller gets the answer, or the last error unchanged. PTB's contract asks a rate
limiter to handle ``RetryAfter`` only; this one handles network errors as well, because it
is the one place every call passes and the callers (handlers) have no retry of their own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final

import httpx
import stamina
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError, TimedOut

from bot.reply.chain import unconfirmed
from bot.reply.sends import MAX_RETRIES, Answer, ScheduledSends, chat_of, retry_after_seconds
from bot.scheduler.core import IN_SEND

__all__ = [
    "ATTEMPTS",
    "RETRY_WINDOW",
    "WAIT_INITIAL",
    "WAIT_JITTER",
    "WAIT_MAX",
    "BotApiPath",
    "may_repeat",
    "outcome_unknown",
]

log = logging.getLogger(__name__)

ATTEMPTS: Final = 3
"""Attempts of a call that meets network errors or 5xx answers (two retries)."""
WAIT_INITIAL: Final = 0.5
"""Seconds of backoff before the first retry (before jitter)."""
WAIT_MAX: Final = 4.0
"""Upper bound of one backoff, in seconds."""
WAIT_JITTER: Final = 0.5
"""Upper bound of the random jitter added to a backoff, in seconds."""
RETRY_WINDOW: Final = 10.0
"""Seconds after a call's first failure within which a retry may begin (its wait
included): a notice or menu later than that is of little use, and the handler waits."""

_CREATES: Final = ("send", "copy", "forward", "create")
"""Method prefixes of calls that create something new each time they are carried out."""
_REPEATABLE: Final = frozenset({"sendChatAction", "sendMessageDraft", "sendRichMessageDraft"})
"""``send*`` methods that create nothing: an action or a draft (plain or rich, Bot API 10.1)
shown again is the same. ``sendRichMessage`` creates a message: never repeated."""
_NOT_SENT: Final = (httpx.ConnectError, httpx.WriteError)
"""Transport errors (the cause PTB gives a ``NetworkError``) that leave the request
unsent or incomplete: Telegram cannot have carried the call out."""
_DONE_BEFORE: Final = ("message is not modified", "query is too old")
"""Telegram's ``BadRequest`` to a repeat of an edit or button answer already carried out."""

Callback = Callable[..., Coroutine[Any, Any, Answer]]
"""The coroutine function PTB hands the rate limiter (``Bot._do_post`` with its arguments)."""


def may_repeat(endpoint: str) -> bool:
    """Whether a call of ``endpoint`` (a Bot API method name) changes nothing when carried
    out twice: everything but the methods that create a message or an object (``send*``,
    ``copy*``, ``forward*``, ``create*``), ``sendChatAction``, ``sendMessageDraft`` and
    ``sendRichMessageDraft`` excepted (``sendRichMessage`` is never repeated)."""
    return endpoint in _REPEATABLE or not endpoint.startswith(_CREATES)


def outcome_unknown(error: NetworkError) -> bool:
    """Whether Telegram may have carried out the call that failed with ``error``.

    ``TimedOut``: unless the request was never written (:func:`bot.reply.chain.unconfirmed`:
    connect, pool and write timeouts). Another ``NetworkError``: when its cause (PTB
    ``HTTPXRequest`` raises it ``from`` the httpx error) is a transport error other than a
    refused connection or a failed write (the connection broke while Telegram had the
    request); not for an error status Telegram answered (no cause, or the ``TelegramError``
    of an unparsable body).
    """
    if isinstance(error, TimedOut):
        return unconfirmed(error)
    cause = error.__cause__
    if cause is None or isinstance(cause, TelegramError):
        return False
    return not isinstance(cause, _NOT_SENT)


class _Call:
    """The retry state of one Bot API call through :class:`BotApiPath`."""

    def __init__(self, endpoint: str, now: Callable[[], float]) -> None:
        self.endpoint = endpoint
        self.now = now
        self.made = False  # the current attempt reached the HTTP layer
        self.repeat = False  # a later attempt follows one that reached Telegram and failed
        self.refusals = 0  # 429s waited out (calls outside the budget)
        self.failures = 0
        self.first_failure: float | None = None

    def failed(self) -> float:
        """Note a failure; return the seconds since the call's first one."""
        now = self.now()
        if self.first_failure is None:
            self.first_failure = now
        return now - self.first_failure

    def wait_out(self, seconds: float) -> bool:
        """Whether a 429 asking for ``seconds`` is waited out and the call made again."""
        since = self.failed()
        if self.refusals >= MAX_RETRIES or since + seconds > RETRY_WINDOW:
            return False
        self.refusals += 1
        return True

    def retry(self, error: Exception) -> bool:
        """stamina's ``on`` hook: whether ``error`` is retried (module docstring)."""
        since = self.failed()
        self.failures += 1
        if not self.made or isinstance(error, BadRequest) or not isinstance(error, NetworkError):
            return False
        if not may_repeat(self.endpoint) and outcome_unknown(error):
            return False
        if since + _longest_wait(self.failures) > RETRY_WINDOW:
            return False
        self.repeat = True
        return True


def _longest_wait(retry: int) -> float:
    """The longest backoff stamina may take before retry ``retry`` (1-based); 0 in its
    testing mode, which does not wait."""
    if stamina.is_testing():
        return 0.0
    return min(WAIT_MAX, WAIT_INITIAL * 2.0 ** (retry - 1) + WAIT_JITTER)


class BotApiPath(ScheduledSends):
    """The bot's one path to the Bot API (module docstring): the flood budget of
    :class:`~bot.reply.sends.ScheduledSends`, Telegram's ``retry_after`` and bounded
    retries of network errors and 5xx answers.

    Created detached (:meth:`ScheduledSends.attach` gives it the scheduler, whose clock
    then times its waits); until then nothing is budgeted and waits use ``asyncio``.
    """

    def _now(self) -> float:
        scheduler = self._scheduler
        return scheduler.clock.now() if scheduler else asyncio.get_running_loop().time()

    def _sleep(self, seconds: float) -> Awaitable[None]:
        scheduler = self._scheduler
        return scheduler.clock.sleep(seconds) if scheduler else asyncio.sleep(seconds)

    def _budgeted(self, endpoint: str, data: dict[str, Any]) -> bool:
        """Whether :class:`ScheduledSends` sends this call through the scheduler (which
        then waits out its 429s itself)."""
        scheduler = self._scheduler
        return (
            scheduler is not None and not scheduler.closed and chat_of(endpoint, data) is not None
        )

    async def process_request(
        self,
        callback: Callback,
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: None,
    ) -> Answer:
        """Make the call (module docstring); return Telegram's answer.

        Raises the last error of the call unchanged (a ``TelegramError``), or ``TimedOut``
        when the send scheduler gave the call up.
        """
        if IN_SEND.get():  # a reply stream's call: counted, and its errors are the stream's
            return await callback(*args, **kwargs)
        call = _Call(endpoint, self._now)
        async for attempt in stamina.retry_context(
            on=call.retry,
            attempts=ATTEMPTS,
            timeout=None,  # RETRY_WINDOW, counted from the first failure, bounds the time
            wait_initial=WAIT_INITIAL,
            wait_max=WAIT_MAX,
            wait_jitter=WAIT_JITTER,
            wait_exp_base=2,
        ):
            with attempt:
                return await self._attempt(call, callback, args, kwargs, data)
        raise AssertionError("stamina returns the answer or raises the last error")

    async def _attempt(
        self,
        call: _Call,
        callback: Callback,
        args: Any,
        kwargs: dict[str, Any],
        data: dict[str, Any],
    ) -> Answer:
        """One attempt: through the budget when it sends into a chat, a 429 outside the
        budget waited out; a repeat already carried out answers ``True``."""

        async def made(*call_args: Any, **call_kwargs: Any) -> Answer:
            call.made = True
            return await callback(*call_args, **call_kwargs)

        endpoint = call.endpoint
        while True:
            call.made = False
            try:
                return await super().process_request(made, args, kwargs, endpoint, data, None)
            except RetryAfter as exc:
                wait = retry_after_seconds(exc)
                if self._budgeted(endpoint, data) or not call.wait_out(wait):
                    raise  # the scheduler waited its own 429s out already, or too long
                log.warning("Telegram asked to wait %.0f s before %s again", wait, endpoint)
                await self._sleep(wait)
            except BadRequest as exc:
                said = exc.message.lower()
                if call.repeat and any(done in said for done in _DONE_BEFORE):
                    return True  # the attempt whose answer was lost had done it
                raise
