"""Markdown -> Telegram text + entities, and closing what a partial stream leaves open."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from telegram import MessageEntity

from bot.render.markdown import Rendered, close_open_markdown, render_markdown, utf16_len


def entity_text(text: str, entity: MessageEntity) -> str:
    """The slice of ``text`` an entity covers, cut in UTF-16 units as Telegram does."""
    units = text.encode("utf-16-le")
    return units[2 * entity.offset : 2 * (entity.offset + entity.length)].decode("utf-16-le")


def kinds(rendered: Rendered) -> list[tuple[str, int, int, str | None]]:
    """(type, offset, length, language) of each entity, for exact comparisons."""
    return [(str(e.type), e.offset, e.length, e.language) for e in rendered.entities]


def assert_valid(rendered: Rendered) -> None:
    """Every entity has a positive length and lies inside the text."""
    total = utf16_len(rendered.text)
    for entity in rendered.entities:
        assert entity.offset >= 0
        assert entity.length > 0
        assert entity.offset + entity.length <= total


def test_utf16_len_counts_emoji_as_two_units() -> None:
    """Chinese characters take one UTF-16 unit, emoji outside the BMP take two."""
    assert utf16_len("abc") == 3
    assert utf16_len("你好") == 2
    assert utf16_len("😀") == 2
    assert utf16_len("a😀你") == 4


def test_chinese_and_emoji_offsets_are_utf16_units() -> None:
    """Bold Chinese, an emoji and a code span get exact UTF-16 offsets and lengths."""
    rendered = render_markdown("**你好** 😀 `code`")
    assert rendered.text == "你好 😀 code"
    assert kinds(rendered) == [("bold", 0, 2, None), ("code", 6, 4, None)]
    assert rendered.utf16_length == 10
    assert [entity_text(rendered.text, e) for e in rendered.entities] == ["你好", "code"]


def test_entities_after_many_emoji_cover_the_right_text() -> None:
    """An entity after several emoji still covers exactly its own text."""
    rendered = render_markdown("😀😀😀 **粗体** 🎉 [链接](https://example.com) `x`")
    covered = {str(e.type): entity_text(rendered.text, e) for e in rendered.entities}
    assert covered == {"bold": "粗体", "text_link": "链接", "code": "x"}
    link = next(e for e in rendered.entities if e.type == "text_link")
    assert link.url == "https://example.com"


def test_fenced_code_becomes_pre_with_language() -> None:
    """A closed fence renders as a ``pre`` entity carrying its language."""
    rendered = render_markdown("Intro\n\n```python\nprint(1)\n```\n")
    pre = [e for e in rendered.entities if e.type == "pre"]
    assert len(pre) == 1
    assert pre[0].language == "python"
    assert entity_text(rendered.text, pre[0]) == "print(1)"


def test_library_failure_falls_back_to_plain_text() -> None:
    """Input the library cannot encode (a lone surrogate) comes back as plain text."""
    source = "a\ud800b **x**"
    rendered = render_markdown(source, partial=True)
    assert rendered.text == source
    assert rendered.entities == ()


def test_pathological_expansion_falls_back_to_plain_text() -> None:
    """Thousands of nested list levels (quadratic indentation) render as plain text."""
    source = "- " * 3000 + "a"
    rendered = render_markdown(source)
    assert rendered.text == source
    assert rendered.entities == ()


def test_rendered_equality_sees_language_and_url() -> None:
    """Frames differing only in a code block's language are not equal (PTB ignores it)."""
    python = render_markdown("```python\nx\n```")
    rust = render_markdown("```rust\nx\n```")
    assert python.text == rust.text
    assert python != rust
    assert python == render_markdown("```python\nx\n```")
    assert hash(python) == hash(render_markdown("```python\nx\n```"))


@pytest.mark.parametrize(
    "balanced",
    [
        "Plain text.",
        "a **b** c *d* e `f` g ~~h~~ ||i|| [j](https://example.com)",
        "* one\n* two\n\n- three",
        "```python\nx = 2 ** 3\n```\n\nDone.",
        "Use `a ** b` and `*args`.",
        "snake_case_name and 2*3 = 6",
        "这是**重点**内容",
        "# Title\n\n> quote **bold**",
        "| a | b |\n|---|---|\n| 1 | 2 |",
        "",
    ],
)
def test_balanced_text_is_unchanged(balanced: str) -> None:
    """Markdown with nothing open comes back unchanged."""
    assert close_open_markdown(balanced) == balanced


