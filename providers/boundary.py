"""The one HTTP boundary of the provider clients: send, read, and translate failures.

Both clients (:mod:`providers.openai_compat`, :mod:`providers.ustb`) send their
requests, read their bodies and event streams, and turn every foreign exception and
every error status into :mod:`providers.errors` classes here, so a fault means the
same error whichever platform it happens on. The mapping (text redacted of the
client's secrets):

=====================================  ===========================  ====================
fault                                  before the first event       after it
=====================================  ===========================  ====================
connect or pool timeout                ``ConnectTimeout``           —
no headers / no event in time          ``FirstTokenTimeout``        ``IdleTimeout``
the transport's read timeout           ``FirstTokenTimeout``        ``IdleTimeout``
body not in its ``Content-Encoding``   ``MalformedChunk``           ``MalformedChunk``
other transport error                  ``ProviderConnectionError``  ``StreamBroken``
=====================================  ===========================  ====================

"The first event" is the first server-sent event (comments do not count). Reading a
whole (non-SSE) body counts as after it: the answer has begun to arrive, so a stall
is ``IdleTimeout`` and a cut ``StreamBroken``. Transport errors are
:data:`~providers.http.TRANSPORT_ERRORS`, their timeouts told by
:func:`~providers.http.timeout_kind`; ``httpx.DecodingError`` is httpx's error for a
body its ``Content-Encoding`` cannot decode (httpx ``_decoders.py``; httpx-aiohttp
asks aiohttp not to decompress, so httpx does it).

An error status becomes :func:`~providers.errors.error_from_status` of the status,
the business code and message a client-specific reader finds in the (bounded) body,
``Retry-After`` (:func:`~providers.retry.retry_after_from_headers`) and the request
id header. Bodies are read with a size cap: :data:`MAX_ERROR_BODY`,
:data:`MAX_JSON_BODY`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping
from contextlib import aclosing
from typing import Any

import httpx
from httpx_sse import EventSource, ServerSentEvent

from providers.errors import (
    APIStatusError,
    ConnectTimeout,
    FirstTokenTimeout,
    IdleTimeout,
    MalformedChunk,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeout,
    StreamBroken,
    error_from_status,
    redact,
)
from providers.http import (
    READ_INTERVAL,
    TRANSPORT_ERRORS,
    EventDeadline,
    PacedStream,
    timeout_kind,
)
from providers.retry import retry_after_from_headers
from providers.sse import ErrorFields

__all__ = [
    "MAX_ERROR_BODY",
    "MAX_JSON_BODY",
    "ErrorBodyReader",
    "HTTPBoundary",
    "request_id",
]

MAX_ERROR_BODY = 64 * 1024
"""Bytes of an error body read at most: enough for any JSON error, a cap on HTML pages."""

MAX_JSON_BODY = 4 * 1024 * 1024
"""Bytes of a whole JSON answer read at most (a non-stream completion or an envelope)."""

REQUEST_ID_HEADERS = ("x-request-id", "request-id")
"""Response headers that carry a platform's request id (openai-python ``_base_client.py``)."""

ErrorBodyReader = Callable[[Any], ErrorFields | None]
"""Reads an error body's parsed JSON (``None`` when it is not JSON): its business code,
message and request id, or ``None`` when the body is not the client's error shape."""

_SNIPPET = 300
"""Characters of a non-JSON error body kept as the error message."""


def request_id(response: httpx.Response) -> str | None:
    """The request id a response's headers carry (:data:`REQUEST_ID_HEADERS`), if any."""
    for header in REQUEST_ID_HEADERS:
        if value := response.headers.get(header):
            return str(value)
    return None


class _ThenBlankLine(httpx.AsyncByteStream):
    """The decoded body of ``response``, then one blank line (``\\n\\n``).

    For streams that end by closing the connection: the blank line dispatches an event
    the server left unterminated, which an SSE parser would otherwise drop (WHATWG
    HTML "event stream interpretation": an incomplete event at the end is discarded).
    """

    def __init__(self, response: httpx.Response) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for piece in self._response.aiter_bytes():
            yield piece
        yield b"\n\n"

    async def aclose(self) -> None:
        await self._response.aclose()


