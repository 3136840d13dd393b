"""Tests for provider-level retries (stream_with_retries, retry_wait)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
import stamina
from stamina.instrumentation import RetryDetails, set_on_retry_hooks

from providers.errors import (
    AuthenticationError,
    BadRequestError,
    ConnectTimeout,
    ContentBlockedError,
    IdleTimeout,
    MalformedChunk,
    NotFoundError,
    PermissionDeniedError,
    ProviderConnectionError,
    ProviderError,
    QuotaExceededError,
    RateLimitError,
    RetryableStatusError,
    ServerError,
    StreamBroken,
    TruncatedStream,
    error_from_status,
)
from providers.openai_compat import OpenAICompatClient
from providers.retry import retry_after_from_headers, retry_wait, stream_with_retries
from providers.types import AnswerDelta, ChatMessage, ChatRequest, Chunk, Finish

REQUEST = ChatRequest(model="m", messages=(ChatMessage("user", "hi"),))
GOOD = (
    b'data: {"choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":"stop"}]}\n\n'
    b"data: [DONE]\n\n"
)


class Server:
    """A fake platform answering each request with the next scripted reply."""

    def __init__(self, *replies: httpx.Response | Exception) -> None:
        self.replies = list(replies)
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        reply = self.replies[min(self.calls, len(self.replies) - 1)]
        self.calls += 1
        if isinstance(reply, Exception):
            raise reply
        return reply


def ok() -> httpx.Response:
    """A good streamed answer."""
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=GOOD)


def status(code: int, error: dict[str, Any] | None = None, **headers: str) -> httpx.Response:
    """An error answer with a JSON body; ``retry_after="2"`` sends ``retry-after: 2``."""
    body = json.dumps({"error": error or {"message": f"status {code}"}})
    named = {name.replace("_", "-"): value for name, value in headers.items()}
    return httpx.Response(code, headers={"content-type": "application/json", **named}, content=body)


async def run(server: Server, *, attempts: int = 3) -> list[Chunk]:
    """Stream REQUEST with retries against ``server``."""
    client = OpenAICompatClient(
        "fake",
        base_url="https://x.test/v1",
        api_key="sk-k-0123456789",
        transport=httpx.MockTransport(server),
    )
    try:
        async with aclosing(stream_with_retries(client, REQUEST, attempts=attempts)) as chunks:
            return [c async for c in chunks]
    finally:
        await client.aclose()


@pytest.fixture
def no_backoff() -> Iterator[None]:
    """Switch stamina's waits off the library's way, keeping our attempt count (cap)."""
    with stamina.set_testing(True, attempts=10, cap=True):
        yield


@pytest.mark.usefixtures("no_backoff")
@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("slow connect"),
        status(500),
        status(503),
        status(429, retry_after="2"),
        status(429, {"code": "1302", "message": "并发数过高"}),
        status(408),
        status(409),
    ],
    ids=["connect", "connect-timeout", "500", "503", "429-retry-after", "1302", "408", "409"],
)
@pytest.mark.timeout(10)
async def test_retried_then_succeeds(failure: httpx.Response | Exception) -> None:
    """A retryable failure before the first chunk is retried and the next try's answer streams."""
    server = Server(failure, ok())
    assert await run(server) == [AnswerDelta("ok"), Finish("stop")]
    assert server.calls == 2


@pytest.mark.usefixtures("no_backoff")
@pytest.mark.parametrize(
    ("failure", "error_class"),
    [
        (status(400), BadRequestError),
        (status(401), AuthenticationError),
        (status(403), PermissionDeniedError),
        (status(404), NotFoundError),
        (status(429, {"code": "1113", "message": "您的账户已欠费"}), QuotaExceededError),
        (status(400, {"code": "1301", "message": "敏感内容"}), ContentBlockedError),
        (status(429, retry_after="120"), RateLimitError),
    ],
    ids=["400", "401", "403", "404", "1113-arrears", "1301", "retry-after-too-long"],
)
@pytest.mark.timeout(10)
async def test_not_retried(failure: httpx.Response, error_class: type[ProviderError]) -> None:
    """Errors that another try cannot fix are raised after exactly one request."""
    server = Server(failure, ok())
    with pytest.raises(error_class):
        await run(server)
    assert server.calls == 1


@pytest.mark.usefixtures("no_backoff")
@pytest.mark.timeout(10)
async def test_at_most_two_retries() -> None:
    """A platform that keeps failing gets three requests, then the last error is raised."""
    server = Server(status(500), status(502), status(503), ok())
    with pytest.raises(ServerError) as info:
        await run(server)
    assert server.calls == 3
    assert info.value.status == 503


