"""Split one rendered reply into Telegram-sized messages.

Telegram accepts at most 4096 UTF-16 code units of text per message and shows at
most ~100 entities (the rest are silently dropped); see
https://core.telegram.org/bots/api#sendmessage and docs/telegram.md.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right

from bot.render.types import Rendered, Span, Utf16Index, span_of, to_entity

__all__ = ["split_rendered", "split_spans"]

# Cut points in order of preference: after a paragraph, a line, a space, then
# after CJK sentence punctuation (CJK text has no spaces).
_SEPARATORS = ("\n\n", "\n", " ", "。", "！", "？", "；", "，")


def split_rendered(
    rendered: Rendered, *, max_units: int = 4096, max_entities: int = 100
) -> list[Rendered]:
    """Split ``rendered`` into parts of <= ``max_units`` UTF-16 units and <= ``max_entities``.

    Cuts on the rendered text, preferring (within the second half of the
    allowed window) a paragraph break, then a line break, then a space, then a
    hard cut; a cut always falls after the separator and never inside a
    surrogate pair, so the parts' texts concatenate to ``rendered.text``
    exactly. The one exception: a whitespace-only piece (possible only when a
    whitespace run is longer than the window) is merged into the previous part
    when it fits, else dropped, because Telegram rejects blank messages.
    Entities crossing a cut are clipped into both parts with offsets rebased
    (all other fields, such as a ``pre`` entity's language, are kept). Returns
    ``[]`` for blank text. O(n + k log k) for n characters and k entities.

    Raises:
        ValueError: ``max_units`` < 2 (an emoji needs 2 units) or ``max_entities`` < 1.
    """
    spans = [span_of(entity) for entity in rendered.entities]
    parts = split_spans(rendered.text, spans, max_units=max_units, max_entities=max_entities)
    if len(parts) == 1 and parts[0][0] is rendered.text and len(spans) <= max_entities:
        return [rendered]
    return [
        Rendered(text, tuple(to_entity(span) for span in part_spans)) for text, part_spans in parts
    ]


def split_spans(
    text: str, spans: list[Span], *, max_units: int, max_entities: int
) -> list[tuple[str, list[Span]]]:
    """:func:`split_rendered` on a text and its spans (see there); spans come back rebased."""
    if max_units < 2 or max_entities < 1:
        raise ValueError("max_units must be >= 2 and max_entities >= 1")
    if not text.strip():
        return []
    index = Utf16Index(text)
    spans = sorted(spans, key=lambda s: (s.offset, -s.length))
    if index.total <= max_units and len(spans) <= max_entities:
        return [(text, spans)]
    ranges = _cut_ranges(text, index, spans, max_units=max_units, max_entities=max_entities)
    ranges = _merge_blank_ranges(
        text, index, ranges, spans, max_units=max_units, max_entities=max_entities
    )
    return [
        (part_text, part_spans[:max_entities])
        for part_text, part_spans in _assign_spans(text, index, ranges, spans)
    ]


def _cut_ranges(
    text: str,
    index: Utf16Index,
    spans: list[Span],
    *,
    max_units: int,
    max_entities: int,
) -> list[tuple[int, int]]:
    """Greedy cut positions: Python index ranges ``[start, end)`` covering ``text``."""
    starts = [span.offset for span in spans]
    open_ends: list[int] = []  # heap of the ends of entities begun before the cut
    pending = 0
    ranges: list[tuple[int, int]] = []
    start = 0
    while start < len(text):
        start_units = index.units_at(start)
        while pending < len(spans) and starts[pending] < start_units:
            heapq.heappush(open_ends, starts[pending] + spans[pending].length)
            pending += 1
        while open_ends and open_ends[0] <= start_units:
            heapq.heappop(open_ends)
        hard_end = index.floor_index(start_units + max_units)
        # Entities begun in this part may number max_entities minus those carried in.
        hard_end = min(
            hard_end, _entity_limit(index, starts, start_units, max_entities - len(open_ends))
        )
        if hard_end >= len(text):
            ranges.append((start, len(text)))
            break
        end = _choose_cut(text, start, max(hard_end, start + 1))
        ranges.append((start, end))
        start = end
    return ranges


def _entity_limit(index: Utf16Index, starts: list[int], start_units: int, allowed: int) -> int:
    """Python index before which at most ``allowed`` new entities start (past the part start).

    If more entities than allowed start right at the part start, the part ends
    before the next later one; the caller truncates that (pathological) part.
    """
    first_new = bisect_left(starts, start_units)
    limit = first_new + max(allowed, 0)
    if limit >= len(starts):
        return index.length
    if starts[limit] > start_units:
        return index.floor_index(starts[limit])
    later = bisect_right(starts, start_units)
    return index.floor_index(starts[later]) if later < len(starts) else index.length


def _choose_cut(text: str, start: int, hard_end: int) -> int:
    """Best cut in ``(start, hard_end]``: a separator late in the window, else a hard cut."""
    for low in (start + (hard_end - start) // 2, start):
        for separator in _SEPARATORS:
            found = text.rfind(separator, low, hard_end)
            if found >= 0 and found + len(separator) > start:
                return found + len(separator)
    return hard_end


def _merge_blank_ranges(
    text: str,
    index: Utf16Index,
    ranges: list[tuple[int, int]],
    spans: list[Span],
    *,
    max_units: int,
    max_entities: int,
) -> list[tuple[int, int]]:
    """Fold whitespace-only ranges into the previous range when it fits, else drop them."""
    merged: list[tuple[int, int]] = []
    for start, end in ranges:
        if text[start:end].strip():
            merged.append((start, end))
            continue
        if not merged or merged[-1][1] != start:
            continue
        low, high = index.units_at(merged[-1][0]), index.units_at(end)
        # Rare (a whitespace run longer than the window), so a linear count is fine.
        count = sum(1 for s in spans if s.offset < high and s.offset + s.length > low)
        if high - low <= max_units and count <= max_entities:
            merged[-1] = (merged[-1][0], end)
    return merged


def _assign_spans(
    text: str,
    index: Utf16Index,
    ranges: list[tuple[int, int]],
    spans: list[Span],
) -> list[tuple[str, list[Span]]]:
    """Clip the sorted ``spans`` into each range, rebasing offsets to the part."""
    parts: list[tuple[str, list[Span]]] = []
    active: list[Span] = []
    pending = 0
    for start, end in ranges:
        start_units, end_units = index.units_at(start), index.units_at(end)
        while pending < len(spans) and spans[pending].offset < end_units:
            active.append(spans[pending])
            pending += 1
        active = [s for s in active if s.offset + s.length > start_units]
        clipped = [
            s._replace(
                offset=max(s.offset, start_units) - start_units,
                length=min(s.offset + s.length, end_units) - max(s.offset, start_units),
            )
            for s in active
        ]
        parts.append((text[start:end], clipped))
    return parts
