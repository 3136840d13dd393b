"""Client for the USTB web chat (chat.ustb.edu.cn), which is not OpenAI-compatible.

Wire facts: ../shared/docs/providers.md "USTB web chat" and isHarryh/USTB-OpenAI-Py.
Auth is by browser cookie (``easy_session`` and/or ``cookie_vjuid_login``); chat is
``POST /site/ai/compose_chat`` with a multipart form, answered with SSE events whose
``data`` is a ``{"e", "m", "d"}`` envelope; the stream ends when the connection
closes. The pure wire pieces (and the inline ``<think>`` splitting, in
``ustb_wire.StreamState``) live in providers/ustb_wire.py.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any, cast
from urllib.parse import urlsplit

import httpx

from providers.errors import (
    APIStatusError,
    BadRequestError,
    ConnectTimeout,
    FirstTokenTimeout,
    IdleTimeout,
    MalformedChunk,
    ProviderConnectionError,
    ProviderError,
    SessionExpiredError,
    TruncatedStream,
    error_from_status,
    redact,
)
from providers.http import TRANSPORT_ERRORS, provider_transport, timeout_kind
from providers.retry import retry_after_from_headers
from providers.thinktags import ThinkSplitter, ThinkTagSplitter
from providers.types import AnswerDelta, ChatRequest, Chunk, Finish, SessionRefresh
from providers.ustb_wire import (
    EventParts,
    SSEDataDecoder,
    StreamState,
    compose_fields,
    encode_multipart,
    envelope_error,
    fold_messages,
    loads_or_none,
    parse_event,
)

__all__ = ["SESSION_COOKIES", "USTBClient"]

logger = logging.getLogger(__name__)

SESSION_COOKIES = ("easy_session", "cookie_vjuid_login")
"""The cookies that carry a USTB login; a refresh of these is reported as SessionRefresh."""

CHAT_PATH = "/site/ai/compose_chat"
PAGE_SETTING_PATH = "/site/voom/page-setting"
USER_INFO_PATH = "/site/user_info"

_USTB_CODES: dict[str, type[APIStatusError]] = {"4028": BadRequestError}
"""USTB envelope codes error_from_status does not know (4028 "history参数异常")."""

_LOGIN_LOCATION = re.compile(r"login|sso|cas\b|oauth|authori[sz]e|passport", re.IGNORECASE)
_EXPIRED = "the USTB session cookie expired"


def _origin(base_url: str) -> str:
    """``scheme://host[:port]`` of ``base_url`` (the ``Origin`` header value)."""
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}"


