"""The Telegram reply stream: a :class:`bot.conversation.turn.ReplySink` showing a turn in a chat.

Every send, edit, draft and chat action of a reply goes through the bot-wide
:class:`SendScheduler`, which keeps Telegram's per-chat, per-group and global limits,
prefers first and final frames, and sends only the newest text of a reply. (Two rare
repairs go around it: deleting the extra messages of a stream that restarts, and
re-sending a message the user deleted.) Frames are rendered when they are about to
be sent, never per chunk.

- Private chats with drafts on: an empty draft ("Thinking…") at once, then
  ``sendMessageDraft`` frames, and the finished answer with ``sendMessage``. Any draft
  refused (:class:`~bot.reply.chain.DraftRefused`) switches the reply to messages and
  edits at once, so the answer is never lost: a 404 (a Bot API server without
  ``sendMessageDraft``, e.g. an older local one) for the whole process, a 400 for that
  chat (telegram.md "Streaming"), a 403 for that reply (if the user blocked the bot, the
  next send says so).
  When the answer outgrows one message, the full first message is sent at once, as a
  high-priority frame (see :meth:`TelegramReply.update`), not left to the final.
- While no chunk has come (a slow model, a queue at the provider), the draft or message
  says how long the bot has waited ("Waiting for the model… 20 s"), updated every
  ``WAITING_EVERY`` seconds on the scheduler's clock as an ordinary frame (so within the
  flood budget; without drafts the first such frame sends the reply's first message),
  and replaced by the answer as it streams.
- Groups (and private chats without drafts): ``typing`` after ``TYPING_AFTER`` (unless
  a message is out by then), repeated every ``TYPING_EVERY`` (4 s) as a low-priority
  action until the first message, timed on the scheduler's clock; a first message as
  soon as answer text exists; edits as the scheduler allows; a final edit.
- Telegram errors: ``RetryAfter`` pauses the chat for the time asked, lowers the
  scheduler's budget for the level blamed (``StreamHandle.retry_after``), and the newest
  text goes out after; network errors retry on the next tick (a ``sendMessage`` that
  may have been delivered is never sent again: :mod:`bot.reply.chain`); ``Forbidden``
  (the user blocked the bot, or it left the group) ends the reply quietly: nothing more
  is sent to that chat, the provider stream is stopped (``on_forbidden``), one INFO
  line; ``ChatMigrated`` (the group became a supergroup) moves the reply to the new
  chat, where it starts over in a new message; the rest is handled in
  :class:`bot.reply.chain.MessageChain`.

Rich replies (Bot API 10.1+, docs/telegram.md "Rich messages (Bot API 10.1+)"), for a
user who chose the rich format (:mod:`bot.conversation.formats`, read in
:meth:`TelegramReply.begin`): the same frames, rendered as rich Markdown
(:func:`bot.render.rich.render_rich_reply`) and put into rich messages by
:class:`bot.reply.rich_chain.RichChain`, through the same scheduler and budget. In a
private chat with drafts on: ``sendRichMessageDraft`` frames (a ``<tg-thinking>``
placeholder first, the reasoning in ``<tg-thinking>`` while the model
thinks, every draft with ``can_stop``: the user's stop button, whose
``stopped_message_generation`` update stops the turn as ``/stop`` does,
:meth:`ReplyFactory.stop_generation`), then the answer with ``sendRichMessage``
(reasoning collapsed in ``<details>``, or hidden as the user chose). Elsewhere: a first
``sendRichMessage``, then ``editMessageText(rich_message=…)`` edits. An answer over one
rich message's limits goes on in a new one, cut between blocks. The fallback ladder never
loses or doubles an answer:

- Telegram refuses the rich content (400, :func:`bot.reply.rich_api.is_rich_rejected`):
  this answer goes on the classic way in the same chat, from the frame refused (its rich
  messages, if any, are edited into classic ones);
- the Bot API server has no rich messages (404): rich messages are off for the process
  (one WARNING line) and the answer goes on the classic way;
- another refusal of a rich draft: the chat gets rich messages and edits instead of
  drafts (a 400: for the process);
- a ``sendRichMessage`` that timed out with its outcome unknown is not sent again
  (:mod:`bot.reply.rich_chain`): the rest of the answer follows it in a new message.

A classic answer to a user who chose no format, whose Markdown holds a table or a formula
(:func:`bot.conversation.formats.wants_rich`), carries a one-line hint about the setting,
once per user.

The states of a reply are tabled at the top of :mod:`bot.scheduler.core`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from telegram import Bot, Message
from telegram.constants import ChatAction, ChatType
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)

from bot.conversation.failures import describe_failure
from bot.conversation.formats import Formats, wants_rich
from bot.conversation.restart import RESTART_MARK
from bot.conversation.scope import thread_of
from bot.conversation.turn import Outcome, StreamState
from bot.render.markdown import MAX_MESSAGE_UNITS, Rendered, ReplyStrings, compose_reply
from bot.render.rich import render_rich_reply
from bot.render.rich_sanitize import escape_rich_text
from bot.reply.chain import SEND_TIMEOUT, DraftRefused, MessageChain
from bot.reply.rich_chain import RichChain, RichRefused
from bot.reply.sends import ScheduledSends, retry_after_seconds
from bot.scheduler.core import JobKind, SendOutcome, SendScheduler, StreamHandle
from bot.settings import Settings
from bot.texts import Lang, t
from providers.errors import ProviderError

__all__ = ["ReplyFactory", "TelegramReply"]

log = logging.getLogger(__name__)

TYPING_EVERY = 4.0
"""Seconds between two ``typing`` actions (Telegram shows one for 5 s at most)."""
TYPING_AFTER = 0.15
"""Seconds before the first ``typing``: a first message sent by then is feedback enough,
and in a group (20 sends a minute) the saved call goes to answer text. The first
feedback still comes within ~0.3 s of the user's message (issue: "within 300 ms")."""
WAITING_EVERY = 10.0
"""Seconds between two updates of the "waiting for the model… N s" text, shown while no
chunk has come (the first after this many seconds)."""
_MARKS = {Outcome.STOPPED: "mark_stopped", Outcome.INTERRUPTED: "mark_interrupted"}
MAX_PROMOTIONS = 3
"""High-priority frames one reply may queue because its draft looked full (a bound on a
misjudged estimate; see :meth:`TelegramReply.update`)."""
_STALE = Rendered("")
"""What a classic chain taking over a rich reply's messages believes they show: never a
real part (parts are never blank), so each is edited."""
_FENCE_RE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")


