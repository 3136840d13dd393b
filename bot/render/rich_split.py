"""Split rich Markdown that is over Telegram's limits into several rich messages.

An answer over one rich message's limits (:class:`~bot.render.rich_limits.RichLimits`)
continues in the next message. Cuts fall between top-level blocks, so a fenced code
block, a table, a formula, a quotation or a ``<details>`` block is never cut open. A
single block over the limits is split inside with its structure closed and opened
again in each part:

- a code block: into several code blocks with the same opening fence (an indented one
  becomes fenced);
- a table: into several tables, each repeating the header and delimiter rows;
- a list: between items (an ordered list's next part starts at the right number); one
  item over the limits is split like a document and each part set in the same marker;
- a block quote: its content split like a document, each part quoted again;
- a ``<details>`` block: its body split like a document, each part in the same
  ``<details><summary>…</summary>`` and ``</details>``;
- a block nested deeper than the depth limit is shown as a code block of its source;
- anything else (one huge paragraph): cut at the last line break, else space, that
  keeps the part within the limits, the part's open inline structures closed
  (:func:`bot.render.rich_close.close_rich_markdown`).

Parts are packed greedily (sizes of whole blocks added up), then measured again; a part
holding a footnote reference is sanitised again (its definition may have gone to
another part, and a dangling reference is escaped). A part still over the limits is cut
as text, and what cannot fit even so (only hostile input) is sent as code blocks of its
source. Pure; never raises for valid limits.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, replace

from bot.render.rich_close import close_rich_markdown
from bot.render.rich_limits import RichLimits, RichSize, measure_rich, measure_units
from bot.render.rich_parse import ByteOffsets, Ev, clean_source, parse
from bot.render.rich_sanitize import fenced, sanitize_rich_markdown

__all__ = ["split_rich_markdown"]

_MIN_BYTES, _MIN_BLOCKS, _MIN_DEPTH = 256, 8, 4
_MARKER_RE = re.compile(r"([ \t]{0,3})([-*+]|\d{1,9}[.)])([ \t]+|(?=\n)|\Z)")
_NUMBER_RE = re.compile(r"([ \t]{0,3})(\d{1,9})(?=[.)])")
_QUOTE_RE = re.compile(r"[ \t]{0,3}> ?")
_TAG_RE = re.compile(r"<(/?)details\b", re.I)
_SEPARATOR = "\n\n"
_BREAKS = (" ", "。", "！", "？", "；", "，", "、")


@dataclass(frozen=True)
class _Piece:
    text: str
    size: RichSize


def split_rich_markdown(markdown: str, limits: RichLimits | None = None) -> list[str]:
    """Split ``markdown`` (sanitised rich Markdown) into messages each within ``limits``.

    Returns ``[]`` for blank text and ``[markdown]`` when it fits. See the module
    docstring for where it cuts.

    Raises:
        ValueError: limits too small to hold any structure (``max_bytes`` < 256,
            ``max_blocks`` < 8 or ``max_depth`` < 4).
    """
    limits = limits or RichLimits()
    if (
        limits.max_bytes < _MIN_BYTES
        or limits.max_blocks < _MIN_BLOCKS
        or limits.max_depth < _MIN_DEPTH
    ):
        raise ValueError("rich limits too small: max_bytes>=256, max_blocks>=8, max_depth>=4")
    text = clean_source(markdown)
    if not text.strip():
        return []
    total, units = measure_units(text)
    if total.fits(limits):
        return [text]
    return _split_units(units, limits)


def _split_document(text: str, limits: RichLimits) -> list[str]:
    """Split a document into parts within ``limits`` (each re-sanitised and verified)."""
    return _split_units(measure_units(text)[1], limits)


def _split_units(units: list[tuple[str, RichSize]], limits: RichLimits) -> list[str]:
    pieces: list[_Piece] = []
    for unit, size in units:
        if not unit.strip():
            continue
        if size.fits(limits):
            pieces.append(_Piece(unit, size))
        else:
            pieces.extend(_measured(_split_unit(unit, measure_rich(unit), limits)))
    parts: list[str] = []
    for chunk in _pack(pieces, limits):
        part = sanitize_rich_markdown(chunk) if "[^" in chunk else chunk
        if measure_rich(part).fits(limits):
            parts.append(part)
        else:
            parts.extend(_cut_lines(part, limits))
    return parts


def _measured(texts: list[str]) -> list[_Piece]:
    return [_Piece(text, measure_rich(text)) for text in texts if text.strip()]


def _split_unit(unit: str, size: RichSize, limits: RichLimits) -> list[str]:
    """Split one top-level block over the limits (see the module docstring)."""
    events = parse(unit)
    first = next((ev for ev in events if ev.kind == "Start"), None)
    if first is None:
        return _cut_lines(unit, limits)
    if size.depth > limits.max_depth or size.table_columns > limits.max_table_columns:
        return _code_pieces(unit.strip("\n"), limits)
    if first.name == "CodeBlock":
        return _split_code(unit, events, first, limits)
    if first.name == "Table":
        return _split_table(unit, events, limits)
    if first.name == "List":
        return _split_list(unit, events, first, limits)
    if first.name == "BlockQuote":
        return _split_quote(unit, limits)
    if first.name == "HtmlBlock" and _TAG_RE.search(unit):
        return _split_details(unit, events, limits)
    return _cut_lines(unit, limits)


def _pack(pieces: list[_Piece], limits: RichLimits) -> list[str]:
    """Join consecutive pieces into as few chunks as the limits allow (sizes added up)."""
    chunks: list[str] = []
    current: list[str] = []
    total = RichSize(0, 0, 0, 0, 0)
    for piece in pieces:
        grown = _added(total, piece.size, len(_SEPARATOR) if current else 0)
        if current and not grown.fits(limits):
            chunks.append(_SEPARATOR.join(current))
            current, total = [], piece.size
        else:
            total = grown
        current.append(piece.text.strip("\n"))
    if current:
        chunks.append(_SEPARATOR.join(current))
    return chunks


# ----- code blocks ----------------------------------------------------------------------


def _split_code(unit: str, events: list[Ev], first: Ev, limits: RichLimits) -> list[str]:
    """A code block over the limits as several code blocks with the same fence."""
    code = "".join(ev.data for ev in events if ev.kind == "Text")
    if isinstance(first.data, dict):  # fenced: keep its opening line (and language)
        opener = unit.lstrip(" \t").split("\n", 1)[0]
        fence = re.match(r"`+|~+", opener)
        closer = fence[0] if fence else "```"
        language = opener[len(closer) :]
        return _code_pieces(code, limits, fence=closer, language=language)
    return _code_pieces(code, limits)


def _code_pieces(
    code: str, limits: RichLimits, *, fence: str | None = None, language: str = ""
) -> list[str]:
    """``code`` as fenced code blocks of at most ``limits.max_bytes`` each."""
    if fence is None:
        sample = fenced(code)
        fence = sample[: len(sample) - len(sample.lstrip("`"))]
    overhead = 2 * len(fence) + len(language.encode()) + 3
    budget = max(limits.max_bytes - overhead, 16)
    pieces: list[str] = []
    current: list[str] = []
    used = 0
    for line in _hard_lines(code, budget):
        size = len(line.encode())
        if current and used + size > budget:
            pieces.append(_fence(current, fence, language))
            current, used = [], 0
        current.append(line)
        used += size
    if current:
        pieces.append(_fence(current, fence, language))
    return pieces


def _fence(lines: list[str], fence: str, language: str) -> str:
    body = "".join(lines)
    if not body.endswith("\n"):
        body += "\n"
    return f"{fence}{language}\n{body}{fence}"


def _hard_lines(text: str, budget: int) -> list[str]:
    """The lines of ``text`` (ends kept), any line over ``budget`` bytes cut into pieces."""
    lines: list[str] = []
    for line in text.splitlines(keepends=True):
        while len(line.encode()) > budget:
            cut = _char_index_for_bytes(line, budget)
            lines.append(line[:cut] + "\n")
            line = line[cut:]
        lines.append(line)
    return lines


def _char_index_for_bytes(text: str, budget: int) -> int:
    """The largest index whose prefix of ``text`` takes at most ``budget`` UTF-8 bytes (>= 1)."""
    index = len(text.encode()[:budget].decode(errors="ignore"))
    return max(index, 1)


# ----- tables ---------------------------------------------------------------------------


def _split_table(unit: str, events: list[Ev], limits: RichLimits) -> list[str]:
    """A table over the limits as several tables, each with the header and delimiter rows."""
    offsets = ByteOffsets(unit)
    head = next(ev for ev in events if ev.kind == "Start" and ev.name == "TableHead")
    rows = [ev for ev in events if ev.kind == "Start" and ev.name == "TableRow"]
    head_end = offsets.index(head.end)
    delimiter_end = offsets.index(rows[0].start) if rows else len(unit)
    header = unit[offsets.index(head.start) : head_end].rstrip("\n")
    delimiter = unit[head_end:delimiter_end].strip("\n")
    top = f"{header}\n{delimiter}\n"
    row_texts = [
        unit[offsets.index(ev.start) : offsets.index(ev.end)].rstrip("\n") + "\n" for ev in rows
    ]
    budget = limits.max_bytes - len(top.encode())
    max_rows = limits.max_blocks - 2  # the table and its header row
    pieces: list[str] = []
    current: list[str] = []
    used = 0
    for row in row_texts:
        size = len(row.encode())
        if current and (used + size > budget or len(current) >= max_rows):
            pieces.append(top + "".join(current))
            current, used = [], 0
        current.append(row)
        used += size
    if current or not pieces:
        pieces.append(top + "".join(current))
    return pieces


# ----- lists, quotes, details -----------------------------------------------------------


def _split_list(unit: str, events: list[Ev], first: Ev, limits: RichLimits) -> list[str]:
    """A list over the limits as several lists, cut between items."""
    offsets = ByteOffsets(unit)
    items: list[int] = []
    depth = 0
    for ev in events:
        if ev.kind == "Start":
            if depth == 1 and ev.name == "Item":
                items.append(ev.start)
            depth += 1
        elif ev.kind == "End":
            depth -= 1
    starts = [0] + [_line_start(unit, offsets.index(start)) for start in items[1:]]
    bounds = [*starts, len(unit)]
    start_number = first.data if isinstance(first.data, int) else None
    pieces: list[tuple[int, str]] = []  # (ordinal, text)
    for index, (a, b) in enumerate(itertools.pairwise(bounds)):
        item = unit[a:b]
        ordinal = (start_number or 0) + index
        if measure_rich(item).fits(limits):
            pieces.append((ordinal, item))
        else:
            pieces.extend((ordinal, part) for part in _split_item(item, limits))
    groups: list[list[tuple[int, str]]] = []
    total = RichSize(0, 0, 0, 0, 0)
    for ordinal, text in pieces:
        size = measure_rich(text)  # a one-item list: counts its own list block
        grown = replace(_added(total, size, 0), blocks=total.blocks + size.blocks - 1)
        if groups and grown.fits(limits):
            groups[-1].append((ordinal, text))
            total = grown
        else:
            groups.append([(ordinal, text)])
            total = size
    parts: list[str] = []
    for group in groups:
        text = "".join(part for _, part in group).strip("\n")
        number = group[0][0]
        if start_number is not None:
            text = _NUMBER_RE.sub(lambda m: f"{m[1]}{number}", text, count=1)  # noqa: B023
        parts.append(text)
    return parts


def _split_item(item: str, limits: RichLimits) -> list[str]:
    """One list item over the limits: its content split like a document, each part set in
    the item's marker (the first line) and indentation (the others)."""
    marker = _MARKER_RE.match(item)
    if marker is None:
        return _cut_lines(item, limits)
    width = len(marker[0])
    lines = item[width:].split("\n")
    inner = "\n".join([lines[0], *(_dedent(line, width) for line in lines[1:])])
    inner_limits = _reduced(limits, bytes_=width * (inner.count("\n") + 1) + 1, blocks=2, depth=2)
    if inner_limits is None:
        return _code_pieces(item.strip("\n"), limits)
    lead, rest = marker[0], " " * width
    parts = []
    for part in _split_document(inner.strip("\n"), inner_limits):
        first, *others = part.split("\n")
        parts.append("\n".join([lead + first, *((rest + line) if line else "" for line in others)]))
    return parts


