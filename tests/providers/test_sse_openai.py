"""Tests for the OpenAI-style stream decoder, fed with raw SSE bytes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from contextlib import aclosing
from itertools import pairwise
from typing import Any

import httpx
import pytest
from httpx_sse import EventSource
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.errors import (
    APIStatusError,
    BadRequestError,
    ContentBlockedError,
    MalformedChunk,
    QuotaExceededError,
    RateLimitError,
    TruncatedStream,
)
from providers.sse import (
    OpenAIStreamDecoder,
    completion_chunks,
    decode_openai_stream,
    error_fields,
)
from providers.types import (
    AnswerDelta,
    Chunk,
    Finish,
    ReasoningDelta,
    Usage,
    UsageReport,
)

SECRET = "sk-test-secret-key-0123456789"


class ByteChunks(httpx.AsyncByteStream):
    """A response body that arrives as the given byte pieces."""

    def __init__(self, parts: Iterable[bytes]) -> None:
        self.parts = list(parts)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            yield part


def sse(*items: dict[str, Any] | str) -> bytes:
    """Encode items as SSE ``data:`` events (strings are sent verbatim)."""
    out = b""
    for item in items:
        data = item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)
        out += b"data: " + data.encode() + b"\n\n"
    return out


def delta_chunk(
    content: str | None = None, *, role: bool = False, finish: str | None = None, **extra: Any
) -> dict[str, Any]:
    """Build one chat.completion.chunk with a single choice."""
    delta: dict[str, Any] = {}
    if role:
        delta["role"] = "assistant"
    if content is not None:
        delta["content"] = content
    delta.update(extra.pop("delta", {}))
    choice: dict[str, Any] = {"index": 0, "delta": delta}
    if finish is not None:
        choice["finish_reason"] = finish
    return {"id": "chatcmpl-1", "choices": [choice], **extra}


async def decode(parts: list[bytes]) -> list[Chunk]:
    """Decode byte pieces of an event stream through httpx-sse and the decoder."""
    response = httpx.Response(
        200, headers={"content-type": "text/event-stream"}, stream=ByteChunks(parts)
    )
    async with aclosing(EventSource(response).aiter_sse()) as events:
        return [
            chunk
            async for chunk in decode_openai_stream(
                events, provider="test", model="m", secrets=(SECRET,)
            )
        ]


def texts(chunks: list[Chunk]) -> tuple[str, str]:
    """Return the concatenated (reasoning, answer) texts."""
    reasoning = "".join(c.text for c in chunks if isinstance(c, ReasoningDelta))
    answer = "".join(c.text for c in chunks if isinstance(c, AnswerDelta))
    return reasoning, answer


async def test_normal_stream() -> None:
    """Content deltas come out in order and Finish carries the finish_reason."""
    body = sse(
        delta_chunk(role=True, content=""),
        delta_chunk("Hel"),
        delta_chunk("lo"),
        delta_chunk(finish="stop"),
        "[DONE]",
    )
    assert await decode([body]) == [AnswerDelta("Hel"), AnswerDelta("lo"), Finish("stop")]


async def test_zai_final_chunk_has_usage_and_choices() -> None:
    """Z.ai style: role repeated on every delta, usage on the last chunk with choices."""
    usage = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    body = sse(
        delta_chunk("你", role=True),
        delta_chunk("好", role=True),
        delta_chunk("", role=True, finish="stop", usage=usage),
        "[DONE]",
    )
    assert await decode([body]) == [
        AnswerDelta("你"),
        AnswerDelta("好"),
        UsageReport(Usage(7, 3, 10)),
        Finish("stop"),
    ]


async def test_openai_usage_chunk_with_empty_choices() -> None:
    """OpenAI/DashScope style: usage on an extra chunk with empty choices, no ``object``."""
    body = sse(
        delta_chunk("Hi", role=True),
        delta_chunk(finish="length"),
        {"id": "chatcmpl-1", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 1}},
        "[DONE]",
    )
    assert await decode([body]) == [
        AnswerDelta("Hi"),
        UsageReport(Usage(5, 1, 6)),
        Finish("length"),
    ]


async def test_absent_finish_reason_with_done_is_complete() -> None:
    """A stream that never sends finish_reason but ends with [DONE] finishes as stop."""
    body = sse(delta_chunk("a"), delta_chunk("b"), "[DONE]")
    assert await decode([body]) == [AnswerDelta("a"), AnswerDelta("b"), Finish("stop")]


async def test_finish_reason_without_done_is_complete() -> None:
    """A finish_reason followed by the connection closing is a complete answer."""
    body = sse(delta_chunk("a"), delta_chunk(finish="stop"))
    assert await decode([body]) == [AnswerDelta("a"), Finish("stop")]


async def test_reasoning_content_field() -> None:
    """``delta.reasoning_content`` becomes ReasoningDelta, separate from the answer."""
    body = sse(
        delta_chunk(role=True, delta={"reasoning_content": "think "}),
        delta_chunk(delta={"reasoning_content": "more", "content": None}),
        delta_chunk("answer"),
        delta_chunk(finish="stop"),
        "[DONE]",
    )
    chunks = await decode([body])
    assert chunks[:3] == [ReasoningDelta("think "), ReasoningDelta("more"), AnswerDelta("answer")]


THINK_STREAM = sse(
    delta_chunk("<thi", role=True),
    delta_chunk("nk>推理"),
    delta_chunk(" step</th"),
    delta_chunk("ink>\n\n答"),
    delta_chunk("案", finish="stop"),
    "[DONE]",
)


async def test_think_tags_split_across_deltas() -> None:
    """Inline <think> split as "<thi" + "nk>" is reasoning, the rest is answer."""
    chunks = await decode([THINK_STREAM])
    assert texts(chunks) == ("推理 step", "答案")
    assert chunks[-1] == Finish("stop")


@pytest.mark.parametrize("cut", range(0, len(THINK_STREAM), 7))
async def test_think_stream_split_at_any_byte(cut: int) -> None:
    """Cutting the byte stream anywhere (mid-line, mid-UTF-8) gives the same texts."""
    chunks = await decode([THINK_STREAM[:cut], THINK_STREAM[cut:]])
    assert texts(chunks) == ("推理 step", "答案")


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=40), min_size=0, max_size=6))
async def test_any_content_split_gives_same_texts(cuts: list[int]) -> None:
    """Any split of think-tagged content into deltas yields the same reasoning and answer."""
    content = "  <think>a<b>c</thin</think>\n\nx<think>y"
    points = sorted({0, *[c for c in cuts if c < len(content)], len(content)})
    pieces = [content[a:b] for a, b in pairwise(points)]
    body = sse(*[delta_chunk(p) for p in pieces], delta_chunk(finish="stop"), "[DONE]")
    assert texts(await decode([body])) == ("a<b>c</thin", "x<think>y")


async def test_truncated_stream_raises_after_partial_text() -> None:
    """A stream closing without [DONE] or finish_reason raises TruncatedStream after its text."""
    seen: list[Chunk] = []
    response = httpx.Response(
        200,
        headers={"content-type": "text/event-stream"},
        stream=ByteChunks([sse(delta_chunk("partial"))]),
    )
    with pytest.raises(TruncatedStream):
        async with aclosing(EventSource(response).aiter_sse()) as events:
            async for chunk in decode_openai_stream(events, provider="test"):
                seen.append(chunk)
    assert seen == [AnswerDelta("partial")]


async def test_in_band_error() -> None:
    """A data object with an ``error`` key raises the mapped error with status 0."""
    body = sse(delta_chunk("x"), {"error": {"code": "1301", "message": "unsafe content"}})
    with pytest.raises(ContentBlockedError) as info:
        await decode([body])
    assert info.value.status == 0
    assert info.value.code == "1301"


async def test_zhipu_string_code_in_band() -> None:
    """Zhipu's string business code 1302 maps to RateLimitError."""
    body = sse({"error": {"code": "1302", "message": "您的账户已达到速率限制"}})
    with pytest.raises(RateLimitError) as info:
        await decode([body])
    assert info.value.code == "1302"
    assert info.value.provider == "test"


