"""Frames of one reply: the thinking display, the reasoning blockquote, the answer, the suffix."""

from __future__ import annotations

from telegram import MessageEntity

from bot.render.markdown import Rendered, ReplyStrings, render_markdown, render_reply, utf16_len

STRINGS = ReplyStrings()


def entity_text(text: str, entity: MessageEntity) -> str:
    """The slice of ``text`` an entity covers, cut in UTF-16 units as Telegram does."""
    units = text.encode("utf-16-le")
    return units[2 * entity.offset : 2 * (entity.offset + entity.length)].decode("utf-16-le")


def of_type(rendered: Rendered, kind: str) -> list[MessageEntity]:
    """The entities of one type."""
    return [e for e in rendered.entities if e.type == kind]


def test_thinking_frame_shows_header_and_reasoning_tail() -> None:
    """While thinking: a bold "Thinking… 12s" header and the reasoning's tail, one blockquote."""
    reasoning = "".join(f"Step {n}: consider option {n} carefully.\n" for n in range(100))
    frames = render_reply(
        "", reasoning=reasoning, thinking_seconds=12.4, partial=True, strings=STRINGS
    )
    assert len(frames) == 1
    frame = frames[0]
    assert frame.text.startswith("Thinking… 12s\n…Step ")  # the tail starts at a line
    assert frame.text.endswith("Step 99: consider option 99 carefully.")
    (quote,) = of_type(frame, "expandable_blockquote")
    assert (quote.offset, quote.length) == (0, frame.utf16_length)
    (bold,) = of_type(frame, "bold")
    assert entity_text(frame.text, bold) == "Thinking… 12s"
    tail_units = frame.utf16_length - utf16_len("Thinking… 12s\n")
    assert 300 < tail_units <= 600


def test_thinking_tail_counts_emoji_in_utf16_units() -> None:
    """An emoji-heavy reasoning tail stays within 600 UTF-16 units (not characters)."""
    frames = render_reply("", reasoning="想😀 " * 1000, partial=True, strings=STRINGS)
    header = "Thinking…\n"  # no seconds given: the untimed text
    assert frames[0].text.startswith(header)
    assert frames[0].utf16_length - utf16_len(header) <= 600


def test_hidden_reasoning_while_thinking_shows_only_the_header() -> None:
    """With reasoning hidden, the thinking frame is the italic header alone."""
    frames = render_reply(
        "",
        reasoning="secret thoughts",
        thinking_seconds=3,
        show_reasoning=False,
        partial=True,
        strings=STRINGS,
    )
    assert [f.text for f in frames] == ["Thinking… 3s"]
    assert [(str(e.type), e.offset, e.length) for e in frames[0].entities] == [("italic", 0, 12)]


def test_done_reply_puts_reasoning_above_answer_with_shifted_entities() -> None:
    """Done: a "Thought for Ns" blockquote, a blank line, then the answer, entities shifted."""
    answer = "**答案** 😀 `x` and [link](https://example.com)"
    reasoning = "先想一想 😀\n然后回答"
    (frame,) = render_reply(
        answer, reasoning=reasoning, thinking_seconds=7, partial=False, strings=STRINGS
    )
    block = "Thought for 7s\n先想一想 😀\n然后回答"
    assert frame.text.startswith(block + "\n\n")
    (quote,) = of_type(frame, "expandable_blockquote")
    assert (quote.offset, quote.length) == (0, utf16_len(block))
    alone = render_markdown(answer)
    assert frame.text == f"{block}\n\n{alone.text}"
    shift = utf16_len(block + "\n\n")
    moved = [e for e in frame.entities if e.offset >= shift]
    assert [(str(e.type), e.offset - shift, e.length, e.url) for e in moved] == [
        (str(e.type), e.offset, e.length, e.url) for e in alone.entities
    ]
    assert [entity_text(frame.text, e) for e in moved] == ["答案", "x", "link"]


