"""The same faults give the same error class from both clients (one HTTP boundary).

Every case runs against OpenAICompatClient and USTBClient: error statuses and
transport exceptions through ``httpx.MockTransport``, network faults over a loopback
socket through the default (aiohttp) network. The expected class is checked exactly,
so a subclass (``MalformedChunk`` for ``StreamBroken``) does not pass for its parent.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from providers.base import ChatClient
from providers.errors import (
    AuthenticationError,
    ConnectTimeout,
    FirstTokenTimeout,
    IdleTimeout,
    MalformedChunk,
    NotFoundError,
    PermissionDeniedError,
    ProviderConnectionError,
    ProviderError,
    RateLimitError,
    ServerError,
    StreamBroken,
)
from providers.openai_compat import OpenAICompatClient
from providers.types import AnswerDelta, ChatMessage, ChatRequest, Chunk
from providers.ustb import USTBClient

pytestmark = pytest.mark.timeout(10)

SECRET = "sk-live-secret-0123456789abcdef"
"""The API key of the OpenAI-compatible client and the session cookie of the USTB one."""

REQUEST = ChatRequest(model="model-a", messages=(ChatMessage("user", "hi"),))
SSE = {"content-type": "text/event-stream"}


@dataclass(frozen=True)
class Flavour:
    """One client kind: how to build it and how its server words one answer event."""

    name: str
    build: Callable[..., ChatClient]
    event: Callable[[str], bytes]

    def client(self, base_url: str, **options: Any) -> ChatClient:
        """A client of this kind for ``base_url`` (``http://host:port``), reading unpaced."""
        return self.build(base_url, read_interval=0.0, **options)


def openai_client(base_url: str, **options: Any) -> ChatClient:
    """An OpenAICompatClient whose API root is ``base_url/v1``."""
    return OpenAICompatClient("openai", base_url=f"{base_url}/v1", api_key=SECRET, **options)


def openai_event(text: str) -> bytes:
    """One chat.completion.chunk event carrying ``text``."""
    data = {"choices": [{"index": 0, "delta": {"content": text}}]}
    return b"data: " + json.dumps(data).encode() + b"\n\n"


def ustb_client(base_url: str, **options: Any) -> ChatClient:
    """A USTBClient logged in with the ``easy_session`` cookie."""
    return USTBClient("ustb", base_url=base_url, easy_session=SECRET, **options)


def ustb_event(text: str) -> bytes:
    """One ``{e, m, d}`` envelope event carrying ``text`` as ``d.answer``."""
    data = {"e": 0, "m": "", "d": {"type": "0", "answer": text, "ext": []}}
    return b"data: " + json.dumps(data).encode() + b"\n\n"


FLAVOURS = [
    Flavour("openai", openai_client, openai_event),
    Flavour("ustb", ustb_client, ustb_event),
]


@pytest.fixture(params=FLAVOURS, ids=[f.name for f in FLAVOURS])
def flavour(request: pytest.FixtureRequest) -> Flavour:
    """Each test runs once per client kind."""
    value: Flavour = request.param
    return value


Step = bytes | float | Exception
"""A scripted body step: bytes to send, seconds to stall, or an error to raise."""


class Body(httpx.AsyncByteStream):
    """A scripted response body."""

    def __init__(self, steps: Iterable[Step]) -> None:
        self.steps = list(steps)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for step in self.steps:
            if isinstance(step, bytes):
                yield step
            elif isinstance(step, float):
                await asyncio.sleep(step)
            else:
                raise step


Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


async def fault_of(client: ChatClient, seen: list[Chunk] | None = None) -> ProviderError:
    """Stream REQUEST until it fails (chunks into ``seen``); return the error. Closes."""
    try:
        async for chunk in client.stream_chat(REQUEST):
            if seen is not None:
                seen.append(chunk)
    except ProviderError as exc:
        return exc
    finally:
        await client.aclose()
    raise AssertionError("the stream ended without an error")


def mocked(flavour: Flavour, handler: Handler, **options: Any) -> ChatClient:
    """A client of ``flavour`` whose network is ``handler``."""
    transport = httpx.MockTransport(handler)
    return flavour.client("http://provider.test", transport=transport, **options)


def answer(status: int, steps: Iterable[Step], headers: dict[str, str] | None = None) -> Handler:
    """A handler answering ``status`` with ``headers`` and a body of ``steps``."""

    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=headers or SSE, stream=Body(steps))

    return handler