@dataclass(frozen=True)
class _Frame:
    """A request to show the reply, queued on the scheduler.

    It carries no text: the newest state is rendered when the scheduler sends it,
    so at most one intermediate frame per reply is queued however fast chunks
    arrive, and what goes out is always the newest text. ``version`` makes each
    frame distinct; ``suffix`` is a mark under the text; ``fixed`` a ready text (an
    error notice); ``again`` counts the extra steps a frame needs (a split).
    """

    version: int = 0
    suffix: str = ""
    final: bool = False
    fixed: Rendered | None = None
    again: int = 0


@dataclass(frozen=True)
class _Typing:
    """A ``typing`` chat action; ``n`` makes each one distinct."""

    n: int


@dataclass
class ReplyFactory:
    """Opens a :class:`TelegramReply` for a user's message; owns the chats without drafts.

    ``waiting_every``: seconds between two updates of the waiting text (tests shorten it).
    ``no_drafts``: chats whose drafts were refused (400); ``drafts_available``: ``False``
    once the Bot API server answered ``sendMessageDraft`` 404 (it lacks the method).
    ``send_timeout``: seconds each message call may take
    (:data:`~bot.reply.chain.SEND_TIMEOUT`; tests shorten it). ``formats``: where each
    answer's format is read (:mod:`bot.conversation.formats`; ``None``: every answer
    classic);
    ``rich_available``: ``False`` once the server answered a rich message 404 (it has
    none, Bot API before 10.1); ``no_rich_drafts``: chats whose rich drafts were refused
    (400).
    """

    bot: Bot
    settings: Settings
    scheduler: SendScheduler
    no_drafts: set[int] = field(default_factory=set)
    waiting_every: float = WAITING_EVERY
    drafts_available: bool = True
    send_timeout: float = SEND_TIMEOUT
    formats: Formats | None = None
    rich_available: bool = True
    no_rich_drafts: set[int] = field(default_factory=set)
    _draft_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _stoppable: dict[tuple[int, int], TelegramReply] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Let the bot's other sends into chats share the scheduler's budget: attach the
        scheduler to the bot's :class:`~bot.reply.sends.ScheduledSends`, if it has one."""
        limiter = getattr(self.bot, "rate_limiter", None)
        if isinstance(limiter, ScheduledSends):
            limiter.attach(self.scheduler)

    def open(
        self,
        message: Message,
        *,
        lang: Lang,
        show_reasoning: bool = True,
        on_forbidden: Callable[[], object] | None = None,
    ) -> TelegramReply:
        """A reply to ``message``, in its chat and topic, in ``lang``, in the format its
        sender chose (read when the reply begins)."""
        return self.open_in(
            message.chat_id,
            private=message.chat.type == ChatType.PRIVATE,
            reply_to=message.message_id,
            thread_id=thread_of(message),
            lang=lang,
            show_reasoning=show_reasoning,
            on_forbidden=on_forbidden,
            user_id=message.from_user.id if message.from_user is not None else None,
        )

    def open_in(
        self,
        chat_id: int,
        *,
        private: bool,
        reply_to: int | None,
        thread_id: int | None = None,
        lang: Lang,
        show_reasoning: bool = True,
        on_forbidden: Callable[[], object] | None = None,
        user_id: int | None = None,
    ) -> TelegramReply:
        """A reply in chat ``chat_id`` (a ``private`` chat, or a group's topic ``thread_id``)
        to message ``reply_to`` of that chat, in ``lang``: the chat need not be the
        question's (a group's answer in its asker's private chat,
        :mod:`bot.conversation.private_answers`). ``user_id`` is whose format it takes
        (in a private chat its user's, whose id is the chat's, by default).
        ``on_forbidden`` stops the turn: it is called when Telegram says the bot was
        blocked, and when the user presses a rich draft's stop button."""
        drafts = (
            private
            and self.settings.use_drafts
            and self.drafts_available
            and chat_id not in self.no_drafts
        )
        rich_drafts = private and self.settings.use_drafts and chat_id not in self.no_rich_drafts
        if drafts:
            interval = self.settings.draft_interval
        elif private:
            interval = self.settings.private_edit_interval
        else:
            interval = self.settings.group_edit_interval
        chain = MessageChain(
            self.bot,
            chat_id,
            reply_to=reply_to,
            thread_id=thread_id,
            send_timeout=self.send_timeout,
        )
        handle = self.scheduler.open_stream(chat_id, min_interval=interval)
        draft_id = next(self._draft_ids) if drafts or rich_drafts else None
        return TelegramReply(
            chain,
            handle,
            lang=lang,
            show_reasoning=show_reasoning,
            draft_id=draft_id if drafts else None,
            on_forbidden=on_forbidden,
            on_draft_failure=self._drafts_failed,
            waiting_every=self.waiting_every,
            factory=self,
            user_id=user_id if user_id is not None or not private else chat_id,
            rich_draft_id=draft_id if rich_drafts else None,
        )

    def stop_generation(self, chat_id: int, draft_id: int) -> bool:
        """The user pressed the stop button of rich draft ``draft_id`` in ``chat_id``
        (a ``stopped_message_generation`` update): stop that reply's turn as ``/stop``
        does. False when no reply of this process shows that draft (it ended, or the
        press is older than a restart)."""
        reply = self._stoppable.get((chat_id, draft_id))
        return reply is not None and reply.stop_pressed()

    def _stoppable_from(self, reply: TelegramReply, chat_id: int, draft_id: int) -> None:
        """``reply`` shows rich draft ``draft_id`` in ``chat_id`` with a stop button."""
        self._stoppable[(chat_id, draft_id)] = reply

    def _forget(self, reply: TelegramReply) -> None:
        """``reply`` ended: its stop button no longer stops anything."""
        for key in [k for k, v in self._stoppable.items() if v is reply]:
            del self._stoppable[key]

    def _drafts_failed(self, chat_id: int, error: TelegramError) -> None:
        """Remember a refused draft: a 404 for the process, a 400 for the chat."""
        if isinstance(error, InvalidToken):
            if self.drafts_available:
                log.info("the Bot API server has no sendMessageDraft; replies use messages")
            self.drafts_available = False
        elif isinstance(error, BadRequest):
            self.no_drafts.add(chat_id)

    def _rich_drafts_failed(self, chat_id: int, error: TelegramError) -> None:
        """Remember a rich draft refused (not for its content): a 400 for the chat."""
        if isinstance(error, BadRequest):
            self.no_rich_drafts.add(chat_id)

    def _rich_refused(self, error: RichRefused) -> None:
        """A server without rich messages: off for the process, said once (WARNING)."""
        if error.unsupported and self.rich_available:
            log.warning(
                "the Bot API server has no rich messages (%s); every answer is sent the "
                "classic way until the bot restarts",
                error.error.message,
            )
            self.rich_available = False


