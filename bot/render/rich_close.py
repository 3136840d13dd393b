"""Close what a streaming answer leaves open at its edge, for rich Markdown frames.

Each draft or edit of a growing answer is sent whole and parsed by Telegram on its own,
so every frame must be complete Markdown: streaming guides for rich messages close open
fences, ``$$``, ``**`` and ``||`` before each frame (https://github.com/kobaltgit/tg-rich-converter
"streaming mode"; https://github.com/vercel/chat/pull/616). :func:`close_rich_markdown`
does that for the rich path, on top of the classic path's closer
(:func:`bot.render.close.close_open_markdown`, which closes fences, code spans, emphasis,
spoilers and half-typed links):

- an open fenced code block: the closing fence is appended (nothing else is looked at:
  the rest is code);
- a table row still being written (the last line, unterminated, starting with ``|``) is
  dropped, and so is a header row whose delimiter row has not come yet;
- an open formula (``$…`` or ``$$…``) is closed when the parser then reads it as a
  formula; one that would not be (``$5`` is taken for a price) is left to the sanitiser,
  which shows it as text; a ``$``/``$$`` with nothing after it yet is dropped;
- a half-typed tag (``<det``), an unclosed HTML comment, a lone backslash or a last
  line holding only quote markers (``>``) is dropped.

Formulas are hidden from the classic closer (their characters swapped for private-use
ones and back), so ``$a_1 * b$`` is never taken for emphasis. What the sanitiser closes
itself (open ``<details>``, inline tags) is left to it
(:func:`bot.render.rich_sanitize.sanitize_rich_markdown`). Pure; never raises.
"""

from __future__ import annotations

import re

from bot.render.close import close_open_markdown
from bot.render.rich_parse import ByteOffsets, Ev, clean_source, is_escaped, parse

__all__ = ["close_rich_markdown"]

_PROTECTED = frozenset({"Code", "InlineMath", "DisplayMath", "InlineHtml", "Html"})
_BLANK_LINE_RE = re.compile(r"\n[ \t>]*\n")
_ROW_START_RE = re.compile(r"[ \t>]*\|")
_QUOTE_MARKERS_RE = re.compile(r"[ \t]*>[ \t>]*")
_PARTIAL_TAG_RE = re.compile(r"<(?:/?[A-Za-z][A-Za-z0-9-]*|/|!-{0,2})\Z")
_PUA_FIRST, _PUA_LAST = 0xE000, 0xF8FF


def close_rich_markdown(markdown: str) -> str:
    """Return ``markdown`` (a partial answer) with what its edge leaves open closed.

    See the module docstring. Text with nothing open comes back unchanged.
    """
    text = clean_source(markdown)
    events = parse(text)
    if _ends_in_fence(text, events):
        return close_open_markdown(text)
    changed = False
    trimmed = _drop_partial_html(_drop_partial_rows(text), events)
    last_line = trimmed.rfind("\n") + 1
    if last_line and _QUOTE_MARKERS_RE.fullmatch(trimmed, last_line):
        trimmed = trimmed[: last_line - 1]  # a quote's ">" typed, nothing after it yet
    if trimmed.endswith("\\") and is_escaped(trimmed.encode() + b"*", len(trimmed.encode())):
        trimmed = trimmed[:-1]  # an escape being typed: it would escape a closer
    if trimmed != text:
        text, changed = trimmed, True
        events = parse(text)
    closed = _close_formula(text, events)
    if closed is not None:
        text, changed = closed, True
        events = parse(text)
    if changed and _ends_in_fence(text, events):
        return close_open_markdown(text)
    return _close_inline(text, events)


def _ends_in_fence(text: str, events: list[Ev]) -> bool:
    """Whether the text ends inside a fenced code block that has no closing fence yet."""
    block_start = next(
        (ev for ev in reversed(events) if ev.kind == "Start" and ev.name == "CodeBlock"), None
    )
    source = text.encode()
    if block_start is None or block_start.end != len(source):
        return False
    if not isinstance(block_start.data, dict):
        return False  # indented code needs no closing fence
    block = source[block_start.start : block_start.end].decode()
    opener = re.match(r"(`{3,}|~{3,})", block)
    lines = block.rstrip("\n").split("\n")
    if opener is None or len(lines) < 2:
        return True
    last = lines[-1].lstrip(" \t>").rstrip()
    fence = opener[1]
    return not (last and set(last) == {fence[0]} and len(last) >= len(fence))


