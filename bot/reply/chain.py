"""Putting rendered frames of one reply into Telegram messages.

A reply is a chain of messages. The newest one is "live" and is edited as the
answer grows; once the rendered text outgrows it (4096 UTF-16 units or 100
entities, docs/telegram.md "Limits"), it is frozen at a paragraph/line boundary and never
edited again, and the rest continues in a new message. Frames are sent as text +
entities with no parse mode.

Each :meth:`MessageChain.step` makes at most one Bot API call, so the send scheduler
can count every call. Telegram errors (docs/telegram.md "Errors PTB gives you"): "message
is not modified" is ignored; "message to edit not found" (the user deleted it) continues in a fresh
message; "can't parse entities" falls back to plain text for that frame;
``RetryAfter``, network errors and ``Forbidden`` are raised to the caller, which
owns timing. A refused draft (400, 403, or 404 from a Bot API server without
``sendMessageDraft``) raises :class:`DraftRefused`: the caller goes on with messages.

Sends are never repeated blindly. Edits and drafts are idempotent (the same text again
changes nothing), sends are not: a ``sendMessage`` whose answer never came may still
have been carried out, and sending it again would show that text twice. So:

- every message call waits :data:`SEND_TIMEOUT` seconds (read and write; PTB's default
  is 5 s, and Telegram under load answers later than that while still delivering);
- a ``sendMessage`` that timed out after the request was written (``TimedOut`` caused
  by a read timeout) is taken as delivered but unconfirmed: its id is unknown, so it
  cannot be edited, and it is never sent again. The chain freezes it at the text it
  carried and goes on after that text in a new message, sent only with the final
  frame (:attr:`MessageChain.awaiting_final`), so a slow Telegram splits the answer
  in two at most, and shows no part of it twice. If Telegram in fact dropped it, that
  part is missing: a lost part is preferred to a doubled one. A timeout before the
  request was written (connect, pool, write) or an error answer is retried as before.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Final

from telegram import Bot
from telegram.error import BadRequest, Forbidden, InvalidToken, TelegramError, TimedOut

from bot.render.markdown import Rendered, slice_rendered, split_rendered
from bot.reply.chain_common import (
    first_reply,
    log_if_unconfirmed,
    sends_owed,
    unconfirmed,
    unsend_after_kept,
)

__all__ = ["SEND_TIMEOUT", "DraftRefused", "MessageChain", "unconfirmed"]

log = logging.getLogger(__name__)

SEND_TIMEOUT: Final = 30.0
"""Seconds a message call (``sendMessage``, ``editMessageText``, ``sendMessageDraft``)
may take to be written and answered (PTB's ``read_timeout`` and ``write_timeout``; its
defaults are 5 s). Telegram answers in well under a second normally, but under load
takes longer and still carries the call out; 30 s stays inside the scheduler's give-up
time (``REPLY_GIVE_UP_SECONDS``, 300 s) and keeps a stuck call from holding its reply
for long."""


class DraftRefused(Exception):
    """Telegram refused ``sendMessageDraft``; ``error`` is its answer.

    ``BadRequest`` (400: drafts not allowed in this chat), ``Forbidden`` (403) or
    ``InvalidToken`` (404: PTB's class for a Bot API server that lacks the method;
    ``telegram.request.BaseRequest``).
    """

    def __init__(self, error: TelegramError) -> None:
        """Wrap Telegram's answer ``error``."""
        super().__init__(error.message)
        self.error = error


