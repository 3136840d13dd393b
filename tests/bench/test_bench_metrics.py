"""The benchmark's measurements: percentiles, answers, and replaying Bot API calls onto replies."""

from __future__ import annotations

import math
from typing import Any

from bench.answers import chunk_count, make_answer
from bench.metrics import (
    Reply,
    common_prefix,
    coverage_targets,
    expected_messages,
    holds_each_once,
    measure_replies,
    percentile,
)
from bot.render.markdown import ReplyStrings
from bot.render.rich import render_rich_reply


def _reply(
    key: str,
    answer: str,
    *,
    chat_id: int,
    message_id: int,
    chunk_times: list[float],
    finished: float,
    chars_per_token: int = 4,
    rich: bool = False,
) -> Reply:
    final_text, expected = expected_messages(answer, rich=rich)
    targets = coverage_targets(
        answer, chars_per_token=chars_per_token, final_text=final_text, rich=rich
    )
    return Reply(
        key=key,
        chat_id=chat_id,
        message_id=message_id,
        pushed_at=0.0,
        final_text=final_text,
        expected=expected,
        chunk_times=chunk_times,
        targets=targets,
        finished=finished,
        rich=rich,
    )


def _call(
    method: str,
    at: float,
    chat_id: int,
    text: str = "",
    *,
    entities: Any = None,
    message_id: int | None = None,
    reply_to: int | None = None,
    error_code: int | None = None,
    rich: bool = False,
) -> dict[str, Any]:
    return {
        "rich": rich,
        "method": method,
        "at": at,
        "chat_id": chat_id,
        "text": text,
        "entities": entities or [],
        "message_id": message_id,
        "reply_to": reply_to,
        "error_code": error_code,
    }


def test_percentile_interpolates_and_inf_marks_a_miss() -> None:
    """Percentiles interpolate linearly; a missing event (inf) shows at the top only."""
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 95) == 5.0
    assert math.isnan(percentile([], 50))
    values = [0.1] * 99 + [math.inf]
    assert percentile(values, 50) == 0.1 and percentile(values, 100) == math.inf


def test_common_prefix_counts_shared_leading_characters() -> None:
    """The common prefix of two texts is measured in characters, CJK and emoji included."""
    assert common_prefix("你好😀 world", "你好😀 word") == 7  # 你 好 😀 space w o r
    assert common_prefix("", "abc") == 0 and common_prefix("abc", "abc") == 3


def test_answers_are_deterministic_markdown_with_the_required_content() -> None:
    """An answer variant is the same every time and holds Chinese, emoji, code and lists."""
    answer = make_answer(3, tokens=1500, chars_per_token=3)
    assert answer == make_answer(3, tokens=1500, chars_per_token=3)
    assert answer != make_answer(4, tokens=1500, chars_per_token=3)
    assert "```python" in answer and answer.count("```") % 2 == 0
    assert "\n- " in answer and "\n1. " in answer
    assert any("\u4e00" <= ch <= "\u9fff" for ch in answer)
    assert any(ord(ch) > 0xFFFF for ch in answer)
    assert 1400 <= chunk_count(answer, 3) <= 1500


def test_a_drafted_private_reply_is_measured_from_the_calls() -> None:
    """A placeholder draft, a partial draft and the final message give every figure."""
    answer = "Hello **world**, this is a streamed answer."
    reply = _reply(
        "q",
        answer,
        chat_id=5,
        message_id=90,
        chunk_times=[0.1 + 0.1 * k for k in range(chunk_count(answer, 4))],
        finished=1.3,
    )
    final_text, parts = expected_messages(answer)
    calls = [
        _call("sendMessageDraft", 0.05, 5, ""),
        _call("sendMessageDraft", 0.45, 5, final_text[:12]),
        _call("sendMessage", 0.6, 5, "refused", message_id=1, reply_to=90, error_code=429),
        _call("sendMessage", 1.5, 5, parts[0][0], entities=parts[0][1], message_id=91, reply_to=90),
    ]
    [outcome] = measure_replies([reply], calls)
    assert outcome.first_feedback == 0.05
    assert outcome.first_text is not None and math.isclose(outcome.first_text, 0.35)
    assert outcome.exact and outcome.final is not None and math.isclose(outcome.final, 0.2)
    assert outcome.updates == 3
    assert max(outcome.staleness) <= 1.5 and min(outcome.staleness) >= 0.0


