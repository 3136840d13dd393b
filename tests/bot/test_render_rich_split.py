"""Rich messages over Telegram's limits: measuring them and splitting them at blocks."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.fake_rich import validate_rich_markdown
from bot.render.markdown import ReplyStrings
from bot.render.rich import (
    RichLimits,
    RichSize,
    measure_rich,
    render_rich_markdown,
    render_rich_reply,
    sanitize_rich_markdown,
    split_rich_markdown,
)
from bot.render.rich_limits import measure_units
from tests.bot.rich_checks import events, problems, row_cells

STRINGS = ReplyStrings()
LIMITS = RichLimits()


def assert_sendable(parts: list[str], limits: RichLimits = LIMITS, *, draft: bool = False) -> None:
    """Each part is within ``limits``, complete, and accepted by the fake Bot API."""
    assert parts
    for part in parts:
        assert measure_rich(part).fits(limits), measure_rich(part)
        assert problems(part, draft=draft) == [], part
        if measure_rich(part).fits(LIMITS):
            assert validate_rich_markdown(part, draft=draft) is None, part


def words(text: str) -> Counter[str]:
    """The alphanumeric words of ``text`` (to check that nothing is lost in a split), less
    the numbers of ordered list markers (a split list's next part is renumbered)."""
    return Counter(re.findall(r"\w+", re.sub(r"(?m)^[ \t>]*\d{1,9}[.)](?=[ \t]|$)", "", text)))


def top_level_units(text: str) -> list[str]:
    """The top-level blocks of ``text``, stripped."""
    return [unit.strip("\n") for unit, _ in measure_units(text)[1] if unit.strip()]


# ----- measuring ---------------------------------------------------------------------------


def test_measure_counts_blocks_rows_items_and_columns() -> None:
    """A heading, a paragraph, a list with two items and their texts, a table with two
    rows, a divider: 11 blocks."""
    text = "# H\n\npara **b**\n\n- a\n- b\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n---\n"
    assert measure_rich(text) == RichSize(
        bytes=len(text), blocks=11, depth=2, media=0, table_columns=2
    )


def test_measure_counts_nesting_and_details() -> None:
    """Nested lists add two levels each (list and item); a details block adds one."""
    assert measure_rich("- a\n  - b\n    - c").depth == 6
    details = "<details>\n<summary>s</summary>\n\nx **y**\n\n</details>"
    size = measure_rich(details)
    assert (size.blocks, size.depth) == (4, 3)  # two HTML lines, the details, a paragraph


def test_measure_counts_utf8_bytes_of_the_source() -> None:
    """Length is the source's UTF-8 bytes: a Chinese character takes three."""
    assert measure_rich("中文").bytes == 6
    assert measure_rich("😀").bytes == 4


def test_measure_counts_images_as_media() -> None:
    """Images in unsanitised Markdown count as media (sanitised text has none)."""
    text = "![a](https://x.org/a.png)\n\n![b](https://x.org/b.png)"
    assert measure_rich(text).media == 2
    assert measure_rich(sanitize_rich_markdown(text)).media == 0


def test_measure_units_cut_the_text_at_top_level_blocks() -> None:
    """The units give the text back, a details block with its body is one unit, and
    their sizes add up to the whole's."""
    text = "a\n\n<details>\n<summary>s</summary>\n\nb\n\nc\n\n</details>\n\n- d\n- e\n"
    total, units = measure_units(text)
    assert "".join(unit for unit, _ in units) == text
    assert [unit.strip("\n")[:9] for unit, _ in units] == ["a", "<details>", "- d\n- e"]
    assert sum(size.blocks for _, size in units) == total.blocks
    assert sum(size.bytes for _, size in units) == total.bytes == len(text)


def test_limits_are_settings_not_constants() -> None:
    """Telegram can change its limits (server-pushed options): a smaller limit splits more."""
    text = "\n\n".join(f"Paragraph {i}." for i in range(30))
    assert split_rich_markdown(text) == [text]
    parts = split_rich_markdown(text, RichLimits(max_blocks=10))
    assert len(parts) == 3
    assert_sendable(parts, RichLimits(max_blocks=10))


def test_too_small_limits_are_refused() -> None:
    """Limits too small to hold a table or a details block raise ValueError."""
    with pytest.raises(ValueError):
        split_rich_markdown("x", RichLimits(max_bytes=100))
    with pytest.raises(ValueError):
        split_rich_markdown("x", RichLimits(max_blocks=3))


# ----- splitting -----------------------------------------------------------------------------

PARAGRAPH = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, for $5 a $x^2$. " * 6


def long_answer(sections: int) -> str:
    """An LLM-style answer of many sections: headings, paragraphs, code, tables, lists."""
    return "\n\n".join(
        f"## Section {i}\n\n{PARAGRAPH}\n\n```python\nprint({i})  # ${i}\n```\n\n"
        f"| n | value |\n|---|---|\n| {i} | $y_{i}$ |\n\n- point {i}\n- point {i} again"
        for i in range(sections)
    )


def test_a_40k_answer_becomes_two_messages_cut_between_blocks() -> None:
    """A 40,000-character answer is sent as two rich messages, each within the limits,
    cut between top-level blocks: together they hold the answer's blocks, in order."""
    answer = long_answer(72)
    assert 40_000 <= len(answer) <= 42_000
    parts = render_rich_reply(answer, partial=False, strings=STRINGS)
    assert len(parts) == 2
    assert_sendable(parts)
    whole = render_rich_markdown(answer)
    assert [u for part in parts for u in top_level_units(part)] == top_level_units(whole)


def test_600_list_items_are_split_between_items() -> None:
    """600 list items (an item and its text are two blocks: 1,201 with the list) go in
    three messages of at most 249 items, cut between items."""
    answer = "\n".join(f"- item {i} costs $3" for i in range(600))
    parts = render_rich_reply(answer, partial=False, strings=STRINGS)
    assert [part.count("\n") + 1 for part in parts] == [249, 249, 102]
    assert_sendable(parts)
    items = [line for part in parts for line in part.split("\n")]
    assert items == [f"- item {i} costs \\$3" for i in range(600)]


def test_an_ordered_list_continues_its_numbering() -> None:
    """The second part of a split ordered list starts at the number it had."""
    answer = "\n".join(f"{i}. step" for i in range(1, 601))
    parts = split_rich_markdown(answer)
    assert len(parts) == 3
    assert_sendable(parts)
    second = parts[1].split("\n")[0]
    first_count = parts[0].count("\n") + 1
    assert second == f"{first_count + 1}. step"
    starts = [
        data for kind, name, data, *_ in events(parts[1]) if name == "List" and kind == "Start"
    ]
    assert starts == [first_count + 1]


def test_a_huge_code_block_becomes_several_code_blocks() -> None:
    """A code block over the limit is split between lines into code blocks with the same
    fence and language; their code, joined, is the original."""
    code = "".join(f"line_{i} = '$' * {i}\n" for i in range(3000))
    parts = split_rich_markdown(f"```python\n{code}```")
    assert len(parts) >= 2
    assert_sendable(parts)
    codes = []
    for part in parts:
        assert part.startswith("```python\n")
        assert part.endswith("\n```")
        codes.append(part.removeprefix("```python\n").removesuffix("```"))
    assert "".join(codes) == code


def test_a_line_longer_than_the_limit_is_cut() -> None:
    """One code line over the byte limit is cut (at a character, never inside one)."""
    code = "é" * 20_000  # 40,000 bytes
    parts = split_rich_markdown(f"```\n{code}\n```")
    assert_sendable(parts)
    assert "".join(p.removeprefix("```\n").removesuffix("\n```") for p in parts) == code


def test_a_huge_table_repeats_its_header() -> None:
    """600 table rows go in several tables, each with the header and delimiter rows."""
    rows = "".join(f"| {i} | ${i}$ |\n" for i in range(600))
    parts = split_rich_markdown(f"| n | formula |\n|:--|--:|\n{rows}")
    assert len(parts) == 2
    assert_sendable(parts)
    body = []
    for part in parts:
        lines = part.split("\n")
        assert lines[:2] == ["| n | formula |", "|:--|--:|"]
        assert all(row_cells(line.encode()) == 2 for line in lines)
        body.extend(lines[2:])
    assert body == rows.strip("\n").split("\n")


def test_a_huge_details_block_is_wrapped_again_in_each_part() -> None:
    """Reasoning too long for one message: each part is a details block with the same
    summary, its body cut between blocks."""
    reasoning = "\n\n".join(f"Step {i}: compute $a_{i}$ and check." for i in range(700))
    parts = render_rich_reply(
        "The answer.", reasoning=reasoning, thinking_seconds=3, partial=False,
        strings=STRINGS, limits=RichLimits(max_blocks=200),
    )  # fmt: skip
    assert len(parts) >= 2
    assert_sendable(parts, RichLimits(max_blocks=200))
    for part in parts[:-1]:
        assert part.startswith("<details>\n<summary>Thought for 3s</summary>\n\n")
        assert part.endswith("\n\n</details>")
    assert parts[-1].endswith("The answer.")


def test_a_huge_quote_is_quoted_again_in_each_part() -> None:
    """A block quote over the limits becomes several quotes, every line still quoted."""
    quote = "\n>\n".join(f"> Quoted paragraph {i} with **bold**." for i in range(600))
    parts = split_rich_markdown(quote)
    assert len(parts) >= 2
    assert_sendable(parts)
    for part in parts:
        assert all(line.startswith(">") for line in part.split("\n"))
    assert sum(words(p)["Quoted"] for p in parts) == 600


def test_a_huge_list_item_keeps_its_marker() -> None:
    """One list item over the limits: its content is split, each part an item again."""
    item = "- " + "\n\n  ".join(f"Para {i} in the item." for i in range(600))
    parts = split_rich_markdown(item)
    assert len(parts) >= 2
    assert_sendable(parts)
    for part in parts:
        assert part.startswith("- Para ")
        assert all(not line or line.startswith("  ") for line in part.split("\n")[1:])


def test_nesting_deeper_than_the_limit_becomes_code() -> None:
    """A block nested deeper than 16 levels is shown as a code block of its source."""
    deep = "\n".join("  " * level + "- level" for level in range(12))
    assert measure_rich(deep).depth > 16
    parts = split_rich_markdown(deep)
    assert parts == [f"```\n{deep}\n```"]
    assert_sendable(parts)


def test_a_huge_paragraph_is_cut_at_punctuation() -> None:
    """One Chinese paragraph over the byte limit is cut after a punctuation mark."""
    paragraph = "这是一个很长的句子，包含公式 $x^2$ 和价格。" * 800
    parts = split_rich_markdown(sanitize_rich_markdown(paragraph))
    assert len(parts) >= 2
    assert_sendable(parts)
    assert all(part.endswith(("，", "。")) for part in parts[:-1])
    assert sum(words(p)["x"] for p in parts) == 800


def test_a_long_word_without_spaces_is_cut_anywhere() -> None:
    """Text with no line break or space to cut at is cut inside, within the limit."""
    parts = split_rich_markdown("a" * 40_000)
    assert_sendable(parts)
    assert "".join(parts) == "a" * 40_000


def test_a_dangling_footnote_reference_is_escaped_after_a_split() -> None:
    """A footnote whose definition went to another part shows as text there."""
    body = "\n\n".join(f"Claim {i}[^1]." for i in range(600))
    parts = split_rich_markdown(f"{body}\n\n[^1]: The source.")
    assert len(parts) == 2
    assert_sendable(parts)
    assert "Claim 0\\[^1]." in parts[0]


# ----- properties: every frame of a streamed answer ----------------------------------------

WORDS = st.sampled_from(["alpha", "beta", "价格", "costs", "$5", "$10", "x", "42", "中文。"])
INLINE = st.sampled_from(
    [
        "**bold**", "*it*", "`code $x`", "$x^2$", "$\\frac{a}{b}$", "\\(a+b\\)", "$5-$10",
        "[site](https://example.org/p)", "[local](./x.md)", "<b>b</b>", "<think>", "~~s~~",
        "==m==", "<br>", "&copy;", "H<sub>2</sub>O",
    ]
)  # fmt: skip


@st.composite
def inline_text(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.one_of(WORDS, INLINE), min_size=1, max_size=12))
    return " ".join(parts)


