"""USTBClient against a fake chat.ustb.edu.cn behind httpx.MockTransport."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from email import policy
from email.parser import BytesParser
from typing import Any

import httpx
import pytest

from providers.base import ChatClient
from providers.errors import (
    APIStatusError,
    BadRequestError,
    ConnectTimeout,
    FirstTokenTimeout,
    IdleTimeout,
    MalformedChunk,
    ProviderConnectionError,
    ProviderError,
    RateLimitError,
    ServerError,
    SessionExpiredError,
    StreamBroken,
    TruncatedStream,
)
from providers.types import (
    AnswerDelta,
    ChatMessage,
    ChatRequest,
    Chunk,
    Finish,
    ImagePart,
    ReasoningDelta,
    SessionRefresh,
    Usage,
    UsageReport,
)
from providers.ustb import USTBClient

SESSION = "0123456789abcdef0123456789abcdef"
VJUID = "vjuid-secret-value-42"
NEW_SESSION = "fedcba9876543210fedcba9876543210"

pytestmark = pytest.mark.timeout(10)


class FakeBody(httpx.AsyncByteStream):
    """A response body sent piece by piece; optionally hangs or breaks at the end."""

    def __init__(self, pieces: list[bytes], *, hang: bool = False, error: bool = False) -> None:
        self.pieces = pieces
        self.hang = hang
        self.error = error
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            yield piece
        if self.error:
            raise httpx.RemoteProtocolError("peer closed connection")
        if self.hang:
            await asyncio.Event().wait()

    async def aclose(self) -> None:
        self.closed = True


def envelope(answer: str = "", *, ext: Any = None) -> dict[str, Any]:
    """One successful USTB event envelope as the server sends it."""
    return {
        "e": 0,
        "m": "操作成功",
        "d": {
            "type": "0",
            "answer": answer,
            "url": "",
            "message_id": "",
            "id": "",
            "recommend_data": [],
            "source": [],
            "ext": [] if ext is None else ext,
        },
    }


def sse(*events: dict[str, Any]) -> bytes:
    """Events as SSE bytes, with a meaningless event name as the server sends."""
    return b"".join(
        b"event: message\ndata: " + json.dumps(e, ensure_ascii=False).encode() + b"\n\n"
        for e in events
    )


def stream_response(body: FakeBody, **headers: str) -> httpx.Response:
    """A 200 text/event-stream response around ``body``."""
    return httpx.Response(
        200, headers={"content-type": "text/event-stream; charset=utf-8", **headers}, stream=body
    )


class FakeServer:
    """Records requests and answers each with the next prepared response."""

    def __init__(self, *responses: httpx.Response | Exception) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.requests.append(request)
        answer = self.responses.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def make_client(server: FakeServer, **kwargs: Any) -> USTBClient:
    """A client with both cookies, wired to the fake server."""
    options: dict[str, Any] = {
        "easy_session": SESSION,
        "cookie_vjuid_login": VJUID,
        "transport": httpx.MockTransport(server),
        **kwargs,
    }
    return USTBClient(**options)


def chat(*messages: tuple[str, str], model: str = "DeepSeek") -> ChatRequest:
    """A request from ``(role, content)`` pairs."""
    return ChatRequest(
        model=model,
        messages=tuple(ChatMessage(role, text) for role, text in messages),  # type: ignore[arg-type]
    )


async def collect(client: USTBClient, request: ChatRequest) -> list[Chunk]:
    """All chunks of one stream."""
    return [chunk async for chunk in client.stream_chat(request)]


def form_fields(request: httpx.Request) -> list[tuple[str, str]]:
    """The multipart body parsed by the standard library, as ordered (name, value) pairs."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=policy.HTTP).parsebytes(head + request.content)
    assert message.is_multipart()
    fields = []
    for part in message.iter_parts():
        assert list(part.keys()) == ["Content-Disposition"]  # no per-part Content-Type
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        assert isinstance(name, str) and isinstance(payload, bytes)
        fields.append((name, payload.decode()))
    return fields


