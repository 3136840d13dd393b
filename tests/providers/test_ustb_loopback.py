"""USTBClient over a real loopback socket whose answer ends by closing the connection."""

from __future__ import annotations

import asyncio
import json
import socket

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


def expected_form(boundary: str, fields: list[tuple[str, str]]) -> bytes:
    """The multipart body the web page's FormData sends for ``fields``: in order, each
    part with only ``Content-Disposition: form-data; name="…"``, UTF-8 values."""
    parts = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        + value.encode()
        + b"\r\n"
        for name, value in fields
    )
    return parts + f"--{boundary}--\r\n".encode()


@pytest.mark.timeout(10)
async def test_close_delimited_stream_over_a_socket() -> None:
    """A close-delimited SSE answer streams in order and ends normally at the close; the
    form on the wire is exactly the ordered fields, with no per-part Content-Type."""
    received: list[tuple[dict[str, str], bytes]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await read_request(reader))
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
        )
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
    request = ChatRequest(
        model="DeepSeek",
        messages=(
            ChatMessage("system", "简短"),
            ChatMessage("user", "q1"),
            ChatMessage("assistant", "a1"),
            ChatMessage("user", "问候"),
        ),
    )
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
    assert "transfer-encoding" not in headers  # sent with a Content-Length
    kind, _, boundary = headers["content-type"].partition("; boundary=")
    assert kind == "multipart/form-data"
    assert body == expected_form(
        boundary,
        [
            ("content", "问候"),
            ("history[0][role]", "user"),
            ("history[0][content]", "简短\n\nq1"),
            ("history[1][role]", "assistant"),
            ("history[1][content]", "a1"),
            ("compose_id", "3"),
            ("deep_search", "1"),
            ("model_name", "DeepSeek"),
            ("internet_search", "2"),
        ],
    )


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
