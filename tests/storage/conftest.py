"""Fixtures of the storage tests: a store on each backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from storage import ConversationStore, open_store

MAX_TURNS = 3
MAX_TOKENS = 1000
TTL_SECONDS = 3600


@pytest.fixture
async def store(store_backend_url: str) -> AsyncIterator[ConversationStore]:
    """Yield a store (3 turns, 1000 tokens, 1 h TTL) on real Redis, then on the embedded one."""
    opened, _ = await open_store(
        store_backend_url, max_turns=MAX_TURNS, max_tokens=MAX_TOKENS, ttl_seconds=TTL_SECONDS
    )
    yield opened
    await opened.aclose()