@st.composite
def block(draw: st.DrawFn, depth: int = 0) -> str:
    kind = draw(
        st.sampled_from(
            ["paragraph", "heading", "fence", "math", "table", "list", "quote", "details"]
            if depth < 2
            else ["paragraph", "fence", "math"]
        )
    )
    if kind == "paragraph":
        return draw(inline_text())
    if kind == "heading":
        return "#" * draw(st.integers(1, 6)) + " " + draw(inline_text())
    if kind == "fence":
        lines = draw(
            st.lists(st.sampled_from(["x = '$5'", "`y`", "\\(z\\)", "| a |", ""]), max_size=5)
        )
        return "```py\n" + "\n".join(lines) + "\n```"
    if kind == "math":
        return draw(
            st.sampled_from(["$$\n\\int_0^1 x\\,dx\n$$", "$$E=mc^2$$", "\\[\n\\sum_i i\n\\]"])
        )
    if kind == "table":
        columns = draw(st.integers(1, 23))
        rows = draw(st.integers(0, 8))
        cell = st.sampled_from(["1", "$x$", "$5", "`a|b`", "**b**", "中文", ""])
        lines = ["| " + " | ".join(f"h{c}" for c in range(columns)) + " |", "|" + "---|" * columns]
        for _ in range(rows):
            width = draw(st.integers(max(1, columns - 1), columns + 1))
            lines.append("| " + " | ".join(draw(cell) for _ in range(width)) + " |")
        return "\n".join(lines)
    if kind == "list":
        ordered = draw(st.booleans())
        items = draw(st.lists(inline_text(), min_size=1, max_size=6))
        nested = draw(st.booleans())
        lines = [f"{i + 1}. {item}" if ordered else f"- {item}" for i, item in enumerate(items)]
        if nested:
            lines.append("   - nested " + draw(inline_text()))
        return "\n".join(lines)
    if kind == "quote":
        return "\n".join("> " + line for line in draw(block(depth + 1)).split("\n"))
    inner = draw(st.lists(block(depth + 1), min_size=1, max_size=3))
    return "<details>\n<summary>More</summary>\n\n" + "\n\n".join(inner) + "\n\n</details>"


