"""The model's Markdown made safe to send as a Telegram rich message's ``markdown``.

Telegram parses rich Markdown on its side and refuses the whole message on some inputs,
so what a model writes is rewritten in place (its source ranges come from
:mod:`bot.render.rich_parse`), leaving everything else byte for byte:

- ``$`` starts a formula in rich Markdown (Bot API "Rich Message Formatting Options",
  https://core.telegram.org/bots/api#rich-messages), so every ``$`` that is not part of
  a formula our parser finds is escaped as ``\\$`` ("$5 and $10" stays text). A formula
  whose closing ``$`` is followed by a digit ("$5-$10") is taken for prices and escaped
  too (pandoc's rule for ``tex_math_dollars``, https://pandoc.org/MANUAL.html#math), as
  is an empty one or one holding a backtick, ``](`` or an HTML tag (the ``$`` pair then
  spans a code span, a link or a tag, not a formula). A ``$$`` formula over several
  lines must start its first line and end its last (a block formula's delimiters
  stand first and last on their lines); one starting mid-line is shown as text.
- ``\\(…\\)`` and ``\\[…\\]`` are not rich Markdown and show as literal text (seen live:
  https://github.com/openclaw/openclaw/pull/97197), so they become ``$…$`` and ``$$…$$``
  (as https://github.com/kobaltgit/tg-rich-converter does).
- A relative or local link target makes Telegram refuse the message with
  ``RICH_MESSAGE_URL_INVALID`` (https://github.com/openclaw/openclaw/issues/94117), and
  an odd e-mail address with ``RICH_MESSAGE_EMAIL_INVALID``
  (https://github.com/openclaw/openclaw/issues/96363). Links keep their target only for
  ``http``/``https`` URLs with a host, ``mailto:`` with a plain address and ``tel:``
  with digits (the schemes the Bot API lists); every other link becomes its text.
  ``tg://`` links are dropped too: a model cannot know user or emoji ids.
- An image (``![alt](url)``) becomes a media block Telegram downloads, and media may only
  stand as separate blocks; images become links to their URL (or their alt text), so a
  reply never carries media.
- Reference links become inline links and their definitions are removed (a reference and
  its definition may land in different messages once a long answer is split).
- A footnote reference with no definition (``[^1]`` while streaming) is escaped.
- Raw HTML: Markdown may hold HTML, and Telegram honours the tags it supports. Let
  through, attributes dropped: the inline tags ``b strong i em u ins s strike del mark
  sub sup code`` (paired within their block: an unpaired closer is escaped, an unpaired
  opener closed at the end of its block), and ``<details>``/``<summary>`` in the form
  the Bot API documents (at the top level, ``<details>`` first on its line with at most
  a ``<summary>…</summary>`` after it, ``</details>`` alone on its line; an unmatched
  ``</details>`` is escaped, an unclosed ``<details>`` closed at the end of the text).
  ``<br>`` becomes a space: a line break there could start a block (a list, a fence)
  the model did not write, and a single newline is a soft break in rich Markdown anyway
  (lines of a paragraph run together in the Bot API's examples). HTML comments are
  removed. Every other tag (``<think>``, ``<div>``, ``<script>``,
  ``<tg-…>``, ``<a>``, ``<img>``) is shown as text: its ``<`` becomes ``&lt;``, so the
  tag and its content stay readable and nothing is hidden. What Telegram does with an
  unsupported tag in Markdown is not documented; text is the one safe reading.
- Text a stricter parser could misread is made plain: ``](`` outside a link (an escaped
  ``\\[l](./x)``) becomes ``]&#40;``, a paragraph line shaped like a table's delimiter
  row has its pipes escaped, ``\\<tag`` becomes ``&lt;tag``.
- HTML entities: the named ones Telegram knows (``&lt; &gt; &amp; &quot; &apos; &nbsp;
  &hellip; &mdash; &ndash; &lsquo; &rsquo; &ldquo; &rdquo;``) and numeric ones stay;
  other named ones are replaced by their character.
- Tables: every row gets the header's number of cells (GitHub Flavored Markdown pads and
  cuts them the same way, https://github.github.com/gfm/#tables-extension-), and a table
  wider than Telegram's 20 columns is shown as a code block of its source.
- An unclosed fenced code block (at the end of the text or of its list item or quote)
  is closed.

Code blocks, code spans and formulas are never changed inside. Pure; never raises.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pyromark

from bot.render.rich_parse import OPTIONS, Ev, clean_source, is_escaped, parse

__all__ = [
    "ALLOWED_INLINE_TAGS",
    "MAX_TABLE_COLUMNS",
    "cell_count",
    "escape_rich_text",
    "fenced",
    "line_prefix",
    "link_allowed",
    "sanitize_rich_markdown",
]

MAX_TABLE_COLUMNS = 20
"""Telegram's limit on table columns (Bot API rich messages limits; TDLib option
``rich_message_max_table_cols``, default 20)."""

ALLOWED_INLINE_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "mark", "sub", "sup", "code"}
)
"""Inline HTML tags of Telegram's rich HTML style a model's Markdown may keep (Bot API
"Rich Message Formatting Options": b/strong, i/em, u/ins, s/strike/del, code, mark,
sub, sup)."""

_TELEGRAM_ENTITIES = frozenset(
    {
        "lt", "gt", "amp", "quot", "apos", "nbsp", "hellip",
        "mdash", "ndash", "lsquo", "rsquo", "ldquo", "rdquo",
    }
)  # fmt: skip
"""Named HTML entities Telegram's rich HTML style supports (Bot API rich messages)."""

