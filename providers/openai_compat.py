"""One streaming client for every OpenAI-compatible chat-completions platform.

Platform differences are data (:class:`OpenAIQuirks`; each platform's in
:mod:`providers.registry`), not subclasses. Wire facts:
docs/providers.md "OpenAI-compatible family" and "Zhipu details"; openai-python
``_base_client.py`` (error bodies, ``retry-after-ms``/``retry-after``); Zhipu SDK
``api_resource/chat/completions.py`` (temperature clamp, raw base64 images) and
``core/_jwt_token.py`` (JWT). Stream decoding lives in :mod:`providers.sse`.

Errors: all :class:`~providers.errors.ProviderError`, text redacted of the key. The
network, the timeouts and the error translation are the shared HTTP boundary
(:mod:`providers.boundary`, its module docstring has the table): a connect timeout →
``ConnectTimeout``; no headers or first SSE event within ``first_token_timeout`` of
sending → ``FirstTokenTimeout``; a gap longer than ``idle_timeout`` between two events
→ ``IdleTimeout`` (keep-alive comments do not reset it); a transport error →
``ProviderConnectionError`` before the first event, ``StreamBroken`` after it; a body
that its ``Content-Encoding`` cannot decode → ``MalformedChunk``. The body is read at
most every ``read_interval`` seconds (:data:`~providers.http.READ_INTERVAL`). Status
>= 300 → :func:`~providers.errors.error_from_status` with the body's
``error.code``/``message`` (:func:`~providers.sse.error_fields`), ``retry_after`` and
the request id. A 2xx ``application/json`` answer → an error body or a non-stream
completion.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from providers.boundary import MAX_JSON_BODY, HTTPBoundary, request_id
from providers.errors import MalformedChunk
from providers.http import READ_INTERVAL, provider_transport
from providers.sse import ErrorFields, OpenAIStreamDecoder, completion_chunks, error_fields
from providers.types import ChatMessage, ChatRequest, Chunk, ImagePart
from providers.zhipu_auth import ZhipuJWT, is_jwt_key

__all__ = [
    "OpenAICompatClient",
    "OpenAIQuirks",
    "build_chat_body",
    "message_payload",
]


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
    """Build the JSON body of ``POST /chat/completions`` (always ``stream: true``).

    ``request.max_tokens``, when set, goes as the chat-completions ``max_tokens``: the
    field Zhipu/Z.ai, DashScope, DeepSeek, vLLM and llama.cpp's server read (llama.cpp's
    ``n_predict`` defaults to -1: uncapped, it may generate until its context is full).
    OpenAI deprecated it for ``max_completion_tokens`` and its o-series models refuse it:
    give such a model ``max_tokens = 0`` in the catalogue to send none.
    """
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
    if request.max_tokens:
        body["max_tokens"] = request.max_tokens
    return body


def _error_body_fields(body: Any) -> ErrorFields | None:
    """Code, message and request id of an OpenAI-style error body (any JSON object)."""
    return error_fields(body) if isinstance(body, dict) else None


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
        self._boundary = HTTPBoundary(
            name,
            first_token_timeout=first_token_timeout,
            idle_timeout=idle_timeout,
            read_interval=read_interval,
            secrets=(api_key,),
        )
        self._http = httpx.AsyncClient(  # the transport holds the connection limits
            transport=transport if transport is not None else provider_transport(),
            timeout=self._boundary.http_timeout(connect_timeout),
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
        deadline = self._boundary.deadline()
        http_request = self._http.build_request(
            "POST",
            f"{self.base_url}/chat/completions",
            json=build_chat_body(request, quirks=self.quirks),
            headers=self._headers(),
        )
        response = await self._boundary.send(
            self._http, http_request, deadline=deadline, model=request.model
        )
        try:
            if response.status_code >= 300:
                raise await self._boundary.status_error(
                    response, model=request.model, fields=_error_body_fields
                )
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

    async def _stream(
        self, response: httpx.Response, request: ChatRequest, deadline: float
    ) -> AsyncGenerator[Chunk, None]:
        decoder = OpenAIStreamDecoder(
            provider=self.name, model=request.model, secrets=(self._api_key,)
        )
        decoder.request_id = request_id(response)
        events = self._boundary.events(response, deadline=deadline, model=request.model)
        async with aclosing(events):
            async for event in events:
                for chunk in decoder.feed(event.data, event=event.event):
                    yield chunk
                if decoder.done:
                    break
        for chunk in decoder.finish():
            yield chunk

    async def _json_answer(
        self, response: httpx.Response, request: ChatRequest, content_type: str
    ) -> list[Chunk]:
        """Handle a 2xx answer that is not SSE: an error body or a whole completion."""
        raw = await self._boundary.read_body(response, model=request.model, limit=MAX_JSON_BODY)
        try:
            body = json.loads(raw)
        except ValueError as exc:
            snippet = self._boundary.redact(raw[:200].decode("utf-8", "replace"))
            raise MalformedChunk(
                f"{self.name}: answer is neither SSE nor JSON ({content_type or 'no type'}):"
                f" {snippet!r}",
                provider=self.name,
                model=request.model,
                request_id=request_id(response),
            ) from exc
        return completion_chunks(
            body, provider=self.name, model=request.model, secrets=(self._api_key,)
        )
