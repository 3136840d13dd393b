"""Rich Markdown (Bot API 10.1+) as the fake Bot API server checks it.

:func:`validate_rich_markdown` answers what the fake server (:mod:`bench.fake_telegram`)
answers a ``sendRichMessage``, ``sendRichMessageDraft`` or rich ``editMessageText`` whose
``rich_message.markdown`` it refuses: the error description, or ``None``. It parses the
Markdown on its own (no code of the bot's renderer), so a property test can feed it the
renderer's frames. :func:`parse_rich_markdown` gives the block tree the fake answers in
``Message.rich_message.blocks``.

What it enforces (docs/telegram.md "Rich messages (Bot API 10.1+)"; the Bot API's
"Rich Message Formatting Options", https://core.telegram.org/bots/api#rich-messages):

- the limits: :data:`MAX_CHARACTERS` (code points of the Markdown source, an upper bound
  of the documented "characters in the rich message text"), :data:`MAX_BLOCKS` (every
  block counted, nested ones, list items and table rows included), :data:`MAX_DEPTH`
  (nested blocks; nested inline formatting is not counted), :data:`MAX_TABLE_COLUMNS`,
  :data:`MAX_MEDIA` (media lines such as ``![](https://…/a.jpg)``);
- link targets: ``http(s)``, ``mailto``, ``tel``, ``tg`` or ``#anchor`` only (a relative
  or local target is ``RICH_MESSAGE_URL_INVALID`` on the live service);
- ``<tg-thinking>`` in drafts only.

And, stricter than GitHub Flavored Markdown on purpose (a frame that breaks these is a
renderer bug, whatever Telegram would show): every code fence (```` ``` ```` or ``~~~``)
closed, every ``$$`` and inline ``$`` (outside code, not ``\\$``) closed (inline ``$``
within its paragraph), every ``<details>`` closed and none stray, every table row with
the header's cell count (GFM splits cells at every unescaped ``|``, inside code spans too).

The real error descriptions for these cases are not published (docs/telegram.md); the
fake's are in :data:`ERRORS`, which tests may change. Only ``rich_message.markdown`` is
modelled: ``html`` and ``blocks`` are refused by the fake server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "DRAFT_TTL",
    "ERRORS",
    "MAX_BLOCKS",
    "MAX_CHARACTERS",
    "MAX_DEPTH",
    "MAX_MEDIA",
    "MAX_TABLE_COLUMNS",
    "SERVER_ERRORS",
    "ParsedRich",
    "RichDraft",
    "RichMarkdownError",
    "parse_rich_markdown",
    "validate_rich_markdown",
]

MAX_CHARACTERS: Final = 32_768
"""Characters of rich message text (Bot API; TDLib ``rich_message_length_limit``)."""
MAX_BLOCKS: Final = 500
"""Blocks, nested ones, list items and table rows included (``rich_message_max_blocks``)."""
MAX_DEPTH: Final = 16
"""Levels of nested blocks and formatting (``rich_message_max_depth``)."""
MAX_TABLE_COLUMNS: Final = 20
"""Columns of a table (``rich_message_max_table_cols``)."""
MAX_MEDIA: Final = 50
"""Media attachments (``rich_message_max_media``)."""

ERRORS: dict[str, str] = {
    # UNCONFIRMED: only in third-party code (docs/telegram.md "Errors").
    "empty": "Bad Request: RICH_MESSAGE_EMPTY",
    "too_long": "Bad Request: RICH_MESSAGE_TOO_LONG",
    "too_many_blocks": "Bad Request: RICH_MESSAGE_BLOCKS_TOO_MANY",
    # The fake's own words: no real text is known.
    "too_deep": "Bad Request: RICH_MESSAGE_TOO_DEEP",
    "too_many_columns": "Bad Request: RICH_MESSAGE_TABLE_TOO_WIDE",
    "too_many_media": "Bad Request: RICH_MESSAGE_MEDIA_TOO_MANY",
    "parse": "Bad Request: can't parse rich message: {detail}",
    # Observed on the live service (a relative link target).
    "url_invalid": "Bad Request: RICH_MESSAGE_URL_INVALID",
    # Observed for blocks a rich message may not hold; inferred for <tg-thinking>.
    "not_allowed": "Bad Request: RICH_VALIDATE_CTOR_NOT_ALLOWED",
}
"""The fake server's error description for each refusal (``{detail}`` is filled in)."""