_MAX_PASSES = 8  # each pass may turn one more "$" pair into text
_INLINE_CONTAINERS = frozenset(
    {"Emphasis", "Strong", "Strikethrough", "Link", "Image", "Superscript", "Subscript"}
)
_INLINE_LEAVES = frozenset(
    {
        "Text", "Code", "InlineMath", "DisplayMath", "InlineHtml", "FootnoteReference",
        "SoftBreak", "HardBreak", "TaskListMarker",
    }
)  # fmt: skip
_TAG_RE = re.compile(rb"<(/?)([A-Za-z][A-Za-z0-9-]*)((?:\s[^<>]*)?)/?>\Z", re.S)
_HTML_TOKEN_RE = re.compile(
    rb"<!--.*?-->|<(/?)([A-Za-z][A-Za-z0-9-]*)(\s[^<>]*|/)?>"
    rb"|&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{0,31});|\]\(|[<>&$]",
    re.S,
)
_ENTITY_RE = re.compile(rb"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{0,31});")
_FORMULA_TAG_RE = re.compile(rb"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")
_SUMMARY_RE = re.compile(rb"<summary>(?:(?!</?summary).)*</summary>", re.I | re.S)
_OPEN_ATTR_RE = re.compile(rb"(?:^|\s)open(?:\s|=|$)", re.I)
_LATEX_RE = re.compile(rb"\\\((.+?)\\\)|\\\[(.+?)\\\]", re.S)
_BLANK_LINE_RE = re.compile(rb"\n[ \t]*\n")
_NOT_MATH_RE = re.compile(rb"[\d\s,.;]*")  # "\[1\]", "\[1, 2\]": citations, not formulas
# In a \(…\) or \[…\] body: a "$", a blank line, a code span, a link, another delimiter
# or a tag mean the pair is not one formula.
_NOT_LATEX_RE = re.compile(rb"\$|\n[ \t]*\n|`|\]\(|\\[\[(]|</?[A-Za-z]|&[A-Za-z]+;")
_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_TEL_RE = re.compile(r"\+?[0-9][0-9 ()\-.]{2,30}")
_ESCAPES = {"\\": "&#92;", "<": "&lt;"}
_ESCAPE_RE = re.compile(r"[\\`*_\[\]<>$|~=&!#]")
_LINE_START_MARK_RE = re.compile(r"(?m)^([ \t]*)(?=[-+]|\d{1,9}[.)])(\d{0,9})")
_BACKTICKS_RE = re.compile(r"`+")
_TEXT_SPECIAL_RE = re.compile(rb"[$<\[\]]")
_DELIMITER_ROW_RE = re.compile(rb"[ \t]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)+\|?[ \t]*")