async def test_request_fields_headers_and_cookies() -> None:
    """The chat POST carries the ordered form fields, Origin/Referer and both cookies."""
    server = FakeServer(stream_response(FakeBody([sse(envelope("hi"))])))
    async with asyncio.timeout(5):
        client = make_client(server)
        await collect(client, chat(("user", "q1"), ("assistant", "a1"), ("user", "q2")))
        await client.aclose()
    request = server.requests[0]
    assert (request.method, request.url.path) == ("POST", "/site/ai/compose_chat")
    assert form_fields(request) == [
        ("content", "q2"),
        ("history[0][role]", "user"),
        ("history[0][content]", "q1"),
        ("history[1][role]", "assistant"),
        ("history[1][content]", "a1"),
        ("compose_id", "3"),
        ("deep_search", "1"),
        ("model_name", "DeepSeek"),
        ("internet_search", "2"),
    ]
    assert request.headers["origin"] == "http://chat.ustb.edu.cn"
    assert request.headers["referer"] == "http://chat.ustb.edu.cn/"
    assert request.headers["accept"] == "text/event-stream"
    assert request.headers["cookie"] == f"easy_session={SESSION}; cookie_vjuid_login={VJUID}"


async def test_history_folding_reaches_the_wire() -> None:
    """System prompt folds into the first user turn and consecutive users merge."""
    server = FakeServer(stream_response(FakeBody([sse(envelope("ok"))])))
    client = make_client(server)
    await collect(
        client,
        chat(
            ("assistant", "greeting"),
            ("system", "Be brief."),
            ("user", "a"),
            ("user", "b"),
            ("assistant", "x"),
            ("assistant", "y"),
            ("user", "c"),
            ("user", "d"),
        ),
    )
    await client.aclose()
    assert form_fields(server.requests[0])[:5] == [
        ("content", "c\n\nd"),
        ("history[0][role]", "user"),
        ("history[0][content]", "Be brief.\n\na\n\nb"),
        ("history[1][role]", "assistant"),
        ("history[1][content]", "x\n\ny"),
    ]


async def test_envelope_events_become_answer_deltas() -> None:
    """Each d.answer is an AnswerDelta; the connection close yields Finish("stop")."""
    body = FakeBody([sse(envelope("你好"), envelope(""), envelope("，世界"))])
    client = make_client(FakeServer(stream_response(body)))
    chunks = await collect(client, chat(("user", "hi")))
    await client.aclose()
    assert chunks == [AnswerDelta("你好"), AnswerDelta("，世界"), Finish("stop")]
    assert body.closed


