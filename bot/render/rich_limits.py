"""Telegram's limits on one rich message, and a measure of a rich Markdown text against them.

The Bot API states the limits of a rich message ("Rich Message Formatting Options",
https://core.telegram.org/bots/api#rich-messages): 32,768 UTF-8 characters of text
(custom emoji alternative text and formula source included), 500 blocks counting nested
blocks, list items, table rows, quotations and details blocks, 16 levels of nested
formatting and blocks, 50 media and 20 table columns. TDLib reads the same defaults
from the app options ``rich_message_length_limit``, ``rich_message_max_blocks``,
``rich_message_max_depth``, ``rich_message_max_media`` and
``rich_message_max_table_cols`` (td/telegram/OptionManager.cpp,
https://github.com/tdlib/td), so Telegram can change them without a new Bot API version:
they are fields of :class:`RichLimits`, not constants in the code.

How this module counts (each count is at least Telegram's, never less):

- **Length**: the UTF-8 bytes of the Markdown *source*. Telegram counts the rendered
  text, in a unit it does not name (code points or UTF-16 units). Rendered text is never
  longer than its source (markup only disappears), and a character takes at least as
  many UTF-8 bytes as code points or UTF-16 units, so the source's byte length bounds
  every reading; Effect-TS's Telegram adapter budgets the same way
  (https://github.com/Effect-TS/effect, packages/chat/telegram/src/internal/markdown.ts).
  The cost: text outside ASCII (Chinese: 3 bytes a character) is split at about a third
  of the length Telegram might take.
- **Blocks**: every block our parse finds: paragraphs, headings, code blocks, block
  quotes, lists *and* each list item *and* its text (a paragraph even in a tight list:
  Telegram's list items hold blocks), tables *and* each row (the header row too), HTML
  blocks (a ``<details>`` is at least two: its opening and closing lines), footnote
  definitions, dividers, block formulas and images.
- **Depth**: the nesting of block containers (quotes, lists, list items, tables,
  ``<details>``), leaf blocks, inline formatting (emphasis, links, allowed HTML tags) and
  code or formula spans inside them.
- **Media**: images (:mod:`bot.render.rich_sanitize` turns them into links, so this is 0
  for sanitised text).
- **Columns**: the widest table's header cells.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.render.rich_parse import ByteOffsets, Ev, clean_source, parse
from bot.render.rich_sanitize import ALLOWED_INLINE_TAGS

__all__ = ["RichLimits", "RichSize", "measure_rich", "measure_units"]

_BLOCKS = frozenset(
    {
        "Paragraph", "Heading", "BlockQuote", "CodeBlock", "List", "Item", "Table",
        "TableHead", "TableRow", "FootnoteDefinition", "HtmlBlock", "DefinitionList",
        "DefinitionListTitle", "DefinitionListDefinition", "MetadataBlock",
    }
)  # fmt: skip
_NOT_LEVELS = frozenset({"TableHead", "TableRow", "TableCell"})  # parts of their table's level
_LEAF_BLOCK_ENDS = frozenset({"Paragraph", "Heading", "TableCell", "Item"})
_TAG_RE = re.compile(rb"<(/?)([A-Za-z][A-Za-z0-9-]*)")
_INLINE = frozenset(
    {
        "Text", "Code", "InlineMath", "InlineHtml", "FootnoteReference", "TaskListMarker",
        "Emphasis", "Strong", "Strikethrough", "Link", "Image", "Superscript", "Subscript",
    }
)  # fmt: skip


@dataclass(frozen=True)
class RichLimits:
    """The limits one rich message must keep (defaults: Bot API 10.1–10.4).

    ``max_bytes``: UTF-8 bytes of the Markdown source (Telegram: 32,768 characters of
    text); ``max_blocks``: blocks, nested ones included; ``max_depth``: nesting levels;
    ``max_media``: media attachments; ``max_table_columns``: columns of one table.
    """

    max_bytes: int = 32768
    max_blocks: int = 500
    max_depth: int = 16
    max_media: int = 50
    max_table_columns: int = 20


@dataclass(frozen=True)
class RichSize:
    """What one rich Markdown text takes against :class:`RichLimits` (see the module)."""

    bytes: int
    blocks: int
    depth: int
    media: int
    table_columns: int

    def fits(self, limits: RichLimits) -> bool:
        """True when every count is within ``limits``."""
        return (
            self.bytes <= limits.max_bytes
            and self.blocks <= limits.max_blocks
            and self.depth <= limits.max_depth
            and self.media <= limits.max_media
            and self.table_columns <= limits.max_table_columns
        )


def measure_rich(markdown: str) -> RichSize:
    """Measure ``markdown`` (rich Markdown) against Telegram's limits; O(n). Never raises."""
    return measure_units(markdown)[0]


