"""Setup shared by the conversation-turn tests: a sink that keeps only the outcome, an
embedded store, and provider retries that do not sleep."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import stamina

from bot.conversation.turn import Outcome, StreamState
from providers.errors import ProviderError
from storage import ConversationStore, open_store


class QuietSink:
    """A ReplySink that only keeps the outcome (``Outcome.FAILED`` on a failure)."""

    outcome: Outcome | None = None

    async def begin(self) -> None:
        """Nothing to show."""

    def update(self, state: StreamState) -> None:
        """Nothing to show."""

    async def restart(self, state: StreamState) -> None:
        """Nothing to show."""

    async def finish(self, state: StreamState, outcome: Outcome) -> None:
        """Keep the outcome."""
        self.outcome = outcome

    async def fail(self, state: StreamState, error: ProviderError) -> None:
        """Keep the failure."""
        self.outcome = Outcome.FAILED

    async def abandon(self) -> None:
        """Nothing to release."""


@asynccontextmanager
async def memory_store() -> AsyncIterator[ConversationStore]:
    """An embedded ("memory://") store: 20 turns, 10,000 tokens, a 600 s TTL; closed on exit."""
    opened, _ = await open_store("memory://", max_turns=20, max_tokens=10000, ttl_seconds=600)
    try:
        yield opened
    finally:
        await opened.aclose()


@contextmanager
def no_provider_waits() -> Iterator[None]:
    """Provider retries do not sleep (stamina's testing mode: up to 10 attempts)."""
    stamina.set_testing(True, attempts=10, cap=True)
    try:
        yield
    finally:
        stamina.set_testing(False)