async def test_original_stream_gives_reasoning_finish_and_usage() -> None:
    """original_stream wins over d.answer: reasoning, content, finish_reason and usage."""

    def event(delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> Any:
        chunk = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}], "usage": usage}
        return envelope(str(delta.get("content", "")), ext={"original_stream": json.dumps(chunk)})

    usage = {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
    body = FakeBody(
        [
            sse(
                event({"reasoning_content": "think "}),
                event({"reasoning_content": "more"}),
                event({"content": "Answer"}),
                event({"content": ""}, "stop"),
                event({}, usage=usage),
            )
        ]
    )
    client = make_client(FakeServer(stream_response(body)))
    chunks = await collect(client, chat(("user", "hi")))
    await client.aclose()
    assert chunks == [
        ReasoningDelta("think "),
        ReasoningDelta("more"),
        AnswerDelta("Answer"),
        Finish("stop"),
        UsageReport(Usage(5, 7, 12)),
    ]


async def test_inline_think_split_across_events() -> None:
    """Inline <think>…</think> in d.answer, cut mid-tag, becomes reasoning then answer."""
    parts = ["<thi", "nk>\nstep one", " step two</th", "ink>\n\nThe answer", " is 4."]
    client = make_client(FakeServer(stream_response(FakeBody([sse(*map(envelope, parts))]))))
    chunks = await collect(client, chat(("user", "2+2?")))
    await client.aclose()
    reasoning = "".join(c.text for c in chunks if isinstance(c, ReasoningDelta))
    answer = "".join(c.text for c in chunks if isinstance(c, AnswerDelta))
    assert (reasoning.strip(), answer) == ("step one step two", "The answer is 4.")
    assert chunks[-1] == Finish("stop")


async def test_splitter_factory_hook_is_used() -> None:
    """A splitter from splitter_factory receives the d.answer text."""

    class Upper:
        def feed(self, text: str) -> list[AnswerDelta | ReasoningDelta]:
            return [AnswerDelta(text.upper())]

        def flush(self) -> list[AnswerDelta | ReasoningDelta]:
            return []

    server = FakeServer(stream_response(FakeBody([sse(envelope("abc"))])))
    client = make_client(server, splitter_factory=Upper)
    assert await collect(client, chat(("user", "q"))) == [AnswerDelta("ABC"), Finish("stop")]
    await client.aclose()


async def test_connection_close_without_blank_line_ends_normally() -> None:
    """A last event cut off by the close (no blank line) still counts; no error."""
    raw = sse(envelope("one")) + b"data: " + json.dumps(envelope(" two")).encode()
    client = make_client(FakeServer(stream_response(FakeBody([raw[:7], raw[7:]]))))
    chunks = await collect(client, chat(("user", "q")))
    await client.aclose()
    assert chunks == [AnswerDelta("one"), AnswerDelta(" two"), Finish("stop")]


async def test_in_band_4028_is_bad_request() -> None:
    """An event with e=4028 raises BadRequestError carrying the code and message."""
    body = FakeBody([sse(envelope("partial"), {"e": 4028, "m": "history参数异常", "d": []})])
    client = make_client(FakeServer(stream_response(body)))
    seen: list[Chunk] = []
    with pytest.raises(BadRequestError) as info:
        async for chunk in client.stream_chat(chat(("user", "q"))):
            seen.append(chunk)
    await client.aclose()
    assert seen == [AnswerDelta("partial")]
    assert (info.value.status, info.value.code) == (0, "4028")
    assert "history参数异常" in str(info.value)
    assert body.closed


async def test_json_error_envelope_instead_of_stream() -> None:
    """A 200 application/json envelope with e != 0 is an error, not an answer."""
    response = httpx.Response(200, json={"e": 4028, "m": "history参数异常", "d": []})
    other = httpx.Response(200, json={"e": 500, "m": "系统繁忙", "d": []})
    client = make_client(FakeServer(response, other))
    with pytest.raises(BadRequestError, match="4028"):
        await collect(client, chat(("user", "q")))
    with pytest.raises(APIStatusError) as info:
        await collect(client, chat(("user", "q")))
    await client.aclose()
    assert (info.value.code, info.value.status) == ("500", 0)


async def test_moderation_json_yields_its_answer() -> None:
    """A JSON moderation block that carries d.answer yields it, then content_filter."""
    blocked = {"e": 1, "m": "内容审核未通过", "d": {"answer": "无法回答"}}
    response = httpx.Response(200, json=blocked)
    client = make_client(FakeServer(response))
    chunks = await collect(client, chat(("user", "q")))
    await client.aclose()
    assert chunks == [AnswerDelta("无法回答"), Finish("content_filter")]


async def test_redirect_to_login_is_session_expired() -> None:
    """A 302 to the SSO login page raises SessionExpiredError and closes the response."""
    body = FakeBody([b""])
    login = "https://sso.ustb.edu.cn/idp/authCenter/authenticate?service=x"
    response = httpx.Response(302, headers={"location": login}, stream=body)
    client = make_client(FakeServer(response))
    with pytest.raises(SessionExpiredError, match="the USTB session cookie expired") as info:
        await collect(client, chat(("user", "q")))
    await client.aclose()
    assert info.value.status == 302
    assert body.closed


async def test_redirect_elsewhere_is_a_status_error() -> None:
    """A redirect that is not to a login page is an APIStatusError, not an expiry."""
    response = httpx.Response(301, headers={"location": "http://chat.ustb.edu.cn/new/"})
    client = make_client(FakeServer(response))
    with pytest.raises(APIStatusError) as info:
        await collect(client, chat(("user", "q")))
    await client.aclose()
    assert not isinstance(info.value, SessionExpiredError)
    assert info.value.status == 301


async def test_set_cookie_refresh_is_reported_and_used() -> None:
    """A Set-Cookie refresh yields SessionRefresh once and the next request sends it."""
    first = stream_response(
        FakeBody([sse(envelope("a"))]), **{"set-cookie": f"easy_session={NEW_SESSION}; path=/"}
    )
    second = stream_response(FakeBody([sse(envelope("b"))]))
    server = FakeServer(first, second)
    client = make_client(server)
    chunks = await collect(client, chat(("user", "q")))
    again = await collect(client, chat(("user", "q")))
    await client.aclose()
    assert chunks[0] == SessionRefresh(cookies={"easy_session": NEW_SESSION})
    assert not any(isinstance(c, SessionRefresh) for c in chunks[1:] + again)
    assert server.requests[1].headers["cookie"] == (
        f"easy_session={NEW_SESSION}; cookie_vjuid_login={VJUID}"
    )
    assert client.cookies["easy_session"] == NEW_SESSION


async def test_refresh_seen_by_user_info_is_reported_by_next_stream() -> None:
    """A cookie refreshed on a GET is reported by the next stream_chat."""
    info = httpx.Response(
        200,
        json={"e": 0, "m": "", "d": {"uid": 1}},
        headers={"set-cookie": "cookie_vjuid_login=new-vjuid-value; path=/"},
    )
    server = FakeServer(info, stream_response(FakeBody([sse(envelope("a"))])))
    client = make_client(server)
    assert await client.user_info() == {"uid": 1}
    chunks = await collect(client, chat(("user", "q")))
    await client.aclose()
    assert chunks[0] == SessionRefresh(cookies={"cookie_vjuid_login": "new-vjuid-value"})
    assert "cookie_vjuid_login=new-vjuid-value" in server.requests[1].headers["cookie"]


async def test_set_cookies_restores_persisted_session() -> None:
    """set_cookies at start-up makes a cookie-less client send the persisted cookies."""
    server = FakeServer(stream_response(FakeBody([sse(envelope("a"))])))
    client = USTBClient(transport=httpx.MockTransport(server))
    client.set_cookies({"easy_session": SESSION})
    await collect(client, chat(("user", "q")))
    await client.aclose()
    assert server.requests[0].headers["cookie"] == f"easy_session={SESSION}"


async def test_list_models_parses_page_setting() -> None:
    """list_models reads (label, value) pairs from d.model_select.model_content.value."""
    models = [{"label": "DeepSeek-R1", "value": "DeepSeek"}, {"label": "通义千问", "value": "Qwen"}]
    setting = {"model_select": {"model_switch": {"is_open": 1}, "model_content": {"value": models}}}
    server = FakeServer(httpx.Response(200, json={"e": 0, "m": "", "d": setting}))
    client = make_client(server)
    assert await client.list_models() == [("DeepSeek-R1", "DeepSeek"), ("通义千问", "Qwen")]
    await client.aclose()
    url = server.requests[0].url
    assert url.path == "/site/voom/page-setting"
    assert dict(url.params) == {"compose_id": "3", "type": "pc"}


async def test_list_models_without_list_is_malformed() -> None:
    """A page-setting answer without the model list raises MalformedChunk."""
    client = make_client(FakeServer(httpx.Response(200, json={"e": 0, "m": "", "d": []})))
    with pytest.raises(MalformedChunk):
        await client.list_models()
    await client.aclose()


async def test_user_info_errors() -> None:
    """user_info raises for e != 0 and for a redirect to the login page."""
    bad = httpx.Response(200, json={"e": 10001, "m": "未登录", "d": []})
    expired = httpx.Response(302, headers={"location": "/site/login?redirect=/"})
    client = make_client(FakeServer(bad, expired))
    with pytest.raises(APIStatusError, match="未登录"):
        await client.user_info()
    with pytest.raises(SessionExpiredError):
        await client.user_info()
    await client.aclose()


async def test_http_errors_map_through_error_from_status() -> None:
    """HTTP 429 with Retry-After is RateLimitError; 502 is ServerError."""
    limited = httpx.Response(429, headers={"retry-after": "3"}, text="slow down")
    broken = httpx.Response(502, text="<html>bad gateway</html>")
    client = make_client(FakeServer(limited, broken))
    with pytest.raises(RateLimitError) as info:
        await collect(client, chat(("user", "q")))
    assert info.value.retry_after == 3
    with pytest.raises(ServerError):
        await collect(client, chat(("user", "q")))
    await client.aclose()


async def test_error_texts_never_contain_cookie_values() -> None:
    """Errors whose server text echoes the cookies are redacted."""
    echo = f"bad session {SESSION} / {VJUID} / easy_session={SESSION}"
    responses: list[httpx.Response | Exception] = [
        httpx.Response(500, text=echo),
        httpx.Response(200, json={"e": 7, "m": echo, "d": []}),
        stream_response(FakeBody([sse({"e": 7, "m": echo, "d": []})])),
        stream_response(FakeBody([b"data: {not json " + SESSION.encode() + b"\n\n"])),
        httpx.ConnectError(echo),
        httpx.Response(302, headers={"location": f"/x?s={SESSION}"}),
    ]
    client = make_client(FakeServer(*responses))
    for _ in responses:
        with pytest.raises(ProviderError) as info:
            await collect(client, chat(("user", "q")))
        text = f"{info.value} {info.value.message}"
        assert SESSION not in text and VJUID not in text
    await client.aclose()


async def test_response_closed_when_consumer_stops_early() -> None:
    """Closing the iterator after the first chunk closes the HTTP response."""
    body = FakeBody([sse(envelope("a")), sse(envelope("b"))], hang=True)
    client = make_client(FakeServer(stream_response(body)))
    stream = client.stream_chat(chat(("user", "q")))
    assert await anext(stream) == AnswerDelta("a")
    await stream.aclose()  # type: ignore[attr-defined]
    await client.aclose()
    assert body.closed


async def test_first_token_and_idle_timeouts() -> None:
    """No first event raises FirstTokenTimeout; a stall after one raises IdleTimeout."""
    silent = FakeBody([b": ping\n\n"], hang=True)
    stalled = FakeBody([sse(envelope("a"))], hang=True)
    server = FakeServer(stream_response(silent), stream_response(stalled))
    client = make_client(server, connect_timeout=0.05, first_token_timeout=0.2, idle_timeout=0.2)
    with pytest.raises(FirstTokenTimeout):
        await collect(client, chat(("user", "q")))
    seen: list[Chunk] = []
    with pytest.raises(IdleTimeout):
        async for chunk in client.stream_chat(chat(("user", "q"))):
            seen.append(chunk)
    await client.aclose()
    assert seen == [AnswerDelta("a")]
    assert silent.closed and stalled.closed


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (lambda: httpx.ConnectTimeout("slow"), ConnectTimeout),
        (lambda: httpx.ConnectError("refused"), ProviderConnectionError),
    ],
)
async def test_transport_failures_are_translated(
    failure: Callable[[], Exception], expected: type[ProviderError]
) -> None:
    """httpx connect failures become the error tree's classes."""
    client = make_client(FakeServer(failure()))
    with pytest.raises(expected):
        await collect(client, chat(("user", "q")))
    await client.aclose()


