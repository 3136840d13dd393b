"""HTTP client settings, the network transport and the paced body reader of provider clients."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Literal

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

__all__ = [
    "MAX_STREAMS",
    "READ_INTERVAL",
    "TRANSPORT_ERRORS",
    "EventDeadline",
    "PacedStream",
    "provider_transport",
    "stream_limits",
    "timeout_kind",
]

MAX_STREAMS = 1000
"""Streams one client may hold open at once. httpx's default pool of 100 connections
made stream 101 to one platform wait and then fail (seen at 200 concurrent replies in
bench/streaming.py); each streaming answer holds one connection for its whole length."""


def stream_limits() -> httpx.Limits:
    """Connection limits for httpx's own transport (``bench.streaming --network httpcore``):
    many long streams, 100 idle. :func:`provider_transport` keeps :data:`MAX_STREAMS` itself."""
    return httpx.Limits(max_connections=MAX_STREAMS, max_keepalive_connections=100)


KEEPALIVE_EXPIRY = 5.0
"""Seconds an idle provider connection is kept for reuse (httpx's default)."""


TRANSPORT_ERRORS: tuple[type[Exception], ...] = (httpx.RequestError, aiohttp.ClientError)
"""What a request through :func:`provider_transport` may raise for a network or protocol
failure. httpx-aiohttp turns the usual aiohttp errors into httpx ones (a refused
connection → ``httpx.ConnectError``, a cut body → ``httpx.ReadError``) but lets others
through unchanged, e.g. ``aiohttp.ClientResponseError`` for a reply that is not HTTP."""


def timeout_kind(exc: Exception) -> Literal["connect", "read"] | None:
    """Which timeout one of :data:`TRANSPORT_ERRORS` reports: ``"connect"`` (connecting,
    or waiting for a pooled connection), ``"read"``, or ``None`` for other failures.

    Judged by the aiohttp error that httpx-aiohttp wrapped, when there is one: its map
    names every ``aiohttp.ClientConnectionError`` ``httpx.ConnectTimeout``, a refused
    connection and a connection lost mid-body included (httpx-aiohttp 0.2.0,
    ``AIOHTTP_EXC_MAP``).
    """
    cause = exc if isinstance(exc, aiohttp.ClientError) else exc.__cause__
    if isinstance(cause, aiohttp.ClientError):
        if isinstance(cause, aiohttp.ConnectionTimeoutError):
            return "connect"
        return "read" if isinstance(cause, aiohttp.ServerTimeoutError) else None
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return "connect"
    return "read" if isinstance(exc, httpx.TimeoutException) else None


def provider_transport() -> httpx.AsyncBaseTransport:
    """The network under a provider's ``httpx.AsyncClient``: aiohttp, via httpx-aiohttp.

    httpx's own transport (httpcore + h11, pure Python) hands over one piece per HTTP
    chunk, i.e. per SSE event, at ~40 µs of CPU each; aiohttp parses HTTP in C and
    hands over everything buffered in one piece. At 200 concurrent streams this cut
    the bot's CPU per 1,000 chunks from 135 to 114 ms and its event-loop lag p99 from
    104 to 21 ms (bench/streaming.py ``--network``, two runs back to back). The
    session (created on the first request, inside the running loop) keeps up to
    :data:`MAX_STREAMS` connections, verifies TLS like httpx (certifi), takes HTTP(S)
    proxies from ``HTTP_PROXY``/``HTTPS_PROXY``/``NO_PROXY`` as httpx did (aiohttp's
    ``trust_env``: httpx reads no proxy from the environment once it is given a
    transport) and ignores cookies, so httpx's cookie jar stays the only one.
    Timeouts: httpx's ``connect`` and ``read`` become aiohttp's ``sock_connect`` and
    ``sock_read``, ``pool`` its ``connect``.
    """
    ssl_context = httpx.create_ssl_context()

    def session() -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=MAX_STREAMS, ssl=ssl_context, keepalive_timeout=KEEPALIVE_EXPIRY
        )
        return aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=True
        )

    return AiohttpTransport(client=session)


