"""What a conversation turn knows of a restart: who records the turns in flight, and how
a turn ended by a shutdown shows and is stored.

A shutdown lets the replies in flight finish for a grace period, then ends the rest
(:meth:`bot.conversation.turn.ConversationService.end_for_restart`): the provider stream
is closed, the reply is shown finished with the :data:`RESTART_MARK` text, and the
exchange is stored (the partial answer, or :data:`RESTART_PLACEHOLDER` when no answer
text came yet), so ``/retry`` answers that question again. A :class:`TurnTracker`
records each turn while it runs, so a process killed outright leaves a trace the next
start acts on (:mod:`bot.app.inflight`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from bot.conversation.types import ReplySink, TurnInput

__all__ = ["RESTART_MARK", "RESTART_PLACEHOLDER", "TurnTracker", "Untracked"]

RESTART_MARK = "mark_restart"
"""The text key (:mod:`bot.texts`) under a reply a shutdown ended; it replaces the
outcome's own mark."""
RESTART_PLACEHOLDER = "(this answer was interrupted by a restart before any text)"
"""The answer stored for a question a shutdown or a crash cut before any answer text:
``/retry`` needs an exchange to redo, and the model sees why there is no answer."""


class TurnTracker(Protocol):
    """Records the turns in flight (:class:`bot.app.inflight.InflightTracker`)."""

    def track(self, turn: TurnInput, sink: ReplySink) -> AbstractAsyncContextManager[None]:
        """Record ``turn``, shown through ``sink``, as in flight while the block runs.

        The record goes when the block ends, unless the block was cancelled (the turn
        did not end: a shutdown gave up on it). Never raises a storage error.
        """
        ...


class Untracked:
    """The :class:`TurnTracker` that records nothing (the terminal chat, tests)."""

    @contextlib.asynccontextmanager
    async def track(self, turn: TurnInput, sink: ReplySink) -> AsyncIterator[None]:
        """Run the block; record nothing."""
        yield
