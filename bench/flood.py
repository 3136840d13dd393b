"""Telegram's flood limits as a fake Bot API server enforces them: 429 with ``retry_after``.

:class:`FloodGate` is the ``throttle`` hook of :class:`bench.fake_telegram.FakeTelegram`.
It is written independently of the bot's scheduler meters (:mod:`bot.scheduler.limits`)
so that a mistake there is not mirrored here; only the numbers come from
:data:`~bot.scheduler.limits.TELEGRAM_LIMITS` (Telegram's own, without the margins of
the bot's default :class:`~bot.scheduler.limits.Limits`), on Telegram's three levels
(docs/telegram.md "Limits"; Bot FAQ; PTB ``telegram.constants.FloodLimit``):

- **Counted calls**: ``sendMessage``, ``editMessageText``, ``sendMessageDraft`` and
  ``sendChatAction``, and their rich twins (Bot API 10.1+) ``sendRichMessage`` and
  ``sendRichMessageDraft`` (a rich edit is an ``editMessageText``), counted in the same
  buckets as the classic calls: Telegram documents no rich-specific rates and answers
  them 429 as usual (docs/telegram.md "Rich messages (Bot API 10.1+)"); each
  *accepted* call costs 1 at every level it touches. Rejected
  calls (429) cost nothing; other methods (getUpdates, deleteMessage, …) are free.
- **Per chat** (every chat): a token bucket of ``per_chat_per_second`` (1/s) holding
  ``per_chat_burst`` (3): at most ``3 + W`` calls in any ``W`` seconds.
- **Per group** (``chat_id < 0``), shared by all replies there: at most
  ``per_group_per_minute`` (20) calls in any 60 s window, *and* a bucket of 20/60 per
  second holding ``per_group_burst`` (20 in Telegram's limits, as PTB's
  ``AIORateLimiter`` has it, so the window binds; a stricter guess of Telegram, such
  as 3 — a burst of 3, then one call per 3 s — is ``--group-burst 3``). The group is
  a chat too, so the per-chat bucket applies as well.
- **Global**: at most ``global_per_second`` (30) calls in any 1 s window, *and* a
  bucket of 30/s holding ``global_burst`` (10).

Buckets are checked with GCRA (a call conforms when ``now >= TAT - (burst - 1)/rate``);
windows keep the accepted call times. ``jitter`` (seconds, default 0.05) forgives
delivery jitter: a call is judged as if it arrived ``jitter`` seconds later, because
the bot stamps a send when it launches it and the server stamps it on arrival, and no
sender controls the network between. ``group_jitter`` (default 0) makes the per-group
pace stricter and jumpy: each accepted group call spaces the next by 1 to
``1 + group_jitter`` times the group's interval (drawn from a seeded generator), a
Telegram whose real group limits are stricter than the published ones and vary from
call to call. A 429 carries ``retry_after`` = the seconds until
every violated level would accept the call, rounded up, at least 1 (Telegram sends
whole seconds).
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable
from typing import Any, Final

from bot.scheduler.limits import TELEGRAM_LIMITS, Limits

__all__ = ["COUNTED_METHODS", "FloodGate"]

COUNTED_METHODS: Final = frozenset(
    {
        "sendMessage",
        "editMessageText",
        "sendMessageDraft",
        "sendChatAction",
        "sendRichMessage",
        "sendRichMessageDraft",
    }
)


class _Gcra:
    """A token bucket as GCRA: ``rate`` calls per second, bursts of ``burst``."""

    def __init__(
        self, *, rate: float, burst: int, stretch: Callable[[], float] | None = None
    ) -> None:
        self.interval = 1.0 / rate
        self.tolerance = (burst - 1) * self.interval
        self.tat = -math.inf  # theoretical arrival time of the next call
        self.stretch = stretch  # a factor (>= 1) on the interval after each call

    def wait(self, at: float) -> float:
        """Return the seconds until a call at ``at`` conforms (0 when it does now)."""
        return max(0.0, self.tat - self.tolerance - at)

    def take(self, at: float) -> None:
        factor = 1.0 if self.stretch is None else self.stretch()
        self.tat = max(self.tat, at) + self.interval * factor


class _Window:
    """At most ``cap`` accepted calls in any ``span`` seconds (a log of call times)."""

    def __init__(self, *, cap: int, span: float) -> None:
        self.cap = cap
        self.span = span
        self.times: deque[float] = deque()

    def wait(self, at: float) -> float:
        """Return the seconds until a call at ``at`` fits (0 when it does now)."""
        while self.times and self.times[0] + self.span <= at:
            self.times.popleft()
        if len(self.times) < self.cap:
            return 0.0
        return self.times[len(self.times) - self.cap] + self.span - at

    def take(self, at: float) -> None:
        self.times.append(at)


class FloodGate:
    """Decides per Bot API call whether Telegram would answer 429; counts what it let through.

    Call it as ``gate(method, params, at)`` (``at``: arrival time, seconds on any
    monotonic clock): returns ``None`` when the call is accepted (and counted), or the
    seconds to wait. ``rejected`` counts the 429 answers by method, ``violated`` by
    the level that refused (``chat``, ``group``, ``global``; a call may break several).
    """

    def __init__(
        self,
        limits: Limits | None = None,
        *,
        jitter: float = 0.05,
        group_jitter: float = 0.0,
        seed: int = 0,
    ) -> None:
        """Enforce ``limits`` (Telegram's when ``None``), forgiving ``jitter`` seconds; groups
        stricter by up to ``group_jitter`` of their interval per call (``seed``: the draws)."""
        self.limits = limits or TELEGRAM_LIMITS
        self.jitter = jitter
        self.group_jitter = group_jitter
        self._random = random.Random(seed)
        self.rejected: dict[str, int] = {}
        self.violated: dict[str, int] = {}
        self._chats: dict[int, _Gcra] = {}
        self._groups: dict[int, tuple[_Gcra, _Window]] = {}
        lim = self.limits
        self._global = (
            _Gcra(rate=lim.global_per_second, burst=lim.global_burst),
            _Window(cap=lim.global_per_second, span=1.0),
        )

    def __call__(self, method: str, params: dict[str, Any], at: float) -> float | None:
        """Return ``None`` to accept the call (counting it), else seconds until it would fit."""
        if method not in COUNTED_METHODS:
            return None
        chat_id = int(params["chat_id"])
        levels: list[tuple[str, _Gcra | _Window]] = [
            ("chat", self._chat(chat_id)),
            *(("global", m) for m in self._global),
        ]
        if chat_id < 0:
            levels += [("group", m) for m in self._group(chat_id)]
        judged = at + self.jitter
        waits = [(level, meter.wait(judged)) for level, meter in levels]
        wait = max(w for _, w in waits)
        if wait > 0:
            self.rejected[method] = self.rejected.get(method, 0) + 1
            for level in {level for level, w in waits if w > 0}:
                self.violated[level] = self.violated.get(level, 0) + 1
            return wait
        for _, meter in levels:
            meter.take(at)
        return None

    def _chat(self, chat_id: int) -> _Gcra:
        meter = self._chats.get(chat_id)
        if meter is None:
            lim = self.limits
            meter = self._chats[chat_id] = _Gcra(
                rate=lim.per_chat_per_second, burst=lim.per_chat_burst
            )
        return meter

    def _group(self, chat_id: int) -> tuple[_Gcra, _Window]:
        meters = self._groups.get(chat_id)
        if meters is None:
            lim = self.limits
            meters = self._groups[chat_id] = (
                _Gcra(
                    rate=lim.per_group_per_minute / 60.0,
                    burst=lim.per_group_burst,
                    stretch=self._stretch if self.group_jitter else None,
                ),
                _Window(cap=lim.per_group_per_minute, span=60.0),
            )
        return meters

    def _stretch(self) -> float:
        """A factor on a group's interval: 1 to ``1 + group_jitter``."""
        return 1.0 + self.group_jitter * self._random.random()
