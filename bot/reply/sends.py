"""Every Bot API send into a chat within the send scheduler's budget: a PTB rate limiter.

Reply streams send through :class:`~bot.scheduler.core.SendScheduler`. Everything else a
handler sends into a chat (refusals, command answers, error notices) went straight to
Telegram, unseen by the scheduler's per-chat, per-group and global budgets: twenty quick
mentions in a group from a user past the per-minute pace drew twenty refusals at once,
then 429s, then an error notice for each (itself refused). :class:`ScheduledSends` is
the bot's ``rate_limiter`` (PTB ``telegram.ext.BaseRateLimiter``; ``ExtBot`` passes every
call but ``getUpdates`` through it):

- a call into a chat (:func:`chat_of`: a ``send*``/``edit*``/``copy*``/``forward*``
  method with a numeric ``chat_id``) made outside a scheduler send goes out as a
  one-frame stream of kind ``final`` on that chat: first and final frames' priority,
  within every level's budget, counted there;
- a 429 on it pauses and adapts like a reply's (``StreamHandle.retry_after``) and the call
  is made again, up to :data:`MAX_RETRIES` times; then, and for any other error, the
  caller gets Telegram's error unchanged (PTB: a rate limiter handles ``RetryAfter``
  only); a call the scheduler gave up on raises ``TimedOut``;
- calls made inside a scheduler send (the reply streams: :data:`bot.scheduler.core.IN_SEND`)
  and every other call go straight through: they are counted already, or not sends.

The scheduler is attached once it exists (:meth:`ScheduledSends.attach`, by
:class:`~bot.reply.stream.ReplyFactory`); before that, and once it is closed (shutting
down), calls go straight through.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Final

from telegram.error import RetryAfter, TimedOut
from telegram.ext import BaseRateLimiter

from bot.scheduler.core import IN_SEND, SendOutcome, SendScheduler

__all__ = ["MAX_RETRIES", "ScheduledSends", "chat_of", "retry_after_seconds"]

log = logging.getLogger(__name__)

MAX_RETRIES: Final = 2
"""Times a call refused with 429 is made again (after the pause Telegram asked for)."""

_PREFIXES: Final = ("send", "edit", "copy", "forward")
_ONE: Final = object()  # the frame of a one-call stream (never equal to a delivered one)

Answer = bool | dict[str, Any] | list[dict[str, Any]]
"""What a Bot API call answers (PTB's ``JSONDict`` results, or ``True``)."""


def chat_of(endpoint: str, data: dict[str, Any]) -> int | None:
    """The chat a Bot API call of ``endpoint`` with ``data`` sends into, or ``None``.

    ``None`` for methods that send nothing into a chat (``getMe``,
    ``answerCallbackQuery``, ``deleteMessage``, …) and for ``@channel`` usernames and
    inline messages (no numeric ``chat_id``).
    """
    chat_id = data.get("chat_id")
    if not endpoint.startswith(_PREFIXES) or isinstance(chat_id, bool):
        return None
    if isinstance(chat_id, int):
        return chat_id
    if isinstance(chat_id, str) and chat_id.lstrip("-").isdigit():
        return int(chat_id)
    return None


class ScheduledSends(BaseRateLimiter[None]):
    """Sends a handler's calls into a chat through the send scheduler (module docstring)."""

    def __init__(self) -> None:
        """Create it detached: calls go straight through until :meth:`attach`."""
        self._scheduler: SendScheduler | None = None

    def attach(self, scheduler: SendScheduler) -> None:
        """From now on, send through ``scheduler``."""
        self._scheduler = scheduler

    async def initialize(self) -> None:
        """Nothing to set up (PTB calls it from ``ExtBot.initialize``)."""

    async def shutdown(self) -> None:
        """Nothing to release (the scheduler is closed with the services)."""

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Answer]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: None,
    ) -> Answer:
        """Make the call, through the scheduler when it sends into a chat (module docstring)."""
        scheduler, chat_id = self._scheduler, chat_of(endpoint, data)
        if scheduler is None or scheduler.closed or chat_id is None or IN_SEND.get():
            return await callback(*args, **kwargs)
        handle = scheduler.open_stream(chat_id)
        outcome: list[Answer | Exception] = []
        refusals = itertools.count(1)

        async def send(_: object) -> SendOutcome | None:
            try:
                outcome.append(await callback(*args, **kwargs))
            except RetryAfter as exc:
                if next(refusals) <= MAX_RETRIES:
                    handle.retry_after(retry_after_seconds(exc))
                    return SendOutcome.RETRY
                outcome.append(exc)
            except Exception as exc:  # Telegram's answer or a network error: the caller's
                outcome.append(exc)
            return None

        handle.submit(_ONE, kind="final", send=send)
        if not await handle.close() or not outcome:
            raise TimedOut(f"{endpoint} to chat {chat_id} was given up by the send scheduler")
        if isinstance(outcome[-1], Exception):
            raise outcome[-1]
        return outcome[-1]


def retry_after_seconds(error: RetryAfter) -> float:
    """The seconds Telegram asked to wait (PTB gives an int, or a ``timedelta`` when
    ``PTB_TIMEDELTA`` is set)."""
    value: object = error.retry_after
    total = getattr(value, "total_seconds", None)
    return float(total()) if callable(total) else float(value)  # type: ignore[arg-type]
