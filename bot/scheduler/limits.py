"""Telegram's flood limits as data, and the two meters that enforce them.

Sources: Telegram Bot FAQ ("My bot is hitting limits, how do I avoid this?"),
PTB ``telegram.constants.FloodLimit``; see also docs/telegram.md "Limits".
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Final

from bot.scheduler.adapt import Adaptation, excess

__all__ = [
    "TELEGRAM_LIMITS",
    "ChatBudget",
    "Level",
    "LevelRate",
    "Limits",
    "TokenBucket",
    "WindowCap",
]

TELEGRAM_GLOBAL_PER_SECOND: Final = 30  # Bot FAQ: "no more than 30 messages per second"
EPSILON = 1e-9  # tokens: absorbs float rounding so a token due "now" is available now


@dataclass(frozen=True, slots=True)
class Limits:
    """The send budget of the bot at three levels; every job costs 1 at each level it touches.

    These are the configured budgets each level starts at: after Telegram answers 429,
    the level blamed sends slower, and in smaller bursts, for a while
    (:mod:`bot.scheduler.adapt`).

    Per chat (every chat, private or group): a token bucket that refills
    ``per_chat_per_second`` tokens per second and holds at most ``per_chat_burst``;
    so in any window of ``W`` seconds a chat gets at most
    ``per_chat_burst + per_chat_per_second * W`` sends.

    Per group (chats with a negative ``chat_id``: groups, supergroups, channels),
    shared by every reply streaming there: a bucket refilling
    ``per_group_per_minute / 60`` tokens per second and holding at most
    ``per_group_burst`` (sends may go back to back after a quiet spell, then are
    spaced evenly), *and* a hard cap of ``per_group_per_minute`` sends in any
    60-second window (half-open: ``[t, t + 60)``), so the burst never pushes a
    minute over Telegram's 20. The burst (10) is savings for the ends of replies:
    intermediate frames spend only the refill (see ``final_reserve``), so five long
    replies ending within seconds of each other in one group find the two sends
    each needs (freeze a full message, send the rest).

    Global (all chats): a bucket refilling ``global_per_second`` tokens per second
    holding at most ``global_burst``, and a hard cap of :attr:`global_window_cap`
    sends in any 1-second window: Telegram's 30, or ``global_per_second`` if higher.
    The defaults (24/s, burst 2) are Telegram's ~30/s (burst ~10) less a margin for
    network and event-loop jitter: a send is counted here when it is launched but
    judged by Telegram when it arrives, and a lagging event loop delivers sends late
    and in bunches. An event-loop stall of ``s`` seconds can squeeze ``1 + s`` seconds
    of launches, plus the burst, into one second of arrivals: at 24/s that stays
    within Telegram's 30 for stalls up to 0.16 s (24 × 1.16 + 2 < 30), and a
    dispatcher that wakes late launches 2 sends at once, not 10. (bench/streaming.py's
    200-chat runs, provider streams read through aiohttp: loop stalls up to ~130 ms;
    26/s drew one global 429 in five runs, 24/s none. With provider streams read
    through httpcore the stalls reached ~350 ms and this was 22/s.) The window cap
    then never binds, and sends stay evenly spaced (a binding window replays an early
    burst every second). ``global_burst`` must be at least
    ``1 + action_reserve`` or chat actions are never sent.
    ``max_in_flight``: at most this many sends are in flight at once, bot-wide, so a
    stalled network or a busy event loop cannot pile up launches that then arrive
    together (launched sends still on their way are what bunch). 10 sustains 24/s
    while a Bot API call takes up to 0.4 s; raise it for a slower link.

    ``final_reserve`` (the final reserve): an intermediate frame or a chat action goes
    only if its chat, and its group, could still take the sends owed there
    afterwards. Let ``R = min(sends_owed, final_reserve)``, where ``sends_owed``
    (``ChatBudget.sends_owed``) sums the sends owed by the open replies in that chat
    that have submitted a frame and not yet delivered their final, the asking reply
    included: each reply's sends owed are what its end (the final frame) will likely
    need (``StreamHandle.set_sends_owed``: the reply stream says 2, the final and a
    possible continuation, plus one per message still to freeze). While ``R > 0``
    an intermediate frame needs a full bucket at the chat's and the group's level
    (it spends only the refill; the burst is savings for first and final frames)
    and room for ``1 + min(R, cap - 1)`` sends in the group's 60 s window; first and
    final frames need 1 token and may use both. So intermediate frames go at the
    bucket's steady rate (a group: one per 3 s), a reply alone in a chat gets its
    final out at once, five long replies ending close together in one group find
    the ten sends they need at their ends, and a new reply's first message finds a
    token. ``0`` turns the reserve off. The global level has no reserve: there
    first and final frames simply go before intermediate ones.

    ``action_reserve``: a chat action ("typing") needs ``action_reserve`` tokens
    (and window slots) more than an intermediate frame at every level it touches,
    so actions never take the token an answer frame needs. Where that exceeds a
    burst (e.g. a group with two replies with finals owed: 1 + 1 + 2 > 3), actions
    are not sent.
    """

    per_chat_per_second: float = 1.0
    per_chat_burst: int = 3
    per_group_per_minute: int = 20
    per_group_burst: int = 10
    global_per_second: int = 24
    global_burst: int = 2
    max_in_flight: int = 10
    final_reserve: int = 10
    action_reserve: int = 1

    @property
    def global_window_cap(self) -> int:
        """Sends allowed in any 1-second window, bot-wide: ``max(30, global_per_second)``."""
        return max(TELEGRAM_GLOBAL_PER_SECOND, self.global_per_second)

    def __post_init__(self) -> None:
        """Reject limits that could never let a send through; raises ``ValueError``."""
        if self.per_chat_per_second <= 0:
            raise ValueError("per_chat_per_second must be > 0")
        if min(self.per_group_per_minute, self.global_per_second) < 1:
            raise ValueError("per_group_per_minute and global_per_second must be >= 1")
        if min(self.per_chat_burst, self.per_group_burst, self.global_burst) < 1:
            raise ValueError("every burst must be >= 1")
        if self.max_in_flight < 1:
            raise ValueError("max_in_flight must be >= 1")
        if min(self.action_reserve, self.final_reserve) < 0:
            raise ValueError("action_reserve and final_reserve must be >= 0")


TELEGRAM_LIMITS: Final = Limits(
    per_chat_per_second=1.0,
    per_chat_burst=3,
    per_group_per_minute=20,
    per_group_burst=20,
    global_per_second=TELEGRAM_GLOBAL_PER_SECOND,
    global_burst=10,
    max_in_flight=1000,
    final_reserve=0,
    action_reserve=0,
)
"""Telegram's own limits, without the scheduler's margins: what a fake Bot API
enforces (Bot FAQ; PTB ``telegram.constants.FloodLimit``: 1/s per chat, 20/min per
group, 30/s overall). Telegram publishes no burst sizes: per chat, "short bursts"
(3 here); per group only the 20 a minute, which PTB's ``AIORateLimiter`` models as
``aiolimiter.AsyncLimiter(20, 60)``, a bucket that takes bursts of up to 20 (so the
burst here is 20 and the 60 s window binds); overall 10 of the 30 a second."""


class TokenBucket:
    """A token bucket: ``rate`` tokens per second, at most ``capacity``, starts full."""

    def __init__(self, *, rate: float, capacity: float, now: float) -> None:
        """Create a full bucket at time ``now`` (seconds)."""
        self.rate = rate
        self.capacity = capacity
        self._tokens = capacity
        self._stamp = now

    def tokens(self, now: float) -> float:
        """Return the tokens held at ``now`` (refill starts at the last stamp)."""
        elapsed = max(0.0, now - self._stamp)
        return min(self.capacity, self._tokens + elapsed * self.rate)

    def ready_at(self, now: float, need: float = 1.0) -> float:
        """Return the earliest time ``>= now`` at which ``need`` tokens are held (or inf)."""
        if self.tokens(now) + EPSILON >= need:
            return now
        if need > self.capacity + EPSILON:
            return math.inf
        base = max(now, self._stamp)
        return base + (need - self.tokens(base)) / self.rate

    def take(self, now: float) -> None:
        """Remove one token at ``now``; the caller checked :meth:`ready_at` first."""
        self._tokens = self.tokens(now) - 1.0
        self._stamp = max(now, self._stamp)

    def hold(self, until: float) -> None:
        """Make the bucket hold at most one token at ``until`` (after a flood pause).

        Without this, the tokens refilled during a long pause would be spent as a
        burst the moment it ends, which is what provoked the pause.
        """
        if self.tokens(until) > 1.0:
            self._tokens = 0.0
            self._stamp = until - 1.0 / self.rate

    def full(self, now: float) -> bool:
        """Return whether the bucket is back to capacity at ``now``."""
        return self.tokens(now) + EPSILON >= self.capacity

    def retune(self, now: float, *, rate: float, capacity: float) -> None:
        """From ``now`` on, refill ``rate`` tokens per second and hold at most ``capacity``.

        The tokens held at ``now`` are kept (down to the new capacity); a pause set with
        :meth:`hold` still ends no earlier than it did.
        """
        if rate == self.rate and capacity == self.capacity:
            return
        if now >= self._stamp:
            self._tokens, self._stamp = self.tokens(now), now
        self.rate, self.capacity = rate, capacity
        self._tokens = min(self._tokens, capacity)


class WindowCap:
    """At most ``cap`` sends in any half-open window of ``window`` seconds (a send log)."""

    def __init__(self, *, cap: int, window: float) -> None:
        """Create an empty log."""
        self.cap = cap
        self.window = window
        self._times: deque[float] = deque()

    def _forget(self, now: float) -> None:
        while self._times and self._times[0] + self.window <= now:
            self._times.popleft()

    def ready_at(self, now: float, need: float = 1.0) -> float:
        """Return the earliest time ``>= now`` with room for ``need`` sends (or inf)."""
        self._forget(now)
        excess = len(self._times) + math.ceil(need) - self.cap
        if excess <= 0:
            return now
        if excess > len(self._times):
            return math.inf
        return self._times[excess - 1] + self.window

    def take(self, now: float) -> None:
        """Log one send at ``now``."""
        self._times.append(now)

    def count(self, now: float) -> int:
        """Return the sends logged in the window ending at ``now``."""
        self._forget(now)
        return len(self._times)

    def full(self, now: float) -> bool:
        """Return whether the log is empty at ``now`` (nothing left to remember)."""
        self._forget(now)
        return not self._times


@dataclass(frozen=True, slots=True)
class LevelRate:
    """One level's budget now: ``per_second`` (refill rate) and ``burst`` (sends), and the
    configured ones; they differ while the level is adapted after a 429."""

    per_second: float
    burst: int
    nominal_per_second: float
    nominal_burst: int


class Level:
    """One level of the budget: a token bucket, optionally with a hard window cap.

    The bucket starts at the configured ``rate`` and ``burst``; a 429 blamed on the level
    (:meth:`cut`) lowers them for a while (:mod:`bot.scheduler.adapt`); the window cap
    never changes.
    """

    def __init__(
        self, *, rate: float, burst: int, now: float, cap: int | None = None, window: float = 0.0
    ) -> None:
        """Create a rested level; ``cap`` sends per ``window`` seconds if ``cap`` is set."""
        self.bucket = TokenBucket(rate=rate, capacity=burst, now=now)
        self.cap = None if cap is None else WindowCap(cap=cap, window=window)
        self.nominal_rate = rate
        self.nominal_burst = burst
        self.adaptation: Adaptation | None = None
        self._recent: deque[float] = deque(maxlen=burst + 1)  # launch times, for cut()

    def ready_at(self, now: float, need: float = 1.0, *, reserve: int = 0) -> float:
        """Return the earliest time ``>= now`` at which ``need`` sends fit (or inf).

        ``reserve``: sends that must still fit afterwards (see :class:`Limits`, the
        final reserve). When it is positive the bucket's savings (``burst - 1``
        tokens) are kept whole, so ``need`` is taken from a full bucket only, and
        ``min(reserve, cap - 1)`` window slots are kept.
        """
        if self.adaptation is not None:
            self.tune(now)
        bucket, cap = self.bucket, self.cap
        at = bucket.ready_at(now, need + (bucket.capacity - 1 if reserve > 0 else 0.0))
        if cap is not None:
            at = max(at, cap.ready_at(now, need + max(0, min(reserve, cap.cap - 1))))
        return at

    def take(self, now: float) -> None:
        """Spend one send at ``now``."""
        if self.adaptation is not None:
            self.tune(now)
        self.bucket.take(now)
        self._recent.append(now)
        if self.cap is not None:
            self.cap.take(now)

    def cut(self, now: float, *, launched: float, until: float) -> bool:
        """Telegram refused the send launched at ``launched`` with 429, pausing until ``until``.

        Lower the rate and burst (:meth:`bot.scheduler.adapt.Adaptation.cut`, the burst
        judged from this level's sends up to ``launched``); returns ``False`` when the
        429 is an echo of the previous cut (nothing changed).
        """
        run = excess((t for t in self._recent if t <= launched), rate=self.nominal_rate)
        adaptation = self.adaptation or Adaptation(self.nominal_rate, self.nominal_burst)
        if not adaptation.cut(now, run_excess=run, until=until):
            return False
        self.adaptation = adaptation
        self.tune(now)
        return True

    def tune(self, now: float) -> None:
        """Set the bucket to the adapted rate and burst at ``now``; forget a settled adaptation."""
        adaptation = self.adaptation
        if adaptation is None:
            return
        self.bucket.retune(now, rate=adaptation.rate(now), capacity=adaptation.burst(now))
        if adaptation.settled(now):
            self.adaptation = None

    def rate(self, now: float) -> LevelRate:
        """The level's budget at ``now``."""
        self.tune(now)
        return LevelRate(
            self.bucket.rate, int(self.bucket.capacity), self.nominal_rate, self.nominal_burst
        )

    def rested(self, now: float) -> bool:
        """Return whether this level is as if it had never been used (nor adapted)."""
        self.tune(now)
        full = self.bucket.full(now) and (self.cap is None or self.cap.full(now))
        return full and self.adaptation is None


class ChatBudget:
    """The budget of one chat (and of its group when ``chat_id < 0``) and its replies.

    ``streams``: open replies in the chat; ``sends_owed``: the sends owed by those of
    them that submitted a frame and have not yet delivered their final, each counting
    what its end will likely need (``StreamHandle.set_sends_owed``, at least 1; the
    final reserve's count, see :class:`Limits`); ``paused_until``: a ``retry_after``
    pause (seconds).
    """

    __slots__ = ("group", "level", "paused_until", "sends_owed", "streams")

    def __init__(self, chat_id: int, *, limits: Limits, now: float) -> None:
        """Create the rested budget of ``chat_id`` at time ``now``."""
        self.level = Level(rate=limits.per_chat_per_second, burst=limits.per_chat_burst, now=now)
        self.group: Level | None = None
        if chat_id < 0:
            self.group = Level(
                rate=limits.per_group_per_minute / 60.0,
                burst=limits.per_group_burst,
                now=now,
                cap=limits.per_group_per_minute,
                window=60.0,
            )
        self.paused_until = -math.inf
        self.streams = 0
        self.sends_owed = 0

    def ready_at(self, now: float, need: float, *, reserve: int) -> float:
        """Return when ``need`` sends fit in the chat and its group, ``reserve`` kept."""
        at = max(self.paused_until, self.level.ready_at(now, need, reserve=reserve))
        if self.group is not None:
            at = max(at, self.group.ready_at(now, need, reserve=reserve))
        return at

    def take(self, now: float) -> None:
        """Spend one send at ``now`` in the chat and its group."""
        self.level.take(now)
        if self.group is not None:
            self.group.take(now)

    def rested(self, now: float) -> bool:
        """Return whether forgetting this chat changes nothing."""
        group_rested = self.group is None or self.group.rested(now)
        return self.paused_until <= now and self.level.rested(now) and group_rested