def test_continuation_messages_in_a_group_are_attributed_by_their_text() -> None:
    """Two long replies in one group, each split in two messages, both end exact."""
    first, second = "alpha beta " * 500, "gamma delta " * 500
    replies = [
        _reply(k, a, chat_id=-7, message_id=m, chunk_times=[0.0], finished=1.0)
        for k, a, m in (("a", first, 11), ("b", second, 12))
    ]
    parts_a, parts_b = expected_messages(first)[1], expected_messages(second)[1]
    assert len(parts_a) == len(parts_b) == 2
    calls = [
        _call("sendChatAction", 0.1, -7),
        _call("sendMessage", 2.0, -7, parts_a[0][0], message_id=21, reply_to=11),
        _call("sendMessage", 3.0, -7, parts_b[0][0], message_id=22, reply_to=12),
        _call("sendMessage", 4.0, -7, parts_b[1][0], message_id=23),
        _call("sendMessage", 5.0, -7, parts_a[1][0][:100], message_id=24),
        _call("editMessageText", 6.0, -7, parts_a[1][0], message_id=24),
    ]
    outcomes = measure_replies(replies, calls)
    assert [o.exact for o in outcomes] == [True, True]
    assert [o.first_feedback for o in outcomes] == [0.1, 0.1]
    assert [o.final for o in outcomes] == [5.0, 3.0]
    assert [o.updates for o in outcomes] == [3, 2]


def test_a_rich_private_reply_is_measured_from_its_rich_calls() -> None:
    """Rich drafts then a sendRichMessage of the rich renderer's output end exact; the same
    Markdown as a classic message would not be."""
    answer = "Hello **world**, a rich answer.\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    final_text, parts = expected_messages(answer, rich=True)
    assert [text for text, _ in parts] == render_rich_reply(
        answer, partial=False, strings=ReplyStrings()
    )
    assert parts[0][1] == [] and "| 1 | 2 |" in final_text

    def run(rich_final: bool) -> Any:
        reply = _reply(
            "q", answer, chat_id=5, message_id=90, chunk_times=[0.1], finished=1.0, rich=True
        )
        calls = [
            _call(
                "sendRichMessageDraft", 0.05, 5, "<tg-thinking>Thinking…</tg-thinking>", rich=True
            ),
            _call("sendRichMessageDraft", 0.5, 5, final_text[:10], rich=True),
            _call(
                "sendRichMessage" if rich_final else "sendMessage",
                1.2,
                5,
                parts[0][0],
                message_id=91,
                reply_to=90,
                rich=rich_final,
            ),
        ]
        [outcome] = measure_replies([reply], calls)
        return outcome

    outcome = run(rich_final=True)
    assert outcome.first_feedback == 0.05 and outcome.updates == 3
    assert outcome.exact and outcome.final is not None and math.isclose(outcome.final, 0.2)
    assert not run(rich_final=False).exact


def test_holds_each_once_finds_a_doubled_or_missing_message() -> None:
    """A chat's stored messages pass only when they are its replies' messages, each once."""
    parts_a = expected_messages("first answer", rich=True)[1]
    parts_b = expected_messages("second answer", rich=True)[1]

    def stored(*texts: str, rich: bool = True) -> list[dict[str, Any]]:
        return [{"text": t, "entities": [], "rich": rich} for t in texts]

    a, b = parts_a[0][0], parts_b[0][0]
    assert holds_each_once(stored(b, a), [parts_a, parts_b], rich=True)
    assert not holds_each_once(stored(a, b, a), [parts_a, parts_b], rich=True)
    assert not holds_each_once(stored(a), [parts_a, parts_b], rich=True)
    assert not holds_each_once(stored(a, b, rich=False), [parts_a, parts_b], rich=True)
