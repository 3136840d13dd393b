"""Slicing a rendered reply at a UTF-16 offset (what a frozen message leaves for the next)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.render.markdown import (
    ReplyStrings,
    compose_reply,
    render_markdown,
    render_reply,
    slice_rendered,
    split_rendered,
)
from bot.render.types import utf16_len


def test_slice_rebases_entities_and_keeps_language() -> None:
    """Entities after the cut move left by the cut; one crossing it is clipped, keeping language."""
    whole = render_markdown("**粗体** 😀 text\n\n```python\nprint(1)\nprint(2)\n```")
    cut = utf16_len("粗体 😀 te")
    tail = slice_rendered(whole, cut)
    assert tail.text == whole.text[len("粗体 😀 te") :]
    pre = [e for e in tail.entities if e.type == "pre"]
    assert pre and pre[0].language == "python"
    for entity in tail.entities:
        assert entity.offset >= 0 and entity.offset + entity.length <= utf16_len(tail.text)
    assert not any(e.type == "bold" for e in tail.entities), "bold ended before the cut"


def test_render_reply_equals_split_of_compose() -> None:
    """render_reply is compose_reply split into messages."""
    strings = ReplyStrings()
    markdown = ("para " * 300 + "\n\n") * 5
    assert render_reply(markdown, partial=False, strings=strings) == split_rendered(
        compose_reply(markdown, partial=False, strings=strings)
    )


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="ab *`_\n你😀#-", max_size=300), st.integers(0, 400))
def test_slice_then_prefix_reassembles(markdown: str, cut: int) -> None:
    """Text before the cut plus the slice's text is the whole text, entities inside the slice."""
    whole = render_markdown(markdown)
    tail = slice_rendered(whole, cut)
    assert whole.text.endswith(tail.text)
    for entity in tail.entities:
        assert entity.length > 0
        assert entity.offset + entity.length <= utf16_len(tail.text)
