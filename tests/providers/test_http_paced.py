"""PacedStream over a real loopback socket: fewer reads, every byte, deadlines honoured."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator

import httpx
import pytest

from providers.http import EventDeadline, PacedStream, provider_transport

EVENTS = [f"data: {n}\n\n".encode() for n in range(20)]


async def _serve(
    gap: float,
    *,
    stall_after: int | None = None,
    release: asyncio.Event | None = None,
    chunked: bool = False,
) -> tuple[asyncio.Server, str]:
    """An HTTP/1.1 server that sends EVENTS ``gap`` seconds apart, the body ending at close.

    Without ``chunked`` framing each socket read is one piece of the body; with it, h11
    yields one piece per chunk (one event), however many chunks one read took. With
    ``stall_after``, it stops before that event until ``release`` is set.
    """

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            framing = b"transfer-encoding: chunked" if chunked else b"connection: close"
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n%s\r\n\r\n" % framing
            )
            for n, event in enumerate(EVENTS):
                if n == stall_after and release is not None:
                    await release.wait()
                    return
                writer.write(b"%x\r\n%s\r\n" % (len(event), event) if chunked else event)
                await writer.drain()
                await asyncio.sleep(gap)
            if chunked:
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/"


TRANSPORTS = {"httpcore": lambda: None, "aiohttp": provider_transport}
"""httpx's own network (one piece per chunk) and the providers' (everything buffered)."""


async def _pieces(
    url: str, *, interval: float, deadline: EventDeadline | None = None, transport: str = "httpcore"
) -> AsyncIterator[bytes]:
    async with (
        httpx.AsyncClient(transport=TRANSPORTS[transport]()) as client,
        client.stream("GET", url) as response,
    ):
        body = response.stream
        assert isinstance(body, httpx.AsyncByteStream)
        response.stream = PacedStream(
            body, interval=interval, deadline=deadline or (lambda: math.inf)
        )
        async for piece in response.aiter_raw():
            yield piece


@pytest.mark.timeout(10)
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_paced_reads_take_many_events_at_once(transport: str) -> None:
    """20 events 10 ms apart arrive whole in a few reads at 0.1 s, one read each unpaced."""
    server, url = await _serve(0.01, chunked=transport == "aiohttp")
    async with server:
        paced = [piece async for piece in _pieces(url, interval=0.1, transport=transport)]
        unpaced = [piece async for piece in _pieces(url, interval=0.0, transport=transport)]
    assert b"".join(paced) == b"".join(EVENTS) == b"".join(unpaced)
    assert len(paced) <= 5
    assert len(unpaced) >= 10


@pytest.mark.timeout(10)
async def test_buffered_chunks_are_never_delayed() -> None:
    """Chunks that one read brought in come at once: 20 events take ~0.2 s, not 20 × 0.1 s."""
    server, url = await _serve(0.01, chunked=True)
    loop = asyncio.get_running_loop()
    async with server:
        started = loop.time()
        pieces = [piece async for piece in _pieces(url, interval=0.1)]
        took = loop.time() - started
    assert pieces == EVENTS
    assert took < 1.0


@pytest.mark.timeout(10)
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_read_past_the_deadline_raises_timeout(transport: str) -> None:
    """When the server stalls, the read is cut at the deadline with TimeoutError."""
    release = asyncio.Event()
    server, url = await _serve(0.0, stall_after=3, release=release)
    loop = asyncio.get_running_loop()
    async with server:
        deadline = EventDeadline(first=loop.time() + 5, idle=0.2)
        got = bytearray()
        started = loop.time()
        with pytest.raises(TimeoutError):
            async for piece in _pieces(url, interval=0.0, deadline=deadline, transport=transport):
                got += piece
                deadline.mark()
        release.set()
    assert bytes(got) == b"".join(EVENTS[:3])
    assert loop.time() - started < 2


async def test_event_deadline_moves_with_events_only() -> None:
    """The deadline is the first-event one until mark(), then idle seconds after the mark."""
    loop = asyncio.get_running_loop()
    deadline = EventDeadline(first=loop.time() + 30, idle=2.0)
    assert not deadline.started
    assert deadline() == pytest.approx(loop.time() + 30, abs=0.5)
    deadline.mark()
    assert deadline.started
    assert deadline() == pytest.approx(loop.time() + 2, abs=0.5)
