"""Close the Markdown a streaming answer leaves open at its edge.

A partial answer often stops inside a code block, a code span, ``**bold`` or a
link. Rendered as is, such a frame shows raw markers that vanish a moment later.
:func:`close_open_markdown` appends the missing closers (or drops a marker that
has nothing after it yet) so each frame renders the way the finished text will.

It is a heuristic, not a parser. Fences are tracked over the whole text
(CommonMark fence rules, any indentation); inline markers are looked at only in
the last leaf block (after the last blank line, list item start or heading),
because CommonMark never lets emphasis, code spans or links cross a block
boundary: anything left open in an earlier block is already final text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

__all__ = ["close_open_markdown"]

# A fence line: optional container prefix (indent, ``>`` quotes, one list marker),
# then 3+ backticks or tildes, then the info string.
_FENCE_RE = re.compile(
    r"^(?P<prefix>[ \t]*(?:>[ \t]?)*[ \t]*)(?P<marker>(?:[-*+]|\d{1,9}[.)])[ \t]+)?"
    r"(?P<fence>`{3,}|~{3,})(?P<info>[^\n]*)$",
    re.MULTILINE,
)
# A last line holding only the beginning of a block marker: a fence being typed
# ("``"), a list bullet, a setext underline, a heading's hashes.
_PARTIAL_MARKER_LINE_RE = re.compile(
    r"[ \t>]*(?:[-+*=]{1,2}|\d{1,9}[.)]|`{1,2}|~{1,2}|#{1,6})[ \t]*"
)
# A delimiter run at the very end after whitespace: not yet an opener (nothing
# follows it) nor a closer (whitespace precedes it), so it would show as is.
_TRAILING_RUN_RE = re.compile(r"(?<!\S)(?:[*_~]+|\|{1,2})[ \t]*\Z")
_BLANK_LINE_RE = re.compile(r"[ \t>]*")
_SINGLE_LINE_BLOCK_RE = re.compile(
    r"[ \t>]*(?:#{1,6}(?:[ \t]|$)|\|"  # heading, table row
    r"|([-*_])(?:[ \t]*\1){2,}[ \t]*$|=+[ \t]*$)"  # thematic break, setext underline
)
_LIST_ITEM_RE = re.compile(r"[ \t>]*(?:[-*+]|\d{1,9}[.)])(?:[ \t]|$)")
# Container and block markers skipped at the start of each line of the scope.
_LINE_LEAD_RE = re.compile(r"[ \t]*(?:>[ \t]?)*[ \t]*(?:(?:[-*+]|\d{1,9}[.)])[ \t]+|#{1,6}[ \t]+)?")
_SPECIAL_RE = re.compile(r"[\\\n`*_~|\[\]]")


@dataclass
class _Opener:
    """An emphasis-like opener still waiting for its closer."""

    marker: str  # "*", "_", "~" or "|"
    count: int  # marker characters still open (``**`` is 2)
    start: int  # index of the opener's first character
    end: int  # index just after the whole delimiter run


@dataclass
class _InlineScan:
    """What the last block leaves open."""

    openers: list[_Opener] = field(default_factory=list)
    code_start: int | None = None  # index of an unclosed code span's backticks
    code_ticks: int = 0
    # A link still being typed: text[start:] becomes text[text_start:text_end].
    link: tuple[int, int, int] | None = None


def close_open_markdown(markdown: str) -> str:
    """Return ``markdown`` with whatever its unfinished edge leaves open closed.

    Handles an open fenced code block (the closing fence is appended, a closing
    fence only partly typed is dropped), an unclosed code span, ``**bold``,
    ``*italic``/``_italic``, ``~~strike``, ``||spoiler`` and an unfinished link
    (``[text`` with no ``]`` yet, ``[text]`` at the very end, or
    ``[text](http://…``; the ``[`` must start a word, so ``arr[i`` is kept),
    which is rendered as its bare text (the brackets and the dangling ``](…``
    are dropped) so no half-typed URL reaches Telegram. An
    opener with nothing after it yet, and a last line holding only the start of
    a block marker (``-``, ``1.``, ``#``, a fence being typed), are dropped.
    Text with nothing open is returned unchanged. Never raises.
    """
    fence, scope_start = _scan_fences(markdown)
    if fence is not None:
        return _close_fence(markdown, fence)
    text = markdown
    last_newline = text.rfind("\n") + 1
    if last_newline >= scope_start and _PARTIAL_MARKER_LINE_RE.fullmatch(text, last_newline):
        text = text[:last_newline]
    block_start = _last_block_start(text, scope_start)
    run = _TRAILING_RUN_RE.search(text, block_start)
    if run is not None and not (run[0].strip() == "|" and _in_table_row(text, run.start())):
        text = text[: run.start()]
    for _ in range(3):  # an unfinished link is cut to its text, then the rest rescanned
        scan = _scan_inline(text, block_start)
        if scan.link is None:
            break
        start, text_start, text_end = scan.link
        text = text[:start] + text[text_start:text_end]
    return _apply_closers(text, scan)


def _in_table_row(text: str, index: int) -> bool:
    """True when the line holding ``index`` is a table row (starts with ``|``)."""
    line_start = text.rfind("\n", 0, index) + 1
    return text[line_start:index].lstrip(" \t>").startswith("|")


def _scan_fences(text: str) -> tuple[re.Match[str] | None, int]:
    """Return the still-open fence line (or None) and the index after the last closed one."""
    open_fence: re.Match[str] | None = None
    after_closed = 0
    for match in _FENCE_RE.finditer(text):
        fence, info = match["fence"], match["info"]
        if open_fence is None:
            if not (fence[0] == "`" and "`" in info):  # backtick info may not hold backticks
                open_fence = match
            continue
        opening = open_fence["fence"]
        if (
            fence[0] == opening[0]
            and len(fence) >= len(opening)
            and not info.strip()
            and match["marker"] is None
        ):
            open_fence = None
            after_closed = match.end()
    return open_fence, after_closed


def _close_fence(text: str, fence: re.Match[str]) -> str:
    """Close the open fenced code block ``fence`` at the end of ``text``."""
    opening = fence["fence"]
    last_newline = text.rfind("\n") + 1
    if last_newline > fence.end():
        last_line = text[last_newline:].lstrip(" \t>")
        if last_line and set(last_line) == {opening[0]} and len(last_line) < len(opening):
            text = text[:last_newline]  # the closing fence is being typed
    # List-item content is indented by the marker's width; quotes keep their ">".
    marker = fence["marker"] or ""
    prefix = fence["prefix"] + " " * len(marker)
    separator = "" if text.endswith("\n") else "\n"
    return f"{text}{separator}{prefix}{opening}"


def _last_block_start(text: str, low: int) -> int:
    """Index where the leaf block holding the end of ``text`` starts (not before ``low``)."""
    position = len(text.rstrip(" \t"))  # an unfinished whitespace line is no blank line
    if position and text[position - 1] == "\n":
        position -= 1
    last = True
    while position > low:
        newline = text.rfind("\n", low, position)
        line_start = low if newline < 0 else newline + 1
        terminated = "\n" in text[position : position + 1]
        if _BLANK_LINE_RE.fullmatch(text, line_start, position):
            return position
        if _SINGLE_LINE_BLOCK_RE.match(text, line_start, position):
            # A heading or table row ends at its line break.
            return line_start if last and not terminated else position
        if _LIST_ITEM_RE.match(text, line_start, position):
            return line_start
        if newline < 0:
            break
        position = newline
        last = False
    return low


def _scan_inline(text: str, start: int) -> _InlineScan:
    """Scan ``text[start:]`` (one leaf block) for unclosed inline constructs."""
    scan = _InlineScan()
    brackets: list[int] = []
    index = _skip_line_lead(text, start)
    while (found := _SPECIAL_RE.search(text, index)) is not None:
        index = found.start()
        char = text[index]
        if char == "\\":
            index += 2
        elif char == "\n":
            index = _skip_line_lead(text, index + 1)
        elif char == "`":
            index = _scan_code_span(text, index, scan)
            if scan.code_start is not None:
                break
        elif char == "[":
            brackets.append(index)
            index += 1
        elif char == "]":
            index = _scan_bracket_close(text, index, brackets, scan)
            if scan.link is not None:
                break
        else:
            index = _scan_delimiter_run(text, index, scan.openers)
    if brackets and scan.link is None:
        link_start = _link_start(text, brackets[-1])
        if link_start is not None:
            scan.link = (link_start, brackets[-1] + 1, len(text))
    return scan


def _skip_line_lead(text: str, index: int) -> int:
    """Skip indentation, quote markers, a list bullet or heading hashes at a line start."""
    match = _LINE_LEAD_RE.match(text, index)
    return match.end() if match else index


def _scan_code_span(text: str, index: int, scan: _InlineScan) -> int:
    """Skip a code span starting at ``index``; record it in ``scan`` when unclosed."""
    ticks = _run_length(text, index)
    closer = re.compile(f"(?<!`){'`' * ticks}(?!`)").search(text, index + ticks)
    if closer is None:
        scan.code_start, scan.code_ticks = index, ticks
        return len(text)
    return closer.end()


def _scan_bracket_close(text: str, index: int, brackets: list[int], scan: _InlineScan) -> int:
    """Handle ``]``: skip a complete ``](url)``; record an unfinished one in ``scan``."""
    if not brackets:
        return index + 1
    opener = brackets.pop()
    if index + 1 == len(text):  # "[text]" at the very end: a link's "(" may follow
        start = _link_start(text, opener)
        if start is not None:
            scan.link = (start, opener + 1, index)
        return index + 1
    if not text.startswith("(", index + 1):
        return index + 1
    depth = 0
    for position in range(index + 2, len(text)):
        char = text[position]
        if char == "\n":
            return index + 1  # a destination never spans lines: not a link
        if char == "(":
            depth += 1
        elif char == ")":
            if depth == 0:
                return position + 1
            depth -= 1
    start = opener - 1 if opener > 0 and text[opener - 1] == "!" else opener
    scan.link = (start, opener + 1, index)
    return len(text)


def _link_start(text: str, bracket: int) -> int | None:
    """Start of the link (or image) whose ``[`` is at ``bracket``, if it starts a word."""
    start = bracket - 1 if bracket > 0 and text[bracket - 1] == "!" else bracket
    return start if start == 0 or text[start - 1].isspace() else None


def _scan_delimiter_run(text: str, index: int, openers: list[_Opener]) -> int:
    """Match a run of ``*``, ``_``, ``~`` or ``|`` against ``openers`` (CommonMark-ish)."""
    marker = text[index]
    length = _run_length(text, index)
    end = index + length
    if marker in "~|" and length != 2:
        return end  # only ``~~`` strikes through; only ``||`` marks a spoiler
    if marker == "|":
        for position in range(len(openers) - 1, -1, -1):
            if openers[position].marker == "|":
                del openers[position]
                return end
        openers.append(_Opener("|", 2, index, end))
        return end
    before = text[index - 1] if index > 0 else None
    after = text[end] if end < len(text) else None
    can_open, can_close = _flanking(marker, before, after)
    if can_close:
        length = _close_run(marker, length, openers)
    if length and can_open:
        openers.append(_Opener(marker, length, end - length, end))
    return end


def _close_run(marker: str, length: int, openers: list[_Opener]) -> int:
    """Consume a closing run of ``length`` markers; return how many are left."""
    while length:
        position = next(
            (p for p in range(len(openers) - 1, -1, -1) if openers[p].marker == marker), None
        )
        if position is None:
            break
        del openers[position + 1 :]  # openers between the pair stay literal
        opener = openers[position]
        used = 2 if length >= 2 and opener.count >= 2 else 1
        opener.count -= used
        length -= used
        if opener.count <= 0:
            openers.pop()
    return length


def _flanking(marker: str, before: str | None, after: str | None) -> tuple[bool, bool]:
    """Return (can_open, can_close) for a delimiter run between ``before`` and ``after``."""
    left = not _is_space(after) and (not _is_punct(after) or _is_space(before) or _is_punct(before))
    right = not _is_space(before) and (
        not _is_punct(before) or _is_space(after) or _is_punct(after)
    )
    if marker == "_":
        return left and (not right or _is_punct(before)), right and (not left or _is_punct(after))
    if marker == "*" and left and right:
        # "2*3" and "a*b" are arithmetic far more often than emphasis, but CJK
        # text puts emphasis inside a "word" ("这是**重点**"): open there only.
        ascii_word = bool(before and before.isascii() and before.isalnum())
        return not ascii_word, True
    return left, right


def _apply_closers(text: str, scan: _InlineScan) -> str:
    """Drop markers with nothing after them, then append the closers still missing."""
    openers = list(scan.openers)
    code_closer = ""
    if scan.code_start is not None:
        body = text[scan.code_start + scan.code_ticks :].rstrip()
        if body:
            # A closer right after a backtick would lengthen that run instead.
            code_closer = (" " if body.endswith("`") else "") + "`" * scan.code_ticks
        else:
            text = text[: scan.code_start]
    while openers and not code_closer and not text[openers[-1].end :].strip():
        text = text[: openers.pop().start]
    if not openers and not code_closer:
        return text
    if not code_closer and openers[-1].marker in "~|":
        text = text.rstrip()
        if text.endswith(openers[-1].marker):  # the closer is half typed: "~~a~"
            text = text[:-1]
    closers = "".join(opener.marker * opener.count for opener in reversed(openers))
    return text.rstrip() + code_closer + closers


def _run_length(text: str, index: int) -> int:
    """Length of the run of ``text[index]`` characters starting at ``index``."""
    end = index
    while end < len(text) and text[end] == text[index]:
        end += 1
    return end - index


def _is_space(char: str | None) -> bool:
    """True for whitespace and for the text's edges (CommonMark flanking rules)."""
    return char is None or char.isspace()


def _is_punct(char: str | None) -> bool:
    """True for Unicode punctuation or symbols (CommonMark's punctuation class)."""
    return char is not None and unicodedata.category(char)[0] in "PS"