def raising(error: Exception) -> Handler:
    """A handler that fails with ``error`` before any response."""

    async def handler(request: httpx.Request) -> httpx.Response:
        raise error

    return handler


# -- error statuses -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
    ],
)
async def test_error_status(flavour: Flavour, status: int, expected: type[ProviderError]) -> None:
    """An error status with a text body that echoes the secret: the status's class, the
    status and the provider's name on it, the body's text in it, the secret not."""
    body = f"request refused for {SECRET}".encode()
    handler = answer(status, [body], {"content-type": "text/plain"})
    error = await fault_of(mocked(flavour, handler))
    assert type(error) is expected
    assert getattr(error, "status", None) == status
    assert error.provider == flavour.name
    assert "request refused" in str(error)
    assert SECRET not in str(error)


async def test_rate_limit_with_retry_after(flavour: Flavour) -> None:
    """429 with ``Retry-After: 3`` is RateLimitError waiting 3 s."""
    handler = answer(429, [b"slow down"], {"content-type": "text/plain", "retry-after": "3"})
    error = await fault_of(mocked(flavour, handler))
    assert type(error) is RateLimitError
    assert error.retry_after == 3.0


class Endless(httpx.AsyncByteStream):
    """A body that never ends: 64 KiB of ``x`` at a time."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            yield b"x" * 65536
            await asyncio.sleep(0)


@pytest.mark.parametrize(
    ("status", "content_type", "expected"),
    [
        (502, "text/html", ServerError),
        (200, "application/json", MalformedChunk),
    ],
)
async def test_bodies_are_read_with_a_cap(
    flavour: Flavour, status: int, content_type: str, expected: type[ProviderError]
) -> None:
    """An endless error body or JSON answer is read only up to its cap: the error comes,
    with a short message."""

    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers={"content-type": content_type}, stream=Endless())

    error = await fault_of(mocked(flavour, handler))
    assert type(error) is expected
    assert len(str(error)) < 600


# -- transport exceptions -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (httpx.ConnectError("connection refused"), ProviderConnectionError),
        (httpx.ConnectTimeout("connect timed out"), ConnectTimeout),
        (httpx.ReadTimeout("read timed out"), FirstTokenTimeout),
    ],
)
async def test_failure_before_the_response(
    flavour: Flavour, failure: Exception, expected: type[ProviderError]
) -> None:
    """A transport failure before any response: refused, connect or read timeout."""
    assert type(await fault_of(mocked(flavour, raising(failure)))) is expected


async def test_transport_read_timeout_before_the_first_event(flavour: Flavour) -> None:
    """The transport's read timeout after the headers, before any event: FirstTokenTimeout."""
    handler = answer(200, [b": keep-alive\n\n", httpx.ReadTimeout("read timed out")])
    assert type(await fault_of(mocked(flavour, handler))) is FirstTokenTimeout


async def test_transport_read_timeout_after_the_first_event(flavour: Flavour) -> None:
    """The transport's read timeout after an event: IdleTimeout, the event delivered."""
    handler = answer(200, [flavour.event("one"), httpx.ReadTimeout("read timed out")])
    seen: list[Chunk] = []
    assert type(await fault_of(mocked(flavour, handler), seen)) is IdleTimeout
    assert seen == [AnswerDelta("one")]


async def test_connection_lost_before_the_first_event(flavour: Flavour) -> None:
    """The body breaks before any event: ProviderConnectionError."""
    handler = answer(200, [httpx.RemoteProtocolError("peer closed connection")])
    assert type(await fault_of(mocked(flavour, handler))) is ProviderConnectionError


async def test_connection_lost_after_the_first_event(flavour: Flavour) -> None:
    """The body breaks after an event: StreamBroken (the user has seen text)."""
    handler = answer(200, [flavour.event("one"), httpx.ReadError("connection reset")])
    seen: list[Chunk] = []
    assert type(await fault_of(mocked(flavour, handler), seen)) is StreamBroken
    assert seen == [AnswerDelta("one")]