@pytest.mark.usefixtures("no_backoff")
@pytest.mark.timeout(10)
async def test_attempts_one_means_no_retry() -> None:
    """``attempts=1`` makes a single request."""
    server = Server(status(500), ok())
    with pytest.raises(ServerError):
        await run(server, attempts=1)
    assert server.calls == 1


@pytest.mark.usefixtures("no_backoff")
@pytest.mark.timeout(10)
async def test_error_after_first_chunk_not_retried() -> None:
    """Once a chunk was yielded, a broken stream is re-raised, not retried."""

    class Dropping(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield b'data: {"choices":[{"index":0,"delta":{"content":"part"}}]}\n\n'
            raise httpx.ReadError("reset by peer")

    broken = httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Dropping())
    server = Server(broken, ok())
    seen: list[Chunk] = []
    client = OpenAICompatClient(
        "fake",
        base_url="https://x.test/v1",
        api_key="sk-k-0123456789",
        transport=httpx.MockTransport(server),
    )
    with pytest.raises(StreamBroken):
        async for chunk in stream_with_retries(client, REQUEST):
            seen.append(chunk)
    await client.aclose()
    assert seen == [AnswerDelta("part")]
    assert server.calls == 1


@pytest.mark.timeout(10)
async def test_retry_after_is_waited_out() -> None:
    """Outside test mode, the wait before the retry is the platform's ``retry-after-ms``."""
    waits: list[float] = []

    def record(details: RetryDetails) -> None:
        waits.append(details.wait_for)

    set_on_retry_hooks([record])
    try:
        server = Server(status(429, retry_after_ms="150"), ok())
        started = time.monotonic()
        assert await run(server) == [AnswerDelta("ok"), Finish("stop")]
        elapsed = time.monotonic() - started
    finally:
        set_on_retry_hooks(None)
    assert waits == [pytest.approx(0.15)]
    assert elapsed >= 0.15


@pytest.mark.timeout(10)
async def test_default_backoff_follows_the_formula() -> None:
    """Without retry_after, the first wait is 0.5 s plus up to 0.5 s of jitter."""
    waits: list[float] = []

    def record(details: RetryDetails) -> None:
        waits.append(details.wait_for)

    set_on_retry_hooks([record])
    try:
        assert await run(Server(status(500), ok()))
    finally:
        set_on_retry_hooks(None)
    assert len(waits) == 1
    assert 0.5 <= waits[0] <= 1.0


def err(code: int, business: str | None = None, retry_after: float | None = None) -> Exception:
    """An APIStatusError as the client would build it."""
    return error_from_status(code, code=business, retry_after=retry_after)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ProviderConnectionError("x"), True),
        (ConnectTimeout("x"), True),
        (IdleTimeout("x"), True),
        (TruncatedStream("x"), True),
        (MalformedChunk("x"), True),
        (err(500), True),
        (err(408), True),
        (err(409), True),
        (err(429), True),
        (err(429, retry_after=3), 3.0),
        (err(429, retry_after=60), 60.0),
        (err(503, retry_after=0.25), 0.25),
        (err(429, retry_after=61), False),
        (err(429, "1113"), False),
        (err(429, "1113", retry_after=1), False),
        (err(400), False),
        (err(401), False),
        (err(403), False),
        (err(404), False),
        (err(400, "1301"), False),
        (err(0), False),
        (ValueError("not ours"), False),
    ],
)
def test_retry_wait(exc: Exception, expected: float | bool) -> None:
    """retry_wait says no, yes (library backoff) or the platform's wait in seconds."""
    result = retry_wait(exc)
    assert result == expected
    assert type(result) is type(expected)


def test_retry_wait_bound_is_configurable() -> None:
    """A retry_after above ``max_retry_after`` is not retried."""
    assert retry_wait(err(429, retry_after=10), max_retry_after=5) is False
    assert retry_wait(RetryableStatusError("x", status=409, retry_after=5)) == 5.0


def test_retry_after_from_headers() -> None:
    """retry-after-ms, retry-after seconds and HTTP dates are read; junk is ignored."""
    assert retry_after_from_headers(httpx.Headers({"Retry-After-Ms": "250"})) == 0.25
    assert retry_after_from_headers(httpx.Headers({"retry-after": "12"})) == 12.0
    assert retry_after_from_headers(httpx.Headers({"retry-after": "soon"})) is None
    assert retry_after_from_headers(httpx.Headers({"retry-after": "-3"})) is None
    assert retry_after_from_headers(httpx.Headers({})) is None
    now = datetime(2026, 1, 1, tzinfo=UTC)
    date = format_datetime(now + timedelta(seconds=30), usegmt=True)
    seconds = retry_after_from_headers(
        httpx.Headers({"retry-after": date}), clock=lambda: now.timestamp()
    )
    assert seconds == 30.0
