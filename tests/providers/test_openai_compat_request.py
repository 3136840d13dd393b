"""Tests of what OpenAICompatClient sends: URL, headers and the body for each quirk."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import replace
from typing import Any

import httpx
import jwt
import pytest

from providers.openai_compat import OpenAICompatClient, OpenAIQuirks
from providers.registry import PLATFORM_QUIRKS
from providers.types import ChatMessage, ChatRequest, Finish, ImagePart
from providers.zhipu_auth import ZhipuJWT, is_jwt_key, make_zhipu_jwt

OK_STREAM = (
    b'data: {"choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":"stop"}]}\n\n'
    b"data: [DONE]\n\n"
)


class Recorder:
    """A fake chat-completions server that records every request it receives."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=OK_STREAM)

    @property
    def body(self) -> dict[str, Any]:
        """The JSON body of the last request."""
        return json.loads(self.requests[-1].content)  # type: ignore[no-any-return]


PLAIN = OpenAIQuirks()
LONG_SECRET = "s" * 32  # PyJWT warns when decoding with HMAC keys under 32 bytes


async def send(
    request: ChatRequest,
    *,
    quirks: OpenAIQuirks = PLAIN,
    api_key: str = "sk-plain-key-0123456789",
) -> Recorder:
    """Run one request through a client backed by a recording fake server."""
    recorder = Recorder()
    client = OpenAICompatClient(
        "fake",
        base_url="https://api.example.test/v1/",
        api_key=api_key,
        quirks=quirks,
        transport=httpx.MockTransport(recorder),
    )
    try:
        chunks = [chunk async for chunk in client.stream_chat(request)]
    finally:
        await client.aclose()
    assert chunks[-1] == Finish("stop")
    return recorder


def ask(text: str = "hi", **kwargs: Any) -> ChatRequest:
    """Build a one-message request."""
    return ChatRequest(model="m-1", messages=(ChatMessage("user", text),), **kwargs)


PNG = b"\x89PNG\r\n\x1a\nfake-image-bytes"
PNG_B64 = base64.b64encode(PNG).decode()