def sanitize_rich_markdown(markdown: str, *, max_table_columns: int = MAX_TABLE_COLUMNS) -> str:
    """Rewrite ``markdown`` (a model's answer) into Markdown Telegram's rich parser takes.

    See the module docstring for every rule. Idempotent. A text whose rewriting does not
    settle within a few passes (hostile nesting) is returned as escaped plain text.
    """
    text = clean_source(markdown)
    if not text.strip():
        return text
    source = text.encode()
    for _ in range(_MAX_PASSES):
        # Again each pass: text an HTML block hid may be Markdown now.
        source = _convert_latex_delimiters(source)
        rewritten, structural = _Pass(source, max_table_columns).run()
        if rewritten == source:
            return source.decode()
        source = rewritten
        if not structural:
            return source.decode()
    again, _ = _Pass(_convert_latex_delimiters(source), max_table_columns).run()
    if again == source:
        return source.decode()
    return escape_rich_text(text)


def escape_rich_text(text: str) -> str:
    """``text`` as rich Markdown that shows it literally: Markdown's special characters
    (and ``$ = | ~ & !``, which rich Markdown gives meaning to) backslash-escaped, as are
    line-leading list markers (CommonMark allows escaping any ASCII punctuation,
    https://spec.commonmark.org/0.31.2/#backslash-escapes); a backslash becomes ``&#92;``
    (so ``\\(`` never reads as a formula's delimiter) and ``<`` becomes ``&lt;``."""
    escaped = _ESCAPE_RE.sub(lambda m: _ESCAPES.get(m[0], "\\" + m[0]), text)
    return _LINE_START_MARK_RE.sub(_escape_marker, escaped)


def _escape_marker(match: re.Match[str]) -> str:
    """Escape the list marker after ``match`` (``-``, ``+`` or the ``.``/``)`` of ``1.``)."""
    indent, digits = match[1], match[2]
    return f"{indent}{digits}\\"


def link_allowed(destination: str) -> bool:
    """Whether a link to ``destination`` may stay a link in a rich message.

    ``http``/``https`` with a host and no whitespace, ``mailto:`` with one plain address,
    ``tel:`` with digits. Everything else (relative paths, ``#anchors``, ``file:``,
    ``javascript:``, ``tg://``) is refused: Telegram rejects relative targets with
    ``RICH_MESSAGE_URL_INVALID`` (https://github.com/openclaw/openclaw/issues/94117).
    """
    if not destination or any(ch.isspace() or ord(ch) < 0x20 for ch in destination):
        return False
    try:
        parts = urlsplit(destination)
        host = parts.hostname
    except ValueError:
        return False
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        return bool(host) and "." in (host or "").strip(".")
    if scheme == "mailto":
        return _EMAIL_RE.fullmatch(destination[7:].split("?", 1)[0]) is not None
    if scheme == "tel":
        return _TEL_RE.fullmatch(destination[4:]) is not None
    return False


def cell_count(row: bytes) -> tuple[int, list[int]]:
    """(number of cells, offsets of the unescaped pipes) of one table row's source.

    GitHub Flavored Markdown splits cells at every unescaped ``|``, even inside code
    spans; a leading and a trailing pipe are optional (https://github.github.com/gfm/#tables-extension-).
    """
    content = row.rstrip(b" \t\n")
    pipes = [i for i, byte in enumerate(content) if byte == 0x7C and not is_escaped(content, i)]
    if not content.strip():
        return 0, pipes
    lead = len(content) - len(content.lstrip(b" \t"))
    cells = len(pipes) + 1
    if pipes and pipes[0] == lead:
        cells -= 1
    if pipes and pipes[-1] == len(content) - 1 and (len(pipes) > 1 or pipes[0] != lead):
        cells -= 1
    return cells, pipes


def line_prefix(source: bytes, start: int) -> bytes:
    """The continuation prefix for lines of a block starting at ``start``: the text from
    its line's start with quote markers kept and list markers turned into spaces."""
    line_start = source.rfind(b"\n", 0, start) + 1
    raw = source[line_start:start]
    return bytes(ch if ch in b" \t>" else 0x20 for ch in raw)


def fenced(code: str, prefix: str = "", language: str = "") -> str:
    """``code`` as a fenced code block (a fence longer than any backtick run inside), each
    line after the first prefixed by ``prefix``; no trailing newline."""
    longest = max((len(run) for run in _BACKTICKS_RE.findall(code)), default=0)
    fence = "`" * max(3, longest + 1)
    body = code if code.endswith("\n") or not code else code + "\n"
    lines = body.split("\n")[:-1]
    inner = "".join(f"{prefix}{line}\n" for line in lines)
    return f"{fence}{language}\n{inner}{prefix}{fence}"


