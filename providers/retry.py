"""Provider-level retries: try a request again while nothing has reached the user yet.

:func:`stream_with_retries` retries only errors raised *before* the first chunk is
yielded. Once a chunk went out, an error is re-raised as is: the conversation turn
owns mid-stream retries because it must tell the user that the text was replaced.

Policy (openai-python ``_base_client.py``, providers.md "Retry policy worth
matching"): retry connection errors, timeouts, a stream broken before any data,
408/409, 429 rate limits and >= 500; never 400, 401, 403, 404, content blocks, or
quota/arrears (Zhipu 1113 arrives as 429 but is :class:`QuotaExceededError`).
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from email.utils import parsedate_to_datetime

import stamina

from providers.base import ChatClient
from providers.errors import (
    APIStatusError,
    ProviderConnectionError,
    ProviderTimeout,
    QuotaExceededError,
    RateLimitError,
    RetryableStatusError,
    ServerError,
    StreamBroken,
)
from providers.types import ChatRequest, Chunk

__all__ = [
    "MAX_RETRY_AFTER",
    "RETRIED_ERRORS",
    "WAIT_INITIAL",
    "WAIT_JITTER",
    "WAIT_MAX",
    "retry_after_from_headers",
    "retry_wait",
    "stream_with_retries",
]

RETRIED_ERRORS: tuple[type[Exception], ...] = (
    ProviderConnectionError,
    ProviderTimeout,
    StreamBroken,
    RetryableStatusError,
    RateLimitError,
    ServerError,
)
"""The error classes worth another attempt (QuotaExceededError is not among them)."""

WAIT_INITIAL = 0.5
"""Seconds of backoff before the first retry (before jitter)."""
WAIT_MAX = 8.0
"""Upper bound of one computed backoff, in seconds."""
WAIT_JITTER = 0.5
"""Upper bound of the random jitter added to a computed backoff, in seconds."""
MAX_RETRY_AFTER = 60.0
"""The longest ``Retry-After`` (seconds) that is waited out; a longer one is not retried."""


def retry_wait(exc: BaseException, *, max_retry_after: float = MAX_RETRY_AFTER) -> float | bool:
    """Decide whether ``exc`` is retried and how long to wait (stamina's ``on=`` hook).

    Returns ``False`` (do not retry) for errors outside :data:`RETRIED_ERRORS`, for
    :class:`QuotaExceededError`, and when the platform's ``retry_after`` exceeds
    ``max_retry_after`` (the error then reaches the user, who reads "try again in N s");
    the ``retry_after`` in seconds (a float, which stamina uses instead of its own
    backoff) when the platform sent one; ``True`` (use the exponential backoff)
    otherwise.
    """
    if isinstance(exc, QuotaExceededError) or not isinstance(exc, RETRIED_ERRORS):
        return False
    retry_after = exc.retry_after if isinstance(exc, APIStatusError) else None
    if retry_after is None:
        return True
    if retry_after > max_retry_after:
        return False
    return max(0.0, float(retry_after))


def retry_after_from_headers(
    headers: Mapping[str, str], *, clock: Callable[[], float] = time.time
) -> float | None:
    """Read the wait a response asks for, in seconds, or ``None``.

    ``retry-after-ms`` (milliseconds, OpenAI) wins over ``retry-after`` (seconds or an
    HTTP date, RFC 9110 §10.2.3); same order as openai-python ``_calculate_retry_timeout``.
    ``headers`` should be case-insensitive (``httpx.Headers``); ``clock`` gives Unix
    seconds for dates. Negative, non-finite or unparsable values give ``None``.
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        seconds = _number(raw_ms)
        if seconds is not None:
            return seconds / 1000
    raw = headers.get("retry-after")
    if raw is None:
        return None
    seconds = _number(raw)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - clock())


def _number(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


async def _aclose(stream: AsyncIterator[Chunk]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


async def _first_chunk(stream: AsyncIterator[Chunk]) -> Chunk | None:
    """Return the first chunk of ``stream`` (``None`` if empty); close it on any error."""
    got_it = False
    try:
        chunk = await anext(stream)
        got_it = True
        return chunk
    except StopAsyncIteration:
        return None
    finally:
        if not got_it:
            await _aclose(stream)


async def stream_with_retries(
    client: ChatClient,
    request: ChatRequest,
    *,
    attempts: int = 3,
    max_retry_after: float = MAX_RETRY_AFTER,
) -> AsyncGenerator[Chunk, None]:
    """Stream ``client.stream_chat(request)``, retrying failures before the first chunk.

    At most ``attempts`` tries (default 3: two retries), through
    ``stamina.retry_context``. Wait before retry *n* (1-based), in seconds:
    ``min(WAIT_MAX, WAIT_INITIAL · 2^(n-1) + U(0, WAIT_JITTER))`` = 0.5–1.0 s, then
    1.0–1.5 s, …, at most 8 s; a platform ``retry_after`` ≤ ``max_retry_after``
    replaces it (see :func:`retry_wait`). Errors after the first chunk, errors that
    are not retried, and the last attempt's error are raised unchanged
    (:class:`~providers.errors.ProviderError` subclasses). The underlying stream is
    closed on every path, including the caller closing this iterator early.
    Tests switch the waits off with ``stamina.set_testing(True, attempts=…, cap=True)``.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")

    def on(exc: Exception) -> float | bool:
        return retry_wait(exc, max_retry_after=max_retry_after)

    stream: AsyncIterator[Chunk] | None = None
    first: Chunk | None = None
    async for attempt in stamina.retry_context(
        on=on,
        attempts=attempts,
        timeout=None,
        wait_initial=WAIT_INITIAL,
        wait_max=WAIT_MAX,
        wait_jitter=WAIT_JITTER,
        wait_exp_base=2,
    ):
        with attempt:
            stream = client.stream_chat(request)
            first = await _first_chunk(stream)
    if stream is None or first is None:
        return
    try:
        yield first
        async for chunk in stream:
            yield chunk
    finally:
        await _aclose(stream)