def _split_quote(unit: str, limits: RichLimits) -> list[str]:
    """A block quote over the limits: its content split like a document, each part quoted."""
    lines = unit.rstrip("\n").split("\n")
    inner = "\n".join(_unquote(line) for line in lines)
    inner_limits = _reduced(limits, bytes_=2 * len(lines), blocks=1, depth=1)
    if inner_limits is None:
        return _code_pieces(unit.strip("\n"), limits)
    return [
        "\n".join(f"> {line}" if line else ">" for line in part.split("\n"))
        for part in _split_document(inner, inner_limits)
    ]


def _split_details(unit: str, events: list[Ev], limits: RichLimits) -> list[str]:
    """A ``<details>`` block over the limits: its body split like a document, each part
    wrapped in the same opening (with its summary) and ``</details>``."""
    offsets = ByteOffsets(unit)
    blocks: list[tuple[int, int]] = []
    depth = 0
    for ev in events:
        if ev.kind == "Start":
            if depth == 0 and ev.name == "HtmlBlock":
                blocks.append((offsets.index(ev.start), offsets.index(ev.end)))
            depth += 1
        elif ev.kind == "End":
            depth -= 1
    header_end = blocks[0][1]
    footer_start = None
    if len(blocks) > 1 and "</details" in unit[blocks[-1][0] :]:
        footer_start = blocks[-1][0]
    header = unit[:header_end].rstrip("\n")
    footer = unit[footer_start:].strip("\n") if footer_start is not None else "</details>"
    body = unit[header_end : footer_start if footer_start is not None else len(unit)]
    overhead = len(header.encode()) + len(footer.encode()) + 4
    inner_limits = _reduced(limits, bytes_=overhead, blocks=3, depth=1)
    if inner_limits is None or not body.strip():
        return _code_pieces(unit.strip("\n"), limits)
    return [
        f"{header}\n\n{part.strip(chr(10))}\n\n{footer}"
        for part in _split_document(body.strip("\n"), inner_limits)
    ]


