"""USTB wire pieces without HTTP: history folding, form body, SSE decoding, events."""

from __future__ import annotations

import json
from email import policy
from email.parser import BytesParser

import pytest
from hypothesis import given
from hypothesis import strategies as st

from providers.errors import BadRequestError
from providers.types import ChatMessage, ImagePart, Role, Usage
from providers.ustb_wire import (
    EventParts,
    SSEDataDecoder,
    compose_fields,
    encode_multipart,
    fold_messages,
    parse_event,
)


def messages(*pairs: tuple[Role, str]) -> list[ChatMessage]:
    """ChatMessages from ``(role, content)`` pairs."""
    return [ChatMessage(role, text) for role, text in pairs]


def test_system_prompt_folds_into_first_user_turn() -> None:
    """The system text goes before the first user turn, joined by a blank line."""
    content, history = fold_messages(messages(
        ("system", "You are kind."), ("user", "hi"), ("assistant", "hello"), ("user", "bye")
    ))
    assert content == "bye"
    assert history == [("user", "You are kind.\n\nhi"), ("assistant", "hello")]


def test_single_user_message_with_system_prompt() -> None:
    """With one user turn, the system text folds into content and history is empty."""
    assert fold_messages(messages(("system", "S"), ("user", "U"))) == ("S\n\nU", [])


def test_same_role_runs_merge_and_leading_assistant_is_dropped() -> None:
    """Consecutive same-role turns merge; assistant turns before any user turn go."""
    content, history = fold_messages(messages(
        ("assistant", "old answer"), ("user", "a"), ("user", ""), ("user", "b"),
        ("assistant", "x"), ("assistant", "y"), ("user", "c"), ("user", "d"),
    ))
    assert content == "c\n\nd"
    assert history == [("user", "a\n\nb"), ("assistant", "x\n\ny")]


@pytest.mark.parametrize(
    "pairs",
    [
        [("user", "q"), ("assistant", "a")],
        [("system", "only a system prompt")],
        [],
    ],
)
def test_conversation_must_end_with_user(pairs: list[tuple[Role, str]]) -> None:
    """Without a final user message there is nothing to send: BadRequestError."""
    with pytest.raises(BadRequestError, match="end with a user message"):
        fold_messages(messages(*pairs), provider="ustb", model="DeepSeek")


def test_images_are_refused() -> None:
    """A message with images raises BadRequestError naming the limitation."""
    with pytest.raises(BadRequestError, match="text only") as info:
        fold_messages([ChatMessage("user", "see", (ImagePart(b"img"),))], model="DeepSeek")
    assert (info.value.provider, info.value.model, info.value.status) == ("ustb", "DeepSeek", 0)


@given(st.lists(st.tuples(
    st.sampled_from(["system", "user", "assistant"]), st.text(min_size=1, max_size=5)
), max_size=12).map(lambda pairs: [*pairs, ("user", "last")]))
def test_history_always_alternates_and_ends_with_assistant(pairs: list[tuple[Role, str]]) -> None:
    """For any conversation ending with a user, history is user/assistant pairs."""
    content, history = fold_messages(messages(*pairs))
    assert content.endswith("last")
    assert [role for role, _ in history] == ["user", "assistant"] * (len(history) // 2)
    assert all(text.strip() for _, text in history)


def test_compose_fields_order() -> None:
    """Fields: content, history pairs, compose_id, deep_search, model_name, internet_search."""
    fields = compose_fields("q2", [("user", "q1"), ("assistant", "a1")], model_name="Qwen")
    assert fields == [
        ("content", "q2"),
        ("history[0][role]", "user"), ("history[0][content]", "q1"),
        ("history[1][role]", "assistant"), ("history[1][content]", "a1"),
        ("compose_id", "3"), ("deep_search", "1"), ("model_name", "Qwen"),
        ("internet_search", "2"),
    ]


def test_multipart_body_parses_in_order_without_part_content_types() -> None:
    """The standard library parser reads the fields back, in order, UTF-8, no Content-Type."""
    fields = [("content", "你好\n\nline two\r\nthree"), ("history[0][role]", "user"), ("e", "")]
    body, content_type = encode_multipart(fields)
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    parsed = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    parts = list(parsed.iter_parts())
    assert [list(part.keys()) for part in parts] == [["Content-Disposition"]] * 3
    read_back = []
    for part in parts:
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        read_back.append((part.get_param("name", header="content-disposition"), payload.decode()))
    assert read_back == fields


def test_multipart_boundary_avoids_values_and_quotes_names() -> None:
    """A given boundary that occurs in a value is replaced; quotes in names are escaped."""
    body, content_type = encode_multipart([('a"b', "xx--SEP--xx")], boundary="SEP")
    boundary = content_type.split("boundary=")[1]
    assert boundary != "SEP"
    assert body.startswith(f"--{boundary}\r\n".encode())
    assert b'name="a%22b"' in body
    assert body.endswith(f"--{boundary}--\r\n".encode())


def test_sse_decoder_line_endings_and_fields() -> None:
    """CRLF, LF and CR (even cut across pieces) end lines; names, ids, comments are ignored."""
    decoder = SSEDataDecoder()
    pieces = ["event: x\r", "\ndata: {\"a\":", "1}\r\n\r", "\n: ping\rid: 3\rdata:b\r\rdata: c\n"]
    events = [data for piece in pieces for data in decoder.decode(piece)]
    assert events == ['{"a":1}', "b"]
    assert decoder.flush() == ["c"]
    assert decoder.flush() == []


def test_sse_decoder_keeps_unicode_line_separators_and_joins_data_lines() -> None:
    """U+2028 inside data is not a line end; several data lines join with a newline."""
    decoder = SSEDataDecoder()
    assert decoder.decode("data: a\u2028b\ndata: c\n\n") == ["a\u2028b\nc"]


def envelope_data(answer: str, ext: object) -> str:
    """One event's data with the given d.answer and d.ext."""
    return json.dumps({"e": 0, "m": "ok", "d": {"type": "0", "answer": answer, "ext": ext}})


def test_parse_event_answer_with_empty_php_ext() -> None:
    """d.answer is the answer when d.ext is [] (an empty PHP array)."""
    assert parse_event(envelope_data("<think>好的", [])) == EventParts(answer="<think>好的")


def test_parse_event_prefers_original_stream() -> None:
    """original_stream (a JSON string) is the one source; d.answer is not doubled."""
    chunk = {
        "choices": [
            {"delta": {"content": "Hi", "reasoning_content": "hm"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 2, "completion_tokens": 3},
    }
    parts = parse_event(envelope_data("Hi", {"original_stream": json.dumps(chunk)}))
    assert parts == EventParts(
        answer="Hi", reasoning="hm", finish_reason="stop", usage=Usage(2, 3, 5)
    )


def test_parse_event_falls_back_when_original_stream_is_broken() -> None:
    """An undecodable original_stream leaves d.answer as the source."""
    assert parse_event(envelope_data("x", {"original_stream": "{oops"})) == EventParts(answer="x")


def test_parse_event_errors_and_empty_data() -> None:
    """e != 0 and an error object in original_stream are errors; [DONE] says nothing."""
    assert parse_event('{"e": 4028, "m": "history参数异常", "d": []}').error == (
        "4028", "history参数异常"
    )
    inner = json.dumps({"error": {"code": "1301", "message": "blocked"}})
    assert parse_event(envelope_data("", {"original_stream": inner})).error == ("1301", "blocked")
    assert parse_event("[DONE]") == EventParts()
    with pytest.raises(ValueError):
        parse_event('"just a string"')