# ----- the \( \) and \[ \] conversion ---------------------------------------------------


def _convert_latex_delimiters(source: bytes) -> bytes:
    """``\\(x\\)`` → ``$x$`` and ``\\[x\\]`` → ``$$x$$`` outside code, HTML and formulas."""
    if b"\\(" not in source and b"\\[" not in source:
        return source
    protected = [
        (ev.start, ev.end)
        for ev in parse(source.decode())
        if ev.kind in ("Code", "InlineMath", "DisplayMath", "InlineHtml", "Html")
        or (ev.kind == "Start" and ev.name == "CodeBlock")
    ]
    out: list[bytes] = []
    cursor = 0
    for match in _LATEX_RE.finditer(source):
        start, end = match.span()
        if start < cursor or is_escaped(source, start):
            continue
        if any(s < end and start < e for s, e in protected):
            continue
        inline = match[1] is not None
        body = (match[1] if inline else match[2]).strip()
        if not body or _NOT_MATH_RE.fullmatch(body) or _NOT_LATEX_RE.search(body):
            continue
        out.append(source[cursor:start])
        out.append(b"$" + body + b"$" if inline else b"$$" + body + b"$$")
        cursor = end
    if not out:
        return source
    out.append(source[cursor:])
    return b"".join(out)


# ----- one rewriting pass ---------------------------------------------------------------


@dataclass
class _Tag:
    """An allowed inline tag met in a block: where it is and how to escape it."""

    name: str
    closing: bool
    start: int
    end: int
    in_html: bool  # inside an HTML block: escaped as &lt; (Markdown is not parsed there)


@dataclass
class _Frame:
    """An open element while the events are walked."""

    ev: Ev
    tags: list[_Tag] = field(default_factory=list)
    inline_end: int | None = None  # end of the last inline child: where closers go
    first_child: int | None = None
    last_child_end: int | None = None


