"""LLM provider clients: one class per wire protocol, one error tree, one model catalogue.

Nothing here imports Telegram, Redis, or the bot.
"""

from providers.base import ChatClient
from providers.catalogue import Catalogue, ModelInfo, PlatformInfo
from providers.errors import ProviderError
from providers.openai_compat import OpenAICompatClient, OpenAIQuirks
from providers.retry import stream_with_retries
from providers.types import (
    AnswerDelta,
    ChatMessage,
    ChatRequest,
    Chunk,
    Finish,
    ImagePart,
    ReasoningDelta,
    SessionRefresh,
    Usage,
    UsageReport,
)
from providers.ustb import USTBClient

__all__ = [
    "AnswerDelta",
    "Catalogue",
    "ChatClient",
    "ChatMessage",
    "ChatRequest",
    "Chunk",
    "Finish",
    "ImagePart",
    "ModelInfo",
    "OpenAICompatClient",
    "OpenAIQuirks",
    "PlatformInfo",
    "ProviderError",
    "ReasoningDelta",
    "SessionRefresh",
    "USTBClient",
    "Usage",
    "UsageReport",
    "stream_with_retries",
]