class TelegramReply:
    """Shows one turn in one chat through the send scheduler.

    ``waiting_every``: seconds between two updates of the waiting text while no chunk
    has come (:data:`WAITING_EVERY` from the factory); ``None`` shows none.
    ``factory`` (the :class:`ReplyFactory` that opened it; ``None``: classic only) gives
    the format of the answer to ``user_id`` and the rich path's shared state;
    ``rich_draft_id``: the draft a rich answer streams through (``None``: rich messages
    and edits). ``chain`` is the classic chain, also while the answer is rich (its chat,
    topic and ``reply_to`` are the reply's); :attr:`rich` the rich one, while rich.
    """

    def __init__(
        self,
        chain: MessageChain,
        handle: StreamHandle,
        *,
        lang: Lang,
        show_reasoning: bool = True,
        draft_id: int | None = None,
        on_forbidden: Callable[[], object] | None = None,
        on_draft_failure: Callable[[int, TelegramError], None] | None = None,
        waiting_every: float | None = None,
        factory: ReplyFactory | None = None,
        user_id: int | None = None,
        rich_draft_id: int | None = None,
    ) -> None:
        self.chain = chain
        self.handle = handle
        self.lang = lang
        self.show_reasoning = show_reasoning
        self.draft_id = draft_id
        self.forbidden = False
        self.rich: RichChain | None = None
        """The rich chain while the answer is rich (set by :meth:`begin`)."""
        self._on_forbidden = on_forbidden
        self._on_draft_failure = on_draft_failure
        self._factory = factory
        self._user_id = user_id
        self._classic_draft_id = draft_id
        self._rich_draft_id = rich_draft_id
        self.on_first_message: Callable[[int], object] | None = None
        """Called once with the id of the reply's first message when it is sent."""
        self._state = StreamState()
        self._submitted = False
        self._queued: int | None = None  # the version of the non-final frame waiting
        self._version = 0
        self._closing = False
        self._typing: asyncio.Task[None] | None = None
        self._waiting_every = waiting_every
        self._waiting: asyncio.Task[None] | None = None
        self._waited: int | None = None  # whole seconds waited, shown until a chunk comes
        self._measured: tuple[int, int] | None = None  # (answer chars, units) at a step
        self._promotions = 0
        self._hint = False  # a classic answer with a table or formula may carry the hint
        self._base: int | None = None  # answer chars shown by a rich message sent unconfirmed
        self._rich_shown = False  # the last rich frame had text (not just the placeholder)
        self._strings = ReplyStrings(
            thinking=t("thinking", lang),
            thought_for=t("thought_for", lang),
            thinking_untimed=t("thinking", lang).split("{")[0].strip(),
        )

    async def begin(self) -> None:
        """Choose the format (:mod:`bot.conversation.formats`), then show at once that the
        message arrived: an empty draft (a rich one: ``<tg-thinking>``), or ``typing``."""
        await self._choose_format()
        if self.draft_id is not None:
            # The "Thinking…" placeholder is an action: it goes at once when the budget
            # has room, and under load it yields to answer text instead of delaying it.
            self._submit(self._frame(), "action")
        else:
            self._typing = asyncio.create_task(self._keep_typing())
        if self._waiting_every is not None and self._waiting_every > 0:
            self._waiting = asyncio.create_task(self._keep_waiting(self._waiting_every))

    async def _choose_format(self) -> None:
        """Go rich when the user (or the group's default) chose it and the server has rich
        messages; note whether a classic answer may carry the format hint."""
        factory = self._factory
        if factory is None or factory.formats is None:
            return
        choice = await factory.formats.choice(self._user_id, self.chain.chat_id)
        self._hint = choice.hint and factory.rich_available
        if not (choice.rich and factory.rich_available):
            return
        chain = self.chain
        self.rich = RichChain(
            chain.bot,
            chain.chat_id,
            reply_to=chain.reply_to,
            thread_id=chain.thread_id,
            send_timeout=chain.send_timeout,
        )
        self.draft_id = self._rich_draft_id
        if self.draft_id is not None:
            factory._stoppable_from(self, chain.chat_id, self.draft_id)

    def stop_pressed(self) -> bool:
        """The user pressed the stop button of this reply's rich draft: stop the turn, as
        ``/stop`` does (the partial answer stays, marked stopped). False when this reply
        cannot stop its turn (it was opened without ``on_forbidden``)."""
        if self._on_forbidden is None:
            return False
        log.info("the stop button was pressed in chat %s", self.chain.chat_id)
        self._on_forbidden()
        return True

    def update(self, state: StreamState) -> None:
        """Note the newest text; queue a frame unless one is already waiting (O(1) per chunk).

        In a private chat streaming through drafts, the frame that will put the full
        first message is queued as a ``first`` frame (high priority) instead: once the
        answer outgrows one message, that message can be sent, and sending it now
        spares the end of the answer a call (200 chats ending within 10 s need ~35
        calls a second at their ends; bench/streaming.py, bench/send_model.py).
        "Outgrown" is estimated without rendering: the rendered length at the last
        step plus the answer characters since, scaled by that step's units per
        character when below 1 (never above: reasoning shown above the answer would
        inflate it).
        """
        self._state = state
        if state.answer or state.reasoning:
            self._waited = None
        if self.forbidden:
            self._stop_turn()  # again: the turn may have started after the refusal
            return
        if self._awaiting_final:  # the rest goes with the final frame (MessageChain)
            return
        if self._first_message_due(len(state.answer)):
            self._measured = None  # one promotion per step: the next step measures again
            self._promotions += 1
            self._submit(self._frame(), "first")
        elif self._queued is None:
            self._submit(self._frame(), "intermediate")

    @property
    def _awaiting_final(self) -> bool:
        """Whether the rest of the answer waits for the final frame (a send unconfirmed)."""
        return (self.rich or self.chain).awaiting_final

    @property
    def _has_message(self) -> bool:
        """True once the reply's first message exists."""
        return (self.rich or self.chain).has_message

    def _first_message_due(self, chars: int) -> bool:
        """Whether the draft has likely outgrown one message while no message exists yet."""
        if self._measured is None or self.chain.has_message or self._closing:
            return False
        seen, units = self._measured
        grown = chars - seen
        if units < seen:  # rendering has been shrinking the text (Markdown marks, fences)
            grown = grown * units // seen
        return (
            units + grown > MAX_MESSAGE_UNITS
            and self._promotions < MAX_PROMOTIONS
            and self.draft_id is not None
        )

    async def restart(self, state: StreamState) -> None:
        """A new attempt replaces the partial text; say the connection was lost meanwhile."""
        self._state = state
        if self.forbidden:
            return
        await self.handle.flush()
        if self.rich is not None:
            await self.rich.rewind()
        await self.chain.rewind()
        self._base = None
        suffix = t("mark_retrying", self.lang) if state.notice is None else ""
        self._submit(self._frame(suffix=suffix), "intermediate")

    async def finish(self, state: StreamState, outcome: Outcome) -> None:
        """Send the final text (marked when stopped or interrupted) and wait until it is shown.

        A classic answer with a table or a formula, to a user who chose no format and was
        not told yet, carries the format hint (``rich_hint``), once per user."""
        self._state = state
        marks = [t(_MARKS[outcome], self.lang)] if outcome in _MARKS else []
        if state.notice == RESTART_MARK:  # a shutdown ended it: its own mark says why
            marks = []
        if state.notice:
            marks.append(t(state.notice, self.lang))
        if await self._hint_due(state):
            marks.append(t("rich_hint", self.lang))
        await self._close(self._frame(suffix="\n".join(marks), final=True))

    async def _hint_due(self, state: StreamState) -> bool:
        """Whether this final frame carries the format hint (and it is now remembered)."""
        factory = self._factory
        if (
            not self._hint
            or self.rich is not None
            or self.forbidden
            or self._user_id is None
            or factory is None
            or factory.formats is None
            or not factory.rich_available
            or not wants_rich(state.answer)
        ):
            return False
        self._hint = False
        return await factory.formats.mark_hinted(self._user_id)

    async def fail(self, state: StreamState, error: ProviderError) -> None:
        """Keep any partial text, marked interrupted, and say what went wrong."""
        self._state = state
        notice = describe_failure(error, self.lang)
        if state.answer:
            suffix = t("mark_interrupted", self.lang) + "\n" + notice
            await self._close(self._frame(suffix=suffix, final=True))
        else:
            await self._close(self._frame(final=True, fixed=Rendered(notice)))

    async def abandon(self) -> None:
        """Drop a reply that will show nothing (/retry with nothing to redo, or a turn that
        ended by an unexpected error: the error handler speaks then).

        Stops ``typing`` and releases the scheduler stream; pending frames are dropped.
        """
        await self._stop_typing()
        await self._stop_waiting()
        self.handle.cancel()
        if self._factory is not None:
            self._factory._forget(self)

    # ----- internals --------------------------------------------------------------
    def _frame(
        self, *, suffix: str = "", final: bool = False, fixed: Rendered | None = None
    ) -> _Frame:
        self._version += 1
        return _Frame(self._version, suffix, final, fixed)

    def _view(self) -> tuple[str, str]:
        """The answer and reasoning to show: all of them, or, after a rich message was
        sent unconfirmed as the live part, the answer after what it showed (a code
        block it cut open opened again) and no reasoning (it showed that)."""
        state = self._state
        if self._base is None:
            return state.answer, state.reasoning
        return _after(state.answer, self._base), ""

    def _suffix(self, frame: _Frame) -> str:
        """``frame``'s mark, or the waiting text while nothing came."""
        state = self._state
        suffix = frame.suffix
        nothing_yet = not (state.answer or state.reasoning)
        if self._waited is not None and nothing_yet and not frame.final and not suffix:
            suffix = t("waiting", self.lang, seconds=self._waited)
        return suffix

    def _render(self, frame: _Frame) -> Rendered:
        """The reply as it stands now (the newest text), with ``frame``'s mark."""
        if frame.fixed is not None:
            return frame.fixed
        answer, reasoning = self._view()
        return compose_reply(
            answer,
            reasoning=reasoning,
            thinking_seconds=round(self._state.thinking_seconds()) if reasoning else None,
            show_reasoning=self.show_reasoning,
            partial=not frame.final,
            strings=self._strings,
            suffix=self._suffix(frame),
        )

    def _render_rich(self, frame: _Frame, *, draft: bool) -> list[str]:
        """The reply as rich Markdown, one text per message (``draft``: the last is a
        draft, where the reasoning shows in ``<tg-thinking>``); a draft with nothing to
        show yet is the ``<tg-thinking>`` placeholder."""
        if frame.fixed is not None:
            notice = escape_rich_text(frame.fixed.text)
            parts = [notice] if notice.strip() else []
        else:
            answer, reasoning = self._view()
            parts = render_rich_reply(
                answer,
                reasoning=reasoning,
                thinking_seconds=self._state.thinking_seconds() if reasoning else None,
                show_reasoning=self.show_reasoning,
                partial=not frame.final,
                draft=draft,
                strings=self._strings,
                suffix=self._suffix(frame),
            )
        self._rich_shown = bool(parts)
        if not parts and draft:
            placeholder = escape_rich_text(self._strings.thinking_untimed)
            parts = [f"<tg-thinking>{placeholder}</tg-thinking>"]
        return parts

    def _submit(self, frame: _Frame | _Typing, kind: JobKind) -> None:
        if kind == "intermediate" and not self._submitted:
            kind = "first"
        if kind != "action":
            self._submitted = True
            if isinstance(frame, _Frame) and kind != "final":
                self._queued = frame.version
        self.handle.submit(frame, kind=kind, send=self._send)

    async def _close(self, final: _Frame) -> None:
        await self._stop_typing()
        await self._stop_waiting()
        self._closing = True
        if not self.forbidden:
            self._submit(final, "final")
        delivered = await self.handle.close()
        if self._factory is not None:
            self._factory._forget(self)
        if not delivered:
            log.error("gave up delivering the final text of a reply to chat %s", self.chain.chat_id)

    async def _send(self, frame: _Frame | _Typing) -> SendOutcome:
        """The scheduler's send callback: one Bot API call, errors translated."""
        if self.forbidden:
            return SendOutcome.DROP
        whole: Rendered | None = None
        try:
            if isinstance(frame, _Typing):
                await self.chain.bot.send_chat_action(
                    self.chain.chat_id, ChatAction.TYPING, message_thread_id=self.chain.thread_id
                )
                return SendOutcome.SENT
            if frame.version == self._queued:
                self._queued = None  # chunks from now on need a new frame
            if self._awaiting_final and not frame.final:
                return SendOutcome.SENT  # moot: the rest goes with the final frame
            if self.rich is not None:
                done = await self._step_rich(self.rich, frame)
            else:
                drafting = self.draft_id is not None and not frame.final
                draft_id = self.draft_id if drafting else None
                whole = self._render(frame)
                if drafting:
                    self._measured = (len(self._state.answer), whole.utf16_length)
                done = await self.chain.step(whole, draft_id=draft_id)
            active = self.rich or self.chain
            self.handle.set_sends_owed(active.sends_owed)
            first = active.message_ids[0] if active.message_ids else None
            if self.on_first_message is not None and first is not None:
                tell, self.on_first_message = self.on_first_message, None
                tell(first)
        except RichRefused as exc:
            return self._rich_refused(frame, exc)
        except DraftRefused as exc:
            if self.rich is not None:
                return self._rich_drafts_refused(frame, exc.error)
            return self._drafts_refused(frame, whole, exc.error)
        except RetryAfter as exc:
            wait = retry_after_seconds(exc)
            log.warning("Telegram asked to wait %.0f s (chat %s)", wait, self.chain.chat_id)
            self.handle.retry_after(wait)
            return SendOutcome.RETRY
        except Forbidden:
            self._forbid()
            return SendOutcome.DROP
        except BadRequest as exc:
            return self._bad_request(frame, exc)
        except NetworkError as exc:
            log.warning("network error while replying: %s", exc.message)
            return SendOutcome.RETRY
        except ChatMigrated as exc:
            log.info(
                "chat %s became supergroup %s; the reply goes on there",
                self.chain.chat_id,
                exc.new_chat_id,
            )
            self.chain.move_to(int(exc.new_chat_id))
            if self.rich is not None:
                self.rich.move_to(int(exc.new_chat_id))
            self._base = None  # it starts over there, whole
            return SendOutcome.RETRY
        except TelegramError as exc:  # InvalidToken, …: this reply cannot go on
            log.error("Telegram error while replying in chat %s: %s", self.chain.chat_id, exc)
            return SendOutcome.DROP
        if not done:
            self._again(frame, self._next_kind(frame))
        return SendOutcome.SENT

    async def _step_rich(self, rich: RichChain, frame: _Frame) -> bool:
        """One step of a rich frame (:meth:`RichChain.step`); a live part sent unconfirmed
        makes the rest of the answer start after the text it showed (:meth:`_view`)."""
        drafting = self.draft_id is not None and not frame.final
        shown = len(self._state.answer)
        parts = self._render_rich(frame, draft=drafting)
        done = await rich.step(parts, draft_id=self.draft_id if drafting else None)
        if rich.live_unconfirmed:
            rich.rebase()
            if not frame.final and frame.fixed is None:
                self._base = shown
        return done

    def _next_kind(self, frame: _Frame) -> JobKind:
        """The kind of the next step of a frame that froze a message and has more to show.

        The continuation of a reply that already has a message is an ordinary frame:
        it waits for the budget the final reserve leaves, so a busy group spends its
        sends on finishing replies rather than on continuations a final would redo.
        """
        if frame.final:
            return "final"
        return "intermediate" if self._has_message else "first"

    def _again(self, frame: _Frame, kind: JobKind) -> None:
        """Queue another step of ``frame``; moot for a non-final frame once the final one is
        queued (it redoes every step, and the scheduler refuses frames after the final)."""
        if kind != "final" and self._closing:
            return
        again = dataclasses.replace(frame, again=frame.again + 1)
        self.handle.submit(again, kind=kind, send=self._send)

    def _drafts_refused(
        self, frame: _Frame | _Typing, whole: Rendered | None, error: TelegramError
    ) -> SendOutcome:
        """Go on with messages: the frame's text (if any) at once as the first message."""
        log.info(
            "drafts refused in chat %s (%s); using messages", self.chain.chat_id, error.message
        )
        self.draft_id = None
        if self._on_draft_failure is not None:
            self._on_draft_failure(self.chain.chat_id, error)
        if self._typing is None and not self._closing:
            self._typing = asyncio.create_task(self._keep_typing())
        if isinstance(frame, _Frame) and whole is not None and whole.text.strip():
            # The same frame again at once, now as a message: no back-off for this refusal.
            self._again(frame, "first")
        return SendOutcome.SENT

    def _rich_drafts_refused(self, frame: _Frame | _Typing, error: TelegramError) -> SendOutcome:
        """A rich draft refused for another reason than its content: go on with rich
        messages and edits, the frame's text (if any) at once as the first message."""
        log.info(
            "rich drafts refused in chat %s (%s); using rich messages",
            self.chain.chat_id,
            error.message,
        )
        self.draft_id = None
        if self._factory is not None:
            self._factory._rich_drafts_failed(self.chain.chat_id, error)
            self._factory._forget(self)
        if self._typing is None and not self._closing:
            self._typing = asyncio.create_task(self._keep_typing())
        if isinstance(frame, _Frame) and self._rich_shown:
            self._again(frame, "first")
        return SendOutcome.SENT

    def _rich_refused(self, frame: _Frame | _Typing, error: RichRefused) -> SendOutcome:
        """Telegram refused this rich content (400), or has no rich messages (404): the
        answer goes on the classic way, from this frame, at once."""
        if self._factory is not None:
            self._factory._rich_refused(error)
        if not error.unsupported:
            log.warning(
                "Telegram refused a rich message in chat %s (%s); this answer is sent the "
                "classic way",
                self.chain.chat_id,
                error.error.message,
            )
        self._to_classic()
        if isinstance(frame, _Frame):
            self._again(frame, self._next_kind(frame))
        return SendOutcome.SENT

    def _to_classic(self) -> None:
        """Go on with the classic chain: it takes over the rich messages of the current
        parts (edited into classic ones, never sent twice), its own drafts if any."""
        rich, self.rich = self.rich, None
        if rich is None:
            return
        if self._factory is not None:
            self._factory._forget(self)
        for message_id in rich.confirmed_after_frozen():
            self.chain.message_ids.append(message_id)
            self.chain.sent.append(_STALE)
        self.chain.awaiting_final = rich.awaiting_final
        self.draft_id = self._classic_draft_id
        if self.draft_id is None and self._typing is None and not self._closing:
            self._typing = asyncio.create_task(self._keep_typing())

    def _bad_request(self, frame: _Frame | _Typing, exc: BadRequest) -> SendOutcome:
        log.error("Telegram refused a reply frame in chat %s: %s", self.chain.chat_id, exc.message)
        return SendOutcome.DROP

    async def _keep_typing(self) -> None:
        """Queue ``typing`` after ``TYPING_AFTER`` s, then every ``TYPING_EVERY`` s, until the
        first message exists; waits on the scheduler's clock (``StreamHandle.clock``)."""
        clock = self.handle.clock
        await clock.sleep(TYPING_AFTER)
        for n in itertools.count():
            if self._has_message or self.forbidden:
                return
            self.handle.submit(_Typing(n), kind="action", send=self._send)
            await clock.sleep(TYPING_EVERY)

    async def _keep_waiting(self, every: float) -> None:
        """Every ``every`` s until the first chunk, note the whole seconds waited since
        :meth:`begin` and queue a frame to show them (unless one is queued already: it
        will show the newest count); waits on the scheduler's clock."""
        clock = self.handle.clock
        started = clock.now()
        while True:
            await clock.sleep(every)
            state = self._state
            if state.answer or state.reasoning or self.forbidden or self._closing:
                return
            self._waited = round(clock.now() - started)
            if self._queued is None:
                self._submit(self._frame(), "intermediate")

    async def _stop_waiting(self) -> None:
        if self._waiting is not None:
            self._waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._waiting
            self._waiting = None

    async def _stop_typing(self) -> None:
        if self._typing is not None:
            self._typing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._typing
            self._typing = None

    def _forbid(self) -> None:
        """Telegram's 403: the user blocked the bot (or it left the group). End quietly:
        nothing more goes to the chat (pending frames dropped), the turn is stopped."""
        if self.forbidden:
            return
        log.info("bot was blocked or removed in chat %s; stopping the reply", self.chain.chat_id)
        self.forbidden = True
        self.handle.cancel()
        self._stop_turn()

    def _stop_turn(self) -> None:
        """Ask the turn to stop (``on_forbidden``: idempotent, so safe on every chunk)."""
        if self._on_forbidden is not None:
            self._on_forbidden()


def _after(answer: str, start: int) -> str:
    """``answer`` from character ``start`` on, as Markdown of its own: when ``start`` falls
    inside a fenced code block, its opening fence line comes first."""
    fence: tuple[str, str] | None = None  # (fence, its whole opening line) while open
    for line in answer[:start].split("\n")[:-1]:  # the lines before the one cut
        match = _FENCE_RE.match(line)
        if match is None:
            continue
        marks = match[1]
        if fence is None:
            fence = (marks, line.strip())
        elif marks[0] == fence[0][0] and len(marks) >= len(fence[0]) and not match[2].strip():
            fence = None
    rest = answer[start:]
    if fence is not None:
        return fence[1] + "\n" + rest
    return rest
