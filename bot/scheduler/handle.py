"""The public handle of one reply stream on the send scheduler."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

from bot.scheduler.stats import JobKind
from bot.scheduler.stream import SendCallback, Stream

if TYPE_CHECKING:
    from bot.scheduler.core import SendScheduler

__all__ = ["StreamHandle"]

T = TypeVar("T")


class StreamHandle:
    """One reply's (one Telegram message's) handle on the scheduler.

    Submit frames as they grow; ``await close()`` when done. Frames are opaque to
    the scheduler except for ``==`` (duplicate skipping), so a frame should carry
    everything its send changes (text, entities, markup). For a continuation
    message (past 4096 characters), close this stream and open another.
    """

    def __init__(self, scheduler: SendScheduler, stream: Stream) -> None:
        """Wrap ``stream``; use :meth:`SendScheduler.open_stream` instead."""
        self._scheduler = scheduler
        self._stream = stream

    @property
    def chat_id(self) -> int:
        """The chat this reply goes to."""
        return self._stream.chat_id

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
        scheduler = self._scheduler
        scheduler._submit(self._stream, scheduler._job(kind, frame, send))

    def expect(self, calls: int) -> None:
        """Say how many sends this reply's final frame will likely need (at least 1).

        Counted in its chat's (and group's) final reserve, so that intermediate frames
        of every reply there leave room for them (see
        :class:`~bot.scheduler.limits.Limits` ``final_reserve``).
        """
        self._scheduler._expect(self._stream, max(1, calls))

    def pause(self, seconds: float) -> None:
        """Pause this reply's chat for ``seconds`` (see :meth:`SendScheduler.pause_chat`)."""
        self._scheduler.pause_chat(self._stream.chat_id, seconds)

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
            self._scheduler._detach(self._stream)

    def cancel(self) -> None:
        """Drop every pending frame and detach now; a send in flight still finishes."""
        self._scheduler._detach(self._stream)

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
