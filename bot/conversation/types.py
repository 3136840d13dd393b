"""The values a conversation turn works with: its input, its growing state, its outcome,
and the sink it shows itself through (see :mod:`bot.conversation.turn`)."""

from __future__ import annotations

import enum
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from providers.errors import ProviderError
from providers.types import ImagePart

__all__ = ["ImageLoader", "Outcome", "ReplySink", "StreamState", "TurnInput"]


ImageLoader = Callable[[tuple[str, ...]], Awaitable[tuple[ImagePart, ...]]]
"""Fetches images again from their stored references (``file_id``s), for ``/retry``."""


class Outcome(enum.Enum):
    """How a turn ended. ``EMPTY``: the model finished without answer text (nothing, only
    whitespace, only reasoning, only an empty code block); nothing was stored."""

    COMPLETED = "completed"
    STOPPED = "stopped"
    INTERRUPTED = "interrupted"
    FAILED = "failed"
    EMPTY = "empty"


@dataclass
class StreamState:
    """The text of the answer so far; the sink reads it, the turn writes it."""

    answer: str = ""
    reasoning: str = ""
    started: float = field(default_factory=time.monotonic)
    answer_started: float | None = None
    notice: str | None = None
    usage_tokens: int = 0

    def thinking_seconds(self) -> float:
        """Seconds spent reasoning: until the first answer text, or until now."""
        end = self.answer_started if self.answer_started is not None else time.monotonic()
        return end - self.started

    def reset(self) -> None:
        """Forget the text of a broken attempt (its replacement starts from scratch)."""
        self.answer = ""
        self.reasoning = ""
        self.started = time.monotonic()
        self.answer_started = None


class ReplySink(Protocol):
    """Where a turn shows its answer: a Telegram reply stream, or a terminal."""

    async def begin(self) -> None:
        """Show at once that the message was received (typing, an empty draft, …)."""

    def update(self, state: StreamState) -> None:
        """The answer or reasoning grew; called per chunk, so it must not block."""

    async def restart(self, state: StreamState) -> None:
        """The stream broke after text was shown; a new attempt replaces the text."""

    async def finish(self, state: StreamState, outcome: Outcome) -> None:
        """Show the final text; ``outcome`` is COMPLETED, STOPPED, INTERRUPTED or EMPTY
        (then ``state.answer`` is empty and ``state.notice`` says so)."""

    async def fail(self, state: StreamState, error: ProviderError) -> None:
        """Tell the user the turn failed (partial text, if any, is in ``state``)."""

    async def abandon(self) -> None:
        """The turn ended by an unexpected error (storage down, …); release what ``begin`` took."""


@dataclass(frozen=True)
class TurnInput:
    """A user's message as the turn needs it.

    ``scope`` is the conversation key (see :mod:`bot.conversation.scope`); ``images`` are the
    encoded images of this message and ``image_file_ids`` their Telegram
    ``file_id``s (stored in history instead of the bytes); ``context`` is text that
    frames the question (the channel post a discussion thread hangs under).
    ``quoted`` is the block showing the message the question replies to or quotes
    (:mod:`bot.conversation.quoted`); it precedes ``text`` in the user message, which is
    sent and stored as :attr:`content`. A quoted image is the first of ``images``.
    """

    scope: str
    user_id: int
    text: str
    images: tuple[ImagePart, ...] = ()
    image_file_ids: tuple[str, ...] = ()
    context: str | None = None
    quoted: str | None = None

    @property
    def content(self) -> str:
        """The user message as sent and stored: ``quoted``, a blank line, then ``text``."""
        return f"{self.quoted}\n\n{self.text}" if self.quoted else self.text
