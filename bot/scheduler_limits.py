"""Telegram's flood limits as data, and the two meters that enforce them.

Sources: Telegram Bot FAQ ("My bot is hitting limits, how do I avoid this?"),
PTB ``telegram.constants.FloodLimit``; see also docs/telegram.md "Limits".
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

__all__ = ["Level", "Limits", "TokenBucket", "WindowCap"]

EPSILON = 1e-9  # tokens: absorbs float rounding so a token due "now" is available now


@dataclass(frozen=True, slots=True)
class Limits:
    """The send budget of the bot at three levels; every job costs 1 at each level it touches.

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
    minute over Telegram's 20.

    Global (all chats): a bucket refilling ``global_per_second`` tokens per second
    holding at most ``global_burst``, and a hard cap of ``global_per_second`` sends
    in any 1-second window.

    ``action_reserve``: a chat action ("typing") is sent only if, at every level it
    touches, ``1 + action_reserve`` tokens are there, so actions never take the
    token an answer frame needs. With a burst of ``action_reserve`` or less at some
    level, actions never go out.
    """

    per_chat_per_second: float = 1.0
    per_chat_burst: int = 3
    per_group_per_minute: int = 20
    per_group_burst: int = 3
    global_per_second: int = 30
    global_burst: int = 10
    action_reserve: int = 1

    def __post_init__(self) -> None:
        """Reject limits that could never let a send through; raises ``ValueError``."""
        if self.per_chat_per_second <= 0:
            raise ValueError("per_chat_per_second must be > 0")
        if min(self.per_group_per_minute, self.global_per_second) < 1:
            raise ValueError("per_group_per_minute and global_per_second must be >= 1")
        if min(self.per_chat_burst, self.per_group_burst, self.global_burst) < 1:
            raise ValueError("every burst must be >= 1")
        if self.action_reserve < 0:
            raise ValueError("action_reserve must be >= 0")


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

    def full(self, now: float) -> bool:
        """Return whether the log is empty at ``now`` (nothing left to remember)."""
        self._forget(now)
        return not self._times


class Level:
    """One level of the budget: a token bucket, optionally with a hard window cap."""

    def __init__(
        self, *, rate: float, burst: float, now: float, cap: int | None = None, window: float = 0.0
    ) -> None:
        """Create a rested level; ``cap`` sends per ``window`` seconds if ``cap`` is set."""
        self.bucket = TokenBucket(rate=rate, capacity=burst, now=now)
        self.cap = None if cap is None else WindowCap(cap=cap, window=window)

    def ready_at(self, now: float, need: float = 1.0) -> float:
        """Return the earliest time ``>= now`` at which ``need`` sends fit (or inf)."""
        at = self.bucket.ready_at(now, need)
        if self.cap is not None:
            at = max(at, self.cap.ready_at(now, need))
        return at

    def take(self, now: float) -> None:
        """Spend one send at ``now``."""
        self.bucket.take(now)
        if self.cap is not None:
            self.cap.take(now)

    def rested(self, now: float) -> bool:
        """Return whether this level is as if it had never been used."""
        return self.bucket.full(now) and (self.cap is None or self.cap.full(now))