class HTTPBoundary:
    """One client's side of the HTTP boundary: its timeouts, secrets and error labels.

    ``provider`` labels errors; ``first_token_timeout`` (seconds from sending to the
    first event) and ``idle_timeout`` (seconds between events, and for a whole body)
    are the client's; ``read_interval`` paces stream reads (:class:`PacedStream`).
    ``secrets`` is read at each use, so a live set the client adds to (USTB's cookies)
    stays covered. ``codes`` maps platform business codes to error classes that
    :func:`~providers.errors.error_from_status` does not know.
    """

    def __init__(
        self,
        provider: str,
        *,
        first_token_timeout: float,
        idle_timeout: float,
        read_interval: float = READ_INTERVAL,
        secrets: Iterable[str] = (),
        codes: Mapping[str, type[APIStatusError]] | None = None,
    ) -> None:
        self.provider = provider
        self.first_token_timeout = first_token_timeout
        self.idle_timeout = idle_timeout
        self.read_interval = read_interval
        self._secrets = secrets
        self._codes = dict(codes or {})

    def http_timeout(self, connect_timeout: float) -> httpx.Timeout:
        """httpx timeouts for the client: ``connect_timeout`` to connect and for a pooled
        connection; read and write a backstop 5 s past the longer of the first-token and
        idle timeouts (stalls are caught by the event deadline, :class:`EventDeadline`)."""
        backstop = max(self.first_token_timeout, self.idle_timeout) + 5
        return httpx.Timeout(backstop, connect=connect_timeout, pool=connect_timeout)

    def redact(self, text: str) -> str:
        """``text`` without the client's secrets (:func:`~providers.errors.redact`)."""
        return redact(text, *self._secrets)

    def deadline(self) -> float:
        """The loop time by which the first event must arrive, counted from now."""
        return asyncio.get_running_loop().time() + self.first_token_timeout

    # -- sending and reading ------------------------------------------------------------

    async def send(
        self, http: httpx.AsyncClient, request: httpx.Request, *, deadline: float, model: str
    ) -> httpx.Response:
        """Send ``request`` streamed and return the open response (any status).

        Raises ``FirstTokenTimeout`` when the headers are not in by ``deadline`` (loop
        time), and the translation of a transport error (:meth:`transport_error`).
        """
        try:
            async with asyncio.timeout_at(deadline):
                return await http.send(request, stream=True)
        except TimeoutError as exc:
            raise self.timeout(started=False, model=model, what="no response") from exc
        except TRANSPORT_ERRORS as exc:
            raise self.transport_error(exc, started=False, model=model) from exc

    async def events(
        self,
        response: httpx.Response,
        *,
        deadline: float,
        model: str,
        close_ends_event: bool = False,
    ) -> AsyncGenerator[ServerSentEvent, None]:
        """The server-sent events of ``response`` (parsed by httpx-sse), read paced.

        The first event must arrive by ``deadline`` (loop time), each later one within
        ``idle_timeout`` of the one before (:class:`EventDeadline`; comments and
        keep-alive bytes do not count). ``close_ends_event``: the connection close also
        ends an event the server left without its blank line. Raises
        ``FirstTokenTimeout`` / ``IdleTimeout`` and transport errors translated by
        :meth:`transport_error`. Close the generator (``aclosing``) when stopping early.
        """
        watch = EventDeadline(first=deadline, idle=self.idle_timeout)
        body = response.stream
        assert isinstance(body, httpx.AsyncByteStream)  # an AsyncClient's response
        response.stream = PacedStream(body, interval=self.read_interval, deadline=watch)
        source = response
        if close_ends_event:
            content_type = response.headers.get("content-type", "")
            source = httpx.Response(
                response.status_code,
                headers={"content-type": content_type},
                stream=_ThenBlankLine(response),
                default_encoding=response.default_encoding,
            )
        async with aclosing(EventSource(source).aiter_sse()) as events:
            while True:
                try:
                    event = await anext(events)
                except StopAsyncIteration:
                    return
                except TimeoutError as exc:
                    what = "stream stalled" if watch.started else "no first event"
                    raise self.timeout(started=watch.started, model=model, what=what) from exc
                except TRANSPORT_ERRORS as exc:
                    raise self.transport_error(exc, started=watch.started, model=model) from exc
                watch.mark()
                yield event

    async def read_body(
        self, response: httpx.Response, *, model: str, limit: int = MAX_JSON_BODY
    ) -> bytes:
        """At most ``limit`` bytes of the (decoded) body, read within ``idle_timeout``.

        Raises ``IdleTimeout`` when the body stalls and the translation of a transport
        error (as after the first event: :meth:`transport_error`).
        """
        data = bytearray()
        try:
            async with asyncio.timeout(self.idle_timeout):
                async for piece in response.aiter_bytes():
                    data += piece
                    if len(data) >= limit:
                        break
        except TimeoutError as exc:
            raise self.timeout(started=True, model=model, what="body stalled") from exc
        except TRANSPORT_ERRORS as exc:
            raise self.transport_error(exc, started=True, model=model) from exc
        return bytes(data[:limit])

    # -- translation --------------------------------------------------------------------

    async def status_error(
        self, response: httpx.Response, *, model: str, fields: ErrorBodyReader
    ) -> APIStatusError:
        """The error for an error status: read the body (at most :data:`MAX_ERROR_BODY`),
        let ``fields`` find the code and message in its JSON, else keep its first
        characters (or the reason phrase). A body that cannot be read leaves the status
        alone to decide. Returns, does not raise."""
        try:
            raw = await self.read_body(response, model=model, limit=MAX_ERROR_BODY)
        except ProviderError:
            raw = b""
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        found = fields(parsed)
        if found is not None:
            code, message, body_request_id = found
        else:
            code, body_request_id = None, None
            message = raw.decode("utf-8", "replace").strip()[:_SNIPPET]
            message = message or response.reason_phrase
        return self.api_error(
            response.status_code,
            code=code,
            message=message,
            model=model,
            retry_after=retry_after_from_headers(response.headers),
            request_id=request_id(response) or body_request_id,
        )

    def api_error(
        self,
        status: int,
        *,
        code: str | int | None = None,
        message: str = "",
        model: str = "",
        retry_after: float | None = None,
        request_id: str | None = None,
    ) -> APIStatusError:
        """:func:`~providers.errors.error_from_status` with the client's ``codes`` applied
        and the message redacted; ``status`` 0 for an in-band error."""
        error = error_from_status(
            status,
            code=code,
            message=self.redact(message),
            retry_after=retry_after,
            provider=self.provider,
            model=model,
            request_id=request_id,
        )
        cls = self._codes.get(error.code or "")
        if cls is not None and not isinstance(error, cls):
            error = cls(
                error.message,
                status=status,
                code=error.code,
                retry_after=retry_after,
                provider=self.provider,
                model=model,
                request_id=request_id,
            )
        return error

    def timeout(self, *, started: bool, model: str, what: str) -> ProviderTimeout:
        """``FirstTokenTimeout`` before the first event, ``IdleTimeout`` after it;
        ``what`` says what did not come (``"no first event"``, ``"stream stalled"``)."""
        if started:
            return IdleTimeout(
                f"{self.provider}: {what} within {self.idle_timeout:g} s",
                provider=self.provider,
                model=model,
            )
        return FirstTokenTimeout(
            f"{self.provider}: {what} within {self.first_token_timeout:g} s",
            provider=self.provider,
            model=model,
        )

    def transport_error(self, exc: Exception, *, started: bool, model: str) -> ProviderError:
        """Translate one of :data:`~providers.http.TRANSPORT_ERRORS` (the table in the
        module docstring); ``started``: whether the first event (or the body) came."""
        text = self.redact(f"{self.provider}: {type(exc).__name__}: {exc}")
        kind = timeout_kind(exc)
        cls: type[ProviderError]
        if isinstance(exc, httpx.DecodingError):
            cls = MalformedChunk
        elif kind == "read":
            cls = IdleTimeout if started else FirstTokenTimeout
        elif started:
            cls = StreamBroken
        elif kind == "connect":
            cls = ConnectTimeout
        else:
            cls = ProviderConnectionError
        return cls(text, provider=self.provider, model=model)
