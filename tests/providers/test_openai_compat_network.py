"""OpenAICompatClient over real loopback sockets, through its default (aiohttp) network.

The mapping tests in test_openai_compat_stream.py raise httpx's errors from a mock
transport; these make the failures happen on a socket, so what httpx-aiohttp raises
(or lets through) is what the client maps.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable
from contextlib import aclosing

import aiohttp
import httpx
import pytest
from httpx_aiohttp.transport import map_aiohttp_exceptions

from providers.errors import IdleTimeout, ProviderConnectionError, StreamBroken
from providers.http import timeout_kind
from providers.openai_compat import OpenAICompatClient
from providers.types import AnswerDelta, ChatMessage, ChatRequest, Chunk, Finish

API_KEY = "sk-live-secret-0123456789abcdef"
REQUEST = ChatRequest(model="model-a", messages=(ChatMessage("user", "hi"),))
HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"

Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def event(content: str, finish: str | None = None) -> bytes:
    """One HTTP chunk holding one SSE event with a chat.completion.chunk."""
    choice = {
        "index": 0,
        "delta": {"content": content},
        **({"finish_reason": finish} if finish else {}),
    }
    data = b"data: " + json.dumps({"choices": [choice]}).encode() + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(data), data)


async def serve(answer: Answer) -> tuple[asyncio.Server, str]:
    """A loopback server answering every connection with ``answer``; returns its base URL."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            await answer(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"


def client(base_url: str, **kwargs: float) -> OpenAICompatClient:
    """A client with the default network (no ``transport``), reading unpaced."""
    return OpenAICompatClient(
        "fake", base_url=base_url, api_key=API_KEY, read_interval=0.0, **kwargs
    )


async def collect(chat: OpenAICompatClient, seen: list[Chunk]) -> None:
    """Stream REQUEST into ``seen``; always close the client."""
    try:
        async for item in chat.stream_chat(REQUEST):
            seen.append(item)
    finally:
        await chat.aclose()


@pytest.mark.timeout(10)
async def test_a_whole_stream_arrives() -> None:
    """Events split across TCP segments arrive in order, then the finish reason."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(HEAD)
        for part in ("你好", "，", "world 👋"):
            writer.write(event(part))
            await writer.drain()
            await asyncio.sleep(0.01)
        writer.write(event("", finish="stop") + b"0\r\n\r\n")
        await writer.drain()

    server, url = await serve(answer)
    seen: list[Chunk] = []
    async with server:
        await collect(client(url), seen)
    text = "".join(c.text for c in seen if isinstance(c, AnswerDelta))
    assert text == "你好，world 👋"
    assert isinstance(seen[-1], Finish)


@pytest.mark.timeout(10)
async def test_refused_connection_is_a_connection_error() -> None:
    """Nothing listening on the port: ProviderConnectionError, and the key is not in it."""
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ProviderConnectionError) as info:
        await collect(client(f"http://127.0.0.1:{port}/v1"), [])
    assert API_KEY not in str(info.value)


@pytest.mark.timeout(10)
async def test_a_reply_that_is_not_http_is_a_connection_error() -> None:
    """Garbage instead of a status line: a ProviderError, not a bare aiohttp exception."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await writer.drain()

    server, url = await serve(answer)
    async with server:
        with pytest.raises(ProviderConnectionError):
            await collect(client(url), [])


@pytest.mark.timeout(10)
async def test_connection_cut_mid_body_is_stream_broken() -> None:
    """The server closes in the middle of the chunked body after one event: StreamBroken."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(HEAD + event("part one"))
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b'40\r\ndata: {"choi')  # half a chunk, then the socket closes
        await writer.drain()

    server, url = await serve(answer)
    seen: list[Chunk] = []
    async with server:
        with pytest.raises(StreamBroken) as info:
            await collect(client(url), seen)
    assert not isinstance(info.value, ProviderConnectionError)
    assert seen == [AnswerDelta("part one")]


@pytest.mark.timeout(10)
async def test_a_stall_after_the_first_event_is_an_idle_timeout() -> None:
    """No event for longer than idle_timeout once the stream started: IdleTimeout."""
    release = asyncio.Event()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(HEAD + event("hello"))
        await writer.drain()
        await release.wait()

    server, url = await serve(answer)
    seen: list[Chunk] = []
    started = asyncio.get_running_loop().time()
    async with server:
        with pytest.raises(IdleTimeout):
            await collect(client(url, idle_timeout=0.3), seen)
        release.set()
    assert seen == [AnswerDelta("hello")]
    assert asyncio.get_running_loop().time() - started < 3


@pytest.mark.timeout(10)
async def test_closing_the_stream_early_closes_the_connection() -> None:
    """A consumer that stops (/stop) closes the provider's connection at once."""
    closed = asyncio.Event()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(HEAD)
        for n in range(1000):
            writer.write(event(f"word{n} "))
            await writer.drain()
            if reader.at_eof():
                break
            try:  # the client sends nothing more: a read returns b"" once it closed
                await asyncio.wait_for(reader.read(1), 0.02)
                break
            except TimeoutError:
                continue
        closed.set()

    server, url = await serve(answer)
    chat = client(url)
    async with server:
        async with aclosing(chat.stream_chat(REQUEST)) as chunks:
            first = await anext(chunks)
        await asyncio.wait_for(closed.wait(), 2)  # fails the test on timeout
        await chat.aclose()
    assert first == AnswerDelta("word0 ")


def wrapped(error: Exception) -> Exception:
    """``error`` as httpx-aiohttp hands it over (mapped to an httpx error, or as it is)."""
    try:
        with map_aiohttp_exceptions():
            raise error
    except Exception as exc:  # whatever comes out
        return exc
    raise AssertionError("unreachable")


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (aiohttp.ConnectionTimeoutError(), "connect"),
        (aiohttp.SocketTimeoutError(), "read"),
        (aiohttp.ServerDisconnectedError(), None),  # httpx-aiohttp: "ConnectTimeout"
        (aiohttp.ClientPayloadError("cut"), None),
        (httpx.PoolTimeout("pool"), "connect"),
        (httpx.ConnectTimeout("connect"), "connect"),
        (httpx.ReadTimeout("read"), "read"),
        (httpx.ReadError("reset"), None),
    ],
)
def test_timeout_kind_looks_through_httpx_aiohttp(error: Exception, kind: str | None) -> None:
    """A timeout is told by its aiohttp cause; a lost connection is not a timeout."""
    assert timeout_kind(wrapped(error)) == kind


@pytest.mark.timeout(10)
async def test_a_proxy_from_the_environment_carries_the_stream(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HTTP_PROXY is honoured, as with httpx's own network: the request goes to the proxy
    (absolute URI in the request line), which answers here for an unresolvable host."""
    request_lines: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_lines.append(head.split(b"\r\n", 1)[0])
            writer.write(HEAD + event("via proxy", finish="stop") + b"0\r\n\r\n")
            await writer.drain()
        finally:
            writer.close()

    proxy = await asyncio.start_server(handle, "127.0.0.1", 0)
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.sockets[0].getsockname()[1]}")
    seen: list[Chunk] = []
    async with proxy:
        await collect(client("http://provider.invalid/v1"), seen)
    assert request_lines == [b"POST http://provider.invalid/v1/chat/completions HTTP/1.1"]
    assert seen[0] == AnswerDelta("via proxy")