def _drop_partial_rows(text: str) -> str:
    """Drop a table row still being typed, and a header row still waiting for its delimiter."""
    last_newline = text.rfind("\n") + 1
    if last_newline >= len(text) or not _ROW_START_RE.match(text, last_newline):
        return text
    text = text[:last_newline]
    line_start = text.rfind("\n", 0, len(text) - 1) + 1
    if not text or not _ROW_START_RE.match(text, line_start):
        return text
    line_bytes = len(text[:line_start].encode())
    in_table = any(
        ev.kind == "Start" and ev.name == "Table" and ev.start <= line_bytes < ev.end
        for ev in parse(text)
    )
    return text if in_table else text[:line_start]


def _drop_partial_html(text: str, events: list[Ev]) -> str:
    """Drop a half-typed tag (``<det``) or an unclosed HTML comment at the very end."""
    match = _PARTIAL_TAG_RE.search(text, max(0, len(text) - 40))
    if match is not None and not is_escaped(text.encode(), len(text[: match.start()].encode())):
        return text[: match.start()]
    comment = text.rfind("<!--")
    if comment < 0 or "-->" in text[comment:]:
        return text
    at = len(text[:comment].encode())
    for ev in events:
        code = ev.kind == "Code" or (ev.kind == "Start" and ev.name == "CodeBlock")
        if code and ev.start <= at < ev.end:
            return text
    return text[:comment].rstrip(" \t")


def _close_formula(text: str, events: list[Ev]) -> str | None:
    """``text`` with an open formula at its end closed, or None when there is none."""
    source = text.encode()
    tail = _tail_start(text, source, events)
    dollars = [
        i for i in range(tail, len(source)) if source[i] == 0x24 and not is_escaped(source, i)
    ]
    ticks = source.find(b"`", tail)
    if ticks >= 0:  # an open code span: what follows it is code
        dollars = [i for i in dollars if i < ticks]
    if not dollars:
        return None
    body = text.rstrip(" \t\n")
    if body.endswith("$") and not is_escaped(body.encode(), len(body.encode()) - 1):
        # An opener with nothing after it yet ("... $$" or "... $").
        stripped = body.rstrip("$")
        if dollars[-1] >= len(stripped.encode()):
            return stripped.rstrip(" \t")
    double = any(source[i + 1 : i + 2] == b"$" for i in dollars)
    if body.endswith("\\") and is_escaped(body.encode() + b"$", len(body.encode())):
        body = body[:-1]  # a command being typed: its backslash would escape the closer
    # pulldown-cmark ends a formula only outside braces: close the ones still open.
    braces = _open_braces(body.encode()[dollars[0] :])
    candidate = body + "}" * braces + ("$$" if double else "$")
    encoded = candidate.encode()
    for ev in parse(candidate):
        if ev.kind in ("InlineMath", "DisplayMath") and ev.end == len(encoded):
            if ev.kind == "InlineMath" and encoded[ev.start + 1 : ev.start + 2].isdigit():
                return None  # "$5 …": a price, not a formula
            return candidate
    return None


def _open_braces(formula: bytes) -> int:
    """How many ``{`` of a formula's source are still open (``\\{`` is not a brace)."""
    depth = 0
    for index, byte in enumerate(formula):
        if byte in (0x7B, 0x7D) and not is_escaped(formula, index):
            depth = depth + 1 if byte == 0x7B else max(depth - 1, 0)
    return depth


def _tail_start(text: str, source: bytes, events: list[Ev]) -> int:
    """Byte offset after the last blank line and the last code, formula or HTML."""
    start = 0
    blank = text.rfind("\n\n")
    for match in _BLANK_LINE_RE.finditer(text, max(blank, 0)):
        start = len(text[: match.end()].encode())
    for ev in events:
        if ev.kind in _PROTECTED or (ev.kind == "End" and ev.name == "CodeBlock"):
            start = max(start, ev.end)
    return start


def _close_inline(text: str, events: list[Ev]) -> str:
    """The classic closer (emphasis, code spans, links) with formulas hidden from it."""
    offsets = ByteOffsets(text)
    spans = [
        (offsets.index(ev.start), offsets.index(ev.end))
        for ev in events
        if ev.kind in ("InlineMath", "DisplayMath")
    ]
    if not spans:
        return close_open_markdown(text)
    used = set(text)
    mask: dict[str, str] = {}
    free = (chr(code) for code in range(_PUA_FIRST, _PUA_LAST + 1) if chr(code) not in used)
    chars = list(text)
    for start, end in spans:
        for index in range(start + 1, end - 1):  # the formula's source, not its "$"s
            char = chars[index]
            if char not in mask:
                replacement = next(free, None)
                if replacement is None:
                    return close_open_markdown(text)
                mask[char] = replacement
            chars[index] = mask[char]
    unmask = {ord(masked): char for char, masked in mask.items()}
    return close_open_markdown("".join(chars)).translate(unmask)
