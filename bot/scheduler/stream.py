"""The state of one reply stream inside the send scheduler: its pending jobs and outcome.

A stream holds at most one pending job per kind (the newest wins), at most one send
in flight, and the last frame delivered. Everything here is synchronous bookkeeping;
:mod:`bot.scheduler.core` decides when jobs go out.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from bot.scheduler.stats import JobKind, SchedulerStats

__all__ = [
    "FRAME_ORDER",
    "Job",
    "SendCallback",
    "SendOutcome",
    "Stream",
    "StreamClosedError",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

FRAME_ORDER: Final = ("first", "intermediate", "final")
"""The order in which a stream's pending frames go out (actions are separate)."""

_NOTHING: Final = object()  # "no frame delivered yet"; equal to no frame


class SendOutcome(enum.Enum):
    """What a send callback reports; returning ``None`` means ``SENT``.

    ``SENT``: delivered. ``RETRY``: transient failure, send the newest frame again
    later (after a back-off, and after any pause the callback set with
    ``pause_chat`` / ``pause_all``, e.g. for Telegram's ``retry_after``). ``DROP``:
    permanent failure of this frame; for a first or final frame the reply fails.
    """

    SENT = "sent"
    RETRY = "retry"
    DROP = "drop"


SendCallback = Callable[[T], Awaitable[SendOutcome | None]]
"""Sends one frame to Telegram; returns ``None``/``SENT``, ``RETRY`` or ``DROP``."""


class StreamClosedError(RuntimeError):
    """A frame was submitted to a closed stream, or a non-final one after the final."""


@dataclass(slots=True, eq=False)
class Job:
    """One pending or in-flight send: a frame, its callback, its times (seconds)."""

    kind: JobKind
    frame: Any
    send: Callable[[Any], Awaitable[SendOutcome | None]]
    submitted_at: float
    deadline: float


