"""USTB wire pieces without HTTP: history folding, form fields, event data."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from providers.errors import BadRequestError
from providers.types import ChatMessage, ImagePart, Role, Usage
from providers.ustb_wire import (
    EventParts,
    compose_fields,
    fold_messages,
    parse_event,
)


def messages(*pairs: tuple[Role, str]) -> list[ChatMessage]:
    """ChatMessages from ``(role, content)`` pairs."""
    return [ChatMessage(role, text) for role, text in pairs]


def test_system_prompt_folds_into_first_user_turn() -> None:
    """The system text goes before the first user turn, joined by a blank line."""
    content, history = fold_messages(
        messages(
            ("system", "You are kind."), ("user", "hi"), ("assistant", "hello"), ("user", "bye")
        )
    )
    assert content == "bye"
    assert history == [("user", "You are kind.\n\nhi"), ("assistant", "hello")]


def test_single_user_message_with_system_prompt() -> None:
    """With one user turn, the system text folds into content and history is empty."""
    assert fold_messages(messages(("system", "S"), ("user", "U"))) == ("S\n\nU", [])


def test_same_role_runs_merge_and_leading_assistant_is_dropped() -> None:
    """Consecutive same-role turns merge; assistant turns before any user turn go."""
    content, history = fold_messages(
        messages(
            ("assistant", "old answer"),
            ("user", "a"),
            ("user", ""),
            ("user", "b"),
            ("assistant", "x"),
            ("assistant", "y"),
            ("user", "c"),
            ("user", "d"),
        )
    )
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


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["system", "user", "assistant"]), st.text(min_size=1, max_size=5)
        ),
        max_size=12,
    ).map(lambda pairs: [*pairs, ("user", "last")])
)
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
        ("history[0][role]", "user"),
        ("history[0][content]", "q1"),
        ("history[1][role]", "assistant"),
        ("history[1][content]", "a1"),
        ("compose_id", "3"),
        ("deep_search", "1"),
        ("model_name", "Qwen"),
        ("internet_search", "2"),
    ]


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
        "4028",
        "history参数异常",
    )
    inner = json.dumps({"error": {"code": "1301", "message": "blocked"}})
    assert parse_event(envelope_data("", {"original_stream": inner})).error == ("1301", "blocked")
    assert parse_event("[DONE]") == EventParts()
    with pytest.raises(ValueError):
        parse_event('"just a string"')
