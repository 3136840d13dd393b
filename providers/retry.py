"""Provider-level retries: try a request again while nothing has reached the user yet.

:func:`stream_with_retries` retries only errors raised *before* the first chunk is
yielded. Once a chunk went out, an error is re-raised as is: the conversation turn
owns mid-stream retries because it must tell the user that the text was replaced.

Policy (openai-python ``_base_client.py``, docs/providers.md "Retry policy worth
matching"): retry connection errors, timeouts, a stream broken before any data,
408/409, 429 rate limits and >= 500; never 400, 401, 403, 404, content blocks, or
quota/arrears (Zhipu 1113 arrives as 429 but is :class:`QuotaExceededError`).

First-token budget: a model that sends nothing is the costliest failure to retry (the
user waits the whole first-token timeout, and every retry queues more work on a server
that is likely overloaded). So a :class:`~providers.errors.FirstTokenTimeout` is retried
at most once, and the first chunk must come within :data:`FIRST_TOKEN_BUDGET` times the
client's first-token timeout of the start, all attempts and waits included: a retry after
a first-token timeout gets the rest of that budget (about half the timeout), and a retry
whose wait would end past the budget is not made.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from email.utils import parsedate_to_datetime

import stamina

from providers.base import ChatClient
from providers.errors import (
    APIStatusError,
    FirstTokenTimeout,
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
    "FIRST_TOKEN_BUDGET",
    "FIRST_TOKEN_RETRIES",
    "MAX_RETRY_AFTER",
    "RETRIED_ERRORS",
    "WAIT_INITIAL",
    "WAIT_JITTER",
    "WAIT_MAX",
    "first_token_timeout_of",
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
FIRST_TOKEN_BUDGET = 1.5
"""The first chunk must come within this many first-token timeouts of the start, in all."""
FIRST_TOKEN_RETRIES = 1
"""How many times a :class:`~providers.errors.FirstTokenTimeout` is retried."""


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


def first_token_timeout_of(client: ChatClient) -> float | None:
    """The client's first-token timeout in seconds (its ``first_token_timeout`` attribute,
    as :class:`~providers.openai_compat.OpenAICompatClient` and
    :class:`~providers.ustb.USTBClient` have), or ``None`` when it has no positive one."""
    value = getattr(client, "first_token_timeout", None)
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None


def _longest_wait(decision: float | bool, retry: int) -> float:
    """The longest wait stamina may take before retry number ``retry`` (1-based) after
    ``on`` said ``decision``: a platform's ``retry_after``, else the documented backoff
    formula with the whole jitter; 0 in stamina's testing mode, which does not wait."""
    if stamina.is_testing():
        return 0.0
    if decision is True:
        return min(WAIT_MAX, WAIT_INITIAL * 2.0 ** (retry - 1) + WAIT_JITTER)
    return float(decision)


async def stream_with_retries(
    client: ChatClient,
    request: ChatRequest,
    *,
    attempts: int = 3,
    max_retry_after: float = MAX_RETRY_AFTER,
    first_token_timeout: float | None = None,
) -> AsyncGenerator[Chunk, None]:
    """Stream ``client.stream_chat(request)``, retrying failures before the first chunk.

    At most ``attempts`` tries (default 3: two retries), through
    ``stamina.retry_context``. Wait before retry *n* (1-based), in seconds:
    ``min(WAIT_MAX, WAIT_INITIAL · 2^(n-1) + U(0, WAIT_JITTER))`` = 0.5–1.0 s, then
    1.0–1.5 s, …, at most 8 s; a platform ``retry_after`` ≤ ``max_retry_after``
    replaces it (see :func:`retry_wait`).

    First-token budget (module docstring): with ``first_token_timeout`` (seconds; default
    the client's own, :func:`first_token_timeout_of`; none: no budget) the first chunk
    must come within ``FIRST_TOKEN_BUDGET × first_token_timeout`` of the call, attempts
    and waits included. An attempt still waiting at the end of the budget is cancelled
    and raises :class:`~providers.errors.FirstTokenTimeout`; a first-token timeout is
    retried at most :data:`FIRST_TOKEN_RETRIES` times; no retry is made whose longest
    wait would end past the budget.

    Errors after the first chunk, errors that are not retried, and the last attempt's
    error are raised unchanged (:class:`~providers.errors.ProviderError` subclasses).
    The underlying stream is closed on every path, including the caller closing this
    iterator early. Tests switch the waits off with
    ``stamina.set_testing(True, attempts=…, cap=True)``.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    timeout = first_token_timeout if first_token_timeout else first_token_timeout_of(client)
    loop = asyncio.get_running_loop()
    budget = FIRST_TOKEN_BUDGET * timeout if timeout else None
    budget_end = loop.time() + budget if budget is not None else None
    failures = 0
    first_token_timeouts = 0

    def on(exc: Exception) -> float | bool:
        nonlocal failures, first_token_timeouts
        failures += 1
        decision = retry_wait(exc, max_retry_after=max_retry_after)
        if decision is False:
            return False
        if isinstance(exc, FirstTokenTimeout):
            first_token_timeouts += 1
            if first_token_timeouts > FIRST_TOKEN_RETRIES:
                return False
        if budget_end is not None:
            wait = _longest_wait(decision, failures)
            if loop.time() + wait >= budget_end:
                return False
        return decision

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
            first = await _first_chunk_by(stream, budget_end, client=client, request=request)
    if stream is None or first is None:
        return
    try:
        yield first
        async for chunk in stream:
            yield chunk
    finally:
        await _aclose(stream)


async def _first_chunk_by(
    stream: AsyncIterator[Chunk],
    deadline: float | None,
    *,
    client: ChatClient,
    request: ChatRequest,
) -> Chunk | None:
    """:func:`_first_chunk`, cancelled at ``deadline`` (loop time; ``None``: no deadline),
    which raises :class:`~providers.errors.FirstTokenTimeout`."""
    if deadline is None:
        return await _first_chunk(stream)
    try:
        async with asyncio.timeout_at(deadline):
            return await _first_chunk(stream)
    except TimeoutError as exc:
        raise FirstTokenTimeout(
            f"{client.name}: no first chunk within the first-token budget",
            provider=client.name,
            model=request.model,
        ) from exc