class _Pass:
    """One walk over the events, collecting edits (byte ranges and their replacements)."""

    def __init__(self, source: bytes, max_columns: int) -> None:
        self.source = source
        self.text = source.decode()
        self.max_columns = max_columns
        self.edits: list[tuple[int, int, int, bytes]] = []  # (start, end, seq, replacement)
        self.structural = False
        self.details: list[int] = []  # positions of open <details> tags, document-wide
        self.stack: list[_Frame] = []
        self.skip_until: int | None = None  # events before this offset are skipped
        self.verbatim = 0  # inside code blocks and autolinks
        self.table_columns = 0
        self.math_end = -1  # end of the formula just before, to keep two apart

    # -- edits --
    def edit(self, start: int, end: int, replacement: bytes, *, structural: bool = False) -> None:
        if self.source[start:end] == replacement:
            return
        self.edits.append((start, end, len(self.edits), replacement))
        self.structural = self.structural or structural

    def insert(self, at: int, text: bytes) -> None:
        self.edit(at, at, text)

    def run(self) -> tuple[bytes, bool]:
        events = parse(self.text)
        self._drop_definitions()
        for ev in events:
            if self.skip_until is not None:
                if ev.start < self.skip_until or (ev.kind == "End" and ev.end <= self.skip_until):
                    continue
                self.skip_until = None
            self._event(ev)
        self._close_details()
        return self._apply(), self.structural

    def _apply(self) -> bytes:
        if not self.edits:
            return self.source
        ordered = sorted(self.edits, key=lambda e: (e[0], e[1] != e[0], e[2]))
        out: list[bytes] = []
        cursor = 0
        for start, end, _, replacement in ordered:
            if start < cursor:
                continue  # inside a region an earlier edit replaced
            out.append(self.source[cursor:start])
            out.append(replacement)
            cursor = end
        out.append(self.source[cursor:])
        return b"".join(out)

    # -- the walk --
    def _event(self, ev: Ev) -> None:
        if self.stack and ev.kind != "End":
            parent = self.stack[-1]
            if parent.first_child is None:
                parent.first_child = ev.start
            parent.last_child_end = ev.end
        if ev.kind == "Start":
            self._start(ev)
        elif ev.kind == "End":
            self._end(ev)
        else:
            self._leaf(ev)

    def _start(self, ev: Ev) -> None:
        if ev.name == "Table":
            self.table_columns = len(ev.data)
            if self.table_columns > self.max_columns:
                self._table_as_code(ev)  # its events are skipped: no frame
                return
        self.stack.append(_Frame(ev))
        autolink = ev.name == "Link" and ev.data["link_type"] in ("Autolink", "Email")
        if ev.name == "CodeBlock" or autolink:
            self.verbatim += 1

    def _end(self, ev: Ev) -> None:
        if not self.stack:
            return
        frame = self.stack.pop()
        start = frame.ev
        if start.name == "CodeBlock":
            self.verbatim -= 1
            self._close_fence(start, ev)
        elif start.name == "Link":
            if start.data["link_type"] in ("Autolink", "Email"):
                self.verbatim -= 1
                self._autolink(start, ev)
            else:
                self._link(frame, ev)
        elif start.name == "Image":
            self._image(frame, ev)
        elif start.name in ("TableHead", "TableRow"):
            self._row(ev)
        self._resolve_tags(frame)
        if self.stack and (start.name in _INLINE_CONTAINERS):
            self.stack[-1].inline_end = ev.end
            self.stack[-1].last_child_end = ev.end

    def _leaf(self, ev: Ev) -> None:
        if (ev.kind in _INLINE_LEAVES or ev.kind == "Html") and self.stack:
            self.stack[-1].inline_end = ev.end
        if self.verbatim:
            return
        math_end, self.math_end = (
            self.math_end,
            (ev.end if ev.kind in ("InlineMath", "DisplayMath") else -1),
        )
        if ev.kind == "Text":
            self._text(ev)
        elif ev.kind in ("InlineMath", "DisplayMath") and ev.start == math_end:
            self.insert(ev.start, b" ")  # "$a$$b$" would read as a "$$" delimiter
            self.structural = True
        elif ev.kind in ("InlineMath", "DisplayMath"):
            formula = self.source[ev.start : ev.end]
            prices = ev.kind == "InlineMath" and self.source[ev.end : ev.end + 1].isdigit()
            if prices or _not_a_formula(formula):
                self.insert(ev.start, b"\\")  # the rest is parsed again in the next pass
                self.structural = True
            elif ev.kind == "DisplayMath" and b"\n" in formula and not self._line_start(ev.start):
                self.insert(ev.start, b"\\")  # a block formula not starting its line
                self.structural = True
            elif (
                ev.kind == "DisplayMath"
                and b"\n" in formula
                and self.source[ev.end : ev.end + 1] not in (b"", b"\n")
            ):
                self.insert(ev.end, b"\n")  # a "$$" block ends its line
                self.structural = True
        elif ev.kind == "InlineHtml":
            self._inline_html(ev)
        elif ev.kind == "Html":
            self._html(ev)

    # -- text --
    def _text(self, ev: Ev) -> None:
        start, end = ev.start, ev.end
        chunk = self.source[start:end]
        if chunk != ev.data.encode():
            entity = _ENTITY_RE.fullmatch(chunk)
            if entity is not None and not _entity_allowed(entity[1]):
                self.edit(start, end, escape_rich_text(ev.data).encode())
            return
        if _DELIMITER_ROW_RE.fullmatch(chunk) and self._line_start(start):
            # A paragraph line like "|---|---|" that is no table here: another parser
            # could take it for a delimiter row.
            for pipe in range(start, end):
                if self.source[pipe] == 0x7C and not is_escaped(self.source, pipe):
                    self.insert(pipe, b"\\")
            return
        for special in _TEXT_SPECIAL_RE.finditer(self.source, start, end):
            index = special.start()
            after = self.source[index + 1 : index + 2]
            if special[0] == b"]":
                if after == b"(":  # "](" with no link: another parser could see a link
                    self.edit(index + 1, index + 2, b"&#40;")
                continue
            if is_escaped(self.source, index):
                if special[0] == b"<" and (after.isalpha() or after in (b"/", b"!", b"?")):
                    self.edit(index - 1, index + 1, b"&lt;")  # "\<tag": an entity is plainer
                continue
            if special[0] == b"<":  # before a letter, /, ! or ?: could read as a tag
                if after.isalpha() or after in (b"/", b"!", b"?"):
                    self.edit(index, index + 1, b"&lt;")
            elif special[0] == b"$" or after == b"^":  # [^: a footnote with no definition
                self.insert(index, b"\\")

    def _line_start(self, index: int) -> bool:
        """Whether only container markers or spaces precede ``index`` on its line."""
        line = self.source.rfind(b"\n", 0, index) + 1
        return not self.source[line:index].strip(b" \t>")

    # -- links and images --
    def _link(self, frame: _Frame, end: Ev) -> None:
        start = frame.ev
        destination = start.data["dest_url"]
        if frame.first_child is None or frame.last_child_end is None:
            self.edit(start.start, end.end, b"", structural=True)  # no text: shows nothing
            return
        if link_allowed(destination):
            if start.data["link_type"] != "Inline":
                tail = b"](" + _destination(destination).encode() + b")"
                self.edit(frame.last_child_end, end.end, tail, structural=True)
            return
        self.edit(start.start, frame.first_child, b"", structural=True)
        self.edit(frame.last_child_end, end.end, b"", structural=True)

    def _image(self, frame: _Frame, end: Ev) -> None:
        start = frame.ev
        destination = start.data["dest_url"]
        in_link = any(f.ev.name in ("Link", "Image") for f in self.stack)
        if link_allowed(destination) and not in_link:
            if frame.first_child is None:
                label = escape_rich_text(destination).encode()
                link = b"[" + label + b"](" + _destination(destination).encode() + b")"
                self.edit(start.start, end.end, link, structural=True)
                return
            self.edit(start.start, start.start + 1, b"", structural=True)  # drop the "!"
            if start.data["link_type"] != "Inline":
                tail = b"](" + _destination(destination).encode() + b")"
                self.edit(frame.last_child_end or end.end, end.end, tail, structural=True)
            return
        if frame.first_child is None or frame.last_child_end is None:
            self.edit(start.start, end.end, b"", structural=True)
            return
        self.edit(start.start, frame.first_child, b"", structural=True)
        self.edit(frame.last_child_end, end.end, b"", structural=True)

    def _autolink(self, start: Ev, end: Ev) -> None:
        destination = start.data["dest_url"]
        if start.data["link_type"] == "Email":
            if _EMAIL_RE.fullmatch(destination) is not None:
                return
        elif link_allowed(destination):
            return
        self.edit(start.start, end.end, escape_rich_text(destination).encode(), structural=True)

    def _drop_definitions(self) -> None:
        if b"]:" not in self.source:
            return
        definitions = pyromark.reference_definitions(self.text, options=OPTIONS)
        for definition in definitions.values():
            span = definition["span"]
            start, end = span["start"], span["end"]
            if self.source[end : end + 1] == b"\n":
                end += 1
            self.edit(start, end, b"")

    # -- tables --
    def _table_as_code(self, ev: Ev) -> None:
        prefix = line_prefix(self.source, ev.start).decode()
        body = self.source[ev.start : ev.end].decode()
        trailing = "\n" if body.endswith("\n") else ""
        lines = body.rstrip("\n").split("\n")
        # The table's later lines carry their container prefix already; strip it back off.
        code = "\n".join([lines[0], *(_strip_prefix(line, prefix) for line in lines[1:])])
        block = fenced(code, prefix) + trailing
        self.edit(ev.start, ev.end, block.encode())
        self.skip_until = ev.end

    def _row(self, ev: Ev) -> None:
        row = self.source[ev.start : ev.end]
        content = row.rstrip(b" \t\n")
        code_pipes = _pipes_in_code_spans(content)
        if code_pipes:  # "`a|b`" in a cell: escaped, GFM keeps the code span whole
            for pipe in code_pipes:
                self.insert(ev.start + pipe, b"\\")
            self.structural = True
            return
        cells, pipes = cell_count(content)
        columns = self.table_columns
        end = ev.start + len(content)
        if cells < columns:
            ends_with_pipe = bool(pipes) and pipes[-1] == len(content) - 1 and cells > 0
            pad = (b"" if ends_with_pipe else b" |") + b" |" * (columns - cells)
            self.insert(end, pad)
        elif cells > columns:
            leading = bool(pipes) and pipes[0] == len(content) - len(content.lstrip(b" \t"))
            cut = pipes[columns] if leading else pipes[columns - 1]
            self.edit(ev.start + cut + 1, end, b"")

    # -- code blocks --
    def _close_fence(self, start: Ev, end: Ev) -> None:
        """Close a fenced code block that runs to the end of its container or the text."""
        if not isinstance(start.data, dict):
            return  # indented code
        block = self.source[start.start : end.end]
        opener = re.match(rb"(`{3,}|~{3,})", block)
        if opener is None:
            return
        fence = opener[1]
        lines = block.rstrip(b"\n").split(b"\n")
        if len(lines) > 1:
            last = lines[-1].lstrip(b" \t>").rstrip(b" \t")
            if last and set(last) == {fence[0]} and len(last) >= len(fence):
                return
        prefix = line_prefix(self.source, start.start)
        if block.endswith(b"\n"):
            self.insert(end.end, prefix + fence + b"\n")
        else:
            self.insert(
                end.end, b"\n" + prefix + fence + (b"" if end.end == len(self.source) else b"\n")
            )

    # -- HTML --
    def _inline_html(self, ev: Ev) -> None:
        raw = self.source[ev.start : ev.end]
        if raw.startswith(b"<!--"):
            if raw.endswith(b"-->"):
                self.edit(ev.start, ev.end, b"", structural=True)
            else:
                self.edit(ev.start, ev.start + 1, b"&lt;", structural=True)
            return
        match = _TAG_RE.match(raw)
        name = match[2].decode().lower() if match else ""
        if name == "br":
            self.edit(ev.start, ev.end, b" ", structural=True)
        elif match is not None and name in ALLOWED_INLINE_TAGS and self.stack:
            self.stack[-1].tags.append(_Tag(name, match[1] == b"/", ev.start, ev.end, False))
        else:
            self.edit(ev.start, ev.start + 1, b"&lt;", structural=True)

    def _html(self, ev: Ev) -> None:
        frame = self.stack[-1] if self.stack else None
        for token in _HTML_TOKEN_RE.finditer(self.source, ev.start, ev.end):
            start, end = token.span()
            raw = token[0]
            if raw.startswith(b"<!--"):  # what follows may now start the line: parse again
                self.edit(start, end, b"", structural=True)
            elif token[2] is not None:
                self._html_tag(token, frame, ev)
            elif token[4] is not None:
                if not _entity_allowed(token[4]):
                    character = html.unescape(raw.decode())
                    self.edit(start, end, html.escape(character, quote=False).encode())
            else:
                replacement = {
                    b"<": b"&lt;", b">": b"&gt;", b"&": b"&amp;", b"$": b"&#36;",
                    b"](": b"]&#40;",  # a parser reading Markdown in the block sees no link
                }  # fmt: skip
                self.edit(start, end, replacement[raw], structural=raw == b"<")

    def _html_tag(self, token: re.Match[bytes], frame: _Frame | None, line: Ev) -> None:
        start, end = token.span()
        closing = token[1] == b"/"
        name = token[2].decode().lower()
        attributes = token[3] or b""
        if name == "details":
            # Only the documented form: at the top level, the tag first on its line, then
            # nothing but an optional <summary>…</summary> ("</details>" alone).
            rest = self.source[end : line.end].strip()
            alone = (
                len(self.stack) == 1
                and not self.source[line.start : start].strip()
                and (not rest or (not closing and _SUMMARY_RE.fullmatch(rest) is not None))
            )
            if not alone:
                self.edit(start, start + 1, b"&lt;", structural=True)
            elif closing:
                if self.details:
                    self.details.pop()
                    self.edit(start, end, b"</details>")
                else:
                    self.edit(start, start + 1, b"&lt;", structural=True)
            else:
                self.details.append(start)
                opened = b" open" if _OPEN_ATTR_RE.search(attributes) else b""
                self.edit(start, end, b"<details" + opened + b">")
        elif name == "br":
            self.edit(start, end, b" ", structural=True)
        elif frame is not None and (
            name in ALLOWED_INLINE_TAGS or (name == "summary" and self.details)
        ):
            frame.tags.append(_Tag(name, closing, start, end, True))
        else:
            self.edit(start, start + 1, b"&lt;", structural=True)

    def _resolve_tags(self, frame: _Frame) -> None:
        """Pair the allowed tags met directly in ``frame``; escape or close the rest."""
        if not frame.tags:
            return
        opened: list[_Tag] = []
        for tag in frame.tags:
            if not tag.closing:
                opened.append(tag)
                continue
            position = next(
                (i for i in range(len(opened) - 1, -1, -1) if opened[i].name == tag.name), None
            )
            if position is None:
                self._escape_tag(tag)
                continue
            for inner in reversed(opened[position + 1 :]):  # close what the closer skips
                self.insert(tag.start, f"</{inner.name}>".encode())
            for paired in (opened[position], tag):
                self._normalise_tag(paired)
            del opened[position:]
        end = frame.inline_end
        for tag in reversed(opened):
            if end is None or end <= tag.end:
                self.edit(tag.start, tag.end, b"")  # nothing after it yet: drop it
                continue
            self._normalise_tag(tag)
            at = _before_newline(self.source, end)
            # After a lone backslash the closer's "<" would be escaped: keep them apart.
            gap = (
                b" "
                if self.source[at - 1 : at] == b"\\" and not is_escaped(self.source, at - 1)
                else b""
            )
            self.insert(at, gap + f"</{tag.name}>".encode())

    def _escape_tag(self, tag: _Tag) -> None:
        self.edit(tag.start, tag.start + 1, b"&lt;", structural=True)

    def _normalise_tag(self, tag: _Tag) -> None:
        self.edit(tag.start, tag.end, f"<{'/' if tag.closing else ''}{tag.name}>".encode())

    def _close_details(self) -> None:
        if not self.details:
            return
        tail = b"" if self.source.endswith(b"\n") else b"\n"
        tail += b"\n</details>\n" * len(self.details)
        self.insert(len(self.source), tail)