def test_open_fence_with_language_renders_pre_with_language() -> None:
    """An open ```lang fence is closed and renders as ``pre`` with that language."""
    partial = "Here:\n\n```python\ndef f():\n    return 1"
    closed = close_open_markdown(partial)
    assert closed == partial + "\n```"
    pre = [e for e in render_markdown(partial, partial=True).entities if e.type == "pre"]
    assert [(p.language, p.length) for p in pre] == [
        ("python", utf16_len("def f():\n    return 1"))
    ]


@pytest.mark.parametrize("fence", ["```", "~~~", "````"])
def test_half_typed_closing_fence_is_dropped(fence: str) -> None:
    """A closing fence being typed ("``") does not show up inside the code."""
    partial = f"{fence}js\nlet a = 1;\n{fence[:-1]}"
    rendered = render_markdown(partial, partial=True)
    assert rendered.text == "let a = 1;"
    assert kinds(rendered) == [("pre", 0, 10, "js")]


def test_fence_counting_ignores_shorter_and_other_fences() -> None:
    """Inside a ```` block, ``` and ~~~ lines are content; the block is still open."""
    partial = "````md\n```py\nx\n```\n~~~\ny"
    closed = close_open_markdown(partial)
    assert closed.endswith("y\n````")
    pre = render_markdown(partial, partial=True).entities
    assert [(str(e.type), e.language) for e in pre] == [("pre", "md")]


def test_fence_in_list_item_is_closed_with_item_indent() -> None:
    """An open fence inside a list item closes at the item's indentation."""
    assert close_open_markdown("- ```sh\n  ls") == "- ```sh\n  ls\n  ```"


def test_fence_being_typed_at_line_start_is_dropped() -> None:
    """A last line of one or two backticks (a fence being typed) shows nothing yet."""
    assert close_open_markdown("Text\n\n``") == "Text\n\n"
    assert render_markdown("Text\n\n``", partial=True).text == "Text"


@pytest.mark.parametrize(
    ("partial", "kind", "covered"),
    [
        ("**bold", "bold", "bold"),
        ("some *italic", "italic", "italic"),
        ("some _italic", "italic", "italic"),
        ("~~strike", "strikethrough", "strike"),
        ("||secret", "spoiler", "secret"),
        ("run `ls -la", "code", "ls -la"),
        ("这是**重点", "bold", "重点"),
        ("> **quoted", "bold", "quoted"),
        ("1. **item", "bold", "item"),
    ],
)
def test_open_inline_marker_is_closed(partial: str, kind: str, covered: str) -> None:
    """An inline marker left open at the edge renders as the finished text will."""
    rendered = render_markdown(partial, partial=True)
    assert kind in [str(e.type) for e in rendered.entities]
    entity = next(e for e in rendered.entities if e.type == kind)
    assert entity_text(rendered.text, entity) == covered


def test_nested_open_markers_close_in_order() -> None:
    """``**bold *both`` closes the italic, then the bold."""
    assert close_open_markdown("**bold *both") == "**bold *both***"
    rendered = render_markdown("**bold *both", partial=True)
    assert kinds(rendered) == [("bold", 0, 9, None), ("italic", 5, 4, None)]


def test_half_typed_closers_complete() -> None:
    """``**a*`` and ``~~a~`` complete to the closer being typed."""
    assert close_open_markdown("**a*") == "**a**"
    assert close_open_markdown("~~a~") == "~~a~~"


def test_markers_inside_code_are_not_counted() -> None:
    """``**`` inside a code span or a closed code block opens nothing."""
    assert close_open_markdown("Use `a ** b` now") == "Use `a ** b` now"
    text = "```\n**x\n```\nafter"
    assert close_open_markdown(text) == text
    assert close_open_markdown("`x` and `**y") == "`x` and `**y`"


def test_list_bullets_are_not_emphasis() -> None:
    """A ``*`` list bullet is not an italic opener."""
    text = "* first\n* second item"
    assert close_open_markdown(text) == text


def test_markers_left_open_in_earlier_paragraphs_are_final() -> None:
    """An unmatched ``**`` in an earlier paragraph stays literal; only the last block counts."""
    text = "2 ** 3 is **eight\n\nNext paragraph"
    assert close_open_markdown(text) == text


def test_opener_with_nothing_after_it_is_dropped() -> None:
    """A marker with nothing after it yet is dropped instead of shown raw."""
    assert close_open_markdown("Hello **") == "Hello "
    assert close_open_markdown("Hello `") == "Hello "
    assert close_open_markdown("**a **") == "**a**"