READ_INTERVAL = 0.1
"""Seconds between two reads of one streaming response body (:class:`PacedStream`).

A provider sends one SSE event per token, 20–100 per second, each in its own TCP
segment; reading each as it lands costs a trip through the transport, httpx and
httpx-sse per read (through httpcore: per event, ~100 µs of CPU; bench/streaming.py).
Reading at most every 0.1 s takes every event that arrived meanwhile in one read, and
adds at most 0.1 s to what the user sees (drafts go every 0.5 s, group edits every few
seconds)."""


class PacedStream(httpx.AsyncByteStream):
    """A response body read from the network at most once per ``interval`` seconds.

    Wraps ``response.stream`` (set ``response.stream = PacedStream(response.stream, …)``
    before reading). httpcore hands over one piece per HTTP chunk (one SSE event) and
    reads the socket only when it has no whole chunk buffered; aiohttp hands over
    everything buffered (up to 16 KiB) and waits only when nothing is. After a piece
    that needed a wait (the read suspended the task; pieces already buffered never
    do), the next piece is asked for no sooner than ``interval`` seconds after that
    read, so the next read takes every byte that arrived meanwhile and the pieces it
    holds then come without further reads. Buffered pieces
    are never delayed, so throughput never drops below what arrives. The first read is
    not delayed.

    ``deadline`` is called before every piece and returns the loop time (seconds,
    ``loop.time()``) by which that piece must arrive; past it the read is cancelled and
    ``TimeoutError`` raised. The caller decides what the deadline means (first event,
    then idle time since the last event), so bytes that are not events (SSE comments)
    do not move it.
    """

    def __init__(
        self, inner: httpx.AsyncByteStream, *, interval: float, deadline: Callable[[], float]
    ) -> None:
        """Wrap ``inner``; ``interval`` in seconds (0 reads as soon as asked)."""
        self._inner = inner
        self._interval = interval
        self._deadline = deadline

    async def __aiter__(self) -> AsyncIterator[bytes]:
        """Yield the body's bytes piece by piece; raises ``TimeoutError`` past a deadline."""
        loop = asyncio.get_running_loop()
        pieces = aiter(self._inner)
        next_read = -math.inf
        try:
            while True:
                delay = next_read - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                probe = _SuspendProbe(loop)
                try:
                    async with asyncio.timeout_at(self._deadline()):
                        piece = await anext(pieces)
                except StopAsyncIteration:
                    return
                if probe.suspended():  # a socket read: pace the next one
                    next_read = loop.time() + self._interval
                yield piece
        finally:
            if isinstance(pieces, AsyncGenerator):
                await pieces.aclose()

    async def aclose(self) -> None:
        """Close the wrapped stream (and with it the connection's response)."""
        await self._inner.aclose()


class _SuspendProbe:
    """Tells whether the task let the event loop run since the probe was made.

    A ``call_soon`` callback runs only when the running task suspends, so it having
    run means the awaited call waited (for the network), not that it was served from
    a buffer. Costs one loop handle (~1 µs).
    """

    __slots__ = ("_handle", "_ran")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._ran = False
        self._handle = loop.call_soon(self._set)

    def _set(self) -> None:
        self._ran = True

    def suspended(self) -> bool:
        """Return whether the loop ran meanwhile (and drop the callback if it did not)."""
        self._handle.cancel()
        return self._ran


class EventDeadline:
    """When the next read of a stream must return: the first-event deadline, then idle time.

    Call it (as :class:`PacedStream`'s ``deadline``) for the loop time (seconds) the
    next read must finish by: ``first`` until the first event, then ``idle`` seconds
    after the last event. :meth:`mark` records an event (one ``loop.time()`` call, so
    it is cheap to call per event).
    """

    __slots__ = ("_first", "_idle", "_last", "_loop")

    def __init__(self, *, first: float, idle: float) -> None:
        """``first``: loop time of the first-event deadline; ``idle``: seconds between events."""
        self._first = first
        self._idle = idle
        self._last: float | None = None
        self._loop = asyncio.get_running_loop()

    @property
    def started(self) -> bool:
        """Whether an event has been marked."""
        return self._last is not None

    def mark(self) -> None:
        """Record that an event arrived now."""
        self._last = self._loop.time()

    def __call__(self) -> float:
        """Return the loop time by which the next read must return."""
        return self._first if self._last is None else self._last + self._idle