def test_hidden_reasoning_when_done_shows_only_the_answer() -> None:
    """With reasoning hidden, the final frame is exactly the rendered answer."""
    frames = render_reply(
        "**hi**", reasoning="thoughts", show_reasoning=False, partial=False, strings=STRINGS
    )
    assert frames == [render_markdown("**hi**")]


def test_streaming_answer_closes_open_markdown() -> None:
    """A partial answer renders with its open bold closed, below the reasoning."""
    (frame,) = render_reply(
        "Look: **bold", reasoning="r", thinking_seconds=1, partial=True, strings=STRINGS
    )
    assert frame.text == "Thought for 1s\nr\n\nLook: bold"
    (answer_bold,) = [e for e in of_type(frame, "bold") if e.offset > 0]
    assert entity_text(frame.text, answer_bold) == "bold"


def test_suffix_is_a_last_italic_line() -> None:
    """The suffix ("⏹ stopped") follows a blank line, in italics, with UTF-16 offsets."""
    (frame,) = render_reply("答案 😀", partial=False, strings=STRINGS, suffix="⏹ stopped")
    assert frame.text == "答案 😀\n\n⏹ stopped"
    (italic,) = of_type(frame, "italic")
    assert (italic.offset, italic.length) == (7, utf16_len("⏹ stopped"))  # 答案 😀 = 5 units
    assert entity_text(frame.text, italic) == "⏹ stopped"


def test_suffix_alone_after_an_interrupted_think() -> None:
    """Interrupted while thinking with reasoning hidden: only the suffix remains."""
    frames = render_reply(
        "",
        reasoning="thoughts",
        show_reasoning=False,
        partial=False,
        strings=STRINGS,
        suffix="⚠️ interrupted",
    )
    assert [f.text for f in frames] == ["⚠️ interrupted"]


def test_nothing_to_show_yields_no_frames() -> None:
    """No answer, no reasoning and no suffix: no message yet."""
    assert render_reply("", partial=True, strings=STRINGS) == []
    assert render_reply("  \n", reasoning=" ", partial=False, strings=STRINGS) == []


def test_localised_strings_are_used() -> None:
    """The header texts come from the given strings."""
    zh = ReplyStrings(thinking="思考中… {seconds} 秒", thought_for="已思考 {seconds} 秒")
    (thinking,) = render_reply("", reasoning="嗯", thinking_seconds=2, partial=True, strings=zh)
    assert thinking.text == "思考中… 2 秒\n嗯"
    (done,) = render_reply("好", reasoning="嗯", thinking_seconds=2.6, partial=False, strings=zh)
    assert done.text == "已思考 3 秒\n嗯\n\n好"


def test_long_reasoning_is_capped_so_the_answer_fits() -> None:
    """Reasoning above an answer keeps only its last ~3000 units, cut with "…"."""
    reasoning = "word " * 5000
    frames = render_reply("Answer.", reasoning=reasoning, partial=False, strings=STRINGS)
    assert len(frames) == 1
    (quote,) = of_type(frames[0], "expandable_blockquote")
    assert quote.length <= 3000 + utf16_len("Thought\n")
    assert frames[0].text.startswith("Thought\n…word")
    assert frames[0].text.endswith("\n\nAnswer.")


def test_long_reply_splits_into_valid_messages() -> None:
    """Reasoning plus a long answer become several messages within Telegram's limits."""
    answer = "\n\n".join(f"Paragraph {n} with **bold** and `code` 😀." * 6 for n in range(60))
    frames = render_reply(
        answer, reasoning="x " * 2000, thinking_seconds=5, partial=True, strings=STRINGS
    )
    assert len(frames) >= 3
    for frame in frames:
        assert frame.utf16_length <= 4096
        assert len(frame.entities) <= 100
        for entity in frame.entities:
            assert entity.length > 0
            assert entity.offset + entity.length <= frame.utf16_length
    assert of_type(frames[0], "expandable_blockquote")
    assert not any(of_type(frame, "expandable_blockquote") for frame in frames[1:])
