"""The Telegram reply stream: a :class:`bot.turn.ReplySink` that shows a turn in a chat.

Frames are rendered only when they are about to be sent (the newest text wins;
older texts are never sent), as text + entities (see :mod:`bot.render`), and put
into messages by :class:`bot.delivery.MessageChain`. Pacing: at most one frame per
``interval`` seconds (1 s in private chats, 3 s in groups by default); while the
model works before its first text, ``typing`` is repeated every 4 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from telegram import Bot, Message
from telegram.constants import ChatAction, ChatType
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.delivery import MessageChain
from bot.failures import describe_failure
from bot.render import Rendered, ReplyStrings, compose_reply
from bot.scope import thread_of
from bot.settings import Settings
from bot.texts import Lang, t
from bot.turn import Outcome, StreamState
from providers.errors import ProviderError

__all__ = ["ReplyFactory", "TelegramReply"]

log = logging.getLogger(__name__)

TYPING_EVERY = 4.0
FINAL_GIVE_UP = 60.0

_MARKS = {Outcome.STOPPED: "mark_stopped", Outcome.INTERRUPTED: "mark_interrupted"}


def _retry_after_seconds(exc: RetryAfter) -> float:
    value = exc.retry_after
    return value.total_seconds() if hasattr(value, "total_seconds") else float(value)


@dataclass(frozen=True)
class ReplyFactory:
    """Opens a :class:`TelegramReply` for a user's message."""

    bot: Bot
    settings: Settings

    def open(self, message: Message, *, lang: Lang, show_reasoning: bool = True,
             on_forbidden: Callable[[], None] | None = None) -> TelegramReply:
        """A reply to ``message``, in its chat and topic, in ``lang``."""
        group = message.chat.type != ChatType.PRIVATE
        interval = (
            self.settings.group_edit_interval if group else self.settings.private_edit_interval
        )
        chain = MessageChain(
            self.bot, message.chat_id, reply_to=message.message_id,
            thread_id=thread_of(message),
        )
        return TelegramReply(
            chain, lang=lang, interval=interval, show_reasoning=show_reasoning,
            on_forbidden=on_forbidden,
        )


class TelegramReply:
    """Shows one turn in a chat: ``typing``, a first message, edits, the final text."""

    def __init__(
        self,
        chain: MessageChain,
        *,
        lang: Lang,
        interval: float,
        show_reasoning: bool = True,
        on_forbidden: Callable[[], None] | None = None,
    ) -> None:
        self.chain = chain
        self.lang = lang
        self.interval = interval
        self.show_reasoning = show_reasoning
        self._on_forbidden = on_forbidden
        self._state: StreamState | None = None
        self._suffix = ""
        self._dirty = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None
        self._typing: asyncio.Task[None] | None = None
        self._strings = ReplyStrings(thinking=t("thinking", lang), thought_for=t("thought_for", lang))
        self.forbidden = False

    async def begin(self) -> None:
        """Show ``typing`` now and keep it up until the first message appears."""
        self._typing = asyncio.create_task(self._keep_typing())

    def update(self, state: StreamState) -> None:
        """Note the newest text; the pump sends it when pacing allows."""
        self._state = state
        self._dirty.set()
        if self._pump is None and not self.forbidden:
            self._pump = asyncio.create_task(self._run_pump())

    async def restart(self, state: StreamState) -> None:
        """Replace the partial text: say the connection was lost, then start over."""
        await self._stop_pump()
        self._state = state
        await self.chain.rewind()
        self._suffix = t("mark_retrying", self.lang)
        await self._deliver(self._frame(partial=True), give_up=self.interval * 3)
        self._suffix = ""

    async def finish(self, state: StreamState, outcome: Outcome) -> None:
        """Show the final text, with a mark when stopped or interrupted."""
        await self._stop_pump()
        self._state = state
        marks = [t(_MARKS[outcome], self.lang)] if outcome in _MARKS else []
        if state.notice:
            marks.append(t(state.notice, self.lang))
        self._suffix = "\n".join(marks)
        await self._deliver(self._frame(partial=False), give_up=FINAL_GIVE_UP)

    async def fail(self, state: StreamState, error: ProviderError) -> None:
        """Keep any partial text (marked interrupted) and say what went wrong."""
        await self._stop_pump()
        self._state = state
        if self.chain.has_message and state.answer:
            self._suffix = t("mark_interrupted", self.lang)
            await self._deliver(self._frame(partial=False), give_up=FINAL_GIVE_UP)
        notice = Rendered(describe_failure(error, self.lang), ())
        await self._deliver_new(notice)

    def _frame(self, *, partial: bool) -> Rendered:
        state = self._state or StreamState()
        thinking = state.thinking_seconds() if state.reasoning else None
        return compose_reply(
            state.answer,
            reasoning=state.reasoning,
            thinking_seconds=thinking,
            show_reasoning=self.show_reasoning,
            partial=partial,
            strings=self._strings,
            suffix=self._suffix,
        )

    async def _run_pump(self) -> None:
        while not self.forbidden:
            await self._dirty.wait()
            self._dirty.clear()
            started = time.monotonic()
            await self._deliver(self._frame(partial=True), give_up=0)
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    async def _stop_pump(self) -> None:
        for task in (self._pump, self._typing):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._pump = self._typing = None

    async def _deliver(self, frame: Rendered, *, give_up: float) -> None:
        """Show ``frame``; on flood/network errors retry for up to ``give_up`` seconds."""
        deadline = time.monotonic() + give_up
        while not self.forbidden:
            try:
                await self.chain.show(frame)
                return
            except RetryAfter as exc:
                wait = _retry_after_seconds(exc)
                log.warning("Telegram asked to wait %.0f s (chat %s)", wait, self.chain.chat_id)
            except BadRequest as exc:
                log.error("Telegram refused a reply frame: %s", exc.message)
                return
            except Forbidden:
                self._forbid()
                return
            except NetworkError as exc:
                wait = 1.0
                log.warning("network error while replying: %s", exc.message)
            if time.monotonic() + wait > deadline:
                if give_up:
                    log.error("gave up delivering a reply to chat %s", self.chain.chat_id)
                else:
                    self._dirty.set()  # the pump tries again with the newest text
                    await asyncio.sleep(wait)
                return
            await asyncio.sleep(wait)

    async def _deliver_new(self, frame: Rendered) -> None:
        """Send ``frame`` as a message of its own (an error notice)."""
        notice_chain = MessageChain(
            self.chain.bot, self.chain.chat_id, reply_to=self.chain.reply_to,
            thread_id=self.chain.thread_id,
        )
        saved, self.chain = self.chain, notice_chain
        try:
            await self._deliver(frame, give_up=FINAL_GIVE_UP)
        finally:
            self.chain = saved

    async def _keep_typing(self) -> None:
        while not self.chain.has_message and not self.forbidden:
            try:
                await self.chain.bot.send_chat_action(
                    self.chain.chat_id, ChatAction.TYPING, message_thread_id=self.chain.thread_id
                )
            except Forbidden:
                self._forbid()
                return
            except TelegramError as exc:
                log.info("typing action failed: %s", exc)
            await asyncio.sleep(TYPING_EVERY)

    def _forbid(self) -> None:
        log.info("bot was blocked or removed in chat %s; stopping the reply", self.chain.chat_id)
        self.forbidden = True
        if self._on_forbidden is not None:
            self._on_forbidden()