# ----- the fallback: cutting text ---------------------------------------------------------


def _cut_lines(text: str, limits: RichLimits) -> list[str]:
    """Cut ``text`` into parts within ``limits``: each the longest prefix ending at a line
    break (else a space, else anywhere) whose closed form fits; a part that cannot fit is
    sent as code."""
    parts: list[str] = []
    rest = text.strip("\n")
    while rest.strip():
        whole = _closed(rest)
        if measure_rich(whole).fits(limits):
            parts.append(whole)
            break
        inside = _inline_spans(rest)
        cut = None
        for points in (
            _cut_points(rest, "\n"),
            _space_points(rest.split("\n", 1)[0]),
            _char_points(rest, limits),
        ):
            cut = _longest_fitting(rest, [p for p in points if not _within(p, inside)], limits)
            if cut is not None:
                break
        if cut is None:
            parts.extend(_code_pieces(rest, limits))
            break
        parts.append(_closed(rest[:cut]))
        rest = rest[cut:].lstrip("\n")
    return [part for part in parts if part.strip()]


def _inline_spans(text: str) -> list[tuple[int, int]]:
    """``str`` ranges of the links, code spans, formulas and tags of ``text``: no cut there."""
    offsets = ByteOffsets(text)
    return [
        (offsets.index(ev.start), offsets.index(ev.end))
        for ev in parse(text)
        if ev.kind in ("Code", "InlineMath", "DisplayMath", "InlineHtml")
        or (ev.kind == "Start" and ev.name in ("Link", "Image"))
    ]


