"""The Markdown parse the rich path works from: pyromark (pulldown-cmark) events with ranges.

Telegram parses a rich message's ``markdown`` on its own side, "compatible with GitHub
Flavored Markdown where possible" (Bot API "Rich Message Formatting Options",
https://core.telegram.org/bots/api#rich-messages). We parse the same source with
pulldown-cmark (https://github.com/pulldown-cmark/pulldown-cmark, through the pyromark
binding that telegramify-markdown already uses) with the GFM extensions Telegram
documents: pipe tables, ``~~strikethrough~~``, task lists, footnotes and ``$``/``$$``
formulas. Every event carries its source range, so the rich path rewrites the model's
Markdown in place (escaping, dropping links) instead of re-printing it.

Ranges are UTF-8 byte offsets into ``text.encode()`` (pyromark's unit).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from itertools import accumulate
from typing import Any, NamedTuple

import pyromark

__all__ = ["OPTIONS", "ByteOffsets", "Ev", "clean_source", "is_escaped", "parse"]

OPTIONS = (
    pyromark.Options.ENABLE_TABLES
    | pyromark.Options.ENABLE_MATH
    | pyromark.Options.ENABLE_STRIKETHROUGH
    | pyromark.Options.ENABLE_TASKLISTS
    | pyromark.Options.ENABLE_FOOTNOTES
)
"""The Markdown extensions Telegram's rich Markdown documents (tables, strikethrough, task
lists, footnotes, ``$`` formulas); GitHub alerts, sub/superscript and wikilinks stay off."""

_LONE_SURROGATE_RE = re.compile("[\ud800-\udfff]")


class Ev(NamedTuple):
    """One parser event: ``kind`` is "Start", "End" or the leaf's name ("Text", "Code",
    "InlineMath", "DisplayMath", "Html", "InlineHtml", "FootnoteReference",
    "TaskListMarker", "SoftBreak", "HardBreak", "Rule"); ``name`` is the tag for
    Start/End ("Paragraph", "Heading", "Table", ...) and equals ``kind`` for leaves;
    ``data`` is the tag's or leaf's payload; ``start``/``end`` are UTF-8 byte offsets."""

    kind: str
    name: str
    data: Any
    start: int
    end: int


def clean_source(text: str) -> str:
    """``text`` as the parser and Telegram can take it: ``\\r\\n``/``\\r`` become ``\\n``,
    NUL and lone surrogates become U+FFFD (Telegram requires valid UTF-8: "Strings must be
    encoded in UTF-8", TDLib, https://github.com/tdlib/td)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    if not text.isascii():
        text = _LONE_SURROGATE_RE.sub("\ufffd", text)
    return text


def parse(text: str) -> list[Ev]:
    """The events of ``text`` (already :func:`clean_source`-d), in document order."""
    events: list[Ev] = []
    for event, span in pyromark.events_with_range(text, options=OPTIONS):
        start, end = span["start"], span["end"]
        if isinstance(event, str):  # "SoftBreak", "HardBreak", "Rule"
            events.append(Ev(event, event, None, start, end))
            continue
        raw: dict[str, Any] = dict(event)
        ((kind, payload),) = raw.items()
        if kind in ("Start", "End"):
            if isinstance(payload, str):
                events.append(Ev(kind, payload, None, start, end))
            else:
                ((name, data),) = dict(payload).items()
                events.append(Ev(kind, name, data, start, end))
        else:
            events.append(Ev(kind, kind, payload, start, end))
    return events


def is_escaped(source: bytes, index: int) -> bool:
    """True when ``source[index]`` follows an odd run of backslashes (CommonMark escape)."""
    count = 0
    while index - count - 1 >= 0 and source[index - count - 1] == 0x5C:
        count += 1
    return count % 2 == 1


class ByteOffsets:
    """Maps the UTF-8 byte offsets of one text (the parser's unit) to ``str`` indices.

    O(1) for ASCII text; otherwise built once in O(n) and O(log n) per lookup.
    """

    __slots__ = ("_starts",)

    def __init__(self, text: str) -> None:
        self._starts: list[int] | None = None
        if not text.isascii():
            self._starts = list(accumulate((len(ch.encode()) for ch in text), initial=0))

    def index(self, offset: int) -> int:
        """The ``str`` index of the character starting at byte ``offset`` (or the length)."""
        if self._starts is None:
            return offset
        return bisect_left(self._starts, offset)
