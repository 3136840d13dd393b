"""Tests of OpenAICompatClient's answers: streams, error statuses, timeouts, closing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import aclosing
from typing import Any

import httpx
import pytest

from providers.base import ChatClient
from providers.errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConnectTimeout,
    ContentBlockedError,
    FirstTokenTimeout,
    IdleTimeout,
    MalformedChunk,
    NotFoundError,
    ProviderConnectionError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    StreamBroken,
    TruncatedStream,
)
from providers.openai_compat import OpenAICompatClient
from providers.types import (
    AnswerDelta,
    ChatMessage,
    ChatRequest,
    Chunk,
    Finish,
    ReasoningDelta,
    Usage,
    UsageReport,
)

API_KEY = "sk-live-secret-0123456789abcdef"
REQUEST = ChatRequest(model="glm-4-flash", messages=(ChatMessage("user", "hi"),))
SSE_HEADERS = {"content-type": "text/event-stream"}

Step = bytes | float | Exception
"""A fake body step: bytes to send, seconds to stall, or an error to raise."""


class FakeBody(httpx.AsyncByteStream):
    """A scripted response body that records whether it was closed."""

    def __init__(self, steps: Iterable[Step]) -> None:
        self.steps = list(steps)
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for step in self.steps:
            if isinstance(step, bytes):
                yield step
            elif isinstance(step, float):
                await asyncio.sleep(step)
            else:
                raise step

    async def aclose(self) -> None:
        self.closed = True


def chunk(content: str, finish: str | None = None, **extra: Any) -> bytes:
    """One SSE event holding a chat.completion.chunk."""
    data = {
        "choices": [
            {
                "index": 0,
                "delta": {"role": "assistant", "content": content},
                **({"finish_reason": finish} if finish else {}),
            }
        ],
        **extra,
    }
    return b"data: " + json.dumps(data, ensure_ascii=False).encode() + b"\n\n"


DONE = b"data: [DONE]\n\n"


def make_client(handler: Callable[[httpx.Request], Any], **kwargs: Any) -> OpenAICompatClient:
    """A client whose network is the given MockTransport handler.

    Reads are not paced (``read_interval=0``) unless asked: a mock body produces each
    piece when it is read, so pacing would only slow it down; pacing over a real socket
    is tested in test_http_paced.py.
    """
    kwargs.setdefault("read_interval", 0.0)
    return OpenAICompatClient(
        "fake",
        base_url="https://api.example.test/v1",
        api_key=API_KEY,
        transport=httpx.MockTransport(handler),
        **kwargs,
    )


def answer_with(
    body: FakeBody, *, status: int = 200, headers: dict[str, str] | None = None
) -> Callable[[httpx.Request], httpx.Response]:
    """A handler that answers every request with ``body``."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=headers or SSE_HEADERS, stream=body)

    return handler


async def collect(client: OpenAICompatClient) -> list[Chunk]:
    """Run REQUEST to the end and close the client."""
    try:
        return [c async for c in client.stream_chat(REQUEST)]
    finally:
        await client.aclose()


async def test_client_satisfies_protocol() -> None:
    """OpenAICompatClient is a ChatClient and its repr hides the key."""
    client = make_client(answer_with(FakeBody([DONE])))
    assert isinstance(client, ChatClient)
    assert API_KEY not in repr(client)
    await client.aclose()


@pytest.mark.timeout(10)
async def test_full_stream_and_body_closed() -> None:
    """A whole stream yields its chunks and the response body is closed afterwards."""
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    body = FakeBody([chunk("<think>r</think>"), chunk("A", "stop", usage=usage), DONE])
    chunks = await collect(make_client(answer_with(body)))
    assert chunks == [
        ReasoningDelta("r"),
        AnswerDelta("A"),
        UsageReport(Usage(3, 2, 5)),
        Finish("stop"),
    ]
    assert body.closed


@pytest.mark.timeout(10)
async def test_early_break_closes_response() -> None:
    """Breaking out of the loop after the first chunk closes the server's response."""
    body = FakeBody([chunk("one"), chunk("two"), 5.0, chunk("three", "stop"), DONE])
    client = make_client(answer_with(body))
    async with aclosing(client.stream_chat(REQUEST)) as stream:
        async for _ in stream:
            break
    assert body.closed
    await client.aclose()


