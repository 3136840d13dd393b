"""Request and stream-chunk types shared by every provider client.

The names follow the chat-completions API (messages, role, delta, finish_reason,
usage). Every type is a frozen dataclass, so a chunk can be handed around without
anyone mutating it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image attached to a user message.

    ``data`` holds the encoded image bytes (JPEG or PNG); ``mime_type`` names the
    encoding. Clients turn it into a data URL (OpenAI style) or raw base64
    (Zhipu/Z.ai, see docs/providers.md "Vision").
    """

    data: bytes
    mime_type: str = "image/jpeg"


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One entry of ``messages``: a role, its text, and any images (user turns only)."""

    role: Role
    content: str
    images: tuple[ImagePart, ...] = ()


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A streaming chat-completions request.

    ``model`` is the provider's model id (not the catalogue's display name);
    ``thinking`` switches a reasoning model's thinking on or off where the platform
    has a switch (``None`` leaves the platform default); ``temperature`` is passed
    through when set; ``user_id`` is an opaque end-user id some platforms accept;
    ``max_tokens`` caps the tokens the model may generate (the chat-completions
    ``max_tokens``; reasoning counts toward it on most platforms), ``None`` sends no cap.
    """

    model: str
    messages: tuple[ChatMessage, ...]
    temperature: float | None = None
    thinking: bool | None = None
    user_id: str | None = None
    max_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class AnswerDelta:
    """A piece of the answer text, in stream order."""

    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """A piece of the model's reasoning ("thinking") text; never stored in history."""

    text: str


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts reported by the provider for the whole request."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Finish:
    """The end of the answer: ``finish_reason`` as the platform sent it ("stop", "length", …)."""

    finish_reason: str


@dataclass(frozen=True, slots=True)
class UsageReport:
    """The usage of the request, sent once near the end of the stream."""

    usage: Usage


@dataclass(frozen=True, slots=True)
class SessionRefresh:
    """The provider refreshed its session credentials (USTB ``Set-Cookie``).

    ``cookies`` maps cookie name to its new value; the caller persists them so that
    a restart keeps the refreshed session. The provider never imports storage.
    """

    cookies: dict[str, str] = field(default_factory=dict)


Chunk = AnswerDelta | ReasoningDelta | Finish | UsageReport | SessionRefresh
"""What a provider client's ``stream_chat`` yields."""

__all__ = [
    "AnswerDelta",
    "ChatMessage",
    "ChatRequest",
    "Chunk",
    "Finish",
    "ImagePart",
    "ReasoningDelta",
    "Role",
    "SessionRefresh",
    "Usage",
    "UsageReport",
]
