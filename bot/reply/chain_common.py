"""What the classic (:mod:`bot.reply.chain`) and rich (:mod:`bot.reply.rich_chain`) message
chains share: telling a send that may have been delivered from one that was not, the reply
parameters of a reply's first message, the calls a final text still owes, and rewinding
past messages sent unconfirmed.

Each chain keeps ``message_ids`` (``None`` for a message sent unconfirmed: its id is
unknown, so it is never edited nor sent again) and ``sent`` (what each message shows:
:class:`~bot.render.types.Rendered` in the classic chain, rich Markdown in the rich one).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Final, TypeVar

import httpx
from telegram import Bot, ReplyParameters
from telegram.error import TelegramError, TimedOut

__all__ = ["first_reply", "log_if_unconfirmed", "sends_owed", "unconfirmed", "unsend_after_kept"]

Part = TypeVar("Part")

_NOT_SENT: Final = (httpx.ConnectTimeout, httpx.PoolTimeout, httpx.WriteTimeout)
"""Timeouts that leave the request unwritten (PTB ``HTTPXRequest`` raises them as the
cause of ``TimedOut``): Telegram cannot have carried out the call."""


def unconfirmed(error: TimedOut) -> bool:
    """Whether Telegram may have carried out the call that timed out with ``error``."""
    return not isinstance(error.__cause__, _NOT_SENT)


def log_if_unconfirmed(
    error: TimedOut, method: str, chat_id: int, timeout: float, log: logging.Logger
) -> bool:
    """Whether the ``method`` call (e.g. ``"sendMessage"``) to ``chat_id`` that timed out
    with ``error`` after ``timeout`` seconds may have been delivered; logs a warning to
    ``log`` (the chain's logger) when so
    (the caller then takes it as sent, id unknown, and never sends it again)."""
    if not unconfirmed(error):
        return False
    log.warning(
        "%s to chat %s got no answer within %.0f s; it may have been "
        "delivered, so it is not sent again",
        method,
        chat_id,
        timeout,
    )
    return True


def first_reply(reply_to: int | None, message_ids: Sequence[int | None]) -> ReplyParameters | None:
    """The reply parameters of the next message: a reply to ``reply_to`` (sent even if that
    message is gone) for the reply's first message only, else None."""
    if reply_to and not message_ids:
        return ReplyParameters(reply_to, allow_sending_without_reply=True)
    return None


def sends_owed(
    parts: Sequence[Part],
    *,
    sent: Sequence[Part],
    message_ids: Sequence[int | None],
    base: int,
    skip_unconfirmed: bool,
) -> int:
    """The Bot API calls the final text will likely still need, given the unfrozen ``parts``
    (message ``base`` on): one per part before the last that no message shows yet, plus 2
    (the last part, whose final text differs from a partial one, and a continuation).

    With ``skip_unconfirmed``, a changed part whose message was sent unconfirmed does not
    count (it is never edited)."""
    stale = 0
    for index, part in enumerate(parts[:-1], start=base):
        if index >= len(sent) or (
            sent[index] != part and not (skip_unconfirmed and message_ids[index] is None)
        ):
            stale += 1
    return stale + 2


async def unsend_after_kept(
    bot: Bot, chat_id: int, message_ids: list[int | None], sent: list[Part], log: logging.Logger
) -> int:
    """Rewind a chain to start over: keep the messages up to the last one sent unconfirmed
    (they cannot be changed) and one more (the one to be edited), delete the rest (best
    effort: a failed ``deleteMessage`` is logged to ``log``) and drop them from ``message_ids`` and
    ``sent`` in place. Returns how many messages the kept ones before the new text are
    (where the chain's ``frozen`` now stands)."""
    keep = max((i + 1 for i, m in enumerate(message_ids) if m is None), default=0)
    for message_id in message_ids[keep + 1 :]:
        if message_id is None:  # none after keep; for the type checker
            continue
        try:
            await bot.delete_message(chat_id, message_id)
        except TelegramError as exc:
            log.info("could not delete reply message %s: %s", message_id, exc)
    del message_ids[keep + 1 :]
    del sent[keep + 1 :]
    return keep