async def test_in_band_error_with_http_code() -> None:
    """A vLLM-style in-band error whose int code is an HTTP status uses that status."""
    body = sse(
        {"error": {"object": "error", "message": "bad", "type": "BadRequestError", "code": 400}}
    )
    with pytest.raises(BadRequestError) as info:
        await decode([body])
    assert info.value.status == 400


async def test_error_event_name() -> None:
    """An ``event: error`` whose data has no ``error`` key is still an in-band error."""
    body = b'event: error\ndata: {"code": "1113", "message": "arrears"}\n\n'
    with pytest.raises(QuotaExceededError):
        await decode([body])


async def test_non_json_chunk_is_malformed_and_redacted() -> None:
    """A data line that is not JSON raises MalformedChunk whose text holds no secret."""
    body = sse(delta_chunk("ok"), f"oops {SECRET} Bearer abc.def")
    with pytest.raises(MalformedChunk) as info:
        await decode([body])
    assert SECRET not in str(info.value)
    assert "abc.def" not in str(info.value)
    assert "oops" in str(info.value)


async def test_crlf_lines_and_comments() -> None:
    """CRLF line endings and ``:`` keep-alive comments decode normally."""
    body = sse(delta_chunk("a"), delta_chunk(finish="stop"), "[DONE]").replace(b"\n", b"\r\n")
    assert await decode([b": ping\r\n\r\n", body]) == [AnswerDelta("a"), Finish("stop")]


