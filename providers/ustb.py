"""Client for the USTB web chat (chat.ustb.edu.cn), which is not OpenAI-compatible.

Wire facts: docs/providers.md "USTB web chat" and isHarryh/USTB-OpenAI-Py.
Auth is by browser cookie (``easy_session`` and/or ``cookie_vjuid_login``); chat is
``POST /site/ai/compose_chat`` with a multipart form, answered with SSE events whose
``data`` is a ``{"e", "m", "d"}`` envelope; the stream ends when the connection
closes. The pure wire pieces (and the inline ``<think>`` splitting, in
``ustb_wire.StreamState``) live in providers/ustb_wire.py. Sending, reading and the
translation of transport failures and error statuses are the shared HTTP boundary
(:mod:`providers.boundary`); the form is httpx's multipart encoder, the events are
parsed by httpx-sse.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from typing import Any, cast
from urllib.parse import urlsplit

import httpx

from providers.boundary import MAX_JSON_BODY, HTTPBoundary
from providers.errors import (
    APIStatusError,
    BadRequestError,
    MalformedChunk,
    SessionExpiredError,
    TruncatedStream,
)
from providers.http import READ_INTERVAL, provider_transport
from providers.sse import ErrorFields
from providers.thinktags import ThinkSplitter, ThinkTagSplitter
from providers.types import AnswerDelta, ChatRequest, Chunk, Finish, SessionRefresh
from providers.ustb_wire import (
    EventParts,
    StreamState,
    compose_fields,
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


def _envelope_fields(body: Any) -> ErrorFields | None:
    """Code and message of an error envelope (``{"e": code, "m": message}``, ``e != 0``)."""
    error = envelope_error(body)
    return None if error is None else ErrorFields(error[0], error[1], None)


def _form_files(fields: list[tuple[str, str]]) -> list[tuple[str, tuple[None, str]]]:
    """``fields`` as httpx ``files=``, in order: each ``(name, (None, value))``.

    httpx sends only multipart for ``files=`` and encodes each part in order as
    ``Content-Disposition: form-data; name="…"`` alone: no filename for a ``None``
    filename, and no ``Content-Type`` since none is guessed without a filename (httpx
    0.28 ``_multipart.FileField``), as the web page's ``FormData`` sends text fields.
    """
    return [(name, (None, value)) for name, value in fields]


class USTBClient:
    """Streaming chat client for the USTB web chat (chat.ustb.edu.cn, campus network only).

    Cookies: ``easy_session`` and/or ``cookie_vjuid_login`` from a logged-in
    browser; ``set_cookies`` restores persisted ones, and a ``Set-Cookie`` refresh
    of either is reported once per stream as SessionRefresh. Timeouts in seconds:
    ``connect_timeout`` for the TCP connection; ``first_token_timeout`` for the
    response headers and the first SSE event, counted from the request start;
    ``idle_timeout`` between two events and for a whole JSON body (as the
    OpenAI-compatible client: one boundary, :mod:`providers.boundary`). The body is
    read at most every ``read_interval`` seconds (:data:`~providers.http.READ_INTERVAL`).
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
        read_interval: float = READ_INTERVAL,
    ) -> None:
        self.name = name
        self.first_token_timeout = first_token_timeout
        self._splitter_factory = splitter_factory
        self._cookies: dict[str, str] = {}
        self._secrets: set[str] = set()
        self._unreported: dict[str, str] = {}
        self.set_cookies({"easy_session": easy_session, "cookie_vjuid_login": cookie_vjuid_login})
        self._boundary = HTTPBoundary(
            name,
            first_token_timeout=first_token_timeout,
            idle_timeout=idle_timeout,
            read_interval=read_interval,
            secrets=self._secrets,  # live: cookies set later are redacted too
            codes=_USTB_CODES,
        )
        origin = _origin(base_url)
        self._http = httpx.AsyncClient(  # the transport holds the connection limits
            base_url=base_url,
            transport=transport if transport is not None else provider_transport(),
            follow_redirects=False,
            timeout=self._boundary.http_timeout(connect_timeout),
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
        ProviderConnectionError (before the first event), StreamBroken (a transport
        error after it), MalformedChunk (an undecodable event or body), TruncatedStream
        (closed before any text). The response is closed on every path.
        ``request.max_tokens`` is not sent: the ``compose_chat`` form has no field that
        caps the answer (docs/providers.md "USTB web chat" lists its fields; the nearest,
        ``thinking_budget``, bounds only the reasoning of newer servers).
        """
        model = request.model
        content, history = fold_messages(request.messages, provider=self.name, model=model)
        fields = compose_fields(content, history, model_name=model)
        http_request = self._http.build_request(
            "POST",
            CHAT_PATH,
            files=_form_files(fields),
            headers=self._headers(accept="text/event-stream"),
        )
        deadline = self._boundary.deadline()
        response = await self._send(http_request, deadline=deadline, model=model)
        try:
            if self._unreported:
                refreshed, self._unreported = self._unreported, {}
                yield SessionRefresh(cookies=refreshed)
            await self._raise_for_status(response, model=model)
            if "text/event-stream" in response.headers.get("content-type", ""):
                chunks = self._sse_chunks(response, deadline=deadline, model=model)
                async with aclosing(chunks):
                    async for chunk in chunks:
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
        timeouts, ProviderConnectionError, StreamBroken, MalformedChunk (not the
        expected JSON).
        """
        data = await self._get_envelope(USER_INFO_PATH, None)
        if not isinstance(data, dict):
            raise MalformedChunk(f"{self.name}: user_info has no user", provider=self.name)
        return cast(dict[str, Any], data)

    # -- HTTP plumbing ---------------------------------------------------------------

    def _headers(self, *, accept: str) -> dict[str, str]:
        headers = {"Accept": accept}
        if self._cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self._cookies.items())
        return headers

    async def _send(self, request: httpx.Request, *, deadline: float, model: str) -> httpx.Response:
        """Send ``request`` (streamed), absorb any Set-Cookie, return the open response."""
        response = await self._boundary.send(self._http, request, deadline=deadline, model=model)
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

    async def _raise_for_status(self, response: httpx.Response, *, model: str) -> None:
        """Raise for a redirect (to a login page: SessionExpiredError) or an error status."""
        status = response.status_code
        if 300 <= status < 400:
            location = response.headers.get("location", "")
            if _LOGIN_LOCATION.search(location):
                raise SessionExpiredError(_EXPIRED, status=status, provider=self.name, model=model)
            raise self._boundary.api_error(status, message=f"redirect to {location}", model=model)
        if status >= 400:
            raise await self._boundary.status_error(response, model=model, fields=_envelope_fields)

    async def _json_answer(self, response: httpx.Response, *, model: str) -> list[Chunk]:
        """Chunks of a non-SSE answer: a moderation block's text, else raise its error."""
        raw = await self._boundary.read_body(response, model=model, limit=MAX_JSON_BODY)
        envelope = loads_or_none(raw)
        if not isinstance(envelope, dict):
            content_type = response.headers.get("content-type", "none")
            snippet = self._boundary.redact(raw[:200].decode("utf-8", "replace"))
            text = f"{self.name}: expected an event stream, got {content_type}: {snippet!r}"
            raise MalformedChunk(text, provider=self.name, model=model)
        data = envelope.get("d")
        answer = data.get("answer") if isinstance(data, dict) else None
        if isinstance(answer, str) and answer:
            return [AnswerDelta(answer), Finish("content_filter")]
        error = envelope_error(envelope)
        if error is None:
            text = f"{self.name}: a JSON envelope without an answer instead of an event stream"
            raise MalformedChunk(text, provider=self.name, model=model)
        raise self._boundary.api_error(0, code=error[0], message=error[1], model=model)

    async def _sse_chunks(
        self, response: httpx.Response, *, deadline: float, model: str
    ) -> AsyncGenerator[Chunk, None]:
        """Read SSE events until the connection closes and turn them into chunks.

        The close also ends an event the server did not end with a blank line.
        """
        state = StreamState(self._splitter_factory())
        events = self._boundary.events(
            response, deadline=deadline, model=model, close_ends_event=True
        )
        async with aclosing(events):
            async for event in events:
                for chunk in state.on_event(self._parse(event.data, model=model)):
                    yield chunk
        chunks = state.on_end()
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
            text = self._boundary.redact(f"{self.name}: undecodable event: {data[:200]}")
            raise MalformedChunk(text, provider=self.name, model=model) from exc
        if parts.error is not None:
            code, message = parts.error
            raise self._boundary.api_error(0, code=code, message=message, model=model)
        return parts

    async def _get_envelope(self, path: str, params: dict[str, str] | None) -> Any:
        """GET a JSON envelope and return its ``d``; raises for redirects and ``e != 0``."""
        headers = self._headers(accept="application/json")
        request = self._http.build_request("GET", path, params=params, headers=headers)
        response = await self._send(request, deadline=self._boundary.deadline(), model="")
        try:
            await self._raise_for_status(response, model="")
            raw = await self._boundary.read_body(response, model="", limit=MAX_JSON_BODY)
        finally:
            await response.aclose()
        envelope = loads_or_none(raw)
        if not isinstance(envelope, dict):
            raise MalformedChunk(f"{self.name}: {path} did not answer JSON", provider=self.name)
        error = envelope_error(envelope)
        if error is not None:
            raise self._boundary.api_error(0, code=error[0], message=error[1])
        return envelope.get("d")