ANSWERS = st.lists(block(), min_size=1, max_size=8).map("\n\n".join)
SMALL = RichLimits(max_bytes=1200, max_blocks=24)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ANSWERS, st.lists(st.floats(0, 1), min_size=6, max_size=6), st.booleans())
def test_every_frame_of_a_streamed_answer_is_sendable(
    answer: str, cuts: list[float], draft: bool
) -> None:
    """For growing prefixes of generated answers (tables, formulas, fences, lists, quotes,
    details), every part of every frame is within the limits, balanced, and accepted by
    the fake Bot API's independent validator; the final frame loses no word."""
    ends = sorted({int(len(answer) * cut) for cut in cuts})
    for end in ends:
        for limits in (LIMITS, SMALL):
            parts = render_rich_reply(
                answer[:end], reasoning="Think about $5.", thinking_seconds=2.0,
                partial=True, draft=draft, strings=STRINGS, limits=limits,
            )  # fmt: skip
            assert_sendable(parts, limits, draft=draft)
    for limits in (LIMITS, SMALL):
        final = render_rich_reply(answer, partial=False, strings=STRINGS, limits=limits)
        if render_rich_markdown(answer).strip():
            assert_sendable(final, limits)
        missing = words(render_rich_markdown(answer)) - words("\n".join(final))
        assert not missing, (missing, final)
