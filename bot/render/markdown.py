"""Reply renderer: Markdown -> Telegram text + entities, frame by frame.

The Markdown work is telegramify-markdown's (``convert`` returns plain text and
entities with UTF-16 offsets); this module adds what streaming needs: closing
the Markdown a partial answer leaves open (:func:`close_open_markdown`),
splitting across messages (:func:`split_rendered`) and the reasoning display
(:func:`render_reply`). Frames are sent with ``text=`` and ``entities=`` and no
parse mode, so no input can make Telegram fail to parse a frame.

This is the public face; the work lives in ``render_close`` (closing partial
Markdown), ``render_split`` (UTF-16 splitting) and ``render_types`` (values).
"""

from __future__ import annotations

import telegramify_markdown
from telegram.constants import MessageEntityType
from telegramify_markdown.config import RenderConfig

from bot.render.close import close_open_markdown
from bot.render.frame import ELLIPSIS, ReplyStrings, frame_header, start_tail_at_break
from bot.render.split import split_rendered
from bot.render.types import Rendered, Span, Utf16Index, span_of, to_entity, utf16_len

__all__ = [
    "Rendered",
    "ReplyStrings",
    "close_open_markdown",
    "compose_reply",
    "render_markdown",
    "render_reply",
    "slice_rendered",
    "split_rendered",
    "utf16_len",
]

# Our own symbol table, so nothing that mutates the library's global config
# (shared by every caller in the process) changes our frames.
_CONFIG = RenderConfig.isolated()

# What telegramify-markdown (a Python walker over pyromark's events) can raise on
# input it does not expect: lookups and type mismatches inside the walker, an
# ``assert`` in its spoiler pre-processing, UnicodeEncodeError (a ValueError) on
# lone surrogates, and RecursionError on deeply nested input. A frame must never
# fail, so these fall back to plain text.
_LIBRARY_ERRORS = (ValueError, IndexError, KeyError, TypeError, RecursionError, AssertionError)

# Reasoning shown while the model thinks (UTF-16 units of the tail) and above a
# started answer (so the answer's first lines still fit in the first message).
THINKING_TAIL_UNITS = 600
REASONING_CAP_UNITS = 3000
# Telegram's per-message limits (Bot API sendMessage; docs/telegram.md).
MAX_MESSAGE_UNITS = 4096
MAX_ENTITIES = 100
# Output longer than this many times the input (plus slack) is a pathological
# expansion (thousands of nested list levels), not a legit answer or table.
_BLOWUP_FACTOR = 8
_BLOWUP_SLACK = 16384

# Text and its spans, while a frame is assembled.
_Block = tuple[str, list[Span]]


def render_markdown(markdown: str, *, partial: bool = False) -> Rendered:
    """Render Markdown to Telegram text and entities (offsets in UTF-16 units).

    With ``partial=True`` (a stream still growing) the text is first passed
    through :func:`close_open_markdown`. Never raises: if telegramify-markdown
    fails, or its output blows up far past the input (its list indentation is
    quadratic in nesting depth), the Markdown source comes back as plain text
    with no entities. Entities are sorted by (offset, -length) and each lies
    inside the text.
    """
    text, spans = _render_spans(markdown, partial=partial)
    return Rendered(text, tuple(to_entity(span) for span in spans))


def compose_reply(
    answer_markdown: str,
    *,
    reasoning: str = "",
    thinking_seconds: float | None = None,
    show_reasoning: bool = True,
    partial: bool,
    strings: ReplyStrings,
    suffix: str = "",
) -> Rendered:
    """Render one frame of a reply as one text (not yet split into messages).

    Layout, top to bottom:

    - still thinking (``partial``, reasoning but no answer yet): a bold
      ``strings.thinking`` header and the last ~600 units of the reasoning, both
      inside one ``expandable_blockquote``; with ``show_reasoning=False`` only
      the header, in italics;
    - otherwise, if ``show_reasoning`` and there is reasoning: one
      ``expandable_blockquote`` titled ``strings.thought_for`` holding the
      reasoning as plain text (its last ~3000 units; blockquotes cannot nest, so
      no formatting inside), a blank line, then the rendered answer;
    - ``suffix`` (e.g. "⏹ stopped"), if any, as a last italic paragraph.

    Split the result with :func:`split_rendered` (or use :func:`render_reply`);
    the text is empty when there is nothing to show yet. ``thinking_seconds`` is
    rounded to whole seconds; None uses the untimed texts.
    """
    reasoning = reasoning.strip()
    thinking, header = frame_header(
        strings,
        reasoning=reasoning,
        answer_markdown=answer_markdown,
        partial=partial,
        seconds=thinking_seconds,
    )
    if thinking:
        if show_reasoning:
            blocks = [_reasoning_block(header, _tail(reasoning, THINKING_TAIL_UNITS))]
        else:
            blocks = [_styled(header, MessageEntityType.ITALIC)]
    else:
        blocks = _answer_blocks(
            answer_markdown, reasoning if show_reasoning else "", header, partial
        )
    if suffix.strip():
        blocks.append(_styled(suffix.strip(), MessageEntityType.ITALIC))
    text, spans = _join(blocks, "\n\n")
    return Rendered(text, tuple(to_entity(span) for span in spans))


