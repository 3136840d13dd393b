"""The conversation turn: history in, provider stream out, answer stored.

This module knows nothing of Telegram. A turn talks to a :class:`ReplySink`; the
Telegram reply stream and the terminal chat are two sinks of the same turn.

A turn, in order:
1. takes the conversation's lock (turns of one conversation run one at a time);
2. loads the history and the chosen model, builds ``messages`` (system prompt,
   history, the new user message);
3. streams the answer (provider-level retries happen before the first chunk, see
   :func:`providers.retry.stream_with_retries`); a stream that breaks after text
   was shown is retried once from the start (the sink is told, so it can say so),
   and if that breaks too the partial answer is kept, marked as interrupted;
4. on "context too long" drops the older half of the history and tries once more;
5. stores the user message and the answer together, only when the answer ends
   (complete, stopped by ``/stop``, or interrupted). Reasoning is never stored, nor an
   empty answer (nothing, whitespace, only reasoning, only empty code blocks): the turn
   ends ``EMPTY`` and the sink shows the ``empty_answer`` notice instead.

The system message combines the operator's ``SYSTEM_PROMPT``, the user's own prompt and,
in a group, the chat's prompt, in the order :mod:`bot.conversation.prompts` documents; in
a group the model is one its admins allow (:mod:`bot.conversation.chat_settings`).

Each request carries the model's ``max_tokens`` (its catalogue entry, where the bot's
``MAX_TOKENS`` fills in those without one; 0 sends no cap).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import time
from collections.abc import Sequence
from typing import Protocol

from bot.conversation.chat_settings import (
    ChatSettings,
    load_chat_settings,
    load_user_prompt,
    pick_model,
)
from bot.conversation.failures import log_failure
from bot.conversation.prompts import combine_prompts
from bot.conversation.quota import QuotaLimits, Quotas, estimated_tokens
from bot.conversation.restart import RESTART_MARK, RESTART_PLACEHOLDER, TurnTracker, Untracked
from bot.conversation.scope import chat_of
from bot.conversation.types import ImageLoader, Outcome, ReplySink, StreamState, TurnInput
from providers.base import ChatClient
from providers.catalogue import Catalogue, ModelInfo
from providers.errors import (
    ContentBlockedError,
    ContextTooLongError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeout,
    StreamBroken,
)
from providers.retry import stream_with_retries
from providers.types import (
    AnswerDelta,
    ChatMessage,
    ChatRequest,
    Finish,
    ReasoningDelta,
    SessionRefresh,
    Usage,
    UsageReport,
)
from storage import ConversationStore, QuestionPace, StoredMessage

__all__ = [
    "ConversationService",
    "ImageLoader",
    "Outcome",
    "ReplySink",
    "StreamState",
    "TurnInput",
    "TurnObserver",
    "is_empty_answer",
    "scope_digest",
]

log = logging.getLogger(__name__)

_BROKEN = (StreamBroken, ProviderTimeout, ProviderConnectionError)
_BLOCKED_FINISH = frozenset({"sensitive", "content_filter"})
_EMPTY_FENCES = re.compile(r"(`{3,}|~{3,})[^\n`]*\n?\s*\1")
"""A fenced code block (CommonMark: three or more backticks or tildes, an info string)
with nothing but whitespace inside."""


def is_empty_answer(answer: str) -> bool:
    """Whether ``answer`` shows nothing: empty, whitespace, or only empty code blocks."""
    return not _EMPTY_FENCES.sub("", answer).strip()


def scope_digest(scope: str) -> str:
    """The first 10 hex digits of the SHA-256 of ``scope``: names a conversation in a log
    line without its user or chat ids."""
    return hashlib.sha256(scope.encode()).hexdigest()[:10]


class TurnObserver(Protocol):
    """Told what turns and provider streams did, for metrics (:mod:`bot.app.metrics`).

    ``model`` is the catalogue key (``"<platform>:<model>"``; ``"unknown"`` when the turn
    failed before its model was known); seconds are monotonic-clock durations. A method
    must not block or raise.
    """

    def turn_ended(self, model: str, outcome: str, seconds: float) -> None:
        """A turn ended: ``outcome`` is an :class:`Outcome` value (``"completed"``,
        ``"stopped"``, ``"interrupted"``, ``"failed"``, …), ``"error"`` when an
        exception (storage) ended it, ``"cancelled"`` when it was cancelled."""

    def first_text(self, model: str, seconds: float) -> None:
        """A stream's first answer or reasoning text came ``seconds`` after its request
        (provider-level retries before it included)."""

    def stream_ended(self, model: str, seconds: float) -> None:
        """A stream completed ``seconds`` after its request."""

    def provider_failed(self, model: str, error: BaseException) -> None:
        """A stream ended with ``error`` (a ``ProviderError``, after provider-level
        retries); the turn may still retry or recover."""

    def usage(self, model: str, usage: Usage) -> None:
        """The provider reported the token ``usage`` of one stream."""


class _Unobserved:
    """The :class:`TurnObserver` that ignores everything."""

    def turn_ended(self, model: str, outcome: str, seconds: float) -> None:
        """Ignore."""

    def first_text(self, model: str, seconds: float) -> None:
        """Ignore."""

    def stream_ended(self, model: str, seconds: float) -> None:
        """Ignore."""

    def provider_failed(self, model: str, error: BaseException) -> None:
        """Ignore."""

    def usage(self, model: str, usage: Usage) -> None:
        """Ignore."""


class ConversationService:
    """Runs conversation turns and owns the per-conversation model choice and ``/stop``.

    Each turn is logged in one INFO line (``turn: scope=<scope_digest> model=<key>
    outcome=<outcome> tokens=<total> seconds=<s>``, never the message text) and reported
    to ``observer``.
    """

    def __init__(
        self,
        *,
        store: ConversationStore,
        clients: dict[str, ChatClient],
        catalogue: Catalogue,
        default_model: ModelInfo,
        system_prompt: str,
        daily_turn_limit: int = 0,
        turns_per_minute: int = 0,
        observer: TurnObserver | None = None,
        tracker: TurnTracker | None = None,
        quotas: Quotas | None = None,
    ) -> None:
        self.store = store
        self.daily_turn_limit = daily_turn_limit
        # the daily quotas (bot.conversation.quota); by default only daily_turn_limit
        self.quotas = quotas or Quotas(store, QuotaLimits(user_daily_turns=daily_turn_limit))
        self.turns_per_minute = turns_per_minute
        self._pace = (
            QuestionPace(store.redis, per_minute=turns_per_minute) if turns_per_minute else None
        )
        self.clients = clients
        self.catalogue = catalogue
        self.default_model = default_model
        self.system_prompt = system_prompt
        self._stops: dict[str, asyncio.Event] = {}
        self._observer: TurnObserver = observer or _Unobserved()
        self._tracker: TurnTracker = tracker or Untracked()  # records the turns in flight
        self._restarting = False

    async def current_model(self, scope: str) -> ModelInfo:
        """The model ``scope`` uses: its own choice, unless that is disabled or (in a group)
        not allowed there; then the group's default, then the bot's
        (:func:`bot.conversation.chat_settings.pick_model`)."""
        stored = await self.store.get_model(scope)
        return pick_model(
            stored,
            enabled=self.enabled_models(),
            chat=await self.chat_settings(scope),
            fallback=self.default_model,
        )

    async def set_model(self, scope: str, key: str) -> ModelInfo | None:
        """Choose the model ``key`` for ``scope``; ``None`` when it is not enabled, or not
        allowed in the group ``scope`` belongs to."""
        info = self.catalogue.get(key)
        if info is None or info.platform not in self.clients:
            return None
        chat = await self.chat_settings(scope)
        if chat is not None and not chat.allows(info.key):
            return None
        await self.store.set_model(scope, info.key)
        return info

    def enabled_models(self) -> list[ModelInfo]:
        """The models of the platforms with a client, in catalogue order."""
        return [m for m in self.catalogue.enabled_models() if m.platform in self.clients]

    async def allowed_models(self, scope: str) -> list[ModelInfo]:
        """The enabled models ``scope`` may choose (in a group, those its admins allow)."""
        chat = await self.chat_settings(scope)
        return [m for m in self.enabled_models() if chat is None or chat.allows(m.key)]

    async def chat_settings(self, scope: str) -> ChatSettings | None:
        """The settings of the group ``scope`` belongs to; ``None`` outside groups."""
        chat_id = chat_of(scope)
        return None if chat_id is None else await load_chat_settings(self.store, chat_id)

    async def system_prompt_for(self, turn: TurnInput) -> str:
        """The system message of ``turn``: the operator's prompt, the user's own, and the
        group's (:func:`bot.conversation.prompts.combine_prompts` gives the order)."""
        chat = await self.chat_settings(turn.scope)
        user = await load_user_prompt(self.store, turn.user_id)
        return combine_prompts(
            self.system_prompt, user=user, chat=chat.prompt if chat is not None else ""
        )

    async def reset(self, scope: str) -> None:
        """Forget the history of ``scope`` (the model choice and options stay)."""
        await self.store.clear(scope)

    async def turns_left_today(self, user_id: int) -> int | None:
        """Questions ``user_id`` may still ask today (the quota day, :mod:`storage.usage`);
        ``None`` when there is no limit."""
        if not self.daily_turn_limit:
            return None
        used = (await self.store.get_user_usage(user_id))["requests"]
        return max(0, self.daily_turn_limit - used)

    async def wait_before_turn(self, user_id: int) -> float:
        """Count a question by ``user_id`` against the per-minute pace (if any).

        Returns 0.0 when it may be asked now, else the seconds to wait (not counted).
        """
        return 0.0 if self._pace is None else await self._pace.take(user_id)

    def stop(self, scope: str) -> bool:
        """Stop the answer being written in ``scope``; False when nothing is being written."""
        event = self._stops.get(scope)
        if event is None or event.is_set():
            return False
        event.set()
        return True

    def end_for_restart(self) -> int:
        """End every turn now, and every turn that reaches its answer from now on, as a
        shutdown does: the stream is closed, the reply shows :data:`RESTART_MARK` and the
        exchange is stored (see :mod:`bot.conversation.restart`). Returns the number of
        answers that were being written."""
        self._restarting = True
        writing = [event for event in self._stops.values() if not event.is_set()]
        for event in writing:
            event.set()
        return len(writing)

    async def run_turn(self, turn: TurnInput, sink: ReplySink) -> Outcome:
        """Answer ``turn`` through ``sink`` and store the exchange; never raises ProviderError.

        Storage errors (``LockTimeout``, a lost Redis connection) before the answer
        propagate after the sink was told to ``abandon``; once the answer is shown,
        storing it is retried and a failure is logged, never raised.
        """
        await sink.begin()
        ended = False
        try:
            async with self._tracker.track(turn, sink), self.store.lock(turn.scope):
                outcome = await self._locked_turn(turn, sink, history=None)
            ended = True
            return outcome
        finally:
            if not ended:
                await sink.abandon()

    async def retry_last(
        self, turn_scope: str, user_id: int, sink: ReplySink, *, load_images: ImageLoader | None
    ) -> Outcome | None:
        """Answer the last user message of ``turn_scope`` again, replacing its answer.

        ``load_images`` fetches the images of that message again from their stored
        references (Telegram ``file_id``s); without it an image turn is retried as
        text. Returns ``None`` (the sink untouched) when there is no exchange to redo.
        """
        async with self.store.lock(turn_scope):
            popped = await self.store.pop_last_exchange(turn_scope)
            if popped is None:
                return None
            user, old_answer = popped
            await sink.begin()
            ended = False
            try:
                images = (
                    await load_images(user.image_file_ids)
                    if load_images is not None and user.image_file_ids
                    else ()
                )
                turn = TurnInput(
                    scope=turn_scope,
                    user_id=user_id,
                    text=user.content,
                    images=images,
                    image_file_ids=user.image_file_ids,
                )
                async with self._tracker.track(turn, sink):
                    outcome = await self._locked_turn(turn, sink, history=None)
                ended = True
            finally:
                if not ended:
                    await sink.abandon()
                    await self.store.save_exchange(turn_scope, user, old_answer)
            if outcome in (Outcome.FAILED, Outcome.EMPTY):  # keep the old answer, not nothing
                await self.store.save_exchange(turn_scope, user, old_answer)
            return outcome

    async def _locked_turn(
        self, turn: TurnInput, sink: ReplySink, *, history: list[StoredMessage] | None
    ) -> Outcome:
        """Run one turn (the conversation's lock is held); log it and report it."""
        started = time.monotonic()
        state = StreamState()
        model: ModelInfo | None = None
        ended = "error"
        try:
            model = await self.current_model(turn.scope)
            outcome = await self._answer_locked(turn, sink, model, state, history=history)
            ended = outcome.value
            return outcome
        except asyncio.CancelledError:
            ended = "cancelled"
            raise
        finally:
            self._report_turn(turn.scope, model, ended, state, time.monotonic() - started)

    def _report_turn(
        self,
        scope: str,
        model: ModelInfo | None,
        outcome: str,
        state: StreamState,
        seconds: float,
    ) -> None:
        key = model.key if model is not None else "unknown"
        log.info(
            "turn: scope=%s model=%s outcome=%s tokens=%d seconds=%.2f",
            scope_digest(scope),
            key,
            outcome,
            state.usage_tokens,
            seconds,
        )
        self._observer.turn_ended(key, outcome, seconds)

    async def _answer_locked(
        self,
        turn: TurnInput,
        sink: ReplySink,
        model: ModelInfo,
        state: StreamState,
        *,
        history: list[StoredMessage] | None,
    ) -> Outcome:
        client = self.clients[model.platform]
        if history is None:
            history = await self.store.load_history(turn.scope)
        stop = self._stops[turn.scope] = asyncio.Event()
        try:
            outcome = (
                Outcome.STOPPED
                if self._restarting
                else (
                    await self._stream_with_context_retry(
                        client, model, turn, history, state, sink, stop
                    )
                )
            )
        except ProviderError as exc:
            log_failure(exc)
            await sink.fail(state, exc)
            return Outcome.FAILED
        finally:
            self._stops.pop(turn.scope, None)
        if outcome is Outcome.STOPPED and self._restarting:  # ended by a shutdown
            outcome, state.notice = Outcome.INTERRUPTED, RESTART_MARK
        if outcome is Outcome.COMPLETED and is_empty_answer(state.answer):
            log.info(
                "empty answer from %s (%d reasoning characters); not stored",
                model.key,
                len(state.reasoning),
            )
            state.answer = ""
            state.notice = "empty_answer"
            outcome = Outcome.EMPTY
        # The answer is delivered even when Redis is down: the save runs meanwhile and
        # retries (still under the lock, for up to 30 s, stored once); it never raises.
        saving = asyncio.ensure_future(self._store_exchange(turn, state, outcome, model))
        try:
            await sink.finish(state, outcome)
        finally:
            await saving
        return outcome

    async def _stream_with_context_retry(
        self,
        client: ChatClient,
        model: ModelInfo,
        turn: TurnInput,
        history: list[StoredMessage],
        state: StreamState,
        sink: ReplySink,
        stop: asyncio.Event,
    ) -> Outcome:
        try:
            return await self._stream_until_stop(client, model, turn, history, state, sink, stop)
        except ContextTooLongError:
            if not history:
                raise
            kept = _drop_older_half(history)
            log.info(
                "context too long for %s: kept %d of %d messages",
                model.key,
                len(kept),
                len(history),
            )
            state.reset()
            await sink.restart(state)
            state.notice = "older_dropped"
            return await self._stream_until_stop(client, model, turn, kept, state, sink, stop)

    async def _stream_until_stop(
        self,
        client: ChatClient,
        model: ModelInfo,
        turn: TurnInput,
        history: Sequence[StoredMessage],
        state: StreamState,
        sink: ReplySink,
        stop: asyncio.Event,
    ) -> Outcome:
        request = self._build_request(model, history, turn, await self.system_prompt_for(turn))
        work = asyncio.ensure_future(self._stream_twice(client, request, state, sink, model.key))
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({work, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
        if work.done():
            outcome = work.result()
        else:
            work.cancel()  # closes the provider stream (aclosing in _stream_once)
            with contextlib.suppress(asyncio.CancelledError):
                await work
            outcome = Outcome.STOPPED
        if not state.usage_tokens:  # the provider reported no usage: charge an estimate
            state.usage_tokens = estimated_tokens(
                request.messages, answer=state.answer, reasoning=state.reasoning
            )
        return outcome

    async def _stream_twice(
        self,
        client: ChatClient,
        request: ChatRequest,
        state: StreamState,
        sink: ReplySink,
        model: str,
    ) -> Outcome:
        try:
            await self._stream_once(client, request, state, sink, model)
            return Outcome.COMPLETED
        except _BROKEN as exc:
            if not (state.answer or state.reasoning):
                raise  # nothing was shown: provider-level retries already ran
            log.warning("stream broke after text was shown (%s); retrying once", type(exc).__name__)
        state.reset()
        await sink.restart(state)
        try:
            await self._stream_once(client, request, state, sink, model)
            return Outcome.COMPLETED
        except _BROKEN as exc:
            if not state.answer:
                raise
            log.warning("stream broke again (%s); keeping the partial answer", type(exc).__name__)
            return Outcome.INTERRUPTED

    async def _stream_once(
        self,
        client: ChatClient,
        request: ChatRequest,
        state: StreamState,
        sink: ReplySink,
        model: str,
    ) -> None:
        started = time.monotonic()
        try:
            await self._read_stream(client, request, state, sink, model, started)
        except ProviderError as exc:
            self._observer.provider_failed(model, exc)
            raise
        self._observer.stream_ended(model, time.monotonic() - started)

    async def _read_stream(
        self,
        client: ChatClient,
        request: ChatRequest,
        state: StreamState,
        sink: ReplySink,
        model: str,
        started: float,
    ) -> None:
        waiting = True  # for the first text
        async with contextlib.aclosing(stream_with_retries(client, request)) as chunks:
            async for chunk in chunks:
                if waiting and isinstance(chunk, AnswerDelta | ReasoningDelta) and chunk.text:
                    waiting = False
                    self._observer.first_text(model, time.monotonic() - started)
                if isinstance(chunk, AnswerDelta):
                    if not chunk.text:
                        continue
                    if state.answer_started is None:
                        state.answer_started = time.monotonic()
                    state.answer += chunk.text
                    sink.update(state)
                elif isinstance(chunk, ReasoningDelta):
                    if chunk.text:
                        state.reasoning += chunk.text
                        sink.update(state)
                elif isinstance(chunk, SessionRefresh):
                    await self.store.set_provider_session(client.name, chunk.cookies)
                elif isinstance(chunk, UsageReport):
                    state.usage_tokens = chunk.usage.total_tokens
                    self._observer.usage(model, chunk.usage)
                elif isinstance(chunk, Finish):
                    self._on_finish(chunk, state, request)

    @staticmethod
    def _on_finish(chunk: Finish, state: StreamState, request: ChatRequest) -> None:
        """A safety stop with no answer is a block; a length stop is said in a notice.

        Zhipu ends a blocked stream with ``finish_reason: "sensitive"`` (SDK
        ``chat/completions`` types); OpenAI-style servers say ``"content_filter"``.
        """
        if chunk.finish_reason in _BLOCKED_FINISH and not state.answer.strip():
            raise ContentBlockedError(
                f"answer stopped by the provider's safety review ({chunk.finish_reason})",
                status=0,
                model=request.model,
            )
        if chunk.finish_reason == "length":
            state.notice = "answer_cut_length"

    def _build_request(
        self, model: ModelInfo, history: Sequence[StoredMessage], turn: TurnInput, system: str
    ) -> ChatRequest:
        messages: list[ChatMessage] = []
        if system:
            messages.append(ChatMessage("system", system))
        if turn.context:
            messages.append(ChatMessage("system", turn.context))
        for stored in history:
            content = stored.content
            if stored.image_file_ids:
                content = "[image] " * len(stored.image_file_ids) + content
            messages.append(ChatMessage(stored.role, content))
        messages.append(ChatMessage("user", turn.content, images=turn.images))
        return ChatRequest(
            model=model.model,
            messages=tuple(messages),
            user_id=str(turn.user_id),
            max_tokens=model.max_tokens or None,
        )

    async def _store_exchange(
        self, turn: TurnInput, state: StreamState, outcome: Outcome, model: ModelInfo
    ) -> None:
        text = state.answer
        if is_empty_answer(text):
            if state.notice != RESTART_MARK:
                return  # no answer text (stopped before any, or EMPTY): nothing coherent to keep
            text = RESTART_PLACEHOLDER  # cut by a shutdown: kept so /retry can redo it
        user = StoredMessage("user", turn.content, image_file_ids=turn.image_file_ids)
        answer = StoredMessage("assistant", text, interrupted=outcome is not Outcome.COMPLETED)
        if await self.store.save_exchange(turn.scope, user, answer):  # logged if not
            await self.store.count_usage(
                turn.scope,
                user_id=turn.user_id,
                tokens=state.usage_tokens,
                model=model.key,
                platform=model.platform,
                chat_id=chat_of(turn.scope),
            )


def _drop_older_half(history: list[StoredMessage]) -> list[StoredMessage]:
    """Keep the newer half of ``history``, starting on a user message."""
    kept = history[len(history) // 2 :]
    while kept and kept[0].role != "user":
        kept = kept[1:]
    return kept