@pytest.mark.timeout(10)
async def test_truncated_stream_closes_and_raises() -> None:
    """A body ending without [DONE]/finish_reason raises TruncatedStream and is closed."""
    body = FakeBody([chunk("partial")])
    with pytest.raises(TruncatedStream):
        await collect(make_client(answer_with(body)))
    assert body.closed


@pytest.mark.parametrize(
    ("status", "payload", "error_class", "code"),
    [
        (400, {"error": {"code": "1214", "message": "bad param"}}, BadRequestError, "1214"),
        (401, {"error": {"code": "1001", "message": "token invalid"}}, AuthenticationError, "1001"),
        (404, {"error": {"code": "1211", "message": "模型不存在"}}, NotFoundError, "1211"),
        (429, {"error": {"code": "1113", "message": "您的账户已欠费"}}, QuotaExceededError, "1113"),
        (429, {"error": {"code": 1302, "message": "rate"}}, RateLimitError, "1302"),
        (400, {"error": {"code": "1301", "message": "unsafe"}}, ContentBlockedError, "1301"),
        (500, {"error": {"message": "oops", "type": "server_error"}}, ServerError, None),
    ],
)
@pytest.mark.timeout(10)
async def test_status_errors_are_mapped(
    status: int, payload: dict[str, Any], error_class: type[APIStatusError], code: str | None
) -> None:
    """A non-2xx JSON error body becomes the mapped error with status and string code."""
    body = FakeBody([json.dumps(payload, ensure_ascii=False).encode()])
    handler = answer_with(
        body, status=status, headers={"content-type": "application/json", "x-request-id": "req-42"}
    )
    with pytest.raises(error_class) as info:
        await collect(make_client(handler))
    assert info.value.status == status
    assert info.value.code == code
    assert info.value.request_id == "req-42"
    assert info.value.provider == "fake"
    assert info.value.model == "glm-4-flash"
    assert body.closed


@pytest.mark.timeout(10)
async def test_retry_after_headers() -> None:
    """``retry-after-ms`` wins over ``retry-after``; both are read into seconds."""
    for headers, expected in (
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after": "7"}, 7.0),
    ):
        body = FakeBody([b'{"error": {"message": "slow down"}}'])
        handler = answer_with(
            body, status=429, headers={"content-type": "application/json", **headers}
        )
        with pytest.raises(RateLimitError) as info:
            await collect(make_client(handler))
        assert info.value.retry_after == expected


@pytest.mark.timeout(10)
async def test_error_text_never_holds_the_key() -> None:
    """A server that echoes the key in its error body does not leak it into the error."""
    body = FakeBody([json.dumps({"error": {"message": f"Incorrect API key: {API_KEY}"}}).encode()])
    handler = answer_with(body, status=401, headers={"content-type": "application/json"})
    with pytest.raises(AuthenticationError) as info:
        await collect(make_client(handler))
    assert API_KEY not in str(info.value)
    assert "Incorrect API key" in str(info.value)


@pytest.mark.timeout(10)
async def test_html_error_body_is_bounded_text() -> None:
    """A non-JSON error body (a proxy's HTML page) becomes a short message."""
    body = FakeBody([b"<html>" + b"x" * 100_000 + b"</html>"])
    handler = answer_with(body, status=502, headers={"content-type": "text/html"})
    with pytest.raises(ServerError) as info:
        await collect(make_client(handler))
    assert len(str(info.value)) < 400
    assert body.closed


@pytest.mark.timeout(10)
async def test_json_error_on_200() -> None:
    """An application/json error body on a 200 is raised as an in-band error."""
    body = FakeBody([b'{"error": {"code": "1301", "message": "blocked"}}'])
    handler = answer_with(body, headers={"content-type": "application/json"})
    with pytest.raises(ContentBlockedError) as info:
        await collect(make_client(handler))
    assert info.value.status == 0


@pytest.mark.timeout(10)
async def test_json_completion_on_200() -> None:
    """An application/json non-stream completion becomes the same chunks as a stream."""
    payload = {
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "whole"},
            }
        ]
    }
    body = FakeBody([json.dumps(payload).encode()])
    handler = answer_with(body, headers={"content-type": "application/json; charset=utf-8"})
    assert await collect(make_client(handler)) == [AnswerDelta("whole"), Finish("stop")]