def _answer_blocks(answer_markdown: str, reasoning: str, title: str, partial: bool) -> list[_Block]:
    """The reasoning blockquote titled ``title`` (if any reasoning) and the rendered answer."""
    blocks: list[_Block] = []
    if reasoning:
        blocks.append(_reasoning_block(title, _tail(reasoning, REASONING_CAP_UNITS)))
    if answer_markdown.strip():
        answer = _rstrip(_render_spans(answer_markdown, partial=partial))
        if answer[0]:
            blocks.append(answer)
    return blocks


def render_reply(
    answer_markdown: str,
    *,
    reasoning: str = "",
    thinking_seconds: float | None = None,
    show_reasoning: bool = True,
    partial: bool,
    strings: ReplyStrings,
    suffix: str = "",
) -> list[Rendered]:
    """:func:`compose_reply` split into messages (each <= 4096 units, <= 100 entities).

    ``[]`` when there is nothing to show yet.
    """
    whole = compose_reply(
        answer_markdown,
        reasoning=reasoning,
        thinking_seconds=thinking_seconds,
        show_reasoning=show_reasoning,
        partial=partial,
        strings=strings,
        suffix=suffix,
    )
    return split_rendered(whole, max_units=MAX_MESSAGE_UNITS, max_entities=MAX_ENTITIES)


def slice_rendered(rendered: Rendered, start: int) -> Rendered:
    """The part of ``rendered`` from UTF-16 offset ``start`` on, entities clipped and rebased.

    ``start`` is clamped to the text; an offset inside a surrogate pair moves back
    to the pair's start.
    """
    if start <= 0:
        return rendered
    index = Utf16Index(rendered.text)
    cut = index.floor_index(start)
    start_units = index.units_at(cut)
    spans: list[Span] = []
    for entity in rendered.entities:
        end = entity.offset + entity.length
        if end <= start_units:
            continue
        offset = max(entity.offset, start_units)
        spans.append(span_of(entity)._replace(offset=offset - start_units, length=end - offset))
    return Rendered(rendered.text[cut:], tuple(to_entity(span) for span in spans))


def _render_spans(markdown: str, *, partial: bool) -> _Block:
    """Convert ``markdown`` with telegramify-markdown into text and sorted, valid spans."""
    source = close_open_markdown(markdown) if partial else markdown
    try:
        text, library_entities = telegramify_markdown.convert(source, config=_CONFIG)
    except _LIBRARY_ERRORS:
        return markdown, []
    if len(text) > _BLOWUP_FACTOR * len(source) + _BLOWUP_SLACK:
        return markdown, []
    total = utf16_len(text)
    spans = [
        Span(e.offset, e.length, e.type, e.url, e.language, e.custom_emoji_id)
        for e in library_entities
        if e.length > 0 and e.offset >= 0 and e.offset + e.length <= total
    ]
    spans.sort(key=lambda s: (s.offset, -s.length))
    return text, spans


def _tail(text: str, max_units: int) -> str:
    """Last <= ``max_units`` UTF-16 units of ``text``, started at a line or word when cut.

    A cut tail begins with "…". Work is O(max_units), not O(len(text)).
    """
    if len(text) <= max_units // 2 or utf16_len(text) <= max_units:
        return text
    budget = max_units - len(ELLIPSIS)
    tail = text[-budget:]
    excess = utf16_len(tail) - budget
    cut = 0
    while excess > 0:  # drop leading characters until the tail fits
        excess -= 2 if ord(tail[cut]) > 0xFFFF else 1
        cut += 1
    return start_tail_at_break(tail[cut:])


def _reasoning_block(header: str, body: str) -> _Block:
    """An expandable blockquote: a bold ``header`` line, then ``body`` as plain text."""
    text = f"{header}\n{body.rstrip()}"
    spans = [Span(0, utf16_len(text), MessageEntityType.EXPANDABLE_BLOCKQUOTE)]
    if header:
        spans.append(Span(0, utf16_len(header), MessageEntityType.BOLD))
    return text, spans


def _styled(text: str, entity_type: str) -> _Block:
    """``text`` covered by one span of ``entity_type``."""
    return text, [Span(0, utf16_len(text), entity_type)]


def _rstrip(block: _Block) -> _Block:
    """Drop trailing whitespace, clipping spans to the shorter text."""
    text, spans = block
    stripped = text.rstrip()
    if len(stripped) == len(text):
        return block
    total = utf16_len(stripped)
    return stripped, [
        s if s.offset + s.length <= total else s._replace(length=total - s.offset)
        for s in spans
        if s.offset < total
    ]


def _join(blocks: list[_Block], separator: str) -> _Block:
    """Concatenate ``blocks`` with ``separator``, shifting span offsets (UTF-16 units)."""
    texts: list[str] = []
    spans: list[Span] = []
    shift = 0
    separator_units = utf16_len(separator)
    for position, (text, block_spans) in enumerate(blocks):
        if position:
            texts.append(separator)
            shift += separator_units
        texts.append(text)
        spans.extend(s._replace(offset=s.offset + shift) if shift else s for s in block_spans)
        shift += utf16_len(text)
    return "".join(texts), spans
