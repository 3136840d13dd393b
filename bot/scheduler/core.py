"""The bot-wide send scheduler: every send, edit, draft and chat action of reply streams.

State tables (the names below are attributes; "sends owed" is one reply's estimate of
the Bot API calls its end, the final frame, will still need: ``MessageChain.sends_owed``
→ ``StreamHandle.set_sends_owed`` → ``Stream.sends_owed``, summed per chat in
``ChatBudget.sends_owed``, the final reserve's count).

(a) A reply stream (:class:`bot.reply.stream.TelegramReply`):

==========  ==========================================  ====================================
state       entered by                                  left by
==========  ==========================================  ====================================
opened      ``ReplyFactory.open`` (a handle opened)     ``begin()`` → waiting
waiting     ``begin()``: drafts: "Thinking…" queued as  the first ``update()`` → streaming;
            an action; else the typing loop (first      ``finish``/``fail`` → closing;
            ``typing`` after ``TYPING_AFTER``, then     ``abandon()`` → abandoned
            every ``TYPING_EVERY`` s of the handle's    ``Forbidden`` → forbidden
            clock, until a message exists)
streaming   a ``first`` frame queued; then one          ``finish``/``fail`` → closing;
            ``intermediate`` frame at a time            ``Forbidden`` → forbidden;
            (``first`` again when a draft outgrows a    ``abandon()`` → abandoned
            message); ``restart()`` stays here; a
            refused draft switches to messages; an
            unconfirmed send leaves only the final
forbidden   Telegram's ``Forbidden``: the handle        ``finish``/``fail`` → closing (no
            cancelled (nothing more sent), the turn     final frame queued)
            stopped (``on_forbidden``), one INFO line
closing     ``finish``/``fail``: typing stopped, the    ``handle.close()`` returns (final
            ``final`` frame queued                      delivered or given up) → closed
closed      the handle closed (detached)                —
abandoned   ``abandon()``: typing stopped, the handle   —
            cancelled (pending frames dropped)
==========  ==========================================  ====================================

(b) The scheduler's record of one stream (:class:`bot.scheduler.stream.Stream`); at
most one send in flight throughout, ``idle`` set while nothing is pending or in flight:

===============  =====================================  =====================================
state            entered by                             left by
===============  =====================================  =====================================
open             ``open_stream``                        a non-action frame queued → framed
                                                        (a ``final`` one: final queued);
                                                        fail; detach
framed           a non-action frame queued: its         a ``final`` frame queued → final
                 ``sends_owed`` counted in the chat's   queued; fail; detach
                 ``sends_owed`` (the final reserve)
final queued     a ``final`` frame queued: only final   the final sent (or equal to the last
                 frames accepted; still counted         frame sent) → final delivered; fail
final delivered  the final sent; no longer counted      detach
failed           a first/final frame given up           detach
                 (deadline, ``DROP``), a send callback
                 raised, or the scheduler closed:
                 pending frames dropped, new ignored;
                 no longer counted
detached         ``StreamHandle.close()`` (after the    —
                 flush) or ``cancel()``: pending
                 frames dropped, the record forgotten;
                 a submit raises ``StreamClosedError``;
                 a send in flight then answering
                 ``DROP`` is only counted, not failed
===============  =====================================  =====================================

One background task (the dispatcher) owns Telegram's flood budget at three levels at
once: per chat, per group, and global (see :class:`~bot.scheduler.limits.Limits`).
Each reply opens a :class:`StreamHandle` and submits frames to it; the dispatcher
decides which frame goes out when:

- coalescing: a reply keeps only its newest pending frame per kind; a frame equal
  to the last one delivered is skipped;
- priority: first and final frames go before intermediate frames of any reply,
  intermediate frames before chat actions;
- the final reserve: an intermediate frame (or chat action) goes only if its chat
  and group keep, after it, room for the sends owed there: those of every open reply
  that has submitted a frame and not yet delivered its final, its own included,
  capped by ``Limits.final_reserve`` and by each bucket's burst − 1 and window's
  cap − 1 (see :class:`~bot.scheduler.limits.Limits`). A lone reply streams at the
  bucket's rate and its final finds a token; replies finishing one after another in
  a busy group each get their final out at once. Chat actions need
  ``action_reserve`` more than an intermediate frame;
- fairness: among ready first and final frames the oldest goes first (by its
  deadline, i.e. submission); among other ready jobs the reply served least
  recently goes first (round robin under a shared budget);
- order: at most one send in flight per reply; sends of different replies run
  concurrently as tasks, with their tokens reserved before launch, at most
  ``Limits.max_in_flight`` of them at once;
- cost: a new intermediate frame that only replaces a pending frame of its reply
  does not wake the dispatcher (O(1)); the newest frame is still the one sent;
- errors: a send callback returns :class:`SendOutcome` (``None`` = sent); ``RETRY``
  re-queues (the newest frame goes out after a back-off and any pause set with
  :meth:`SendScheduler.pause_chat` / :meth:`SendScheduler.pause_all`), and first
  and final frames are given up ``give_up_seconds`` after their submission;
- adaptive flood control: Telegram's 429 (:meth:`StreamHandle.retry_after`) pauses the
  chat and lowers the budget of the level it is blamed on (:meth:`SendScheduler.retry_after`,
  :mod:`bot.scheduler.adapt`); :meth:`SendScheduler.current_rates` shows each level's
  budget now.

No Telegram import here: the reply stream translates ``telegram.error.RetryAfter``
and friends into outcomes and pauses.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import math
from collections import deque
from contextvars import ContextVar
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Literal, TypeVar

from bot.scheduler.clock import Clock
from bot.scheduler.handle import StreamHandle
from bot.scheduler.limits import ChatBudget, Level, LevelRate, Limits
from bot.scheduler.stats import JobKind, SchedulerStats
from bot.scheduler.stream import Job, SendCallback, SendOutcome, Stream, StreamClosedError

__all__ = [
    "ACTION_TTL",
    "GLOBAL_BUSY",
    "GLOBAL_SPAN",
    "IN_SEND",
    "AdaptiveRates",
    "JobKind",
    "LevelRate",
    "Limits",
    "SchedulerStats",
    "SendCallback",
    "SendOutcome",
    "SendScheduler",
    "StreamClosedError",
    "StreamHandle",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

ACTION_TTL: Final = 5.0
"""Seconds a pending chat action stays useful: Telegram shows one for 5 s at most
(Bot API ``sendChatAction``)."""

GLOBAL_SPAN: Final = 1.0
"""Seconds within which 429s in two different chats are blamed on the global level
(Telegram's overall limit is counted per second; chats' own limits are independent, so
two chats refused at once point at the level they share) …"""
GLOBAL_BUSY: Final = 0.5
"""… if the bot sent at least this fraction of ``Limits.global_per_second`` in the last
second (groups answered in step with each other meet their own limits at the same time
while the bot as a whole is far below its overall one)."""

IN_SEND: Final[ContextVar[bool]] = ContextVar("in_scheduled_send", default=False)
"""True inside a send callback the scheduler launched: a Bot API call made there is
already counted (``bot.reply.sends.ScheduledSends`` lets it through)."""

_MIN_SLEEP: Final = 1e-4  # seconds; guards the dispatcher against float-rounding spins
_RANK: Final = {"first": 0, "final": 0, "intermediate": 1, "action": 2}

LevelName = Literal["chat", "group", "global"]


@dataclass(frozen=True, slots=True)
class AdaptiveRates:
    """Each level's budget now (:meth:`SendScheduler.current_rates`).

    ``global_``: the bot-wide level; ``chats`` / ``groups``: the chats (private, or a
    group's own per-chat level) and groups whose budget is adapted after a 429 (absent
    ones are at their configured :class:`Limits`).
    """

    global_: LevelRate
    chats: dict[int, LevelRate]
    groups: dict[int, LevelRate]


class SendScheduler:
    """Sends every frame of every reply stream within Telegram's flood limits.

    ``limits``: the budget (:class:`~bot.scheduler.limits.Limits`). ``clock``:
    time source (:class:`~bot.scheduler.clock.MonotonicClock` in production).
    ``give_up_seconds``: how long after its submission an undelivered frame is
    given up (a first or final frame given up fails the reply). After the ``n``-th
    ``RETRY`` in a row a reply waits ``min(retry_backoff * 2**(n-1),
    retry_backoff_max)`` seconds. ``stats`` counts what happened.
    Use as ``async with SendScheduler(...)`` or call :meth:`start` / :meth:`aclose`.
    """

    def __init__(
        self,
        *,
        limits: Limits,
        clock: Clock,
        give_up_seconds: float = 60.0,
        retry_backoff: float = 1.0,
        retry_backoff_max: float = 16.0,
    ) -> None:
        """Create a stopped scheduler; streams may be opened before :meth:`start`."""
        self.limits = limits
        self.stats = SchedulerStats()
        self.clock: Clock = clock
        self._give_up = give_up_seconds
        self._backoff_base = retry_backoff
        self._backoff_max = retry_backoff_max
        self._global = Level(
            rate=limits.global_per_second,
            burst=limits.global_burst,
            now=clock.now(),
            cap=limits.global_window_cap,
            window=1.0,
        )
        self._paused_until = -math.inf
        self._floods: deque[tuple[float, int]] = deque()  # (time, chat_id) of recent 429s
        self._chats: dict[int, ChatBudget] = {}
        self._resting: set[int] = set()
        self._streams: dict[int, Stream] = {}
        self._numbers = itertools.count(1)
        self._serials = itertools.count(1)
        self._wake = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._timer: asyncio.Task[None] | None = None
        self._timer_at = math.inf
        self._sends: set[asyncio.Task[SendOutcome | None]] = set()
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called (no stream can be opened any more)."""
        return self._closed

    async def start(self) -> None:
        """Start the dispatcher task (idempotent)."""
        if self._closed:
            raise RuntimeError("the scheduler is closed")
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name="send-scheduler")

    async def aclose(self) -> None:
        """Stop dispatching, cancel sends in flight, and fail every open reply."""
        self._closed = True
        for stream in self._streams.values():
            stream.fail("the scheduler closed")
        tasks = [t for t in (self._runner, self._timer, *self._sends) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._runner = self._timer = None

    async def __aenter__(self) -> SendScheduler:
        """Start the scheduler."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the scheduler."""
        await self.aclose()

    def open_stream(self, chat_id: int, *, min_interval: float = 0.0) -> StreamHandle:
        """Open the stream of one reply (one Telegram message) in ``chat_id``.

        ``min_interval``: least seconds between two sends of this reply before an
        intermediate frame may go (e.g. a draft or edit interval setting); first and
        final frames ignore it. Raises ``RuntimeError`` once the scheduler is closed.
        """
        if self._closed:
            raise RuntimeError("the scheduler is closed")
        self._chat(chat_id).streams += 1
        self._resting.discard(chat_id)
        number = next(self._numbers)
        stream = Stream(chat_id=chat_id, number=number, min_interval=min_interval, stats=self.stats)
        self._streams[number] = stream
        return StreamHandle(self, stream)

    def pause_chat(self, chat_id: int, seconds: float) -> None:
        """Send nothing to ``chat_id`` for ``seconds`` (e.g. Telegram's ``retry_after``).

        After the pause the chat (and its group) restarts with one token, not a burst.
        """
        until = self.clock.now() + seconds
        chat = self._chat(chat_id)
        chat.paused_until = max(chat.paused_until, until)
        chat.level.bucket.hold(until)
        if chat.group is not None:
            chat.group.bucket.hold(until)
        if not chat.streams:
            self._resting.add(chat_id)
        self._wake.set()

    def pause_all(self, seconds: float) -> None:
        """Send nothing to any chat for ``seconds`` (a bot-wide ``retry_after``)."""
        until = self.clock.now() + seconds
        self._paused_until = max(self._paused_until, until)
        self._global.bucket.hold(until)
        self._wake.set()

    def current_rates(self) -> AdaptiveRates:
        """Each level's budget now: the global one, and every adapted chat and group."""
        now = self.clock.now()
        chats: dict[int, LevelRate] = {}
        groups: dict[int, LevelRate] = {}
        for chat_id, chat in self._chats.items():
            for level, found in ((chat.level, chats), (chat.group, groups)):
                if level is not None and level.adaptation is not None:
                    rate = level.rate(now)  # may find the adaptation settled
                    if level.adaptation is not None:
                        found[chat_id] = rate
        return AdaptiveRates(self._global.rate(now), chats, groups)

    def _blame(self, chat_id: int, now: float) -> tuple[LevelName, Level]:
        """The level a 429 in ``chat_id`` at ``now`` is blamed on (see :meth:`retry_after`)."""
        floods = self._floods
        while floods and floods[0][0] < now - GLOBAL_SPAN:
            floods.popleft()
        others = any(other != chat_id for _, other in floods)
        floods.append((now, chat_id))
        window = self._global.cap  # the last second's sends, bot-wide
        busy = (
            window is not None and window.count(now) >= self.limits.global_per_second * GLOBAL_BUSY
        )
        if others and busy:
            return "global", self._global
        chat = self._chat(chat_id)
        if chat.group is not None:
            return "group", chat.group
        return "chat", chat.level

    # -- the stream interface (bot.scheduler.handle.StreamOwner) ----------------
    # Called by StreamHandle only: code outside the package holds handles, not Streams.

    def enqueue(self, stream: Stream, kind: JobKind, frame: T, send: SendCallback[T]) -> None:
        """Queue ``frame`` of ``kind`` on ``stream`` (see :meth:`StreamHandle.submit`).

        Raises :class:`StreamClosedError` once ``stream`` is detached, or for a
        non-final frame after its final one.
        """
        if stream.detached:
            raise StreamClosedError("this reply stream is closed")
        if stream.final_submitted and kind != "final":
            raise StreamClosedError(f"a {kind} frame after the final frame")
        now = self.clock.now()
        ttl = ACTION_TTL if kind == "action" else self._give_up
        job = Job(kind=kind, frame=frame, send=send, submitted_at=now, deadline=now + ttl)
        if kind == "intermediate" and stream.replace_pending(job):
            return  # nothing new is ready: no wake (the hot path while a reply streams)
        stream.put(job)
        self._count_sends_owed(stream)
        self._wake.set()

    def set_sends_owed(self, stream: Stream, sends: int) -> None:
        """Set the sends owed at ``stream``'s end (``sends >= 1``); recount the reserve."""
        if sends != stream.sends_owed:
            stream.sends_owed = sends
            self._count_sends_owed(stream)
            self._wake.set()  # a smaller reserve may let an intermediate frame go

    def retry_after(self, stream: Stream, seconds: float) -> None:
        """Telegram answered ``stream``'s send in flight 429 with ``retry_after`` = ``seconds``.

        Pauses the chat (:meth:`pause_chat`) and lowers the budget of the level blamed:
        the global one when another chat got a 429 within :data:`GLOBAL_SPAN` seconds
        while the bot was sending near its overall rate (:data:`GLOBAL_BUSY`), else the
        group's (a group chat) or the chat's own. Telegram's answer does not
        say which level refused; this blame is the likeliest one (a group's 20 a minute
        binds long before its chat's 1 a second). See :mod:`bot.scheduler.adapt` for
        the cut and the climb back.
        """
        now = self.clock.now()
        chat_id = stream.chat_id
        name, level = self._blame(chat_id, now)
        if level.cut(now, launched=stream.last_sent_at, until=now + seconds):
            self.stats.rate_cuts[name] += 1
            rate = level.rate(now)
            log.info(
                "429 in chat %s: the %s level now sends %.3g/s, bursts of %d",
                chat_id,
                name,
                rate.per_second,
                rate.burst,
            )
        self.pause_chat(chat_id, seconds)

    def detach(self, stream: Stream) -> None:
        """Drop ``stream``'s pending frames and forget it (idempotent)."""
        if stream.detached:
            return
        self.stats.dropped += stream.detach()
        self._count_sends_owed(stream)
        del self._streams[stream.number]
        chat = self._chats[stream.chat_id]
        chat.streams -= 1
        if not chat.streams:
            self._resting.add(stream.chat_id)
        self._wake.set()

    def _count_sends_owed(self, stream: Stream) -> None:
        """Keep the chat's ``sends_owed`` (the final reserve's count) in step with ``stream``.

        A stream counts its ``sends_owed`` while it has submitted a frame and neither
        delivered its final, failed nor been detached; otherwise 0.
        """
        open_ = stream.framed and not (stream.final_delivered or stream.failed or stream.detached)
        counted = stream.sends_owed if open_ else 0
        if counted != stream.sends_owed_counted:
            self._chats[stream.chat_id].sends_owed += counted - stream.sends_owed_counted
            stream.sends_owed_counted = counted

    # -- the dispatcher ----------------------------------------------------------

    def _chat(self, chat_id: int) -> ChatBudget:
        chat = self._chats.get(chat_id)
        if chat is None:
            chat = ChatBudget(chat_id, limits=self.limits, now=self.clock.now())
            self._chats[chat_id] = chat
        return chat

    async def _run(self) -> None:
        """Dispatch whatever is ready, then sleep until something may have changed."""
        while True:
            self._wake.clear()
            self.stats.wakeups += 1
            now = self.clock.now()
            for stream in list(self._streams.values()):
                if stream.deadline <= now:
                    stream.expire(now)
                stream.skip_duplicates()  # costs no budget, so even when none is left
                self._count_sends_owed(stream)
            self._dispatch_ready(now)
            self._forget_rested(now)
            self._arm_timer(self._next_wake(now), now)
            await self._wake.wait()

    def _bot_ready_at(self, now: float) -> tuple[float, float]:
        """Return when the bot-wide level allows a frame, and a chat action.

        With ``max_in_flight`` sends in flight, never (until one finishes: an event).
        """
        if len(self._sends) >= self.limits.max_in_flight:
            return math.inf, math.inf
        reserve = 1 + self.limits.action_reserve
        base = max(now, self._paused_until)
        frame_at = max(base, self._global.ready_at(now, 1))
        return frame_at, max(base, self._global.ready_at(now, reserve))

    def _ready_at(
        self, stream: Stream, job: Job, now: float, *, bot_at: tuple[float, float]
    ) -> float:
        """Return the earliest time ``job`` may be launched (``<= now``: ready).

        ``bot_at`` is :meth:`_bot_ready_at` at ``now``, computed once per scan.
        """
        chat, kind = self._chats[stream.chat_id], job.kind
        if kind == "first" or kind == "final":
            return max(bot_at[0], stream.not_before, chat.ready_at(now, 1, reserve=0))
        reserve = min(chat.sends_owed, self.limits.final_reserve)
        if kind == "action":
            need = 1 + self.limits.action_reserve
            return max(bot_at[1], stream.not_before, chat.ready_at(now, need, reserve=reserve))
        at = max(bot_at[0], stream.not_before, stream.last_sent_at + stream.min_interval)
        return max(at, chat.ready_at(now, 1, reserve=reserve))

    def _dispatch_ready(self, now: float) -> None:
        """Launch every ready job, best rank first (priority, then age or least recently served).

        Launching only spends tokens, so a job not ready before a launch is not
        ready after it: one scan, then launches in rank order with a re-check.
        """
        bot_at = self._bot_ready_at(now)
        if bot_at[0] > now:
            return
        ready: list[tuple[tuple[int, float, int], Stream, Job]] = []
        for stream in self._streams.values():
            for job in stream.candidates():
                if self._ready_at(stream, job, now, bot_at=bot_at) <= now:
                    rank = _RANK[job.kind]
                    # first/final: the reply opened first; others: the least recently served
                    order = stream.number if rank == 0 else stream.served
                    ready.append(((rank, order, stream.number), stream, job))
                    break
        ready.sort(key=lambda item: item[0])
        for _, stream, job in ready:
            bot_at = self._bot_ready_at(now)
            if bot_at[0] > now:
                return
            if self._ready_at(stream, job, now, bot_at=bot_at) <= now:
                self._launch(stream, job, now)

    def _launch(self, stream: Stream, job: Job, now: float) -> None:
        """Spend the tokens of ``job`` at every level and start its send as a task."""
        chat = self._chats[stream.chat_id]
        stream.start(job, now=now, serial=next(self._serials))
        chat.take(now)
        self._global.take(now)
        self.stats.record_send(chat_id=stream.chat_id, kind=job.kind, queued=now - job.submitted_at)
        task = asyncio.create_task(_call(job))
        self._sends.add(task)
        task.add_done_callback(functools.partial(self._on_sent, stream, job))

    def _on_sent(self, stream: Stream, job: Job, task: asyncio.Task[SendOutcome | None]) -> None:
        """Apply a finished send's outcome to its stream and wake the dispatcher."""
        self._sends.discard(task)
        error = None if task.cancelled() else task.exception()
        if task.cancelled() or error is not None:
            outcome = SendOutcome.DROP
        else:
            outcome = task.result() or SendOutcome.SENT
        stream.complete(job, outcome, now=self.clock.now(), backoff=self._backoff)
        if error is not None:
            self.stats.errors += 1
            stream.error = stream.error or error
            stream.fail(f"the send callback raised {type(error).__name__}")
            if stream.detached:
                log.error("send callback of a closed reply stream raised", exc_info=error)
        self._count_sends_owed(stream)
        self._wake.set()

    def _backoff(self, failures: int) -> float:
        return min(self._backoff_base * 2.0 ** (failures - 1), self._backoff_max)

    def _next_wake(self, now: float) -> float:
        """Return when a pending job may become ready or expire (inf: only events)."""
        deadline, ready, bot_at = math.inf, math.inf, self._bot_ready_at(now)
        for stream in self._streams.values():
            deadline = min(deadline, stream.deadline)
            if ready > bot_at[0]:  # nothing can be ready before the bot-wide level
                for job in stream.candidates():
                    ready = min(ready, self._ready_at(stream, job, now, bot_at=bot_at))
        return min(deadline, ready)

    def _arm_timer(self, at: float, now: float) -> None:
        """Make sure the dispatcher wakes by ``at`` (keeps an earlier timer)."""
        if at == math.inf:
            return
        if self._timer is not None and not self._timer.done():
            if self._timer_at <= at:
                return
            self._timer.cancel()
        self._timer_at = at
        self._timer = asyncio.create_task(self._alarm(max(at - now, _MIN_SLEEP)))

    async def _alarm(self, seconds: float) -> None:
        await self.clock.sleep(seconds)
        self._wake.set()

    def _forget_rested(self, now: float) -> None:
        """Drop the state of chats without streams once it equals a fresh state."""
        for chat_id in list(self._resting):
            chat = self._chats.get(chat_id)
            if chat is None or chat.streams:
                self._resting.discard(chat_id)
            elif chat.rested(now):
                del self._chats[chat_id]
                self._resting.discard(chat_id)


async def _call(job: Job) -> SendOutcome | None:
    """Run the send callback of ``job`` on its frame, :data:`IN_SEND` set (in this task)."""
    IN_SEND.set(True)
    return await job.send(job.frame)