async def test_no_headers_in_time(flavour: Flavour) -> None:
    """A server that sends no headers within first_token_timeout: FirstTokenTimeout."""

    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        raise AssertionError("the client should have given up")

    error = await fault_of(mocked(flavour, handler, first_token_timeout=0.2))
    assert type(error) is FirstTokenTimeout


# -- undecodable bodies -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({**SSE, "content-encoding": "gzip"}, b"this is not gzip"),
        ({"content-type": "application/json", "content-encoding": "gzip"}, b"not gzip either"),
        ({"content-type": "text/html"}, b"<html>a portal page</html>"),
        ({"content-type": "application/json"}, b"{not json"),
        (SSE, b"data: {not json\n\n"),
    ],
)
async def test_undecodable_body(flavour: Flavour, headers: dict[str, str], body: bytes) -> None:
    """A 200 body that cannot be decoded (bad gzip, neither SSE nor JSON, an event that is
    not JSON): MalformedChunk."""
    error = await fault_of(mocked(flavour, answer(200, [body], headers)))
    assert type(error) is MalformedChunk


# -- over a loopback socket ---------------------------------------------------------------

Answer = Callable[[asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> None:
    """Read one HTTP/1.1 request (head and Content-Length body)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    await reader.readexactly(length)


async def over_socket(
    flavour: Flavour, reply: Answer, **options: Any
) -> tuple[ProviderError, list[Chunk]]:
    """Run one request against a loopback server answering with ``reply``."""
    release = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await read_request(reader)
            await reply(writer)
            await writer.drain()
            await release.wait()  # hold the connection open until the client gave up
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    seen: list[Chunk] = []
    async with server:
        try:
            error = await fault_of(flavour.client(f"http://127.0.0.1:{port}", **options), seen)
        finally:
            release.set()
    return error, seen


def head(*lines: str) -> bytes:
    """A 200 response head with ``lines`` as extra headers, close-delimited."""
    return (
        "HTTP/1.1 200 OK\r\nconnection: close\r\n"
        + "".join(f"{line}\r\n" for line in lines)
        + "\r\n"
    ).encode()


async def test_refused_connection_on_a_socket(flavour: Flavour) -> None:
    """Nothing listens on the port: ProviderConnectionError, without the secret."""
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = await fault_of(flavour.client(f"http://127.0.0.1:{port}"))
    assert type(error) is ProviderConnectionError
    assert SECRET not in str(error)


async def test_silence_after_the_headers_on_a_socket(flavour: Flavour) -> None:
    """Headers and a keep-alive comment, then nothing: FirstTokenTimeout."""

    async def reply(writer: asyncio.StreamWriter) -> None:
        writer.write(head("content-type: text/event-stream") + b": keep-alive\n\n")

    error, seen = await over_socket(flavour, reply, first_token_timeout=0.3)
    assert type(error) is FirstTokenTimeout
    assert seen == []


async def test_stall_after_the_first_event_on_a_socket(flavour: Flavour) -> None:
    """One event, then nothing for longer than idle_timeout: IdleTimeout."""

    async def reply(writer: asyncio.StreamWriter) -> None:
        writer.write(head("content-type: text/event-stream") + flavour.event("hello"))

    error, seen = await over_socket(flavour, reply, idle_timeout=0.3)
    assert type(error) is IdleTimeout
    assert seen == [AnswerDelta("hello")]


async def test_undecodable_gzip_on_a_socket(flavour: Flavour) -> None:
    """A body that says gzip and is not (httpx decodes, aiohttp does not): MalformedChunk."""

    async def reply(writer: asyncio.StreamWriter) -> None:
        writer.write(
            head("content-type: text/event-stream", "content-encoding: gzip", "content-length: 16")
            + b"this is not gzip"
        )

    error, _ = await over_socket(flavour, reply)
    assert type(error) is MalformedChunk


async def test_rate_limit_on_a_socket(flavour: Flavour) -> None:
    """429 with Retry-After through the aiohttp network: RateLimitError waiting 7 s."""

    async def reply(writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: text/plain\r\n"
            b"retry-after: 7\r\ncontent-length: 9\r\n\r\nslow down"
        )

    error, _ = await over_socket(flavour, reply)
    assert type(error) is RateLimitError
    assert error.retry_after == 7.0