class Stream:
    """Bookkeeping of one reply: pending jobs by kind, the send in flight, the outcome."""

    def __init__(
        self, *, chat_id: int, number: int, min_interval: float, stats: SchedulerStats
    ) -> None:
        """Create an idle stream; ``number`` orders streams opened earlier first."""
        self.chat_id = chat_id
        self.number = number
        self.min_interval = min_interval
        self.stats = stats
        self.slots: dict[str, Job] = {}
        self.in_flight: Job | None = None
        self.last_delivered: object = _NOTHING
        self.last_sent_at = -math.inf
        self.not_before = -math.inf
        self.failures = 0
        self.served = 0
        self.framed = False  # a first, intermediate or final frame was submitted
        self.sends_owed = 1  # sends its end will likely need (StreamHandle.set_sends_owed)
        self.sends_owed_counted = 0  # of them, counted in its chat's ``sends_owed`` now
        self.final_submitted = False
        self.final_delivered = False
        self.failed = False
        self.detached = False
        self.error: BaseException | None = None
        self.deadline = math.inf  # the earliest deadline of a pending job
        self.idle = asyncio.Event()
        self.idle.set()

    def put(self, job: Job) -> None:
        """Queue ``job``: the newest frame of a kind replaces an older pending one.

        An unsent first frame takes over the content of later intermediate and final
        frames (so the new message shows the newest text); a final frame supersedes
        the pending intermediate frame and any pending action.
        """
        if self.failed:
            self.stats.dropped += 1
            return
        if job.kind != "action":
            self.framed = True
        if job.kind in ("intermediate", "final") and "first" in self.slots:
            first = self.slots["first"]
            first.frame, first.submitted_at = job.frame, job.submitted_at
            self.stats.superseded += 1
            if job.kind == "intermediate":
                self._refresh()
                return
        if job.kind == "final":
            self.final_submitted = True
            self.slots.pop("action", None)
            if self.slots.pop("intermediate", None) is not None:
                self.stats.superseded += 1
        if job.kind != "action" and self.slots.get(job.kind) is not None:
            self.stats.superseded += 1
        self.slots[job.kind] = job
        self._refresh()

    def replace_pending(self, job: Job) -> bool:
        """Give the intermediate ``job``'s frame to a pending first or intermediate frame.

        Returns ``False`` (nothing done) when neither is pending. O(1), no allocation:
        nothing new becomes ready, so the dispatcher need not look. ``deadline`` may
        then lag behind the replaced job's (an early wake at worst).
        """
        slots = self.slots
        first = slots.get("first")
        if first is not None:
            first.frame, first.submitted_at = job.frame, job.submitted_at
        elif "intermediate" in slots:
            slots["intermediate"] = job
        elif self.failed:
            self.stats.dropped += 1
            return True
        else:
            return False
        self.stats.superseded += 1
        return True

    def next_frame(self) -> Job | None:
        """Return the frame job that goes next (in ``FRAME_ORDER``), if any."""
        for kind in FRAME_ORDER:
            job = self.slots.get(kind)
            if job is not None:
                return job
        return None

    def candidates(self) -> Iterator[Job]:
        """Yield the jobs that could be launched now: the next frame, then the action."""
        if self.in_flight is not None:
            return
        frame = self.next_frame()
        if frame is not None:
            yield frame
        action = self.slots.get("action")
        if action is not None:
            yield action

    def skip_duplicates(self) -> None:
        """Drop pending frames equal to the last frame delivered (counted as delivered)."""
        while self.in_flight is None:
            job = self.next_frame()
            if job is None or job.frame != self.last_delivered:
                return
            del self.slots[job.kind]
            self.stats.duplicates += 1
            if job.kind == "final" and "final" not in self.slots:
                self.final_delivered = True
            self._refresh()

    def start(self, job: Job, *, now: float, serial: int) -> None:
        """Mark ``job`` as launched at ``now``; ``serial`` orders streams by last service."""
        del self.slots[job.kind]
        self.in_flight = job
        self.last_sent_at = now
        self.served = serial
        self._refresh()

    def complete(
        self, job: Job, outcome: SendOutcome, *, now: float, backoff: Callable[[int], float]
    ) -> None:
        """Apply the outcome of the in-flight ``job``.

        ``backoff(n)`` gives the seconds to wait before sending again after the
        ``n``-th failure in a row.
        """
        self.in_flight = None
        if outcome is SendOutcome.SENT:
            self.failures = 0
            if job.kind != "action":
                self.last_delivered = job.frame
            if job.kind == "final" and "final" not in self.slots:
                self.final_delivered = True
        elif outcome is SendOutcome.RETRY:
            self.stats.retries += 1
            self.failures += 1
            self.not_before = now + backoff(self.failures)
            if job.kind == "action" or self.failed or self.detached:
                self.stats.dropped += 1
            elif now >= job.deadline:
                self._give_up(job, "deadline passed while retrying")
            else:
                self._requeue(job)
        elif self.detached:  # the reply let go of its stream (e.g. the bot was blocked)
            self.stats.dropped += 1
        else:
            self._give_up(job, "the sender dropped it")
        self._refresh()

    def expire(self, now: float) -> None:
        """Give up every pending job whose deadline is ``<= now``."""
        for kind, job in list(self.slots.items()):
            if job.deadline <= now:
                del self.slots[kind]
                self._give_up(job, "deadline passed")
        self._refresh()

    def detach(self) -> int:
        """Mark the stream closed, drop what is pending; return the frames dropped."""
        self.detached = True
        dropped = sum(1 for kind in self.slots if kind != "action")
        self.slots.clear()
        self._refresh()
        return dropped

    def fail(self, reason: str) -> None:
        """Mark the reply as failed: drop everything pending and release waiters."""
        if self.failed:
            return
        self.failed = True
        self.stats.dropped += len(self.slots)
        self.slots.clear()
        self.stats.streams_failed += 1
        log.warning("reply stream in chat %s failed: %s", self.chat_id, reason)
        self._refresh()

    def _give_up(self, job: Job, reason: str) -> None:
        self.stats.dropped += 1
        if job.kind in ("first", "final"):
            self.fail(f"{job.kind} frame given up: {reason}")

    def _requeue(self, job: Job) -> None:
        """Put a failed job back unless something newer took its place."""
        newer = self.slots.get(job.kind)
        if job.kind == "first" and newer is None:
            later = self.slots.pop("intermediate", None) or self.slots.get("final")
            if later is not None:
                job.frame, job.submitted_at = later.frame, later.submitted_at
            self.slots["first"] = job
        elif job.kind == "intermediate" and newer is None and "final" not in self.slots:
            self.slots["intermediate"] = job
        elif job.kind == "final" and newer is None:
            self.slots["final"] = job
        else:
            self.stats.superseded += 1

    def _refresh(self) -> None:
        """Update ``deadline``; set ``idle`` iff no frame is pending and none is in flight."""
        self.deadline = min((job.deadline for job in self.slots.values()), default=math.inf)
        busy = self.in_flight is not None or any(k != "action" for k in self.slots)
        if busy:
            self.idle.clear()
        else:
            self.idle.set()
