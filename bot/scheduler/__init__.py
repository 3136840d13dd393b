"""The bot-wide send scheduler: every send, edit, draft and chat action of every reply
goes out through one :class:`SendScheduler` that keeps to Telegram's flood limits per
chat, per group and globally (:class:`Limits`), orders first and final frames before
intermediate ones, and keeps the sends a reply's end still owes free in each budget.
It knows nothing of Telegram's types: a job is a callback. The state tables of the
reply stream and of the scheduler's per-stream record open :mod:`bot.scheduler.core`."""

from bot.scheduler.clock import Clock, FakeClock, MonotonicClock
from bot.scheduler.core import SendScheduler
from bot.scheduler.handle import StreamHandle
from bot.scheduler.limits import TELEGRAM_LIMITS, Limits
from bot.scheduler.stats import JobKind, SchedulerStats
from bot.scheduler.stream import SendCallback, SendOutcome, StreamClosedError

__all__ = [
    "TELEGRAM_LIMITS",
    "Clock",
    "FakeClock",
    "JobKind",
    "Limits",
    "MonotonicClock",
    "SchedulerStats",
    "SendCallback",
    "SendOutcome",
    "SendScheduler",
    "StreamClosedError",
    "StreamHandle",
]