def _strip_prefix(line: str, prefix: str) -> str:
    """``line`` without the container ``prefix`` (quote markers, indentation) it starts with."""
    if line.startswith(prefix):
        return line[len(prefix) :]
    index = 0
    while index < min(len(prefix), len(line)) and line[index] in " \t>":
        index += 1
    return line[index:]


def _pipes_in_code_spans(row: bytes) -> list[int]:
    """Offsets of the unescaped ``|`` inside the code spans of a table row's source."""
    found: list[int] = []
    runs = [m.span() for m in re.finditer(rb"`+", row)]
    index = 0
    while index < len(runs):
        start, end = runs[index]
        if is_escaped(row, start):
            index += 1
            continue
        closer = next(
            (j for j in range(index + 1, len(runs)) if runs[j][1] - runs[j][0] == end - start),
            None,
        )
        if closer is None:
            index += 1
            continue
        inner_end = runs[closer][0]
        found.extend(i for i in range(end, inner_end) if row[i] == 0x7C and not is_escaped(row, i))
        index = closer + 1
    return found


def _before_newline(source: bytes, end: int) -> int:
    """``end`` moved back over the newlines that end a block."""
    while end > 0 and source[end - 1 : end] == b"\n":
        end -= 1
    return end


def _not_a_formula(formula: bytes) -> bool:
    """Whether a ``$…$``/``$$…$$`` our parser found is better shown as text: empty, or
    holding a backtick (a code span), ``](`` (a link's text and URL), an HTML tag or an
    unescaped ``$`` (pulldown-cmark lets one hide inside braces; other parsers end there)."""
    width = 2 if formula.startswith(b"$$") else 1
    inner = formula[width:-width]
    return (
        not inner.strip()
        or any(byte == 0x24 and not is_escaped(inner, i) for i, byte in enumerate(inner))
        or b"`" in inner
        or b"](" in inner
        or _FORMULA_TAG_RE.search(inner) is not None
    )


def _entity_allowed(name: bytes) -> bool:
    """Numeric entities and the named ones Telegram lists are kept as they are."""
    return name.startswith(b"#") or name.decode() in _TELEGRAM_ENTITIES


def _destination(url: str) -> str:
    """``url`` written as a Markdown link destination."""
    url = url.replace("\\", "%5C")
    if re.search(r"[\s()<>]", url):
        return "<" + url.replace("<", "%3C").replace(">", "%3E") + ">"
    return url
