"""The fake Bot API's stricter, jumpy group pace (``FloodGate(group_jitter=…)``)."""

from __future__ import annotations

import dataclasses

from bench.flood import FloodGate
from bot.scheduler.limits import TELEGRAM_LIMITS

STRICT = dataclasses.replace(TELEGRAM_LIMITS, per_group_burst=3)
GROUP = -5


def refusals(gate: FloodGate, times: list[float]) -> int:
    """How many of ``sendMessage`` calls to one group at ``times`` the gate refuses."""
    return sum(gate("sendMessage", {"chat_id": GROUP}, at) is not None for at in times)


def test_group_jitter_refuses_calls_at_the_published_pace() -> None:
    """One call every 3 s (20 a minute) passes the plain gate; with group_jitter the
    stretched intervals refuse some of them, the same ones for the same seed."""
    times = [3.0 * n for n in range(40)]
    assert refusals(FloodGate(STRICT, jitter=0.0), times) == 0
    jumpy = refusals(FloodGate(STRICT, jitter=0.0, group_jitter=0.3, seed=1), times)
    assert jumpy > 0
    assert refusals(FloodGate(STRICT, jitter=0.0, group_jitter=0.3, seed=1), times) == jumpy


def test_group_jitter_leaves_a_slower_pace_alone() -> None:
    """Calls 4 s apart stay within a group pace of 3 to 3.9 s: none is refused."""
    times = [4.0 * n for n in range(60)]
    assert refusals(FloodGate(STRICT, jitter=0.0, group_jitter=0.3, seed=2), times) == 0