@pytest.mark.timeout(10)
async def test_unexpected_content_type_is_malformed() -> None:
    """A 200 that is neither SSE nor JSON raises MalformedChunk."""
    handler = answer_with(FakeBody([b"hello"]), headers={"content-type": "text/plain"})
    with pytest.raises(MalformedChunk):
        await collect(make_client(handler))


@pytest.mark.timeout(10)
async def test_in_band_error_mid_stream() -> None:
    """An error object inside the stream is raised after the text before it."""
    body = FakeBody([chunk("so far"), b'data: {"error": {"code": "1301", "message": "x"}}\n\n'])
    seen: list[Chunk] = []
    with pytest.raises(ContentBlockedError):
        async for item in make_client(answer_with(body)).stream_chat(REQUEST):
            seen.append(item)
    assert seen == [AnswerDelta("so far")]
    assert body.closed


@pytest.mark.timeout(10)
async def test_connect_error() -> None:
    """A refused connection becomes ProviderConnectionError."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with pytest.raises(ProviderConnectionError):
        await collect(make_client(handler))


@pytest.mark.timeout(10)
async def test_connect_timeout() -> None:
    """httpx's connect timeout becomes ConnectTimeout."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out")

    with pytest.raises(ConnectTimeout):
        await collect(make_client(handler))


@pytest.mark.timeout(10)
async def test_no_headers_within_first_token_timeout() -> None:
    """A server that never answers raises FirstTokenTimeout after first_token_timeout."""

    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200)

    with pytest.raises(FirstTokenTimeout):
        await collect(make_client(handler, first_token_timeout=0.2))


@pytest.mark.timeout(10)
async def test_first_token_timeout() -> None:
    """Headers but no first event within first_token_timeout raises FirstTokenTimeout."""
    body = FakeBody([b": keep-alive\n\n", 5.0, chunk("late", "stop")])
    with pytest.raises(FirstTokenTimeout):
        await collect(make_client(answer_with(body), first_token_timeout=0.2))
    assert body.closed


@pytest.mark.timeout(10)
async def test_idle_timeout_between_chunks() -> None:
    """A stall between two events longer than idle_timeout raises IdleTimeout."""
    body = FakeBody([chunk("a"), 5.0, chunk("b", "stop")])
    seen: list[Chunk] = []
    with pytest.raises(IdleTimeout):
        async for item in make_client(answer_with(body), idle_timeout=0.2).stream_chat(REQUEST):
            seen.append(item)
    assert seen == [AnswerDelta("a")]
    assert body.closed


@pytest.mark.timeout(10)
async def test_keep_alive_trickle_does_not_hide_a_stall() -> None:
    """SSE comments after the first event do not reset the idle timeout: only events do."""
    body = FakeBody([chunk("a"), *([0.05, b": keep-alive\n\n"] * 20), chunk("b", "stop")])
    with pytest.raises(IdleTimeout):
        await collect(make_client(answer_with(body), idle_timeout=0.3))


@pytest.mark.timeout(10)
async def test_slow_but_steady_stream_is_fine() -> None:
    """Gaps shorter than idle_timeout never trip it, however long the whole stream takes."""
    steps: list[Step] = []
    for n in range(5):
        steps += [chunk(str(n)), 0.05]
    body = FakeBody([*steps, chunk("", "stop"), DONE])
    chunks = await collect(
        make_client(answer_with(body), idle_timeout=0.15, first_token_timeout=0.15)
    )
    assert "".join(c.text for c in chunks if isinstance(c, AnswerDelta)) == "01234"


@pytest.mark.timeout(10)
async def test_connection_dropped_after_data_is_stream_broken() -> None:
    """A transport error after the first event is StreamBroken, and the body is closed."""
    body = FakeBody([chunk("a"), httpx.ReadError("connection reset")])
    with pytest.raises(StreamBroken) as info:
        await collect(make_client(answer_with(body)))
    assert not isinstance(info.value, ProviderConnectionError)
    assert body.closed


@pytest.mark.timeout(10)
async def test_connection_dropped_before_data_is_connection_error() -> None:
    """A transport error before any event is ProviderConnectionError."""
    body = FakeBody([httpx.RemoteProtocolError("peer closed connection")])
    with pytest.raises(ProviderConnectionError):
        await collect(make_client(answer_with(body)))