@dataclass
class MessageChain:
    """The messages of one reply in one chat.

    ``reply_to`` is the user's message id the first message replies to;
    ``thread_id`` the forum topic, if any. ``message_ids`` holds ``None`` for a
    message sent unconfirmed (see the module docstring); ``awaiting_final`` is set
    once the live message was: the rest waits for the final frame. ``send_timeout``:
    seconds each message call may take (:data:`SEND_TIMEOUT`). ``sends_owed`` (set by
    each :meth:`step`): the Bot API calls the final text will likely still need (the
    reply's sends owed, passed to ``StreamHandle.set_sends_owed``): one per part whose
    message is not yet as shown, the last part always (the final text differs from a partial
    one), plus one for a continuation (the live message may still fill, be frozen,
    and go on in a new message: LLM answers often outgrow 4096 units).
    """

    bot: Bot
    chat_id: int
    reply_to: int | None = None
    thread_id: int | None = None
    message_ids: list[int | None] = field(default_factory=list)
    sent: list[Rendered] = field(default_factory=list)
    frozen: int = 0
    frozen_units: int = 0
    draft: Rendered | None = None
    sends_owed: int = 2
    awaiting_final: bool = False
    send_timeout: float = SEND_TIMEOUT

    @property
    def has_message(self) -> bool:
        """True once the first message of the reply exists."""
        return bool(self.message_ids)

    async def step(self, whole: Rendered, *, draft_id: int | None = None) -> bool:
        """Make at most one Bot API call that brings the chain closer to showing ``whole``.

        ``whole`` is the entire reply rendered so far. Frozen messages are left
        alone; the rest is split into parts: every part but the last is put into a
        message and frozen; the last part is shown in the live message, or — when
        ``draft_id`` is given (a private chat streaming through drafts) — as the
        draft with that id. Returns True when nothing is left to do, False when the
        caller should call again (one call per step keeps every call inside the
        send scheduler's budget). Raises ``telegram.error.RetryAfter``,
        ``NetworkError``, ``Forbidden`` or :class:`DraftRefused`; a step that raised
        may be repeated with the same or a newer ``whole`` (a send that may have been
        carried out does not raise: it is frozen unconfirmed, see the module docstring).
        """
        rest = slice_rendered(whole, self.frozen_units)
        parts = split_rendered(rest) if rest.text.strip() else []
        self.sends_owed = self._sends_owed(parts)
        if not parts:
            if draft_id is not None and self.draft is None and not self.message_ids:
                await self._draft(draft_id, Rendered(""))  # the "Thinking…" placeholder
            return True
        base = self.frozen
        for offset, part in enumerate(parts[:-1]):
            index = base + offset
            called = index >= len(self.sent) or self.sent[index] != part
            if called:
                await self._put(index, part)
            self.frozen = index + 1
            self.frozen_units += part.utf16_length
            if called:
                return False
        index, last = base + len(parts) - 1, parts[-1]
        if draft_id is not None:
            if self.draft != last:
                await self._draft(draft_id, last)
            return True
        if index >= len(self.sent) or self.sent[index] != last:
            await self._put(index, last)
            if self.message_ids[index] is None:  # it cannot be edited: it is as sent
                self.frozen = index + 1
                self.frozen_units += last.utf16_length
                self.awaiting_final = True
        return True

    def _sends_owed(self, parts: list[Rendered]) -> int:
        """The calls the final text will likely need, given the unfrozen ``parts`` now."""
        return sends_owed(
            parts,
            sent=self.sent,
            message_ids=self.message_ids,
            base=self.frozen,
            skip_unconfirmed=False,
        )

    async def _draft(self, draft_id: int, part: Rendered) -> None:
        try:
            await self.bot.send_message_draft(
                self.chat_id,
                draft_id,
                part.text or None,
                message_thread_id=self.thread_id,
                entities=part.entities or None,
                read_timeout=self.send_timeout,
                write_timeout=self.send_timeout,
            )
        except (BadRequest, Forbidden, InvalidToken) as exc:
            raise DraftRefused(exc) from exc
        self.draft = part

    def move_to(self, chat_id: int) -> None:
        """Go on in chat ``chat_id`` (the group became a supergroup: Telegram's
        ``ChatMigrated``). The messages in the old chat cannot be edited there, so the
        reply starts over in a new message, replying to nothing (message ids differ
        between the two chats)."""
        self.chat_id = chat_id
        self.reply_to = None
        self.message_ids.clear()
        self.sent.clear()
        self.frozen = 0
        self.frozen_units = 0
        self.draft = None
        self.awaiting_final = False

    async def rewind(self) -> None:
        """Start over in the first message (a retried stream replaces the partial text).

        Messages after the first are deleted (best effort); nothing is frozen any more.
        Messages sent unconfirmed cannot be changed: they stay, and the new text starts
        after the last of them.
        """
        self.frozen = await unsend_after_kept(
            self.bot, self.chat_id, self.message_ids, self.sent, log
        )
        self.frozen_units = 0
        self.awaiting_final = False

    async def _put(self, index: int, part: Rendered) -> None:
        if index < len(self.message_ids):
            await self._edit(index, part)
        else:
            message_id = await self._send(part)
            self.message_ids.append(message_id)
            self.sent.append(part)

    async def _send(self, part: Rendered) -> int | None:
        """Send ``part`` as a new message; its id, or ``None`` when unconfirmed."""
        reply = first_reply(self.reply_to, self.message_ids)
        timeout = self.send_timeout
        try:
            try:
                message = await self.bot.send_message(
                    self.chat_id,
                    part.text,
                    entities=part.entities or None,
                    reply_parameters=reply,
                    message_thread_id=self.thread_id,
                    read_timeout=timeout,
                    write_timeout=timeout,
                )
            except BadRequest as exc:
                if "can't parse entities" not in exc.message.lower():
                    raise
                log.warning("entities rejected, sending plain text: %s", exc.message)
                message = await self.bot.send_message(
                    self.chat_id,
                    part.text,
                    reply_parameters=reply,
                    message_thread_id=self.thread_id,
                    read_timeout=timeout,
                    write_timeout=timeout,
                )
        except TimedOut as exc:
            if not log_if_unconfirmed(exc, "sendMessage", self.chat_id, self.send_timeout, log):
                raise
            return None
        return message.message_id

    async def _edit(self, index: int, part: Rendered) -> None:
        message_id = self.message_ids[index]
        if message_id is None:  # step() never edits an unconfirmed message: it is frozen
            raise RuntimeError("an unconfirmed message cannot be edited")
        try:
            await self.bot.edit_message_text(
                part.text,
                chat_id=self.chat_id,
                message_id=message_id,
                entities=part.entities or None,
                read_timeout=self.send_timeout,
                write_timeout=self.send_timeout,
            )
        except BadRequest as exc:
            text = exc.message.lower()
            if "message is not modified" in text:
                pass
            elif "message to edit not found" in text:
                log.info("reply message %s was deleted; continuing in a new one", message_id)
                self.message_ids[index] = await self._send(part)
            elif "can't parse entities" in text:
                log.warning("entities rejected, editing as plain text: %s", exc.message)
                await self.bot.edit_message_text(
                    part.text,
                    chat_id=self.chat_id,
                    message_id=message_id,
                    read_timeout=self.send_timeout,
                    write_timeout=self.send_timeout,
                )
            else:
                raise
        self.sent[index] = part
