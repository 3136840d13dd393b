"""Turns in flight, recorded in Redis, so a process killed outright tells their users.

:class:`InflightTracker` records each turn shown through a Telegram reply while it runs
(:class:`storage.inflight.InflightTurns`: chat, topic, language, the user's message,
the reply's first message once sent, the start time, the question), one write when the
turn starts (another when its first message is sent) and one when it ends. A turn that
ends, however it ends, removes its record; a turn cancelled by a shutdown that gave up
on it keeps its record, as does every turn of a process killed by SIGKILL or the OOM
killer.

The next start acts on those records in two steps:

1. :func:`recover_interrupted`, before any update is handled: frees each record's
   conversation lock (else it would hold the conversation for the rest of its TTL) and
   stores the question with :data:`~bot.conversation.restart.RESTART_PLACEHOLDER` as its
   answer, unless the history already ends with that question (the turn stored its
   exchange before it died), so ``/retry`` redoes that question and not the one before;
2. :func:`tell_interrupted`, alongside the first updates: sends each user "my previous
   answer was interrupted by a restart — send /retry" (en/zh) through the send
   scheduler, as a reply to the cut answer (or to the question), then removes the record:
   one notice per record (at least once: a crash between the send and the removal sends
   it again).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import time
from collections.abc import AsyncIterator, Iterable

from redis.exceptions import RedisError
from telegram import Bot, ReplyParameters
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.conversation.restart import RESTART_PLACEHOLDER
from bot.conversation.types import ReplySink, TurnInput
from bot.reply.stream import TelegramReply
from bot.scheduler.core import SendOutcome, SendScheduler
from bot.texts import language_of, t
from storage import ConversationStore, StoredMessage
from storage.inflight import InflightTurn, InflightTurns

__all__ = ["InflightTracker", "recover_interrupted", "tell_interrupted"]

log = logging.getLogger(__name__)


class InflightTracker:
    """The :class:`~bot.conversation.restart.TurnTracker` of the bot: records turns in
    ``turns``. A Redis error while recording is logged (WARNING) and the turn goes on
    unrecorded: the record is a backstop, not part of the answer."""

    def __init__(self, turns: InflightTurns) -> None:
        self.turns = turns

    @contextlib.asynccontextmanager
    async def track(self, turn: TurnInput, sink: ReplySink) -> AsyncIterator[None]:
        """Record ``turn`` while the block runs (only a :class:`TelegramReply` sink: others
        have no chat to tell). The record is removed when the block ends, unless it was
        cancelled."""
        if not isinstance(sink, TelegramReply):
            yield
            return
        chain = sink.chain
        record = InflightTurn(
            turn_id=secrets.token_hex(8),
            scope=turn.scope,
            chat_id=chain.chat_id,
            thread_id=chain.thread_id,
            lang=sink.lang,
            reply_to=chain.reply_to,
            message_id=chain.message_ids[0] if chain.message_ids else None,
            started_at=time.time(),
            question=StoredMessage("user", turn.content, image_file_ids=turn.image_file_ids),
        )
        await self._put(record)
        noting: list[asyncio.Task[None]] = []

        def note_message(message_id: int) -> None:
            noted = dataclasses.replace(record, message_id=message_id)
            noting.append(asyncio.ensure_future(self._put(noted)))

        sink.on_first_message = note_message
        cancelled = False
        try:
            yield
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            sink.on_first_message = None
            if cancelled:
                for task in noting:
                    task.cancel()
            else:
                await asyncio.gather(*noting)  # before the removal: a late put would revive it
                await self._remove(record.turn_id)

    async def _put(self, record: InflightTurn) -> None:
        try:
            await self.turns.put(record)
        except (RedisError, OSError) as exc:
            log.warning("could not record a turn in flight: %s", type(exc).__name__)

    async def _remove(self, turn_id: str) -> None:
        try:
            await self.turns.remove(turn_id)
        except (RedisError, OSError) as exc:
            log.warning("could not remove the record of a turn in flight: %s", type(exc).__name__)


async def recover_interrupted(store: ConversationStore, turns: InflightTurns) -> list[InflightTurn]:
    """Step 1 of the module docstring: free the locks of the turns a killed process left
    and store their questions; returns the records whose users are to be told.

    Run it before any update is handled. Raises Redis errors.
    """
    records = await turns.all()
    for record in records:
        if await turns.release_lock(record.scope):
            log.info("freed the conversation lock of an interrupted turn (%s)", record.turn_id)
        if record.question is not None:
            await _keep_question(store, record.scope, record.question)
            await turns.put(dataclasses.replace(record, question=None))
    if records:
        log.warning(
            "%d answer(s) were interrupted when the bot last stopped; telling their users",
            len(records),
        )
    return records


async def _keep_question(store: ConversationStore, scope: str, question: StoredMessage) -> None:
    """Store ``question`` with the placeholder answer, unless the history ends with it."""
    history = await store.load_history(scope)
    if len(history) >= 2:
        last = history[-2]
        if (last.content, last.image_file_ids) == (question.content, question.image_file_ids):
            return
    answer = StoredMessage("assistant", RESTART_PLACEHOLDER, interrupted=True)
    await store.append_exchange(scope, question, answer)


async def tell_interrupted(
    bot: Bot, scheduler: SendScheduler, turns: InflightTurns, records: Iterable[InflightTurn]
) -> None:
    """Step 2 of the module docstring: tell each record's user, then remove the record.

    A notice Telegram refuses for good (the bot was blocked, the chat is gone) or that
    the scheduler gives up on is logged and its record removed all the same. Raises
    Redis errors.
    """
    await asyncio.gather(*(_tell(bot, scheduler, turns, record) for record in records))


async def _tell(
    bot: Bot, scheduler: SendScheduler, turns: InflightTurns, record: InflightTurn
) -> None:
    handle = scheduler.open_stream(record.chat_id)
    text = t("restart_notice", language_of(record.lang))
    target = record.message_id or record.reply_to
    reply = (
        ReplyParameters(message_id=target, allow_sending_without_reply=True)
        if target is not None
        else None
    )

    async def send(notice: str) -> SendOutcome:
        try:
            await bot.send_message(
                record.chat_id,
                notice,
                message_thread_id=record.thread_id,
                reply_parameters=reply,
            )
        except RetryAfter as exc:
            wait = exc.retry_after
            handle.pause(wait if isinstance(wait, int | float) else wait.total_seconds())
            return SendOutcome.RETRY
        except (Forbidden, BadRequest) as exc:
            log.info(
                "could not tell chat %s of an interrupted answer: %s", record.chat_id, exc.message
            )
            return SendOutcome.DROP
        except NetworkError:
            return SendOutcome.RETRY
        except TelegramError as exc:
            log.warning("could not tell chat %s of an interrupted answer: %s", record.chat_id, exc)
            return SendOutcome.DROP
        return SendOutcome.SENT

    handle.submit(text, kind="final", send=send)
    await handle.close()
    await turns.remove(record.turn_id)
