"""One streaming client for every OpenAI-compatible chat-completions platform.

Platform differences are data (:class:`OpenAIQuirks`; each platform's in
:mod:`providers.registry`), not subclasses. Wire facts:
providers.md "OpenAI-compatible family" and "Zhipu details"; openai-python
``_base_client.py`` (error bodies, ``retry-after-ms``/``retry-after``); Zhipu SDK
``api_resource/chat/completions.py`` (temperature clamp, raw base64 images) and
``core/_jwt_token.py`` (JWT). Stream decoding lives in :mod:`providers.sse`.

Error mapping (all :class:`~providers.errors.ProviderError`; text redacted of the key):

- The network is aiohttp under httpx (:func:`~providers.http.provider_transport`).
  Before the first event, a connect or pool timeout → ``ConnectTimeout``, a read
  timeout → ``FirstTokenTimeout`` and other transport errors
  (:data:`~providers.http.TRANSPORT_ERRORS`) → ``ProviderConnectionError``; after it, a
  read timeout → ``IdleTimeout`` and any other → ``StreamBroken`` (the user already
  saw text, so it is a broken stream). Timeouts: :func:`~providers.http.timeout_kind`.
- Response headers plus the first SSE event (comments do not count) not within
  ``first_token_timeout`` of sending → ``FirstTokenTimeout``; a gap longer than
  ``idle_timeout`` between two events → ``IdleTimeout`` (an asyncio timeout around
  each piece read from the body, due ``idle_timeout`` after the last *event*, so a
  trickle of keep-alive bytes cannot hide a stall; :class:`~providers.http.PacedStream`).
- The body is read at most every ``read_interval`` seconds
  (:data:`~providers.http.READ_INTERVAL`), each read taking all events that arrived.
- Status >= 300 → :func:`~providers.errors.error_from_status` with the body's
  ``error.code``/``message``, ``retry_after`` and the request id.
- A 2xx ``application/json`` answer → an error body or a non-stream completion.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Literal

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
    StreamBroken,
    error_from_status,
    redact,
)
from providers.http import (
    READ_INTERVAL,
    TRANSPORT_ERRORS,
    EventDeadline,
    PacedStream,
    provider_transport,
    timeout_kind,
)
from providers.retry import retry_after_from_headers
from providers.sse import OpenAIStreamDecoder, completion_chunks, error_fields
from providers.types import ChatMessage, ChatRequest, Chunk, ImagePart
from providers.zhipu_auth import ZhipuJWT, is_jwt_key

__all__ = [
    "OpenAICompatClient",
    "OpenAIQuirks",
    "build_chat_body",
    "message_payload",
]

_MAX_ERROR_BODY = 64 * 1024
_MAX_JSON_BODY = 4 * 1024 * 1024
_REQUEST_ID_HEADERS = ("x-request-id", "request-id")


@dataclass(frozen=True, slots=True)
class OpenAIQuirks:
    """How one platform departs from plain OpenAI chat completions.

    - ``thinking``: how ``ChatRequest.thinking`` is sent. ``"zhipu"`` and
      ``"deepseek"``: ``thinking: {"type": "enabled"|"disabled"}`` (Zhipu/Z.ai SDK;
      DeepSeek "Thinking Mode" guide); ``"dashscope"``: ``enable_thinking: bool``;
      ``"none"``: nothing is sent.
    - ``image_format``: ``"data_url"`` (``data:<mime>;base64,…``) or ``"raw_base64"``
      (Zhipu/Z.ai: the SDK strips the data-URL prefix).
    - ``stream_usage``: send ``stream_options: {"include_usage": true}`` (OpenAI,
      DashScope, vLLM; Zhipu sends usage unasked).
    - ``jwt_auth``: for ``id.secret`` keys, send a Zhipu JWT instead of the key.
    - ``clamp_sampling``: Zhipu SDK clamp: temperature <= 0 → 0.01 with
      ``do_sample: false``; >= 1 → 0.99.
    - ``user_field``: body field that carries ``ChatRequest.user_id`` (``"user"`` for
      OpenAI, ``"user_id"`` for Zhipu); ``None`` sends no user id.
    """

    thinking: Literal["none", "zhipu", "dashscope", "deepseek"] = "none"
    image_format: Literal["data_url", "raw_base64"] = "data_url"
    stream_usage: bool = True
    jwt_auth: bool = False
    clamp_sampling: bool = False
    user_field: str | None = None


def _image_url(image: ImagePart, image_format: str) -> str:
    encoded = base64.b64encode(image.data).decode("ascii")
    if image_format == "raw_base64":
        return encoded
    return f"data:{image.mime_type};base64,{encoded}"


def message_payload(message: ChatMessage, *, quirks: OpenAIQuirks) -> dict[str, Any]:
    """Build one ``messages`` entry.

    Text only → ``{"role", "content": str}``; with images → ``content`` is a parts
    list ``[{"type": "text", "text"}, {"type": "image_url", "image_url": {"url"}}…]``
    (the text part is left out when the text is empty).
    """
    if not message.images:
        return {"role": message.role, "content": message.content}
    parts: list[dict[str, Any]] = []
    if message.content:
        parts.append({"type": "text", "text": message.content})
    for image in message.images:
        url = _image_url(image, quirks.image_format)
        parts.append({"type": "image_url", "image_url": {"url": url}})
    return {"role": message.role, "content": parts}


def build_chat_body(request: ChatRequest, *, quirks: OpenAIQuirks) -> dict[str, Any]:
    """Build the JSON body of ``POST /chat/completions`` (always ``stream: true``)."""
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [message_payload(m, quirks=quirks) for m in request.messages],
        "stream": True,
    }
    if quirks.stream_usage:
        body["stream_options"] = {"include_usage": True}
    if request.temperature is not None:
        temperature = request.temperature
        if quirks.clamp_sampling and temperature <= 0:
            temperature = 0.01
            body["do_sample"] = False
        elif quirks.clamp_sampling and temperature >= 1:
            temperature = 0.99
        body["temperature"] = temperature
    if request.thinking is not None:
        if quirks.thinking in ("zhipu", "deepseek"):
            body["thinking"] = {"type": "enabled" if request.thinking else "disabled"}
        elif quirks.thinking == "dashscope":
            body["enable_thinking"] = request.thinking
    if request.user_id and quirks.user_field:
        body[quirks.user_field] = request.user_id
    return body


def _request_id(response: httpx.Response) -> str | None:
    for header in _REQUEST_ID_HEADERS:
        if value := response.headers.get(header):
            return str(value)
    return None


class OpenAICompatClient:
    """Streaming chat client for one OpenAI-compatible platform (implements ``ChatClient``).

    ``name`` labels errors and logs; ``base_url`` is the API root (``…/v1``, Zhipu
    ``…/api/paas/v4``); timeouts are seconds; ``transport`` replaces the network
    (default :func:`~providers.http.provider_transport`; tests pass
    ``httpx.MockTransport``). Owns one ``httpx.AsyncClient``; call
    :meth:`aclose` when done.
    """

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        api_key: str,
        quirks: OpenAIQuirks = OpenAIQuirks(),
        connect_timeout: float = 10,
        first_token_timeout: float = 60,
        idle_timeout: float = 60,
        transport: httpx.AsyncBaseTransport | None = None,
        read_interval: float = READ_INTERVAL,
    ) -> None:
        self.name = name
        self.read_interval = read_interval
        self.base_url = base_url.rstrip("/")
        self.quirks = quirks
        self.first_token_timeout = first_token_timeout
        self.idle_timeout = idle_timeout
        self._api_key = api_key
        self._jwt = ZhipuJWT(api_key) if quirks.jwt_auth and is_jwt_key(api_key) else None
        # Read stalls are caught by the paced body's deadline (EventDeadline); httpx's
        # read timeout is only a backstop a little past them.
        backstop = max(first_token_timeout, idle_timeout) + 5
        timeout = httpx.Timeout(backstop, connect=connect_timeout, pool=connect_timeout)
        self._http = httpx.AsyncClient(  # the transport holds the connection limits
            transport=transport if transport is not None else provider_transport(),
            timeout=timeout,
        )

    def __repr__(self) -> str:
        return f"OpenAICompatClient({self.name!r}, base_url={self.base_url!r})"

    async def aclose(self) -> None:
        """Close the underlying HTTP client and its connections."""
        await self._http.aclose()

    async def stream_chat(self, request: ChatRequest) -> AsyncGenerator[Chunk, None]:
        """Stream the answer to ``request``: deltas, then ``UsageReport`` (if sent), ``Finish``.

        Raises only :class:`~providers.errors.ProviderError` subclasses (see the
        module docstring). The HTTP response is closed on every path, including the
        caller closing this iterator early.
        """
        deadline = asyncio.get_running_loop().time() + self.first_token_timeout
        response = await self._send(request, deadline)
        try:
            if response.status_code >= 300:
                raise await self._status_error(response, request)
            content_type = response.headers.get("content-type", "").partition(";")[0]
            if "text/event-stream" in content_type.lower():
                async with aclosing(self._stream(response, request, deadline)) as chunks:
                    async for chunk in chunks:
                        yield chunk
            else:
                for chunk in await self._json_answer(response, request, content_type):
                    yield chunk
        finally:
            await response.aclose()

    def _headers(self) -> dict[str, str]:
        token = self._jwt.token() if self._jwt is not None else self._api_key
        return {
            "Authorization": f"Bearer {token}",
            "Accept": "text/event-stream",
            "Cache-Control": "no-store",
        }

    async def _send(self, request: ChatRequest, deadline: float) -> httpx.Response:
        http_request = self._http.build_request(
            "POST",
            f"{self.base_url}/chat/completions",
            json=build_chat_body(request, quirks=self.quirks),
            headers=self._headers(),
        )
        try:
            async with asyncio.timeout_at(deadline):
                return await self._http.send(http_request, stream=True)
        except TimeoutError as exc:
            raise self._timeout(FirstTokenTimeout, "no response", request) from exc
        except TRANSPORT_ERRORS as exc:
            raise self._transport_error(exc, request, started=False) from exc

    async def _stream(
        self, response: httpx.Response, request: ChatRequest, deadline: float
    ) -> AsyncGenerator[Chunk, None]:
        decoder = OpenAIStreamDecoder(
            provider=self.name, model=request.model, secrets=(self._api_key,)
        )
        decoder.request_id = _request_id(response)
        watch = EventDeadline(first=deadline, idle=self.idle_timeout)
        body = response.stream
        assert isinstance(body, httpx.AsyncByteStream)  # an AsyncClient's response
        response.stream = PacedStream(body, interval=self.read_interval, deadline=watch)
        async with aclosing(EventSource(response).aiter_sse()) as events:
            while not decoder.done:
                event = await self._next_event(events, request, started=watch.started)
                if event is None:
                    break
                watch.mark()
                for chunk in decoder.feed(event.data, event=event.event):
                    yield chunk
        for chunk in decoder.finish():
            yield chunk

    async def _next_event(
        self, events: AsyncIterator[ServerSentEvent], request: ChatRequest, *, started: bool
    ) -> ServerSentEvent | None:
        """Read one event; the paced body raises ``TimeoutError`` past the watch's deadline."""
        try:
            return await anext(events)
        except StopAsyncIteration:
            return None
        except TimeoutError as exc:
            if started:
                raise self._timeout(IdleTimeout, "stream stalled", request) from exc
            raise self._timeout(FirstTokenTimeout, "no first chunk", request) from exc
        except TRANSPORT_ERRORS as exc:
            raise self._transport_error(exc, request, started=started) from exc

    async def _read_body(self, response: httpx.Response, request: ChatRequest, limit: int) -> bytes:
        """Read at most ``limit`` bytes of the body within the idle timeout."""
        data = bytearray()
        try:
            async with asyncio.timeout(self.idle_timeout):
                async for piece in response.aiter_bytes():
                    data += piece
                    if len(data) >= limit:
                        break
        except TimeoutError as exc:
            raise self._timeout(IdleTimeout, "body stalled", request) from exc
        except TRANSPORT_ERRORS as exc:
            raise self._transport_error(exc, request, started=True) from exc
        return bytes(data[:limit])

    async def _status_error(self, response: httpx.Response, request: ChatRequest) -> APIStatusError:
        """Build the error for a non-2xx answer from its (bounded) body and headers."""
        try:
            raw = await self._read_body(response, request, _MAX_ERROR_BODY)
        except ProviderError:
            raw = b""  # the status alone still says what happened
        code: str | int | None = None
        request_id = _request_id(response)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if isinstance(body, dict):
            code, message, body_request_id = error_fields(body)
            request_id = request_id or body_request_id
        else:
            message = raw.decode("utf-8", "replace").strip()[:300] or response.reason_phrase
        return error_from_status(
            response.status_code,
            code=code,
            message=redact(message, self._api_key),
            retry_after=retry_after_from_headers(response.headers),
            provider=self.name,
            model=request.model,
            request_id=request_id,
        )

    async def _json_answer(
        self, response: httpx.Response, request: ChatRequest, content_type: str
    ) -> list[Chunk]:
        """Handle a 2xx answer that is not SSE: an error body or a whole completion."""
        raw = await self._read_body(response, request, _MAX_JSON_BODY)
        try:
            body = json.loads(raw)
        except ValueError as exc:
            snippet = redact(raw[:200].decode("utf-8", "replace"), self._api_key)
            raise MalformedChunk(
                f"{self.name}: answer is neither SSE nor JSON ({content_type or 'no type'}):"
                f" {snippet!r}",
                provider=self.name,
                model=request.model,
                request_id=_request_id(response),
            ) from exc
        return completion_chunks(
            body, provider=self.name, model=request.model, secrets=(self._api_key,)
        )

    def _timeout(
        self, cls: type[ProviderError], what: str, request: ChatRequest
    ) -> ProviderError:
        limit = self.idle_timeout if cls is IdleTimeout else self.first_token_timeout
        return cls(
            f"{self.name}: {what} within {limit:g} s", provider=self.name, model=request.model
        )

    def _transport_error(
        self, exc: Exception, request: ChatRequest, *, started: bool
    ) -> ProviderError:
        """Map one of :data:`~providers.http.TRANSPORT_ERRORS`: after the first event only
        to ``IdleTimeout`` (a read timeout) or ``StreamBroken``."""
        text = redact(f"{self.name}: {type(exc).__name__}: {exc}", self._api_key)
        kind = timeout_kind(exc)
        cls: type[ProviderError]
        if started:
            cls = IdleTimeout if kind == "read" else StreamBroken
        elif kind == "connect":
            cls = ConnectTimeout
        elif kind == "read":
            cls = FirstTokenTimeout
        else:
            cls = ProviderConnectionError
        return cls(text, provider=self.name, model=request.model)