def _within(point: int, spans: list[tuple[int, int]]) -> bool:
    return any(start < point < end for start, end in spans)


def _closed(text: str) -> str:
    """``text`` as a complete part: open structures closed, then sanitised."""
    return sanitize_rich_markdown(close_rich_markdown(text.strip("\n")))


def _longest_fitting(text: str, points: list[int], limits: RichLimits) -> int | None:
    """The largest cut point whose closed prefix fits (binary search), or None."""
    low, high, best = 0, len(points) - 1, None
    while low <= high:
        middle = (low + high) // 2
        point = points[middle]
        head = _closed(text[:point])
        if head.strip() and measure_rich(head).fits(limits):
            best, low = point, middle + 1
        else:
            high = middle - 1
    return best


def _cut_points(text: str, separator: str) -> list[int]:
    """Indices just after each ``separator`` in ``text`` (not at its end)."""
    points = []
    index = text.find(separator)
    while 0 <= index < len(text) - 1:
        points.append(index + 1)
        index = text.find(separator, index + 1)
    return points


def _space_points(line: str) -> list[int]:
    """Indices after each space or CJK punctuation mark of ``line``."""
    return [i + 1 for i, char in enumerate(line[:-1]) if char in _BREAKS]


def _char_points(text: str, limits: RichLimits) -> list[int]:
    """Hard cut points: every 64th character up to the byte budget, and the budget's end."""
    end = _char_index_for_bytes(text, limits.max_bytes)
    return [*range(64, end, 64), end]


# ----- helpers --------------------------------------------------------------------------


def _added(total: RichSize, size: RichSize, separator: int) -> RichSize:
    """The size of two texts joined by ``separator`` bytes (counts added, depths maxed)."""
    return RichSize(
        total.bytes + size.bytes + separator,
        total.blocks + size.blocks,
        max(total.depth, size.depth),
        total.media + size.media,
        max(total.table_columns, size.table_columns),
    )


def _reduced(limits: RichLimits, *, bytes_: int, blocks: int, depth: int) -> RichLimits | None:
    """``limits`` less what a wrapper takes; None when too little is left to split into."""
    reduced = replace(
        limits,
        max_bytes=limits.max_bytes - bytes_,
        max_blocks=limits.max_blocks - blocks,
        max_depth=limits.max_depth - depth,
    )
    if (
        reduced.max_bytes < _MIN_BYTES // 2
        or reduced.max_blocks < _MIN_BLOCKS // 2
        or reduced.max_depth < 2
    ):
        return None
    return reduced


def _unquote(line: str) -> str:
    """``line`` without its block quote marker (a lazy line has none)."""
    marker = _QUOTE_RE.match(line)
    return line[marker.end() :] if marker else line


def _line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


def _dedent(line: str, width: int) -> str:
    """``line`` without up to ``width`` columns of leading spaces."""
    stripped = line.lstrip(" ")
    return line[min(width, len(line) - len(stripped)) :]