class USTBClient:
    """Streaming chat client for the USTB web chat (chat.ustb.edu.cn, campus network only).

    Cookies: ``easy_session`` and/or ``cookie_vjuid_login`` from a logged-in
    browser; ``set_cookies`` restores persisted ones, and a ``Set-Cookie`` refresh
    of either is reported once per stream as SessionRefresh. Timeouts in seconds:
    ``connect_timeout`` for the TCP connection; ``first_token_timeout`` for the
    response headers and the first SSE event, counted from the request start (as
    the OpenAI-compatible client does); ``idle_timeout`` for each read after that.
    Redirects are not followed. ``splitter_factory`` builds the inline ``<think>``
    splitter for each stream (providers/thinktags.ThinkTagSplitter fits the
    protocol). No cookie value ever appears in an exception message or a log line.
    """

    def __init__(
        self,
        name: str = "ustb",
        *,
        base_url: str = "http://chat.ustb.edu.cn",
        easy_session: str = "",
        cookie_vjuid_login: str = "",
        connect_timeout: float = 10,
        first_token_timeout: float = 60,
        idle_timeout: float = 60,
        transport: httpx.AsyncBaseTransport | None = None,
        splitter_factory: Callable[[], ThinkSplitter] = ThinkTagSplitter,
    ) -> None:
        self.name = name
        self._first_token_timeout = first_token_timeout
        self._idle_timeout = idle_timeout
        self._splitter_factory = splitter_factory
        self._cookies: dict[str, str] = {}
        self._secrets: set[str] = set()
        self._unreported: dict[str, str] = {}
        self.set_cookies({"easy_session": easy_session, "cookie_vjuid_login": cookie_vjuid_login})
        origin = _origin(base_url)
        self._http = httpx.AsyncClient(  # the transport holds the connection limits
            base_url=base_url,
            transport=transport if transport is not None else provider_transport(),
            follow_redirects=False,
            timeout=httpx.Timeout(
                connect=connect_timeout, read=None, write=idle_timeout, pool=connect_timeout
            ),
            headers={"Origin": origin, "Referer": f"{origin}/"},
        )

    @property
    def cookies(self) -> dict[str, str]:
        """A copy of the cookies the client sends now (name → value)."""
        return dict(self._cookies)

    def set_cookies(self, cookies: dict[str, str]) -> None:
        """Set the named cookies (e.g. persisted ones at start-up); an empty value removes one."""
        for cookie_name, raw in cookies.items():
            value = raw.strip()
            if value:
                self._cookies[cookie_name] = value
                self._secrets.add(value)
            else:
                self._cookies.pop(cookie_name, None)

    async def aclose(self) -> None:
        """Close the underlying HTTP client."""
        await self._http.aclose()

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        """Stream the answer to ``request`` as chunks.

        Yields SessionRefresh first when session cookies were refreshed, then
        AnswerDelta / ReasoningDelta in order, one Finish (``"stop"`` at the
        connection close when the server sent none; ``"content_filter"`` for a
        JSON moderation block), and one UsageReport when the server sent usage.
        Raises BadRequestError (images, no final user message, USTB 4028),
        SessionExpiredError (3xx to a login page), other APIStatusError classes
        via error_from_status, ConnectTimeout / FirstTokenTimeout / IdleTimeout,
        ProviderConnectionError, MalformedChunk, TruncatedStream (closed before
        any text). The response is closed on every path.
        """
        model = request.model
        content, history = fold_messages(request.messages, provider=self.name, model=model)
        body, content_type = encode_multipart(compose_fields(content, history, model_name=model))
        headers = self._headers(accept="text/event-stream", content_type=content_type)
        http_request = self._http.build_request("POST", CHAT_PATH, content=body, headers=headers)
        deadline = self._deadline()
        response = await self._send(http_request, deadline=deadline, model=model)
        try:
            if self._unreported:
                refreshed, self._unreported = self._unreported, {}
                yield SessionRefresh(cookies=refreshed)
            await self._raise_for_status(response, model=model)
            if "text/event-stream" in response.headers.get("content-type", ""):
                async for chunk in self._sse_chunks(response, deadline=deadline, model=model):
                    yield chunk
            else:
                for chunk in await self._json_answer(response, model=model):
                    yield chunk
        finally:
            await response.aclose()

    async def list_models(self) -> list[tuple[str, str]]:
        """The chat models as ``[(label, value), …]``; ``value`` is the ``model_name``.

        Source: ``GET /site/voom/page-setting?compose_id=3&type=pc`` at
        ``d.model_select.model_content.value`` (isHarryh/USTB-OpenAI-Py
        ``api_models/page_settings.py``). Raises like ``user_info``.
        """
        data = await self._get_envelope(PAGE_SETTING_PATH, {"compose_id": "3", "type": "pc"})
        try:
            entries = data["model_select"]["model_content"]["value"]
            return [(str(entry["label"]), str(entry["value"])) for entry in entries]
        except (KeyError, TypeError) as exc:
            raise MalformedChunk(
                f"{self.name}: page-setting has no model list", provider=self.name
            ) from exc

    async def user_info(self) -> dict[str, Any]:
        """Who the session belongs to: ``d`` of ``GET /site/user_info``.

        Keys seen: account, type_name, uid, user_name, user_number, identity_name
        (isHarryh/USTB-OpenAI-Py ``api_models/user_info.py``). Raises
        SessionExpiredError, APIStatusError (HTTP error or ``e != 0``), the
        timeouts, ProviderConnectionError, MalformedChunk (not the expected JSON).
        """
        data = await self._get_envelope(USER_INFO_PATH, None)
        if not isinstance(data, dict):
            raise MalformedChunk(f"{self.name}: user_info has no user", provider=self.name)
        return cast(dict[str, Any], data)

    # -- HTTP plumbing ---------------------------------------------------------------

    def _redact(self, text: str) -> str:
        return redact(text, *self._secrets)

    def _headers(self, *, accept: str, content_type: str | None = None) -> dict[str, str]:
        headers = {"Accept": accept}
        if content_type:
            headers["Content-Type"] = content_type
        if self._cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self._cookies.items())
        return headers

    def _deadline(self) -> float:
        """Loop time by which the first event (or a GET's headers) must arrive."""
        return asyncio.get_running_loop().time() + self._first_token_timeout

    def _transport_error(self, exc: Exception, *, model: str) -> ProviderError:
        """Translate one of :data:`~providers.http.TRANSPORT_ERRORS` (the one boundary for
        foreign exceptions; timeouts told by :func:`~providers.http.timeout_kind`)."""
        text = self._redact(f"{self.name}: {type(exc).__name__}: {exc}")
        kind = timeout_kind(exc)
        if kind == "connect":
            return ConnectTimeout(text, provider=self.name, model=model)
        if kind == "read":
            return IdleTimeout(text, provider=self.name, model=model)
        if isinstance(exc, httpx.DecodingError):
            return MalformedChunk(text, provider=self.name, model=model)
        return ProviderConnectionError(text, provider=self.name, model=model)

    def _timeout(self, *, first: bool, model: str) -> ProviderError:
        if first:
            text = f"{self.name}: no first event within {self._first_token_timeout:g} s"
            return FirstTokenTimeout(text, provider=self.name, model=model)
        text = f"{self.name}: the stream stalled over {self._idle_timeout:g} s"
        return IdleTimeout(text, provider=self.name, model=model)

    async def _send(self, request: httpx.Request, *, deadline: float, model: str) -> httpx.Response:
        """Send ``request`` (streamed), absorb any Set-Cookie, return the open response."""
        try:
            async with asyncio.timeout_at(deadline):
                response = await self._http.send(request, stream=True)
        except TimeoutError as exc:
            raise self._timeout(first=True, model=model) from exc
        except TRANSPORT_ERRORS as exc:
            raise self._transport_error(exc, model=model) from exc
        self._absorb_cookies(response)
        return response

    def _absorb_cookies(self, response: httpx.Response) -> None:
        """Take the cookies the server set; remember refreshed session cookies to report."""
        refreshed = []
        for cookie in response.cookies.jar:
            if not cookie.value or self._cookies.get(cookie.name) == cookie.value:
                continue
            self.set_cookies({cookie.name: cookie.value})
            if cookie.name in SESSION_COOKIES:
                self._unreported[cookie.name] = cookie.value
                refreshed.append(cookie.name)
        self._http.cookies.clear()  # we send our own Cookie header; keep httpx's jar empty
        if refreshed:
            logger.info("%s: the server refreshed cookies %s", self.name, ", ".join(refreshed))

    async def _read_body(self, response: httpx.Response, *, model: str) -> bytes:
        """The whole (small) body of a non-SSE response, within the idle timeout."""
        try:
            async with asyncio.timeout(self._idle_timeout):
                return await response.aread()
        except TimeoutError as exc:
            raise self._timeout(first=False, model=model) from exc
        except TRANSPORT_ERRORS as exc:
            raise self._transport_error(exc, model=model) from exc

    def _status_error(
        self, status: int, *, code: str | None = None, message: str = "", model: str = "",
        retry_after: float | None = None,
    ) -> APIStatusError:
        """error_from_status plus the USTB code map; the message is redacted."""
        error = error_from_status(
            status, code=code, message=self._redact(message), retry_after=retry_after,
            provider=self.name, model=model,
        )
        cls = _USTB_CODES.get(error.code or "")
        if cls is not None and not isinstance(error, cls):
            error = cls(
                error.message, status=status, code=error.code, retry_after=retry_after,
                provider=self.name, model=model,
            )
        return error

    async def _raise_for_status(self, response: httpx.Response, *, model: str) -> None:
        """Raise for a redirect (to a login page: SessionExpiredError) or an error status."""
        status = response.status_code
        if 300 <= status < 400:
            location = response.headers.get("location", "")
            if _LOGIN_LOCATION.search(location):
                raise SessionExpiredError(_EXPIRED, status=status, provider=self.name, model=model)
            raise self._status_error(status, message=f"redirect to {location}", model=model)
        if status < 400:
            return
        body = (await self._read_body(response, model=model)).decode("utf-8", "replace")
        code, message = envelope_error(loads_or_none(body)) or (None, body[:300])
        wait = retry_after_from_headers(response.headers)
        raise self._status_error(
            status, code=code, message=message, model=model, retry_after=wait
        )

    async def _json_answer(self, response: httpx.Response, *, model: str) -> list[Chunk]:
        """Chunks of a non-SSE answer: a moderation block's text, else raise its error."""
        envelope = loads_or_none(await self._read_body(response, model=model))
        if not isinstance(envelope, dict):
            content_type = response.headers.get("content-type", "none")
            message = f"expected an event stream, got {content_type}"
            raise self._status_error(response.status_code, message=message, model=model)
        data = envelope.get("d")
        answer = data.get("answer") if isinstance(data, dict) else None
        if isinstance(answer, str) and answer:
            return [AnswerDelta(answer), Finish("content_filter")]
        error = envelope_error(envelope)
        if error is None:
            text = f"{self.name}: a JSON envelope without an answer instead of an event stream"
            raise MalformedChunk(text, provider=self.name, model=model)
        raise self._status_error(0, code=error[0], message=error[1], model=model)

    async def _next_text(
        self, pieces: AsyncIterator[str], *, deadline: float, first: bool, model: str
    ) -> str | None:
        """The next piece of body text, or None at the connection close."""
        try:
            async with asyncio.timeout_at(deadline):
                return await anext(pieces, None)
        except TimeoutError as exc:
            raise self._timeout(first=first, model=model) from exc
        except TRANSPORT_ERRORS as exc:
            raise self._transport_error(exc, model=model) from exc

    async def _sse_chunks(
        self, response: httpx.Response, *, deadline: float, model: str
    ) -> AsyncIterator[Chunk]:
        """Read SSE events until the connection closes and turn them into chunks."""
        loop = asyncio.get_running_loop()
        decoder, state = SSEDataDecoder(), StreamState(self._splitter_factory())
        pieces = cast(AsyncGenerator[str, None], response.aiter_text())
        got_event = False
        try:
            while (text := await self._next_text(
                pieces, deadline=deadline, first=not got_event, model=model
            )) is not None:
                for data in decoder.decode(text):
                    got_event = True
                    for chunk in state.on_event(self._parse(data, model=model)):
                        yield chunk
                if got_event:
                    deadline = loop.time() + self._idle_timeout
        finally:
            await pieces.aclose()
        chunks: list[Chunk] = []
        for data in decoder.flush():
            chunks += state.on_event(self._parse(data, model=model))
        chunks += state.on_end()
        if not state.saw_text and state.finish_reason is None:
            text = f"{self.name}: the stream closed before any answer text"
            raise TruncatedStream(text, provider=self.name, model=model)
        for chunk in chunks:
            yield chunk

    def _parse(self, data: str, *, model: str) -> EventParts:
        """parse_event, raising MalformedChunk or the in-band error (``e != 0``)."""
        try:
            parts = parse_event(data)
        except ValueError as exc:
            text = self._redact(f"{self.name}: undecodable event: {data[:200]}")
            raise MalformedChunk(text, provider=self.name, model=model) from exc
        if parts.error is not None:
            code, message = parts.error
            raise self._status_error(0, code=code, message=message, model=model)
        return parts

    async def _get_envelope(self, path: str, params: dict[str, str] | None) -> Any:
        """GET a JSON envelope and return its ``d``; raises for redirects and ``e != 0``."""
        headers = self._headers(accept="application/json")
        request = self._http.build_request("GET", path, params=params, headers=headers)
        response = await self._send(request, deadline=self._deadline(), model="")
        try:
            await self._raise_for_status(response, model="")
            envelope = loads_or_none(await self._read_body(response, model=""))
        finally:
            await response.aclose()
        if not isinstance(envelope, dict):
            raise MalformedChunk(f"{self.name}: {path} did not answer JSON", provider=self.name)
        error = envelope_error(envelope)
        if error is not None:
            raise self._status_error(0, code=error[0], message=error[1])
        return envelope.get("d")
