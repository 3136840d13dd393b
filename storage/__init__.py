"""Redis state of the bot: conversation history, settings, usage, locks, de-duplication.

Never imports telegram, httpx, providers, bot or handlers. ``open_store`` is the entry
point: it opens the backend named by ``REDIS_URL`` (real Redis or the embedded
fakeredis) and returns a store that owns, and on ``aclose()`` closes, that client.
"""

from __future__ import annotations

from storage.backend import connect
from storage.errors import LockTimeout, StorageError, StorageUnavailable, redis_unavailable
from storage.keys import key
from storage.messages import StoredMessage
from storage.pace import QuestionPace
from storage.store import ConversationStore
from storage.tokens import IMAGE_TOKENS, estimate_tokens

__all__ = [
    "IMAGE_TOKENS",
    "ConversationStore",
    "LockTimeout",
    "QuestionPace",
    "StorageError",
    "StorageUnavailable",
    "StoredMessage",
    "connect",
    "estimate_tokens",
    "key",
    "open_store",
    "redis_unavailable",
]


async def open_store(
    url: str, *, max_turns: int, max_tokens: int, ttl_seconds: int
) -> tuple[ConversationStore, bool]:
    """Open the backend at ``url`` and return ``(store, embedded)``; close with ``store.aclose()``.

    ``embedded`` is True for ``""``/``memory://`` (history lost at restart). Raises
    :class:`StorageUnavailable` as :func:`connect` does.
    """
    client, embedded = await connect(url)
    store = ConversationStore(
        client,
        max_turns=max_turns,
        max_tokens=max_tokens,
        ttl_seconds=ttl_seconds,
        owns_client=True,
    )
    return store, embedded