def test_unfinished_link_renders_as_its_text() -> None:
    """``[text](http://…`` renders as ``text`` with no half-typed URL entity."""
    rendered = render_markdown("See [the docs](https://exa", partial=True)
    assert rendered.text == "See the docs"
    assert rendered.entities == ()
    assert close_open_markdown("See [the docs]") == "See the docs"
    assert close_open_markdown("arr[i") == "arr[i"


def test_complete_link_keeps_markers_in_url_uncounted() -> None:
    """Underscores and stars in a complete link's URL open nothing."""
    text = "[x](https://e.com/a_b*c) then **bold"
    assert close_open_markdown(text) == text + "**"


def test_partial_block_marker_line_is_dropped() -> None:
    """A last line with only ``-`` would make the paragraph above a heading: dropped."""
    assert close_open_markdown("Title\n-") == "Title\n"
    assert render_markdown("Title\n-", partial=True).text == "Title"


STABLE_DOC = """# 标题 Title

Intro with **bold text**, *italic*, `inline code` and a [link](https://example.com/a_b).
A second line with 中文 and 😀, plus ~~strike~~ and ||spoiler||.

1. First step with **bold
   across lines** here
2. Second step
   - nested *item*

```python
def main() -> None:
    print("**not bold**")
```

> A quote with **bold** inside

Final: snake_case_name, 2*3 = 6, and `a ** b`.
"""


def test_prefix_frames_are_prefixes_of_the_final_text() -> None:
    """Each line-end prefix of a document renders as a prefix of its final rendering."""
    final = render_markdown(STABLE_DOC).text
    line_ends = [i + 1 for i, char in enumerate(STABLE_DOC) if char == "\n"]
    for end in line_ends:
        frame = render_markdown(STABLE_DOC[:end], partial=True).text.rstrip()
        assert final.startswith(frame), STABLE_DOC[:end]


def test_most_character_prefixes_are_prefix_compatible() -> None:
    """Nearly every character prefix renders as a prefix of the final text."""
    final = render_markdown(STABLE_DOC).text
    frames = [
        render_markdown(STABLE_DOC[:end], partial=True).text.rstrip()
        for end in range(1, len(STABLE_DOC) + 1)
    ]
    misses = sum(not final.startswith(frame) for frame in frames)
    assert misses <= len(STABLE_DOC) // 50


def test_every_prefix_inside_the_fence_yields_pre_with_language() -> None:
    """Every prefix that ends inside the code block has a ``pre`` python entity."""
    start = STABLE_DOC.index("```python\n") + len("```python\n") + 1
    end = STABLE_DOC.index("\n```\n", start)
    for cut in range(start, end):
        entities = render_markdown(STABLE_DOC[:cut], partial=True).entities
        assert any(e.type == "pre" and e.language == "python" for e in entities), cut


MARKDOWNISH = st.lists(
    st.sampled_from(
        [
            *"ab *_~`|[]()!#>-+=1.\\$\n \t你好😀🎉",
            *("```", "```py\n", "~~~", "**", "||", "](https://x.io"),
            *("- ", "1. ", "\n\n", "> ", "| a | b |\n|---|---|\n"),
        ]
    ),
    max_size=40,
).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MARKDOWNISH)
def test_render_never_raises_and_entities_are_valid(markdown: str) -> None:
    """Any Markdown-ish text renders, complete or partial, with entities inside the text."""
    assert_valid(render_markdown(markdown))
    assert_valid(render_markdown(markdown, partial=True))


WORD = st.sampled_from(["alpha", "beta", "你好", "😀", "snake_case", "x1"])
INLINE = st.one_of(
    WORD,
    WORD.map(lambda w: f"**{w}**"),
    WORD.map(lambda w: f"*{w}*"),
    WORD.map(lambda w: f"~~{w}~~"),
    WORD.map(lambda w: f"||{w}||"),
    WORD.map(lambda w: f"`{w} ** _`"),
    WORD.map(lambda w: f"[{w}](https://example.com/{w})"),
)
PARAGRAPH = st.lists(INLINE, min_size=1, max_size=6).map(" ".join)
BLOCK = st.one_of(
    PARAGRAPH,
    PARAGRAPH.map(lambda p: f"# {p}"),
    st.lists(PARAGRAPH, min_size=1, max_size=3).map(lambda ps: "\n".join(f"- {p}" for p in ps)),
    PARAGRAPH.map(lambda p: f"```py\n{p} **\n```"),
    PARAGRAPH.map(lambda p: f"> {p}"),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(BLOCK, min_size=1, max_size=5).map("\n\n".join))
def test_balanced_documents_are_unchanged(document: str) -> None:
    """A document built only from closed constructs passes through unchanged."""
    assert close_open_markdown(document) == document