async def test_connection_dropped_midway_is_a_broken_stream() -> None:
    """A body that breaks after an event raises StreamBroken (as the OpenAI-compatible
    client does: one boundary) and is closed."""
    body = FakeBody([sse(envelope("a"))], error=True)
    client = make_client(FakeServer(stream_response(body)))
    with pytest.raises(StreamBroken) as info:
        await collect(client, chat(("user", "q")))
    await client.aclose()
    assert not isinstance(info.value, ProviderConnectionError)
    assert body.closed


async def test_sse_line_endings_comments_and_ids() -> None:
    """httpx-sse reads the events: CRLF, LF and CR (even cut across pieces) end lines;
    event names, ids and comments are ignored; the close ends the last event."""
    one, two, three = (json.dumps(envelope(text)) for text in ("one", " two", " three"))
    pieces = [
        "event: x\r",
        f"\ndata: {one[:9]}",
        f"{one[9:]}\r\n\r",
        f"\n: ping\rid: 3\rdata: {two}\r\rdata: {three}\n",
    ]
    body = FakeBody([piece.encode() for piece in pieces])
    client = make_client(FakeServer(stream_response(body)))
    chunks = await collect(client, chat(("user", "q")))
    await client.aclose()
    assert chunks == [
        AnswerDelta("one"),
        AnswerDelta(" two"),
        AnswerDelta(" three"),
        Finish("stop"),
    ]


