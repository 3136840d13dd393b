"""The interface every provider client implements."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from providers.types import ChatRequest, Chunk


@runtime_checkable
class ChatClient(Protocol):
    """A streaming chat client for one platform.

    ``stream_chat`` returns an async iterator of chunks; it raises
    :class:`providers.errors.ProviderError` subclasses only, and closes the HTTP
    response on every path (normal end, error, or the caller closing the iterator).
    """

    name: str

    def stream_chat(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        """Stream the answer to ``request`` as chunks."""
        ...

    async def aclose(self) -> None:
        """Close the underlying HTTP client."""
        ...


@runtime_checkable
class SessionClient(Protocol):
    """A client whose session credentials (cookies) the platform may refresh (USTB).

    The bot stores refreshed cookies (see :class:`providers.types.SessionRefresh`)
    and hands them back with ``set_cookies`` after a restart.
    """

    def set_cookies(self, cookies: dict[str, str]) -> None:
        """Use ``cookies`` (name → value) from now on; an empty value removes a cookie."""
        ...