async def test_events_after_done_are_ignored() -> None:
    """Nothing after ``[DONE]`` is decoded, not even invalid data."""
    body = sse(delta_chunk("a"), "[DONE]", "not json", delta_chunk("late"))
    assert await decode([body]) == [AnswerDelta("a"), Finish("stop")]


def test_decoder_accepts_plain_pairs() -> None:
    """The push decoder works on plain data strings, without any HTTP object."""
    decoder = OpenAIStreamDecoder()
    chunks = decoder.feed(json.dumps(delta_chunk("hi", delta={"reasoning": "r"})))
    assert chunks == [ReasoningDelta("r"), AnswerDelta("hi")]
    assert decoder.feed("[DONE]") == []
    assert decoder.finish() == [Finish("stop")]


async def test_tuple_events_are_accepted() -> None:
    """``(event, data)`` pairs are accepted as events."""

    async def events() -> AsyncIterator[tuple[str, str]]:
        yield ("message", json.dumps(delta_chunk("x", finish="stop")))

    chunks = [c async for c in decode_openai_stream(events())]
    assert chunks == [AnswerDelta("x"), Finish("stop")]


def test_malformed_choices() -> None:
    """``choices`` that is not a list raises MalformedChunk."""
    with pytest.raises(MalformedChunk):
        OpenAIStreamDecoder().feed('{"choices": {"delta": {}}}')


def test_error_fields_shapes() -> None:
    """Error bodies of Zhipu, OpenAI, DashScope and FastAPI shapes give code and message."""
    zhipu = error_fields({"error": {"code": "1261", "message": "Prompt 超过最大长度"}})
    assert zhipu.code == "1261"
    assert zhipu.message == "Prompt 超过最大长度"
    openai = error_fields(
        {"error": {"message": "You exceeded", "type": "insufficient_quota", "code": None}}
    )
    assert openai.code is None
    assert "insufficient_quota" in openai.message
    dashscope = error_fields({"code": "Throttling", "message": "slow down", "request_id": "r1"})
    assert dashscope == ("Throttling", "slow down", "r1")
    assert error_fields({"detail": "Not Found"}).message == "Not Found"


def test_completion_chunks_from_non_stream_body() -> None:
    """A whole non-stream completion yields reasoning, answer, usage and finish."""
    body = {
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {
                    "role": "assistant",
                    "content": "<think>r</think>A",
                    "reasoning_content": None,
                },
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
    }
    assert completion_chunks(body) == [
        ReasoningDelta("r"),
        AnswerDelta("A"),
        UsageReport(Usage(1, 2, 3)),
        Finish("stop"),
    ]


def test_completion_chunks_error_body() -> None:
    """A JSON error body on a 2xx answer raises the mapped in-band error."""
    with pytest.raises(APIStatusError) as info:
        completion_chunks({"error": {"code": "1211", "message": "模型不存在"}})
    assert info.value.code == "1211"
