"""Counters the send scheduler keeps, for logs and benchmarks."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["DelayStats", "JobKind", "SchedulerStats"]

JobKind = Literal["first", "intermediate", "final", "action"]
"""What a job is: a reply's first message, a frame while it grows, its final frame,
or a chat action ("typing")."""

_SAMPLES = 4096  # recent delays kept per kind


@dataclass(slots=True)
class DelayStats:
    """Time in queue (seconds) of sent jobs: count, sum, max and the latest samples.

    A job's time in queue runs from the submission of the frame actually sent to the
    moment its send was launched, so it measures how stale the shown text was.
    """

    count: int = 0
    total: float = 0.0
    max: float = 0.0
    samples: deque[float] = field(default_factory=lambda: deque(maxlen=_SAMPLES))

    def add(self, seconds: float) -> None:
        """Record one delay in seconds."""
        self.count += 1
        self.total += seconds
        self.max = max(self.max, seconds)
        self.samples.append(seconds)

    @property
    def mean(self) -> float:
        """Return the mean delay in seconds (0 when nothing was recorded)."""
        return self.total / self.count if self.count else 0.0


@dataclass(slots=True)
class SchedulerStats:
    """What the scheduler did since it was created.

    ``sends`` counts launched send calls (all levels: the global count);
    ``sends_by_chat`` / ``sends_by_group`` count them per chat id (groups are the
    chats with a negative id); ``sends_by_kind`` per job kind. ``superseded``:
    pending frames replaced by newer ones before going out; ``duplicates``: frames
    skipped because equal to the last one delivered; ``retries``: sends answered
    ``RETRY``; ``dropped``: jobs given up (deadline passed or ``DROP``); ``errors``:
    send callbacks that raised; ``streams_failed``: replies whose first or final
    frame could not be delivered; ``wakeups``: passes of the dispatcher (each
    looks at every open reply, so this is its CPU cost); ``rate_cuts``: Telegram
    429s that lowered a level's budget, by level (``chat``, ``group``, ``global``).
    """

    sends: int = 0
    sends_by_chat: Counter[int] = field(default_factory=Counter)
    sends_by_group: Counter[int] = field(default_factory=Counter)
    sends_by_kind: Counter[str] = field(default_factory=Counter)
    superseded: int = 0
    duplicates: int = 0
    retries: int = 0
    dropped: int = 0
    errors: int = 0
    streams_failed: int = 0
    wakeups: int = 0
    rate_cuts: Counter[str] = field(default_factory=Counter)
    queue_delay: dict[str, DelayStats] = field(default_factory=dict)

    def record_send(self, *, chat_id: int, kind: JobKind, queued: float) -> None:
        """Count one launched send of ``kind`` to ``chat_id`` that waited ``queued`` s."""
        self.sends += 1
        self.sends_by_chat[chat_id] += 1
        if chat_id < 0:
            self.sends_by_group[chat_id] += 1
        self.sends_by_kind[kind] += 1
        self.queue_delay.setdefault(kind, DelayStats()).add(queued)