async def test_sse_data_lines_join_and_unicode_separators_stay() -> None:
    """U+2028 inside the data is text, not a line end; several data lines join with a
    newline (here inside the JSON, where it is whitespace)."""
    event = json.dumps(envelope("a\u2028b"), ensure_ascii=False)
    head, tail = event.split(", ", 1)
    raw = f"data: {head},\ndata: {tail}\n\n".encode()
    client = make_client(FakeServer(stream_response(FakeBody([raw]))))
    chunks = await collect(client, chat(("user", "q")))
    await client.aclose()
    assert chunks == [AnswerDelta("a\u2028b"), Finish("stop")]


async def test_empty_stream_and_bad_event() -> None:
    """A stream with no text is TruncatedStream; undecodable data is MalformedChunk."""
    empty = stream_response(FakeBody([b""]))
    bad = stream_response(FakeBody([b"data: [1, 2]\n\n"]))
    client = make_client(FakeServer(empty, bad))
    with pytest.raises(TruncatedStream):
        await collect(client, chat(("user", "q")))
    with pytest.raises(MalformedChunk):
        await collect(client, chat(("user", "q")))
    await client.aclose()


async def test_images_are_refused_before_sending() -> None:
    """A message with images raises BadRequestError and sends nothing."""
    server = FakeServer()
    client = make_client(server)
    request = ChatRequest(
        model="DeepSeek", messages=(ChatMessage("user", "look", (ImagePart(b"\xff\xd8"),)),)
    )
    with pytest.raises(BadRequestError, match="text only"):
        await collect(client, request)
    await client.aclose()
    assert server.requests == []


async def test_client_satisfies_chat_client_protocol() -> None:
    """USTBClient is a ChatClient with its configured name."""
    client = USTBClient("campus")
    assert isinstance(client, ChatClient)
    assert client.name == "campus"
    await client.aclose()


async def test_max_tokens_is_not_sent() -> None:
    """A request's max_tokens leaves the form as it is: USTB's form has no field for a cap."""
    server = FakeServer(stream_response(FakeBody([sse(envelope("hi"))])))
    client = make_client(server, first_token_timeout=5.0)
    try:
        capped = ChatRequest(model="DeepSeek", messages=(ChatMessage("user", "q"),), max_tokens=99)
        await collect(client, capped)
    finally:
        await client.aclose()
    fields = form_fields(server.requests[0])
    assert [name for name, _ in fields] == [
        "content",
        "compose_id",
        "deep_search",
        "model_name",
        "internet_search",
    ]
    assert "99" not in [value for _, value in fields]
    assert client.first_token_timeout == 5.0, "the retry budget reads it"
