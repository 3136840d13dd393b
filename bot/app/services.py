"""Opening the configured store, and handing stored provider sessions back to clients."""

from __future__ import annotations

from collections.abc import Mapping

from bot.settings import Settings
from providers.base import ChatClient, SessionClient
from storage import ConversationStore, open_store

__all__ = ["open_configured_store", "restore_sessions"]


async def open_configured_store(settings: Settings) -> tuple[ConversationStore, bool]:
    """Open the store ``REDIS_URL`` names with the history limits of ``settings``.

    Returns ``(store, embedded)``; raises :class:`storage.StorageUnavailable` when the
    server cannot be reached (the message names host and port, never a password).
    """
    return await open_store(
        settings.redis_url,
        max_turns=settings.history_max_turns,
        max_tokens=settings.history_max_tokens,
        ttl_seconds=settings.history_ttl_seconds,
    )


async def restore_sessions(store: ConversationStore, clients: Mapping[str, ChatClient]) -> None:
    """Give each session client (USTB) the cookies stored when the platform last refreshed them."""
    for name, client in clients.items():
        if isinstance(client, SessionClient):
            cookies = await store.get_provider_session(name)
            if cookies:
                client.set_cookies(cookies)
