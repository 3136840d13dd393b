"""Putting rendered frames of one reply into Telegram messages.

A reply is a chain of messages. The newest one is "live" and is edited as the
answer grows; once the rendered text outgrows it (4096 UTF-16 units or 100
entities, telegram.md "Limits"), it is frozen at a paragraph/line boundary and never
edited again, and the rest continues in a new message. Frames are sent as text +
entities with no parse mode.

Each :meth:`MessageChain.step` makes at most one Bot API call, so the send scheduler
can count every call. Telegram errors (telegram.md "Errors PTB gives you"): "message
is not modified" is ignored; "message to edit not found" (the user deleted it) continues in a fresh
message; "can't parse entities" falls back to plain text for that frame;
``RetryAfter``, network errors and ``Forbidden`` are raised to the caller, which
owns timing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from telegram import Bot, ReplyParameters
from telegram.error import BadRequest, TelegramError

from bot.render.markdown import Rendered, slice_rendered, split_rendered

__all__ = ["MessageChain"]

log = logging.getLogger(__name__)


@dataclass
class MessageChain:
    """The messages of one reply in one chat.

    ``reply_to`` is the user's message id the first message replies to;
    ``thread_id`` the forum topic, if any. ``sends_owed`` (set by each :meth:`step`):
    the Bot API calls the final text will likely still need (the reply's sends owed,
    passed to ``StreamHandle.set_sends_owed``): one per part whose message
    is not yet as shown, the last part always (the final text differs from a partial
    one), plus one for a continuation (the live message may still fill, be frozen,
    and go on in a new message: LLM answers often outgrow 4096 units).
    """

    bot: Bot
    chat_id: int
    reply_to: int | None = None
    thread_id: int | None = None
    message_ids: list[int] = field(default_factory=list)
    sent: list[Rendered] = field(default_factory=list)
    frozen: int = 0
    frozen_units: int = 0
    draft: Rendered | None = None
    sends_owed: int = 2

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
        ``NetworkError`` (``BadRequest`` among them, for a draft) or ``Forbidden``;
        a step that raised may be repeated with the same or a newer ``whole``.
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
        return True

    def _sends_owed(self, parts: list[Rendered]) -> int:
        """The calls the final text will likely need, given the unfrozen ``parts`` now."""
        base = self.frozen
        stale = sum(
            1
            for offset, part in enumerate(parts[:-1])
            if base + offset >= len(self.sent) or self.sent[base + offset] != part
        )
        return stale + 2

    async def _draft(self, draft_id: int, part: Rendered) -> None:
        await self.bot.send_message_draft(
            self.chat_id,
            draft_id,
            part.text or None,
            message_thread_id=self.thread_id,
            entities=part.entities or None,
        )
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

    async def rewind(self) -> None:
        """Start over in the first message (a retried stream replaces the partial text).

        Messages after the first are deleted (best effort); nothing is frozen any more.
        """
        for message_id in self.message_ids[1:]:
            try:
                await self.bot.delete_message(self.chat_id, message_id)
            except TelegramError as exc:
                log.info("could not delete reply message %s: %s", message_id, exc)
        del self.message_ids[1:]
        del self.sent[1:]
        self.frozen = 0
        self.frozen_units = 0

    async def _put(self, index: int, part: Rendered) -> None:
        if index < len(self.message_ids):
            await self._edit(index, part)
        else:
            message_id = await self._send(part)
            self.message_ids.append(message_id)
            self.sent.append(part)

    async def _send(self, part: Rendered) -> int:
        reply = (
            ReplyParameters(self.reply_to, allow_sending_without_reply=True)
            if self.reply_to and not self.message_ids
            else None
        )
        try:
            message = await self.bot.send_message(
                self.chat_id,
                part.text,
                entities=part.entities or None,
                reply_parameters=reply,
                message_thread_id=self.thread_id,
            )
        except BadRequest as exc:
            if "can't parse entities" not in exc.message.lower():
                raise
            log.warning("entities rejected, sending plain text: %s", exc.message)
            message = await self.bot.send_message(
                self.chat_id, part.text, reply_parameters=reply, message_thread_id=self.thread_id
            )
        return message.message_id

    async def _edit(self, index: int, part: Rendered) -> None:
        try:
            await self.bot.edit_message_text(
                part.text,
                chat_id=self.chat_id,
                message_id=self.message_ids[index],
                entities=part.entities or None,
            )
        except BadRequest as exc:
            text = exc.message.lower()
            if "message is not modified" in text:
                pass
            elif "message to edit not found" in text:
                log.info(
                    "reply message %s was deleted; continuing in a new one", self.message_ids[index]
                )
                self.message_ids[index] = await self._send(part)
            elif "can't parse entities" in text:
                log.warning("entities rejected, editing as plain text: %s", exc.message)
                await self.bot.edit_message_text(
                    part.text, chat_id=self.chat_id, message_id=self.message_ids[index]
                )
            else:
                raise
        self.sent[index] = part
