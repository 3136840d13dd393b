"""The scheduler's clocks and meters: FakeClock driving, token bucket and window cap arithmetic."""

from __future__ import annotations

import asyncio
import math

import pytest

from bot.scheduler.clock import FakeClock, MonotonicClock
from bot.scheduler.limits import Level, Limits, TokenBucket, WindowCap

pytestmark = pytest.mark.timeout(10)


async def test_fake_clock_wakes_sleepers_in_deadline_order() -> None:
    """Sleepers wake in deadline order, each seeing its own deadline as the time."""
    clock = FakeClock(start=100.0)
    woke: list[tuple[str, float]] = []

    async def nap(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.now()))

    await clock.run(asyncio.gather(nap("c", 3.0), nap("a", 1.0), nap("b", 2.0), nap("a2", 1.0)))
    assert woke == [("a", 101.0), ("a2", 101.0), ("b", 102.0), ("c", 103.0)]


async def test_fake_clock_advance_wakes_only_what_is_due() -> None:
    """advance() wakes the sleepers due within the step and leaves the time at its end."""
    clock = FakeClock()
    woke: list[float] = []

    async def nap(seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(clock.now())

    tasks = [asyncio.ensure_future(nap(s)) for s in (0.5, 1.0, 2.5)]
    await clock.advance(1.0)
    assert (woke, clock.now()) == ([0.5, 1.0], 1.0)
    assert clock.next_deadline() == 2.5
    await clock.advance(5.0)
    assert (woke, clock.now()) == ([0.5, 1.0, 2.5], 6.0)
    await asyncio.gather(*tasks)


async def test_fake_clock_run_reports_deadlock_and_timeout() -> None:
    """run() raises RuntimeError when nothing can wake the task, TimeoutError past `within`."""
    clock = FakeClock()
    with pytest.raises(RuntimeError, match="deadlock"):
        await clock.run(asyncio.Event().wait())
    with pytest.raises(TimeoutError):
        await clock.run(clock.sleep(10.0), within=5.0)
    assert clock.now() == 0.0


async def test_a_cancelled_sleeper_does_not_move_the_clock() -> None:
    """A sleep cancelled before its deadline leaves no deadline behind."""
    clock = FakeClock()
    task = asyncio.ensure_future(clock.sleep(5.0))
    await clock.settle()
    task.cancel()
    await clock.settle()
    assert clock.next_deadline() is None


async def test_monotonic_clock_moves_forward() -> None:
    """The real clock's time does not go back across a (zero) sleep."""
    clock = MonotonicClock()
    before = clock.now()
    await clock.sleep(0)
    assert clock.now() >= before


def test_token_bucket_refills_at_its_rate_up_to_capacity() -> None:
    """A bucket of 3 at 1/s, emptied at 0, has one token at 1 s and is full again at 3 s."""
    bucket = TokenBucket(rate=1.0, capacity=3, now=0.0)
    for _ in range(3):
        assert bucket.ready_at(0.0) == 0.0
        bucket.take(0.0)
    assert bucket.ready_at(0.0) == pytest.approx(1.0)
    assert bucket.ready_at(0.0, need=2) == pytest.approx(2.0)
    assert bucket.ready_at(0.0, need=4) == math.inf
    assert bucket.tokens(10.0) == 3
    assert bucket.full(3.0)


def test_token_bucket_hold_leaves_one_token_at_the_pause_end() -> None:
    """After hold(until), the bucket has one token at `until`, and the second one a period later."""
    bucket = TokenBucket(rate=0.5, capacity=3, now=0.0)
    bucket.hold(10.0)
    assert bucket.ready_at(0.0) == pytest.approx(10.0)
    bucket.take(10.0)
    assert bucket.ready_at(10.0) == pytest.approx(12.0)


def test_window_cap_allows_cap_sends_per_half_open_window() -> None:
    """A cap of 2 per 60 s allows a third send exactly 60 s after the first."""
    cap = WindowCap(cap=2, window=60.0)
    cap.take(0.0)
    cap.take(10.0)
    assert cap.ready_at(30.0) == 60.0
    assert cap.ready_at(60.0) == 60.0
    assert cap.ready_at(60.0, need=2) == 70.0
    assert cap.ready_at(60.0, need=3) == math.inf
    assert cap.full(70.0)


def test_level_waits_for_both_bucket_and_cap() -> None:
    """A level with a generous bucket still waits for its window cap."""
    level = Level(rate=10.0, burst=10, now=0.0, cap=3, window=1.0)
    for _ in range(3):
        level.take(0.0)
    assert level.ready_at(0.5) == 1.0
    assert not level.rested(0.5)
    assert level.rested(5.0)


@pytest.mark.parametrize(
    "bad",
    [
        {"per_chat_per_second": 0},
        {"per_chat_burst": 0},
        {"per_group_per_minute": 0},
        {"global_burst": 0},
        {"action_reserve": -1},
    ],
)
def test_limits_reject_values_that_block_every_send(bad: dict[str, float]) -> None:
    """Limits that could never let a send through raise ValueError."""
    with pytest.raises(ValueError):
        Limits(**bad)  # type: ignore[arg-type]