SERVER_ERRORS: dict[str, str] = {
    # telegram-bot-api Client.cpp at Bot API 10.0: an unknown method; an editMessageText
    # without text ("Message text is empty", first letter lowered by fail_query_with_error).
    "method_not_found": "Not Found: method not found",
    "text_empty": "Bad Request: message text is empty",
    "chat_id_empty": "Bad Request: chat_id is empty",
    # TDLib RichMessage.cpp (no rich_message), lowered as above.
    "missing": "Bad Request: rich message must be non-empty",
    "not_modified": (
        "Bad Request: message is not modified: specified new message content and reply markup"
        " are exactly the same as a current content and reply markup of the message"
    ),
    # Observed for sendMessageDraft into a group; UNCONFIRMED for sendRichMessageDraft.
    "draft_peer": "Bad Request: TEXTDRAFT_PEER_INVALID",
    # Inferred: TDLib sends draft_id as the draft's random_id; RANDOM_ID_INVALID was seen
    # on a draft path.
    "draft_id": "Bad Request: RANDOM_ID_INVALID",
    # By analogy with Client.cpp's "Can't parse reply parameters JSON object".
    "json": "Bad Request: can't parse rich message JSON object",
    # The fake's own words: no real text is known.
    "one_source": "Bad Request: exactly one of html, markdown and blocks must be specified",
    "text_and_rich": "Bad Request: exactly one of text and rich_message must be specified",
    "markdown_only": "Bad Request: the fake Bot API implements rich_message.markdown only",
}
"""The fake server's error descriptions for rich calls beyond the Markdown's own."""

DRAFT_TTL: Final = 30.0
"""Seconds a draft stays shown after its last frame (Bot API ``sendRichMessageDraft``)."""


class RichMarkdownError(ValueError):
    """Rich Markdown the fake server refuses; ``description`` is its 400 answer's text."""

    def __init__(self, description: str) -> None:
        """Keep ``description`` (the Bot API ``description``, "Bad Request: …")."""
        super().__init__(description)
        self.description = description


@dataclass(frozen=True)
class ParsedRich:
    """Rich Markdown as the fake server reads it.

    ``blocks`` are ``RichBlock`` JSON objects (``paragraph``, ``heading``, ``pre``,
    ``divider``, ``mathematical_expression``, ``list``, ``blockquote``, ``table``,
    ``details``, ``photo``/``video``/``audio``/``voice_note``/``animation``, ``thinking``)
    whose texts are the inline Markdown source, unparsed; ``block_count``, ``depth`` and
    ``media`` are what the limits are checked against.
    """

    blocks: list[dict[str, Any]]
    block_count: int
    depth: int
    media: int


@dataclass
class RichDraft:
    """A draft the bot showed with ``sendRichMessageDraft`` (its latest frame first).

    ``frames`` are every frame's Markdown, oldest first; ``at`` is the latest frame's
    ``time.monotonic()``; ``stopped`` is set when a test pressed its stop button.
    """

    chat_id: int
    draft_id: int
    message_thread_id: int | None
    markdown: str
    can_stop: bool
    keep_on_stop: bool
    at: float
    frames: list[str]
    stopped: bool = False


def validate_rich_markdown(markdown: str, *, draft: bool = False) -> str | None:
    """The fake Bot API's error description for ``markdown`` as ``rich_message.markdown``
    (a ``sendRichMessageDraft`` frame when ``draft``), or ``None`` when it is accepted.

    The description is a 400 answer's text, e.g. "Bad Request: RICH_MESSAGE_TOO_LONG" or
    "Bad Request: can't parse rich message: unclosed code fence opened at line 3"
    (:data:`ERRORS`). Never raises.
    """
    try:
        parse_rich_markdown(markdown, draft=draft)
    except RichMarkdownError as exc:
        return exc.description
    return None


