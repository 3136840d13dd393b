"""The public handle of one reply stream on the send scheduler.

A :class:`StreamHandle` drives its scheduler only through :class:`StreamOwner`, the
package-level interface :class:`~bot.scheduler.core.SendScheduler` implements for it.
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, TypeVar

from bot.scheduler.clock import Clock
from bot.scheduler.stats import JobKind
from bot.scheduler.stream import SendCallback, Stream

__all__ = ["StreamHandle", "StreamOwner"]

T = TypeVar("T")


class StreamOwner(Protocol):
    """What a :class:`StreamHandle` needs from the scheduler that opened its stream.

    Implemented by :class:`~bot.scheduler.core.SendScheduler`; called only by
    :class:`StreamHandle` (code outside the package holds handles, never a
    :class:`~bot.scheduler.stream.Stream`).
    """

    @property
    def clock(self) -> Clock:
        """The time source of the scheduler (seconds)."""
        ...

    def enqueue(self, stream: Stream, kind: JobKind, frame: T, send: SendCallback[T]) -> None:
        """Queue ``frame`` of ``kind`` on ``stream``; raises ``StreamClosedError`` (see
        :meth:`StreamHandle.submit`)."""
        ...

    def set_sends_owed(self, stream: Stream, sends: int) -> None:
        """Set the sends owed at ``stream``'s end (``sends >= 1``); recount the reserve."""
        ...

    def detach(self, stream: Stream) -> None:
        """Drop ``stream``'s pending frames and forget it (idempotent)."""
        ...

    def pause_chat(self, chat_id: int, seconds: float) -> None:
        """Send nothing to ``chat_id`` for ``seconds``."""
        ...

    def retry_after(self, stream: Stream, seconds: float) -> None:
        """Telegram answered ``stream``'s send in flight 429: pause its chat for ``seconds``
        and lower the budget of the level blamed."""
        ...


class StreamHandle:
    """One reply's (one Telegram message's) handle on the scheduler.

    Submit frames as they grow; ``await close()`` when done. Frames are opaque to
    the scheduler except for ``==`` (duplicate skipping), so a frame should carry
    everything its send changes (text, entities, markup). For a continuation
    message (past 4096 characters), close this stream and open another.
    """

    def __init__(self, owner: StreamOwner, stream: Stream) -> None:
        """Wrap ``stream``; use :meth:`SendScheduler.open_stream` instead."""
        self._owner = owner
        self._stream = stream

    @property
    def chat_id(self) -> int:
        """The chat this reply goes to."""
        return self._stream.chat_id

    @property
    def clock(self) -> Clock:
        """The scheduler's clock: a reply times its own waits (``typing``) on it, so one
        :class:`~bot.scheduler.clock.FakeClock` drives both in tests."""
        return self._owner.clock

    @property
    def failed(self) -> bool:
        """Whether the first or final frame was given up (or a send callback raised)."""
        return self._stream.failed

    @property
    def final_delivered(self) -> bool:
        """Whether the final frame was delivered (or equalled the last delivered one)."""
        return self._stream.final_delivered

    def submit(self, frame: T, *, kind: JobKind, send: SendCallback[T]) -> None:
        """Queue ``frame`` of ``kind``, to be sent by ``send(frame)``; never blocks.

        ``first``: the reply's first message (high priority). ``intermediate``: the
        reply while it grows (only the newest pending one is kept). ``final``: the
        finished reply (high priority, supersedes pending intermediate frames,
        retried until delivered or given up). ``action``: a chat action (low
        priority, needs spare tokens, dropped after 5 s unsent). Ignored after
        the reply failed. Raises :class:`StreamClosedError` after :meth:`close` /
        :meth:`cancel`, or for a non-final frame after the final one.
        """
        self._owner.enqueue(self._stream, kind, frame, send)

    def set_sends_owed(self, sends: int) -> None:
        """Say how many sends this reply's end (its final frame) will likely need (>= 1).

        These sends owed are counted in its chat's (and group's) final reserve, so that
        intermediate frames of every reply there leave room for them (see
        :class:`~bot.scheduler.limits.Limits` ``final_reserve``). Default: 1.
        """
        self._owner.set_sends_owed(self._stream, max(1, sends))

    def pause(self, seconds: float) -> None:
        """Pause this reply's chat for ``seconds`` (see :meth:`SendScheduler.pause_chat`)."""
        self._owner.pause_chat(self._stream.chat_id, seconds)

    def retry_after(self, seconds: float) -> None:
        """Say Telegram answered this reply's send in flight 429 Too Many Requests with
        ``retry_after`` = ``seconds``: its chat pauses that long, and the level blamed sends
        slower for a while (see :meth:`SendScheduler.retry_after`). Call it from the send
        callback, then return ``SendOutcome.RETRY``."""
        self._owner.retry_after(self._stream, seconds)

    async def flush(self) -> bool:
        """Wait until no frame is pending or in flight; return ``False`` if the reply failed.

        Re-raises the exception of a send callback that raised.
        """
        await self._stream.idle.wait()
        if self._stream.error is not None:
            raise self._stream.error
        return not self._stream.failed

    async def close(self) -> bool:
        """Flush (the final frame is delivered or given up), then detach the stream."""
        try:
            return await self.flush()
        finally:
            self._owner.detach(self._stream)

    def cancel(self) -> None:
        """Drop every pending frame and detach now; a send in flight still finishes."""
        self._owner.detach(self._stream)

    async def __aenter__(self) -> StreamHandle:
        """Return the handle."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the stream, or cancel it if the block raised."""
        if exc_type is None:
            await self.close()
        else:
            self.cancel()
