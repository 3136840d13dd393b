"""Adaptive flood control: one level's budget after Telegram answered 429.

Telegram's real limits are stricter and jumpier than the published ones (Bot FAQ: 1 a
second per chat, 20 a minute per group, 30 a second overall; no bursts published), and a
429 does not say which level refused. So each level of the scheduler's budget
(:class:`~bot.scheduler.limits.Level`) starts at its configured rate and burst, and a 429
blamed on it (see :meth:`bot.scheduler.core.SendScheduler.retry_after`) teaches it a
bound, additive-increase / multiplicative-decrease style, with a memory:

- the cut: the rate halves (:data:`CUT`), never below :data:`FLOOR` of the configured
  rate; the burst drops below the burst that drew the 429 (:func:`excess`: the sends
  of the last run beyond what the configured rate explains), at least 1;
- the bound: for :data:`MEMORY` seconds after the cut, the rate climbs back only to
  :data:`BOUND` (3/4) of the rate that drew the 429 and the burst stays cut, so a
  Telegram that keeps to, say, a burst of 3 and one send per 3 s in a group meets the
  bot over its limit at most once an hour (the margin also absorbs arrival jitter);
- the climb: :data:`CLIMB` of the configured rate per minute (from half to the
  bound in 2½ minutes); once the memory lapses, the rate climbs on to the configured
  one and the burst regains one send per :data:`BURST_STEP` seconds.

A 429 within the pause of the previous cut (sends that were already on their way) does
not cut again. Everything here is arithmetic on the caller's clock (seconds).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

__all__ = ["BOUND", "BURST_STEP", "CLIMB", "CUT", "FLOOR", "MEMORY", "Adaptation", "excess"]

CUT: Final = 0.5
"""A 429 multiplies the level's rate by this."""
FLOOR: Final = 1 / 8
"""The lowest rate a level is cut to, as a fraction of its configured rate."""
BOUND: Final = 0.75
"""While remembered, the rate climbs back only to this fraction of the rate that drew the 429."""
CLIMB: Final = 0.1
"""Fraction of the configured rate regained per minute."""
MEMORY: Final = 3600.0
"""Seconds a learned bound holds after the level's last cut."""
BURST_STEP: Final = 60.0
"""Seconds per send of burst regained once the memory has lapsed."""
_PACED: Final = 1e-9  # sends: absorbs float rounding in excess()


def excess(times: Iterable[float], *, rate: float) -> float:
    """The most sends of a run ending with the last of ``times`` beyond what ``rate`` explains.

    ``times``: launch times of a level's recent sends, oldest first, ending with the send
    that drew the 429; ``rate``: the level's configured rate (sends per second). For each
    suffix of ``k`` sends spanning ``s`` seconds the excess is ``k - s * rate`` (a token
    bucket of that rate needs a burst of at least that); the largest is returned (``>= 1``
    for a non-empty log, ``0.0`` for an empty one).
    """
    ordered = list(times)
    if not ordered:
        return 0.0
    last, best = ordered[-1], 0.0
    for k, at in enumerate(reversed(ordered), start=1):
        best = max(best, k - (last - at) * rate)
    return best


@dataclass(slots=True)
class Adaptation:
    """The learned budget of one level: its rate and burst as functions of time.

    ``nominal_rate`` (sends per second) and ``nominal_burst`` are the configured ones.
    Create it at a cut (:meth:`cut`); it is back to nominal once :meth:`settled`.
    """

    nominal_rate: float
    nominal_burst: int
    cut_at: float = -math.inf
    cut_rate: float = 0.0
    bound_rate: float = 0.0
    bound_burst: int = 1
    calm_at: float = -math.inf
    no_cut_before: float = -math.inf

    def rate(self, now: float) -> float:
        """The level's rate at ``now`` (sends per second)."""
        if self.cut_at == -math.inf:
            return self.nominal_rate
        climb = self.nominal_rate * CLIMB / 60.0
        if now < self.calm_at:
            return min(self.bound_rate, self.cut_rate + climb * (now - self.cut_at))
        return min(self.nominal_rate, self.bound_rate + climb * (now - self.calm_at))

    def burst(self, now: float) -> int:
        """The level's burst at ``now`` (sends)."""
        if self.cut_at == -math.inf:
            return self.nominal_burst
        if now < self.calm_at:
            return self.bound_burst
        regained = int((now - self.calm_at) // BURST_STEP)
        return min(self.nominal_burst, self.bound_burst + regained)

    def cut(self, now: float, *, run_excess: float, until: float) -> bool:
        """Apply a 429 at ``now``; return ``False`` when it is an echo of the last cut.

        ``run_excess``: :func:`excess` of the level's sends up to the one refused;
        ``until``: the end of the pause the 429 asked for (429s before then do not cut).
        """
        if now < self.no_cut_before:
            return False
        rate, burst = self.rate(now), self.burst(now)
        floor = self.nominal_rate * FLOOR
        self.cut_rate = max(floor, rate * CUT)
        self.bound_rate = max(self.cut_rate, rate * BOUND)
        self.bound_burst = max(1, min(burst, math.ceil(run_excess - _PACED) - 1))
        self.cut_at, self.calm_at, self.no_cut_before = now, now + MEMORY, until
        return True

    def settled(self, now: float) -> bool:
        """Whether the level is back to its configured rate and burst (nothing learned)."""
        return (
            now >= self.calm_at
            and self.rate(now) >= self.nominal_rate
            and self.burst(now) >= self.nominal_burst
        )
