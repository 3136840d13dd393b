"""USTBClient over a real loopback socket whose answer ends by closing the connection."""

from __future__ import annotations

import asyncio
import json
import socket
from email import policy
from email.parser import BytesParser

import pytest

from providers.errors import ProviderConnectionError
from providers.types import AnswerDelta, ChatMessage, ChatRequest, Finish, ReasoningDelta
from providers.ustb import USTBClient


async def read_request(reader: asyncio.StreamReader) -> tuple[dict[str, str], bytes]:
    """Read one HTTP/1.1 request: lower-cased headers and the Content-Length body."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")[1:]
    pairs = (line.partition(":") for line in lines if line)
    headers = {name.strip().lower(): value.strip() for name, _, value in pairs}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return headers, body


@pytest.mark.timeout(10)
async def test_close_delimited_stream_over_a_socket() -> None:
    """A close-delimited SSE answer streams in order and ends normally at the close."""
    received: list[tuple[dict[str, str], bytes]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await read_request(reader))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Connection: close\r\n\r\n")
        for answer in ["<think>hmm", "</think>", "你好"]:
            event = {"e": 0, "m": "", "d": {"type": "0", "answer": answer, "ext": []}}
            writer.write(b"data: " + json.dumps(event).encode() + b"\n\n")
            await writer.drain()
            await asyncio.sleep(0.01)
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = USTBClient(base_url=f"http://127.0.0.1:{port}", easy_session="a" * 32)
    request = ChatRequest(model="DeepSeek", messages=(ChatMessage("user", "问候"),))
    try:
        chunks = [chunk async for chunk in client.stream_chat(request)]
    finally:
        await client.aclose()
        server.close()
        await server.wait_closed()
    assert chunks == [ReasoningDelta("hmm"), AnswerDelta("你好"), Finish("stop")]
    headers, body = received[0]
    assert headers["cookie"] == "easy_session=" + "a" * 32
    assert headers["origin"] == f"http://127.0.0.1:{port}"
    message = BytesParser(policy=policy.HTTP).parsebytes(
        f"Content-Type: {headers['content-type']}\r\n\r\n".encode() + body
    )
    names = [part.get_param("name", header="content-disposition") for part in message.iter_parts()]
    assert names == ["content", "compose_id", "deep_search", "model_name", "internet_search"]


@pytest.mark.timeout(10)
async def test_network_failures_are_provider_errors_without_the_cookie() -> None:
    """Over the aiohttp network: a refused connection and a reply that is not HTTP are
    ProviderConnectionError (never a bare aiohttp exception), and the session cookie
    stays out of the text."""
    session = "s" * 32
    request = ChatRequest(model="DeepSeek", messages=(ChatMessage("user", "hi"),))
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]

    async def not_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(not_http, "127.0.0.1", 0)
    ports = [closed_port, server.sockets[0].getsockname()[1]]
    try:
        for port in ports:
            client = USTBClient(base_url=f"http://127.0.0.1:{port}", easy_session=session)
            try:
                with pytest.raises(ProviderConnectionError) as info:
                    _ = [chunk async for chunk in client.stream_chat(request)]
            finally:
                await client.aclose()
            assert session not in str(info.value)
    finally:
        server.close()
        await server.wait_closed()
