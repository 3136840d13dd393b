"""An update processor that keeps each conversation's updates in arrival order.

PTB's ``SimpleUpdateProcessor`` runs updates concurrently with no per-chat order
(docs/telegram.md, "PTB architecture notes"). This processor runs updates of different
(chat, user) pairs concurrently and updates of one pair one after another, in the
order PTB hands them over. Updates for which ``ordering_key`` returns ``None``
(``/stop``, callback queries) skip the queue, so they act on the reply in progress.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

__all__ = ["OrderedUpdateProcessor", "default_ordering_key"]

_OUT_OF_BAND_COMMANDS = ("/stop",)


def default_ordering_key(update: object) -> str | None:
    """``"<chat_id>:<user_id>"`` for messages; ``None`` for updates that must not wait."""
    if not isinstance(update, Update) or update.message is None:
        return None
    message = update.message
    text = (message.text or "").split(maxsplit=1)
    if text and text[0].split("@", 1)[0] in _OUT_OF_BAND_COMMANDS:
        return None
    user_id = message.from_user.id if message.from_user else 0
    return f"{message.chat_id}:{user_id}"


class OrderedUpdateProcessor(BaseUpdateProcessor):
    """Concurrent across conversations, sequential (FIFO) within one.

    ``max_concurrent_updates`` bounds all updates in progress, as in PTB.
    """

    def __init__(
        self,
        max_concurrent_updates: int,
        *,
        ordering_key: Callable[[object], str | None] = default_ordering_key,
    ) -> None:
        super().__init__(max_concurrent_updates)
        self._ordering_key = ordering_key
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Run ``coroutine`` after the earlier updates of the same key have finished."""
        key = self._ordering_key(update)
        if key is None:
            await coroutine
            return
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:  # asyncio.Lock wakes waiters in FIFO order
                await coroutine
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to tear down."""