def measure_units(markdown: str) -> tuple[RichSize, list[tuple[str, RichSize]]]:
    """The size of ``markdown`` and of each of its top-level blocks, in one parse.

    The blocks are consecutive slices of the text (``"".join`` gives it back, the first
    starting at 0); a ``<details>`` block with its body is one slice. Depth and columns
    of the whole are the largest of the slices'; the other counts add up.
    """
    text = clean_source(markdown)
    source = text.encode()
    walk = _Walk(source)
    depth = 0
    for ev in parse(text):
        if ev.kind == "Start":
            if depth == 0 and walk.details == 0:
                walk.begin_unit(ev.start)
            depth += 1
        elif ev.kind == "End":
            depth -= 1
        elif depth == 0 and walk.details == 0:
            walk.begin_unit(ev.start)
        walk.event(ev)
    walk.begin_unit(len(source))
    offsets = ByteOffsets(text)
    units: list[tuple[str, RichSize]] = []
    for (start, end), size in zip(walk.bounds, walk.sizes, strict=True):
        units.append((text[offsets.index(start) : offsets.index(end)], size))
    total = RichSize(
        len(source),
        sum(size.blocks for size in walk.sizes),
        max((size.depth for size in walk.sizes), default=0),
        sum(size.media for size in walk.sizes),
        max((size.table_columns for size in walk.sizes), default=0),
    )
    return total, units


class _Walk:
    """Counts of the events walked so far, cut into top-level units."""

    def __init__(self, source: bytes) -> None:
        self.source = source
        self.bounds: list[tuple[int, int]] = []
        self.sizes: list[RichSize] = []
        self.unit_start: int | None = None
        self.blocks = self.media = self.columns = self.deepest = 0
        self.depth = 0
        self.details = 0  # open <details>, document-wide
        self.inline_tags = 0  # allowed inline HTML tags open in the current leaf block
        self.levels: list[bool] = []  # per open element: does it add a level?
        self.tight_item = False  # just inside a list item, before any block in it

    def begin_unit(self, start: int) -> None:
        """Close the unit being counted (if any) at ``start`` and begin the next there."""
        if self.unit_start is None:
            self.unit_start = 0
            return
        if start <= self.unit_start:
            return
        self.bounds.append((self.unit_start, start))
        self.sizes.append(
            RichSize(start - self.unit_start, self.blocks, self.deepest, self.media, self.columns)
        )
        self.unit_start = start
        self.blocks = self.media = self.columns = self.deepest = 0

    def event(self, ev: Ev) -> None:
        """Count one event."""
        if ev.kind == "Start" and ev.name == "Item":
            self.tight_item = True
        elif self.tight_item:  # the item's first event
            if ev.kind in _INLINE or (ev.kind == "Start" and ev.name in _INLINE):
                self.blocks += 1  # a tight item's text: a paragraph in Telegram's item too
            self.tight_item = False
        nesting = self.depth + self.details
        if ev.kind == "Start":
            if ev.name in _BLOCKS:
                self.blocks += 1
            if ev.name == "Image":
                self.media += 1
            elif ev.name == "Table":
                self.columns = max(self.columns, len(ev.data))
            level = ev.name not in _NOT_LEVELS
            self.levels.append(level)
            self.depth += level
            self._reach(self.depth + self.details + self.inline_tags)
        elif ev.kind == "End":
            if self.levels:
                self.depth -= self.levels.pop()
            if ev.name in _LEAF_BLOCK_ENDS:
                self.inline_tags = 0
        elif ev.kind in ("Rule", "DisplayMath"):
            self.blocks += 1
            self._reach(nesting + 1)
        elif ev.kind in ("InlineMath", "Code"):
            self._reach(nesting + self.inline_tags + 1)
        elif ev.kind == "Html":
            self._html(ev)
        elif ev.kind == "InlineHtml":
            tag = _TAG_RE.match(self.source, ev.start, ev.end)
            if tag is not None and tag[2].decode().lower() in ALLOWED_INLINE_TAGS:
                self.inline_tags = max(self.inline_tags - 1, 0) if tag[1] else self.inline_tags + 1
                self._reach(nesting + self.inline_tags)

    def _html(self, ev: Ev) -> None:
        for match in _TAG_RE.finditer(self.source, ev.start, ev.end):
            if match[2].lower() != b"details":
                continue
            if match[1]:
                self.details = max(self.details - 1, 0)
            else:
                self.details += 1
                self.blocks += 1
                self._reach(self.depth + self.details)

    def _reach(self, depth: int) -> None:
        self.deepest = max(self.deepest, depth)