def parse_rich_markdown(markdown: str, *, draft: bool = False) -> ParsedRich:
    """Parse ``markdown`` into blocks, checking it as :func:`validate_rich_markdown` does.

    Raises :class:`RichMarkdownError` with the description of the first problem found.
    """
    if not markdown.strip():
        raise RichMarkdownError(ERRORS["empty"])
    if len(markdown) > MAX_CHARACTERS:
        raise RichMarkdownError(ERRORS["too_long"])
    parser = _Parser(draft=draft)
    lines = markdown.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    blocks = parser.blocks([(number, line) for number, line in enumerate(lines, 1)], 1)
    if not blocks:
        raise RichMarkdownError(ERRORS["empty"])
    return ParsedRich(blocks, parser.count, parser.depth, parser.media)


# ----- the parser ---------------------------------------------------------------------

Line = tuple[int, str]
"""A source line with its 1-based number (kept through quotes and lists for messages)."""

_FENCE = re.compile(r"^\s*(`{3,}|~{3,})(.*)$")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*$")
_DIVIDER = re.compile(r"^\s{0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_QUOTE = re.compile(r"^\s{0,3}>[ ]?")
_ITEM = re.compile(r"^(\s*)([-*+]|\d{1,9}[.)])(?:[ \t]+(.*)|[ \t]*$)")
_TASK = re.compile(r"^\[([ xX])\][ \t]+")
_DELIMITER_ROW = re.compile(r"^\s*\|?\s*:?-+:?\s*(?:\|\s*:?-+:?\s*)*\|?\s*$")
_MEDIA = re.compile(r'^\s*!\[([^\]]*)\]\(\s*(\S+?)(?:\s+"([^"]*)")?\s*\)\s*$')
_DETAILS_OPEN = re.compile(r"<details(?:\s[^>]*)?>", re.IGNORECASE)
_DETAILS_CLOSE = re.compile(r"</details\s*>", re.IGNORECASE)
_SUMMARY = re.compile(r"<summary>(.*?)</summary>", re.IGNORECASE | re.DOTALL)
_THINKING_OPEN = re.compile(r"<tg-thinking>", re.IGNORECASE)
_THINKING_CLOSE = re.compile(r"</tg-thinking\s*>", re.IGNORECASE)
_LINK = re.compile(r"(!?\[(?:[^\]\\]|\\.)*\])\(\s*<?([^\s)>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_URL_SCHEMES: Final = ("http://", "https://", "mailto:", "tel:", "tg://")
_INLINE_ONLY_URLS: Final = ("tg://emoji", "tg://time")
_MEDIA_TYPES: Final = {
    "jpg": "photo",
    "jpeg": "photo",
    "png": "photo",
    "webp": "photo",
    "mp4": "video",
    "mp3": "audio",
    "ogg": "voice_note",
    "gif": "animation",
}
_ALIGN: Final = {(True, False): "left", (False, True): "right", (True, True): "center"}


@dataclass
class _Parser:
    """One parse: the counts the limits are checked against, and whether it is a draft."""

    draft: bool
    count: int = 0
    depth: int = 0
    media: int = 0

    # ----- counting -----
    def _block(self, depth: int, block: dict[str, Any]) -> dict[str, Any]:
        self.count += 1
        self.depth = max(self.depth, depth)
        if self.count > MAX_BLOCKS:
            raise RichMarkdownError(ERRORS["too_many_blocks"])
        if depth > MAX_DEPTH:
            raise RichMarkdownError(ERRORS["too_deep"])
        return block

    # ----- blocks -----
    def blocks(self, lines: list[Line], depth: int) -> list[dict[str, Any]]:
        """The blocks of ``lines`` at nesting ``depth`` (top level: 1)."""
        out: list[dict[str, Any]] = []
        i = 0
        while i < len(lines):
            number, line = lines[i]
            stripped = line.strip()
            if not stripped:
                i += 1
                continue
            if _FENCE.match(line):
                i = self._fenced(lines, i, depth, out)
            elif stripped.startswith("$$") and self._display_math_line(stripped):
                i = self._math(lines, i, depth, out)
            elif _HEADING.match(line):
                match = _HEADING.match(line)
                assert match is not None
                text = (match.group(2) or "").rstrip("#").strip()
                self._inline(text, number)
                out.append(
                    self._block(depth, {"type": "heading", "text": text, "size": len(match[1])})
                )
                i += 1
            elif _DIVIDER.match(line):
                out.append(self._block(depth, {"type": "divider"}))
                i += 1
            elif _QUOTE.match(line):
                i = self._quote(lines, i, depth, out)
            elif _DETAILS_OPEN.match(stripped):
                i = self._details(lines, i, depth, out)
            elif _DETAILS_CLOSE.match(stripped):
                raise self._parse_error(f"</details> without <details> at line {number}")
            elif _THINKING_OPEN.match(stripped):
                i = self._thinking(lines, i, depth, out)
            elif _ITEM.match(line):
                i = self._list(lines, i, depth, out)
            elif self._table_starts(lines, i):
                i = self._table(lines, i, depth, out)
            elif (media := _MEDIA.match(line)) and not media[2].startswith(_INLINE_ONLY_URLS):
                out.append(self._media(media, number, depth))
                i += 1
            else:
                i = self._paragraph(lines, i, depth, out)
        return out

    def _starts_block(self, lines: list[Line], i: int) -> bool:
        """Whether line ``i`` starts a block that ends a paragraph (or a table) before it."""
        line = lines[i][1]
        stripped = line.strip()
        return (
            not stripped
            or bool(_FENCE.match(line))
            or (stripped.startswith("$$") and self._display_math_line(stripped))
            or bool(_HEADING.match(line))
            or bool(_DIVIDER.match(line))
            or bool(_QUOTE.match(line))
            or bool(_DETAILS_OPEN.match(stripped))
            or bool(_DETAILS_CLOSE.match(stripped))
            or bool(_THINKING_OPEN.match(stripped))
            or bool(_ITEM.match(line))
            or self._table_starts(lines, i)
        )

    @staticmethod
    def _display_math_line(stripped: str) -> bool:
        """Whether a line starting with ``$$`` is a math block: ``$$`` alone or with the
        formula's start, or a whole ``$$…$$`` (not ``$$a$$ and text``)."""
        close = stripped.find("$$", 2)
        return close < 0 or close == len(stripped) - 2

    def _fenced(self, lines: list[Line], i: int, depth: int, out: list[dict[str, Any]]) -> int:
        number, line = lines[i]
        match = _FENCE.match(line)
        assert match is not None
        fence, info = match[1], match[2].strip()
        if fence[0] == "`" and "`" in info:
            return self._paragraph(lines, i, depth, out)  # ```x``` is inline code, not a fence
        closing = re.compile(rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        for j in range(i + 1, len(lines)):
            if closing.match(lines[j][1]):
                body = "\n".join(text for _, text in lines[i + 1 : j])
                language = info.split()[0] if info else ""
                if language.lower() == "math":
                    block = {"type": "mathematical_expression", "expression": body}
                else:
                    block = {"type": "pre", "text": body}
                    if language:
                        block["language"] = language
                out.append(self._block(depth, block))
                return j + 1
        raise self._parse_error(f"unclosed code fence opened at line {number}")

    def _math(self, lines: list[Line], i: int, depth: int, out: list[dict[str, Any]]) -> int:
        number, line = lines[i]
        stripped = line.strip()
        if len(stripped) >= 4 and stripped.endswith("$$"):  # $$…$$ on one line
            expression = stripped[2:-2]
            out.append(self._block(depth, _math_block(expression)))
            return i + 1
        parts = [stripped[2:]]
        for j in range(i + 1, len(lines)):
            text = lines[j][1]
            if "$$" in text:
                head, _, tail = text.partition("$$")
                if tail.strip():
                    raise self._parse_error(f"text after the $$ closing line {lines[j][0]}")
                parts.append(head)
                out.append(self._block(depth, _math_block("\n".join(parts).strip())))
                return j + 1
            parts.append(text)
        raise self._parse_error(f"unclosed $$ opened at line {number}")

    def _quote(self, lines: list[Line], i: int, depth: int, out: list[dict[str, Any]]) -> int:
        inner: list[Line] = []
        while i < len(lines) and _QUOTE.match(lines[i][1]):
            number, line = lines[i]
            inner.append((number, _QUOTE.sub("", line, count=1)))
            i += 1
        quote = self._block(depth, {"type": "blockquote", "blocks": []})
        quote["blocks"] = self.blocks(inner, depth + 1)
        out.append(quote)
        return i

    def _details(self, lines: list[Line], i: int, depth: int, out: list[dict[str, Any]]) -> int:
        """``<details [open]>``, an optional ``<summary>…</summary>``, Markdown, ``</details>``
        (nested ones counted; code fences inside skipped)."""
        opened_at = lines[i][0]
        level = 0
        fence: re.Pattern[str] | None = None
        for j in range(i, len(lines)):
            text = lines[j][1]
            if fence is not None:
                if fence.match(text):
                    fence = None
                continue
            start = _FENCE.match(text)
            if start is not None and j > i:
                mark = start[1]
                fence = re.compile(rf"^\s*{re.escape(mark[0])}{{{len(mark)},}}\s*$")
                continue
            level += len(_DETAILS_OPEN.findall(text)) - len(_DETAILS_CLOSE.findall(text))
            if level <= 0:
                return self._details_block(lines[i : j + 1], depth, out, j + 1)
        raise self._parse_error(f"unclosed <details> opened at line {opened_at}")

    def _details_block(
        self, span: list[Line], depth: int, out: list[dict[str, Any]], after: int
    ) -> int:
        first_number, first = span[0]
        last_number = span[-1][0]
        opening = _DETAILS_OPEN.search(first)
        assert opening is not None
        is_open = "open" in opening[0].lower()
        body = [(first_number, first[opening.end() :]), *span[1:]]
        closings = list(_DETAILS_CLOSE.finditer(body[-1][1]))
        tail = body[-1][1][closings[-1].end() :] if closings else ""
        if tail.strip():
            raise self._parse_error(f"text after </details> at line {last_number}")
        body[-1] = (last_number, body[-1][1][: closings[-1].start()] if closings else body[-1][1])
        text = "\n".join(line for _, line in body)
        summary = _SUMMARY.search(text)
        summary_text = summary[1].strip() if summary else ""
        if summary is not None:
            text = text[: summary.start()] + text[summary.end() :]
        number = first_number
        inner = [(number + k, line) for k, line in enumerate(text.split("\n"))]
        details = self._block(
            depth, {"type": "details", "summary": summary_text, "blocks": [], "is_open": is_open}
        )
        details["blocks"] = self.blocks(inner, depth + 1)
        out.append(details)
        return after

    def _thinking(self, lines: list[Line], i: int, depth: int, out: list[dict[str, Any]]) -> int:
        number = lines[i][0]
        if not self.draft:
            raise RichMarkdownError(ERRORS["not_allowed"])
        parts: list[str] = []
        for j in range(i, len(lines)):
            text = lines[j][1]
            if j == i:
                text = _THINKING_OPEN.sub("", text, count=1)
            close = _THINKING_CLOSE.search(text)
            if close is not None:
                parts.append(text[: close.start()])
                if text[close.end() :].strip():
                    raise self._parse_error(f"text after </tg-thinking> at line {lines[j][0]}")
                thinking = {"type": "thinking", "text": "\n".join(parts).strip()}
                out.append(self._block(depth, thinking))
                return j + 1
            parts.append(text)
        raise self._parse_error(f"unclosed <tg-thinking> opened at line {number}")

    def _list(self, lines: list[Line], i: int, depth: int, out: list[dict[str, Any]]) -> int:
        """A bullet (``-``/``*``/``+``) or ordered (``1.``/``1)``) list whose items start at
        the first item's indent; a line indented more belongs to the current item, as does
        a lazy continuation line."""
        first = _ITEM.match(lines[i][1])
        assert first is not None
        indent = _width(first[1])
        kind = _list_kind(first[2])
        the_list = self._block(depth, {"type": "list", "items": []})
        items: list[dict[str, Any]] = the_list["items"]
        while i < len(lines):
            match = _ITEM.match(lines[i][1])
            if match is None or _width(match[1]) != indent or _list_kind(match[2]) != kind:
                break
            if _DIVIDER.match(lines[i][1]):
                break
            number = lines[i][0]
            offset = indent + len(match[2]) + 1
            rest = match[3] or ""
            item: dict[str, Any] = {"label": "•" if kind[0] == "bullet" else match[2]}
            task = _TASK.match(rest)
            if task is not None:
                item["has_checkbox"] = True
                item["is_checked"] = task[1] in "xX"
                rest = rest[task.end() :]
            content: list[Line] = [(number, rest)]
            i += 1
            while i < len(lines):
                line = lines[i][1]
                if not line.strip():
                    following = next((k for k in range(i, len(lines)) if lines[k][1].strip()), None)
                    if following is None or _width_of(lines[following][1]) <= indent:
                        break
                    content.append((lines[i][0], ""))
                elif _width_of(line) > indent:
                    cut = min(offset, _width_of(line))
                    content.append((lines[i][0], _dedent(line, cut)))
                elif self._starts_block(lines, i):
                    break
                else:
                    content.append((lines[i][0], line.strip()))  # lazy continuation
                i += 1
            items.append(self._block(depth + 1, item))
            item["blocks"] = self.blocks(content, depth + 1)
            # a blank line between two items keeps the list going
            if i < len(lines) and not lines[i][1].strip():
                following = next((k for k in range(i, len(lines)) if lines[k][1].strip()), None)
                if following is not None and _ITEM.match(lines[following][1]):
                    i = following
        out.append(the_list)
        return i

    def _table_starts(self, lines: list[Line], i: int) -> bool:
        return (
            i + 1 < len(lines)
            and _has_pipe(lines[i][1])
            and "|" in lines[i + 1][1]
            and bool(_DELIMITER_ROW.match(lines[i + 1][1]))
        )

    def _table(self, lines: list[Line], i: int, depth: int, out: list[dict[str, Any]]) -> int:
        number = lines[i][0]
        header = _cells(lines[i][1])
        delimiter = _cells(lines[i + 1][1])
        if len(header) != len(delimiter):
            raise self._parse_error(
                f"table at line {number}: the header has {len(header)} cells,"
                f" the delimiter row {len(delimiter)}"
            )
        if len(header) > MAX_TABLE_COLUMNS:
            raise RichMarkdownError(ERRORS["too_many_columns"])
        aligns = [_ALIGN.get((d.startswith(":"), d.endswith(":")), "left") for d in delimiter]
        table = self._block(depth, {"type": "table", "cells": []})
        rows: list[list[dict[str, Any]]] = table["cells"]
        row_lines = [lines[i]]
        j = i + 2
        while j < len(lines) and not self._starts_block(lines, j):
            row_lines.append(lines[j])
            j += 1
        for k, (row_number, line) in enumerate(row_lines):
            cells = _cells(line)
            if len(cells) != len(header):
                raise self._parse_error(
                    f"table row at line {row_number} has {len(cells)} cells, the header"
                    f" {len(header)}"
                )
            for cell in cells:
                self._inline(cell, row_number)
            self._block(depth + 1, {})  # each row is a block
            rows.append(
                [
                    {"text": cell, "is_header": k == 0, "align": align, "valign": "middle"}
                    for cell, align in zip(cells, aligns, strict=True)
                ]
            )
        out.append(table)
        return j

    def _media(self, match: re.Match[str], number: int, depth: int) -> dict[str, Any]:
        url = match[2]
        self._check_url(url)
        self.media += 1
        if self.media > MAX_MEDIA:
            raise RichMarkdownError(ERRORS["too_many_media"])
        if url.startswith("tg://"):
            kind = url[len("tg://") :].split("?")[0]
            kind = {"document": "document", "video": "video", "audio": "audio"}.get(kind, "photo")
        else:
            extension = url.split("?")[0].rsplit(".", 1)[-1].lower()
            kind = _MEDIA_TYPES.get(extension, "photo")
        block: dict[str, Any] = {"type": kind}
        if match[3]:
            block["caption"] = {"text": match[3]}
        return self._block(depth, block)

    def _paragraph(self, lines: list[Line], i: int, depth: int, out: list[dict[str, Any]]) -> int:
        number = lines[i][0]
        parts = [lines[i][1].strip()]
        i += 1
        while i < len(lines) and not self._starts_block(lines, i):
            parts.append(lines[i][1].strip())
            i += 1
        text = "\n".join(parts)
        self._inline(text, number)
        out.append(self._block(depth, {"type": "paragraph", "text": text}))
        return i

    # ----- inline -----
    def _inline(self, text: str, number: int) -> None:
        """Check inline text starting at line ``number``: link targets, ``$`` pairs,
        block tags where only inline ones may be."""
        plain = _without_code_spans(text)
        for link in _LINK.finditer(plain):
            self._check_url(link[2])
        plain = _LINK.sub(r"\1", plain)
        if _DETAILS_OPEN.search(plain) or _DETAILS_CLOSE.search(plain):
            raise self._parse_error(f"<details> inside a paragraph at line {number}")
        opens = len(_THINKING_OPEN.findall(plain))
        closes = len(_THINKING_CLOSE.findall(plain))
        if (opens or closes) and not self.draft:
            raise RichMarkdownError(ERRORS["not_allowed"])
        if opens != closes:
            raise self._parse_error(f"unbalanced <tg-thinking> in the paragraph at line {number}")
        problem = _math_problem(plain)
        if problem is not None:
            raise self._parse_error(f"{problem} in the paragraph at line {number}")

    @staticmethod
    def _check_url(url: str) -> None:
        if not (url.startswith("#") or url.lower().startswith(_URL_SCHEMES)):
            raise RichMarkdownError(ERRORS["url_invalid"])

    @staticmethod
    def _parse_error(detail: str) -> RichMarkdownError:
        return RichMarkdownError(ERRORS["parse"].format(detail=detail))


def _math_block(expression: str) -> dict[str, Any]:
    return {"type": "mathematical_expression", "expression": expression}


def _math_problem(text: str) -> str | None:
    """What is unbalanced about the ``$``/``$$`` formulas of ``text`` (code spans and
    link targets removed), or ``None``. ``\\$`` is a dollar sign."""
    inline = display = False
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if char == "$":
            if text.startswith("$$", i) and not inline:
                display = not display
                i += 2
                continue
            if not display:
                inline = not inline
        i += 1
    if display:
        return "unclosed $$"
    if inline:
        return "unclosed $"
    return None


def _without_code_spans(text: str) -> str:
    """``text`` with each code span (a run of n backticks up to the next run of exactly n,
    CommonMark) replaced by a space; backslash escapes outside code kept as they are."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            out.append(text[i : i + 2])
            i += 2
            continue
        if char != "`":
            out.append(char)
            i += 1
            continue
        run_end = i
        while run_end < len(text) and text[run_end] == "`":
            run_end += 1
        run = run_end - i
        close = _closing_run(text, run_end, run)
        if close < 0:
            out.append(text[i:run_end])  # no closing run: literal backticks
            i = run_end
        else:
            out.append(" ")
            i = close + run
    return "".join(out)


def _closing_run(text: str, start: int, run: int) -> int:
    """Where the next run of exactly ``run`` backticks at or after ``start`` begins, or -1."""
    k = start
    while k < len(text):
        if text[k] != "`":
            k += 1
            continue
        end = k
        while end < len(text) and text[end] == "`":
            end += 1
        if end - k == run:
            return k
        k = end
    return -1


def _has_pipe(line: str) -> bool:
    """Whether ``line`` has a ``|`` not escaped with a backslash."""
    return len(_cells(line)) > 1 or line.strip().startswith("|")


def _cells(line: str) -> list[str]:
    """The cells of a GFM table row: split at every unescaped ``|`` (inside code spans
    too), without the optional leading and trailing pipes."""
    row = line.strip()
    if row.startswith("|"):
        row = row[1:]
    if row.endswith("|") and not row.endswith("\\|"):
        row = row[:-1]
    cells: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(row):
        if row[i] == "\\" and i + 1 < len(row):
            current.append(row[i : i + 2])
            i += 2
            continue
        if row[i] == "|":
            cells.append("".join(current).strip())
            current = []
        else:
            current.append(row[i])
        i += 1
    cells.append("".join(current).strip())
    return cells


def _list_kind(marker: str) -> tuple[str, str]:
    """A list's kind: ("bullet", "-") or ("ordered", ".") — a new marker starts a new list."""
    return ("bullet", marker) if marker in "-*+" else ("ordered", marker[-1])


def _width(indent: str) -> int:
    return len(indent.expandtabs(4))


def _width_of(line: str) -> int:
    return _width(line[: len(line) - len(line.lstrip())])


def _dedent(line: str, width: int) -> str:
    expanded = line.expandtabs(4)
    return expanded[width:] if expanded[:width].strip() == "" else expanded.lstrip()
