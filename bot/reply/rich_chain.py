"""Putting rendered frames of one reply into Telegram rich messages (Bot API 10.1+).

The rich twin of :mod:`bot.reply.chain` (docs/telegram.md "Rich messages (Bot API
10.1+)"). A frame arrives as its rich Markdown parts
(:func:`bot.render.rich.render_rich_reply`: one per message, cut between blocks when
the reply is over one rich message's limits). Each part is a message:

- every part but the last is sent with ``sendRichMessage`` (and edited with
  ``editMessageText(rich_message=…)`` when a later frame changes it);
- the last part is the live one: in a private chat streaming through drafts it is the
  draft (``sendRichMessageDraft`` with ``can_stop``: the user's stop button), and the
  final frame sends it as a message, which replaces the draft; otherwise it is a message
  sent once and then edited as the answer grows.

Each :meth:`RichChain.step` makes at most one Bot API call, so the send scheduler counts
every call. Errors: "message is not modified" is success; "message to edit not found"
(the user deleted it) continues in a new message; a refusal of the rich content (400,
:func:`bot.reply.rich_api.is_rich_rejected`) or a server without rich messages (404,
:func:`bot.reply.rich_api.is_rich_unsupported`) raises :class:`RichRefused`, after which
the caller sends the answer the classic way; any other refusal of a draft raises
:class:`bot.reply.chain.DraftRefused` (the caller goes on with messages). ``RetryAfter``,
network errors and ``Forbidden`` are raised to the caller, which owns timing.

Sends are never repeated blindly, as in :mod:`bot.reply.chain`: a ``sendRichMessage``
that timed out after its request was written (:func:`bot.reply.chain.unconfirmed`) is
taken as delivered, its id unknown: it is never sent again nor edited. When it was the
live part, :attr:`RichChain.awaiting_final` is set and the caller goes on after the text
it carried, in a new message sent with the final frame (:meth:`RichChain.rebase`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from telegram import Bot
from telegram.error import BadRequest, Forbidden, TelegramError, TimedOut

from bot.reply.chain import SEND_TIMEOUT, DraftRefused
from bot.reply.chain_common import first_reply, log_if_unconfirmed, sends_owed, unsend_after_kept
from bot.reply.rich_api import (
    edit_message_rich_text,
    is_rich_rejected,
    is_rich_unsupported,
    send_rich_message,
    send_rich_message_draft,
)

__all__ = ["RichChain", "RichRefused"]

log = logging.getLogger(__name__)


class RichRefused(Exception):
    """Telegram refused a rich message, draft or edit: ``error`` is its answer.

    ``unsupported``: the Bot API server has no rich messages (404 ``EndPointNotFound``, or
    an older server's "message text is empty" to a rich edit); else Telegram refused this
    content (400, e.g. ``RICH_MESSAGE_URL_INVALID``). Either way the answer goes on the
    classic way.
    """

    def __init__(self, error: TelegramError, *, unsupported: bool) -> None:
        """Wrap Telegram's answer ``error``."""
        super().__init__(error.message)
        self.error = error
        self.unsupported = unsupported


def _refusal(error: TelegramError) -> RichRefused | None:
    """``error`` as a :class:`RichRefused`, when it is one."""
    if is_rich_unsupported(error):
        return RichRefused(error, unsupported=True)
    if is_rich_rejected(error):
        return RichRefused(error, unsupported=False)
    return None


@dataclass
class RichChain:
    """The rich messages of one reply in one chat (module docstring).

    ``message_ids`` holds ``None`` for a message sent unconfirmed; ``sent`` the Markdown
    each message shows; ``frozen`` the messages before the current frame's parts (those
    sent unconfirmed as the live part: :meth:`rebase`); ``draft`` the Markdown of the
    draft shown. ``sends_owed`` (set by each :meth:`step`): the Bot API calls the final
    text will likely still need, as in :class:`bot.reply.chain.MessageChain`.
    """

    bot: Bot
    chat_id: int
    reply_to: int | None = None
    thread_id: int | None = None
    message_ids: list[int | None] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    frozen: int = 0
    draft: str | None = None
    sends_owed: int = 2
    awaiting_final: bool = False
    live_unconfirmed: bool = False
    send_timeout: float = SEND_TIMEOUT

    @property
    def has_message(self) -> bool:
        """True once the first message of the reply exists."""
        return bool(self.message_ids)

    async def step(self, parts: list[str], *, draft_id: int | None = None) -> bool:
        """Make at most one Bot API call that brings the chain closer to showing ``parts``.

        ``parts`` is the whole reply after the frozen messages, one rich Markdown text per
        message; with ``draft_id`` (a private chat streaming through drafts) the last part
        is shown as that draft, with a stop button. Returns True when nothing is left to
        do, False when the caller should call again. Raises :class:`RichRefused`,
        :class:`~bot.reply.chain.DraftRefused`, ``RetryAfter``, ``NetworkError``,
        ``Forbidden``, other ``BadRequest``; a step that raised may be repeated. A live
        part sent unconfirmed sets :attr:`live_unconfirmed` (see :meth:`rebase`).
        """
        self.sends_owed = self._sends_owed(parts)
        if not parts:
            return True
        base = self.frozen
        for offset, part in enumerate(parts[:-1]):
            if await self._put(base + offset, part):
                return False
        index, last = base + len(parts) - 1, parts[-1]
        if draft_id is not None:
            if self.draft != last:
                await self._draft(draft_id, last)
            return True
        if await self._put(index, last) and self.message_ids[index] is None:
            self.live_unconfirmed = True
        return True

    def _sends_owed(self, parts: list[str]) -> int:
        """The calls the final text will likely need, given the current ``parts``."""
        return sends_owed(
            parts,
            sent=self.sent,
            message_ids=self.message_ids,
            base=self.frozen,
            skip_unconfirmed=True,
        )

    def rebase(self) -> None:
        """After the live part was sent unconfirmed: it stays as sent, the next parts go
        into new messages, sent with the final frame (:attr:`awaiting_final`)."""
        self.frozen = len(self.message_ids)
        self.live_unconfirmed = False
        self.awaiting_final = True

    async def _put(self, index: int, part: str) -> bool:
        """Show ``part`` as message ``index``; True when a call was made."""
        if index >= len(self.message_ids):
            self.message_ids.append(await self._send(part))
            self.sent.append(part)
            return True
        if self.message_ids[index] is None or self.sent[index] == part:
            return False  # unconfirmed: as sent, never edited; or shown already
        await self._edit(index, part)
        return True

    async def _draft(self, draft_id: int, part: str) -> None:
        try:
            await send_rich_message_draft(
                self.bot,
                self.chat_id,
                draft_id,
                part,
                message_thread_id=self.thread_id,
                can_stop=True,
                request_timeout=self.send_timeout,
            )
        except TelegramError as exc:
            refusal = _refusal(exc)
            if refusal is not None:
                raise refusal from exc
            if isinstance(exc, BadRequest | Forbidden):  # drafts not for this chat (or user)
                raise DraftRefused(exc) from exc
            raise
        self.draft = part

    async def _send(self, part: str) -> int | None:
        """Send ``part`` as a new rich message; its id, or ``None`` when unconfirmed."""
        reply = first_reply(self.reply_to, self.message_ids)
        try:
            message = await send_rich_message(
                self.bot,
                self.chat_id,
                part,
                message_thread_id=self.thread_id,
                reply_parameters=reply,
                request_timeout=self.send_timeout,
            )
        except TimedOut as exc:
            if not log_if_unconfirmed(exc, "sendRichMessage", self.chat_id, self.send_timeout, log):
                raise
            return None
        except TelegramError as exc:
            refusal = _refusal(exc)
            if refusal is None:
                raise
            raise refusal from exc
        return message.message_id

    async def _edit(self, index: int, part: str) -> None:
        message_id = self.message_ids[index]
        if message_id is None:  # _put never edits an unconfirmed message
            raise RuntimeError("an unconfirmed message cannot be edited")
        try:
            await edit_message_rich_text(
                self.bot, self.chat_id, message_id, part, request_timeout=self.send_timeout
            )
        except BadRequest as exc:
            text = exc.message.lower()
            if "message is not modified" in text:
                pass
            elif "message to edit not found" in text:
                log.info("reply message %s was deleted; continuing in a new one", message_id)
                self.message_ids[index] = await self._send(part)
            else:
                refusal = _refusal(exc)
                if refusal is None:
                    raise
                raise refusal from exc
        self.sent[index] = part

    def move_to(self, chat_id: int) -> None:
        """Go on in chat ``chat_id`` (a group became a supergroup), starting over in a new
        message, as :meth:`bot.reply.chain.MessageChain.move_to` does."""
        self.chat_id = chat_id
        self.reply_to = None
        self.message_ids.clear()
        self.sent.clear()
        self.frozen = 0
        self.draft = None
        self.awaiting_final = False
        self.live_unconfirmed = False

    async def rewind(self) -> None:
        """Start over in the first message (a retried stream replaces the partial text).

        Messages after the first are deleted (best effort); messages sent unconfirmed stay
        and the new text starts after the last of them, as in
        :meth:`bot.reply.chain.MessageChain.rewind`.
        """
        self.frozen = await unsend_after_kept(
            self.bot, self.chat_id, self.message_ids, self.sent, log
        )
        self.awaiting_final = False
        self.live_unconfirmed = False

    def confirmed_after_frozen(self) -> list[int]:
        """The ids of the messages of the current parts that are known (not unconfirmed):
        what a classic chain taking over the reply edits instead of sending anew."""
        return [m for m in self.message_ids[self.frozen :] if m is not None]
