"""Splitting a rendered reply into Telegram-sized messages."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from telegram import MessageEntity

from bot.render.markdown import Rendered, render_markdown, split_rendered, utf16_len


def assert_parts_valid(parts: list[Rendered], *, max_units: int, max_entities: int) -> None:
    """Each part is non-blank, within both limits, and its entities lie inside it."""
    for part in parts:
        assert part.text.strip()
        assert utf16_len(part.text) <= max_units
        assert len(part.entities) <= max_entities
        for entity in part.entities:
            assert entity.offset >= 0
            assert entity.length > 0
            assert entity.offset + entity.length <= utf16_len(part.text)


def assert_entities_carried(whole: Rendered, parts: list[Rendered]) -> None:
    """Every entity reappears, clipped and rebased, in each part it overlaps, fields intact.

    Needs parts that concatenate to the whole text (their bases are cumulative).
    """
    base = 0
    for part in parts:
        length = utf16_len(part.text)
        got = {(str(e.type), e.offset, e.length, e.language, e.url) for e in part.entities}
        for entity in whole.entities:
            start = max(entity.offset, base)
            end = min(entity.offset + entity.length, base + length)
            if start < end:
                key = (str(entity.type), start - base, end - start, entity.language, entity.url)
                assert key in got
        base += length


def assert_whitespace_gaps_only(text: str, parts: list[Rendered]) -> None:
    """The parts appear in order in ``text`` with only whitespace left out between them."""
    position = 0
    for part in parts:
        start = position
        while not text.startswith(part.text, start):
            assert text[start].isspace()
            start += 1
        position = start + len(part.text)
    assert not text[position:].strip()


def nesting_depth(rendered: Rendered) -> int:
    """Most entities covering any one UTF-16 position."""
    edges = sorted(
        [(e.offset, 1) for e in rendered.entities]
        + [(e.offset + e.length, -1) for e in rendered.entities]
    )
    depth = deepest = 0
    for _, step in edges:  # at equal offsets the ends (-1) sort first
        depth += step
        deepest = max(deepest, depth)
    return deepest


def long_answer() -> str:
    """About 10k characters of Markdown paragraphs with bold, code, Chinese and emoji."""
    paragraph = "Some **bold** words, `code`, 中文 and 😀 emoji in a sentence. " * 8
    return "\n\n".join(f"Paragraph {n}: {paragraph}" for n in range(25))


def test_fitting_text_is_returned_as_is() -> None:
    """A frame within both limits is the single part, unchanged."""
    rendered = render_markdown("**hi** there")
    assert split_rendered(rendered) == [rendered]


def test_blank_text_has_no_parts() -> None:
    """Whitespace-only text yields no message at all."""
    assert split_rendered(Rendered(" \n\n ")) == []


def test_limits_below_one_emoji_are_rejected() -> None:
    """max_units < 2 cannot hold an emoji and is refused."""
    with pytest.raises(ValueError, match="max_units"):
        split_rendered(Rendered("abc"), max_units=1)
    with pytest.raises(ValueError, match="max_entities"):
        split_rendered(Rendered("abc"), max_entities=0)


def test_ten_thousand_characters_split_at_paragraphs() -> None:
    """A ~10k answer splits into parts <= 4096 units, cut after a blank line, losslessly."""
    whole = render_markdown(long_answer())
    assert len(whole.text) > 10_000
    parts = split_rendered(whole)
    assert len(parts) >= 3
    assert_parts_valid(parts, max_units=4096, max_entities=100)
    assert "".join(part.text for part in parts) == whole.text
    assert all(part.text.endswith("\n\n") for part in parts[:-1])
    assert_entities_carried(whole, parts)


def test_code_block_split_keeps_language_in_both_parts() -> None:
    """A ``pre`` block cut across messages carries its language into each part."""
    code = "\n".join(f"print({n})" for n in range(600))
    whole = render_markdown(f"Intro\n\n```python\n{code}\n```\n\nOutro")
    parts = split_rendered(whole)
    assert len(parts) >= 2
    for part in parts:
        languages = [e.language for e in part.entities if e.type == "pre"]
        assert languages == ["python"]
    assert "".join(part.text for part in parts) == whole.text
    assert_entities_carried(whole, parts)


def test_more_than_max_entities_splits_by_count() -> None:
    """250 bold words in a short text split into parts of <= 100 entities."""
    whole = render_markdown(" ".join(f"**w{n}**" for n in range(250)))
    assert len(whole.entities) == 250
    assert utf16_len(whole.text) < 4096
    parts = split_rendered(whole)
    assert len(parts) == 3
    assert_parts_valid(parts, max_units=4096, max_entities=100)
    assert sum(len(part.entities) for part in parts) == 250
    assert "".join(part.text for part in parts) == whole.text


def test_entity_crossing_a_cut_is_clipped_and_rebased() -> None:
    """A bold run across the cut appears in both parts with rebased offsets."""
    text = "aaaa bbbb cccc dddd"
    whole = Rendered(text, (MessageEntity("bold", 5, 9),))  # "bbbb cccc"
    parts = split_rendered(whole, max_units=10)
    assert [part.text for part in parts] == ["aaaa bbbb ", "cccc dddd"]
    assert [(e.offset, e.length) for e in parts[0].entities] == [(5, 5)]
    assert [(e.offset, e.length) for e in parts[1].entities] == [(0, 4)]


def test_preference_paragraph_then_line_then_space() -> None:
    """Within the window, a blank line wins over a line break, which wins over a space."""
    text = "one two three\nfour five\n\nsix seven eight nine ten eleven"
    parts = split_rendered(Rendered(text), max_units=30)
    assert parts[0].text == "one two three\nfour five\n\n"
    parts = split_rendered(Rendered("one two three\nfour five six seven"), max_units=20)
    assert parts[0].text == "one two three\n"


def test_emoji_are_never_cut_in_half() -> None:
    """An odd limit over emoji-only text never splits a surrogate pair."""
    text = "😀" * 50
    parts = split_rendered(Rendered(text), max_units=7)
    assert all(part.text == "😀" * 3 for part in parts[:-1])
    assert "".join(part.text for part in parts) == text
    assert_parts_valid(parts, max_units=7, max_entities=100)


def test_chinese_without_spaces_cuts_after_punctuation() -> None:
    """CJK text with no spaces is cut after a full stop rather than mid-sentence."""
    text = "这是第一句话。" * 10
    parts = split_rendered(Rendered(text), max_units=30)
    assert all(part.text.endswith("。") for part in parts)
    assert "".join(part.text for part in parts) == text


def test_split_is_fast_on_large_input() -> None:
    """Splitting 200k characters with 10k entities takes well under a second."""
    word = "word 😀 "  # 8 UTF-16 units
    text = word * 25_000
    entities = tuple(MessageEntity("bold", 16 * n, 4) for n in range(10_000))
    whole = Rendered(text, entities)
    started = time.perf_counter()
    parts = split_rendered(whole)
    assert time.perf_counter() - started < 1.0
    assert_parts_valid(parts, max_units=4096, max_entities=100)
    assert "".join(part.text for part in parts) == text
    assert sum(len(part.entities) for part in parts) == 10_000


ALPHABET = st.sampled_from(
    [
        *"ab *_~`|[]()!#>-+1.\n ",
        *("你好", "😀", "🎉", "**", "```py\n", "```\n", "\n\n"),
        *("[l](https://x.io)", "||s||", "- ", "`c`", "~~d~~"),
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(ALPHABET, max_size=120).map("".join),
    st.sampled_from([2, 7, 50, 4096]),
    st.sampled_from([1, 3, 100]),
)
def test_split_properties(markdown: str, max_units: int, max_entities: int) -> None:
    """Parts respect both limits, keep entities (and pre languages), and rebuild the text."""
    whole = render_markdown(markdown, partial=True)
    parts = split_rendered(whole, max_units=max_units, max_entities=max_entities)
    assert_parts_valid(parts, max_units=max_units, max_entities=max_entities)
    if "".join(part.text for part in parts) == whole.text:
        if nesting_depth(whole) <= max_entities:  # else a part must drop some
            assert_entities_carried(whole, parts)
    else:  # a whitespace-only piece that fit nowhere was left out
        assert_whitespace_gaps_only(whole.text, parts)