async def test_url_bearer_and_basic_body() -> None:
    """POST {base_url}/chat/completions with Bearer auth, stream true and string content."""
    recorder = await send(
        ChatRequest(
            model="m-1",
            messages=(ChatMessage("system", "be brief"), ChatMessage("user", "hi")),
        )
    )
    sent = recorder.requests[-1]
    assert sent.method == "POST"
    assert str(sent.url) == "https://api.example.test/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-plain-key-0123456789"
    assert recorder.body == {
        "model": "m-1",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def test_stream_options_left_out_when_off() -> None:
    """``stream_usage=False`` sends no stream_options."""
    recorder = await send(ask(), quirks=OpenAIQuirks(stream_usage=False))
    assert "stream_options" not in recorder.body


@pytest.mark.parametrize("thinking", [True, False])
async def test_zhipu_thinking_field(thinking: bool) -> None:
    """Zhipu/Z.ai get ``thinking: {"type": "enabled"|"disabled"}``."""
    recorder = await send(ask(thinking=thinking), quirks=OpenAIQuirks(thinking="zhipu"))
    assert recorder.body["thinking"] == {"type": "enabled" if thinking else "disabled"}
    assert "enable_thinking" not in recorder.body


async def test_deepseek_thinking_field() -> None:
    """DeepSeek gets the same ``thinking`` object as Zhipu."""
    recorder = await send(ask(thinking=False), quirks=OpenAIQuirks(thinking="deepseek"))
    assert recorder.body["thinking"] == {"type": "disabled"}


@pytest.mark.parametrize("thinking", [True, False])
async def test_dashscope_enable_thinking(thinking: bool) -> None:
    """DashScope gets ``enable_thinking: bool``."""
    recorder = await send(ask(thinking=thinking), quirks=OpenAIQuirks(thinking="dashscope"))
    assert recorder.body["enable_thinking"] is thinking
    assert "thinking" not in recorder.body


async def test_thinking_none_or_unset_sends_nothing() -> None:
    """``thinking="none"`` or a request without a thinking choice sends no switch."""
    first = await send(ask(thinking=True), quirks=OpenAIQuirks(thinking="none"))
    second = await send(ask(), quirks=OpenAIQuirks(thinking="zhipu"))
    for recorder in (first, second):
        assert "thinking" not in recorder.body
        assert "enable_thinking" not in recorder.body


def image_request() -> ChatRequest:
    """A user message with text and one PNG image."""
    message = ChatMessage("user", "what is this?", images=(ImagePart(PNG, "image/png"),))
    return ChatRequest(model="glm-4v", messages=(message,))


async def test_image_as_data_url() -> None:
    """By default an image is a content part with a data URL, after the text part."""
    recorder = await send(image_request())
    assert recorder.body["messages"][0]["content"] == [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
    ]


async def test_image_as_raw_base64_for_zhipu() -> None:
    """Zhipu/Z.ai images are raw base64 without the data-URL prefix."""
    recorder = await send(image_request(), quirks=PLATFORM_QUIRKS["zhipu"])
    url = recorder.body["messages"][0]["content"][1]["image_url"]["url"]
    assert url == PNG_B64
    assert base64.b64decode(url) == PNG


@pytest.mark.parametrize(
    ("given", "sent", "do_sample"),
    [
        (0.0, 0.01, False),
        (-1.0, 0.01, False),
        (1.0, 0.99, None),
        (1.5, 0.99, None),
        (0.7, 0.7, None),
    ],
)
async def test_temperature_clamp(given: float, sent: float, do_sample: bool | None) -> None:
    """With clamp_sampling, temperature is clamped to [0.01, 0.99] as the Zhipu SDK does."""
    recorder = await send(ask(temperature=given), quirks=OpenAIQuirks(clamp_sampling=True))
    assert recorder.body["temperature"] == sent
    assert recorder.body.get("do_sample") == do_sample


async def test_temperature_not_clamped_by_default() -> None:
    """Without clamp_sampling, temperature passes through and absent stays absent."""
    assert (await send(ask(temperature=1.3))).body["temperature"] == 1.3
    assert "temperature" not in (await send(ask())).body


async def test_user_field() -> None:
    """The user id goes in the platform's field, or nowhere when the quirk has none."""
    with_user = replace(PLATFORM_QUIRKS["zhipu"], user_field="user_id")
    zhipu = await send(ask(user_id="u-123456"), quirks=with_user)
    assert zhipu.body["user_id"] == "u-123456"
    plain = await send(ask(user_id="u-123456"))
    assert "user" not in plain.body
    assert "user_id" not in plain.body


async def test_jwt_header_for_id_secret_key() -> None:
    """With jwt_auth and an ``id.secret`` key, the Bearer token is a Zhipu JWT in ms."""
    before_ms = int(time.time() * 1000)
    recorder = await send(
        ask(), quirks=OpenAIQuirks(jwt_auth=True), api_key=f"my-key-id.{LONG_SECRET}"
    )
    token = recorder.requests[-1].headers["authorization"].removeprefix("Bearer ")
    assert jwt.get_unverified_header(token)["sign_type"] == "SIGN"
    claims = jwt.decode(token, LONG_SECRET, algorithms=["HS256"])
    assert claims["api_key"] == "my-key-id"
    assert before_ms <= claims["timestamp"] <= int(time.time() * 1000)
    assert claims["exp"] - claims["timestamp"] == 210_000
    assert LONG_SECRET not in token


async def test_jwt_not_used_for_plain_keys_or_when_off() -> None:
    """A key without a dot, or jwt_auth off, is sent as is."""
    plain = await send(ask(), quirks=OpenAIQuirks(jwt_auth=True), api_key="sk-nodots-0123")
    assert plain.requests[-1].headers["authorization"] == "Bearer sk-nodots-0123"
    off = await send(ask(), api_key="id.secret-part")
    assert off.requests[-1].headers["authorization"] == "Bearer id.secret-part"


def test_jwt_is_cached_for_180_seconds() -> None:
    """The token is reused within 180 s and re-signed after."""
    now = [1_000.0]
    source = ZhipuJWT(f"abc.{LONG_SECRET}", clock=lambda: now[0])
    first = source.token()
    now[0] += 179
    assert source.token() == first
    now[0] += 1
    renewed = source.token()
    assert renewed != first
    claims = jwt.decode(renewed, LONG_SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert claims["timestamp"] == 1_180_000


def test_jwt_key_shape() -> None:
    """Only ``id.secret`` keys qualify for JWT signing."""
    assert is_jwt_key("a.b")
    assert not is_jwt_key("sk-abc")
    assert not is_jwt_key(".b")
    assert not is_jwt_key("a.")
    assert not is_jwt_key("a.b.c")
    with pytest.raises(ValueError, match="shaped") as info:
        make_zhipu_jwt("sk-secret-value", now=0)
    assert "sk-secret-value" not in str(info.value)


def test_real_length_secret_signs_without_warning() -> None:
    """A 16-character Zhipu secret signs without PyJWT's key-length warning (no warning)."""
    token = make_zhipu_jwt("0123456789abcdef0123456789abcdef.AbCdEfGhIjKlMnOp", now=1.5)
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "sign_type": "SIGN", "typ": "JWT"}
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims == {
        "api_key": "0123456789abcdef0123456789abcdef",
        "exp": 211_500,
        "timestamp": 1_500,
    }
