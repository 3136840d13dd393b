"""Value types of the reply renderer: a rendered frame and UTF-16 helpers.

Telegram measures text length and entity offsets in UTF-16 code units
(https://core.telegram.org/api/entities#entity-length): a character outside the
Basic Multilingual Plane (most emoji) takes two units, every other one takes one.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from telegram import MessageEntity

__all__ = [
    "Rendered",
    "Span",
    "Utf16Index",
    "copy_entity",
    "entity_key",
    "span_of",
    "to_entity",
    "utf16_len",
]

_ASTRAL_RE = re.compile("[\U00010000-\U0010ffff]")


def utf16_len(text: str) -> int:
    """Return the length of ``text`` in UTF-16 code units (Telegram's unit)."""
    if text.isascii():
        return len(text)
    # surrogatepass: a lone surrogate counts as one unit instead of raising.
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def entity_key(entity: MessageEntity) -> tuple[object, ...]:
    """Return every field of ``entity`` that changes how Telegram shows it.

    PTB compares entities by (type, offset, length) only; a frame whose code
    block changed language, or whose link changed URL, must compare unequal.
    """
    return (
        entity.type,
        entity.offset,
        entity.length,
        entity.url,
        entity.language,
        entity.custom_emoji_id,
        entity.user.id if entity.user is not None else None,
    )


def copy_entity(entity: MessageEntity, *, offset: int, length: int) -> MessageEntity:
    """Return a copy of ``entity`` moved to ``offset`` with ``length`` (UTF-16 units).

    Every other field (url, language, custom_emoji_id, user, ...) is kept, so a
    ``pre`` entity cut in two keeps its language in both halves.
    """
    return MessageEntity(
        type=entity.type,
        offset=offset,
        length=length,
        url=entity.url,
        user=entity.user,
        language=entity.language,
        custom_emoji_id=entity.custom_emoji_id,
        date_time_format=entity.date_time_format,
        unix_time=entity.unix_time,
    )


class Span(NamedTuple):
    """An entity while a frame is assembled: cheap to shift and clip.

    Building a PTB ``MessageEntity`` costs ~15 µs (its attributes are frozen
    one by one), so frames carry spans and build entities once, at the end.
    """

    offset: int  # UTF-16 units
    length: int  # UTF-16 units
    type: str
    url: str | None = None
    language: str | None = None
    custom_emoji_id: str | None = None
    source: MessageEntity | None = None  # keeps fields spans do not model (user, ...)


def span_of(entity: MessageEntity) -> Span:
    """The span of a PTB ``entity`` (the entity itself is kept for its other fields)."""
    return Span(
        entity.offset,
        entity.length,
        entity.type,
        entity.url,
        entity.language,
        entity.custom_emoji_id,
        entity,
    )


def to_entity(span: Span) -> MessageEntity:
    """The PTB ``MessageEntity`` of ``span``; identical spans share one frozen entity."""
    source = span.source
    if source is None:
        return _entity(
            span.type, span.offset, span.length, span.url, span.language, span.custom_emoji_id
        )
    if source.offset == span.offset and source.length == span.length:
        return source
    return copy_entity(source, offset=span.offset, length=span.length)


@lru_cache(maxsize=8192)
def _entity(
    entity_type: str,
    offset: int,
    length: int,
    url: str | None,
    language: str | None,
    custom_emoji_id: str | None,
) -> MessageEntity:
    """Build (once per distinct value) an immutable PTB entity; frames repeat most entities."""
    return MessageEntity(
        entity_type, offset, length, url=url, language=language, custom_emoji_id=custom_emoji_id
    )


@dataclass(frozen=True, eq=False)
class Rendered:
    """One Telegram message body: plain ``text`` plus ``entities`` (no parse mode).

    Entity offsets and lengths are UTF-16 code units into ``text``; send it as
    ``send_message(text=r.text, entities=r.entities)``. Two frames are equal when
    their texts and all visible entity fields are equal (see :func:`entity_key`),
    so a scheduler can skip an edit that would change nothing.
    """

    text: str
    entities: tuple[MessageEntity, ...] = ()

    @property
    def utf16_length(self) -> int:
        """Length of ``text`` in UTF-16 code units (Telegram limits: 4096 per message)."""
        return utf16_len(self.text)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Rendered):
            return NotImplemented
        return self.text == other.text and [entity_key(e) for e in self.entities] == [
            entity_key(e) for e in other.entities
        ]

    def __hash__(self) -> int:
        return hash((self.text, tuple(entity_key(e) for e in self.entities)))


class Utf16Index:
    """Maps between Python string indices and UTF-16 offsets of one text in O(log k).

    Built once per text in O(n) (a C-speed regex scan for astral characters);
    ``k`` is the number of astral characters (two UTF-16 units each).
    """

    __slots__ = ("_astral_units", "length", "total")

    def __init__(self, text: str) -> None:
        astral = [] if text.isascii() else [m.start() for m in _ASTRAL_RE.finditer(text)]
        # UTF-16 offset at which the j-th astral character starts.
        self._astral_units = [index + j for j, index in enumerate(astral)]
        self.length = len(text)
        self.total = len(text) + len(astral)

    def units_at(self, index: int) -> int:
        """UTF-16 offset of the character at Python ``index`` (``len`` maps to the total)."""
        if not self._astral_units:
            return index
        # Astral characters before ``index`` each add one extra unit.
        low, high = 0, len(self._astral_units)
        while low < high:
            mid = (low + high) // 2
            if self._astral_units[mid] - mid < index:
                low = mid + 1
            else:
                high = mid
        return index + low

    def floor_index(self, units: int) -> int:
        """Largest Python index whose UTF-16 offset is <= ``units`` (clamped to the text)."""
        if units >= self.total:
            return self.length
        if not self._astral_units:
            return max(units, 0)
        before = bisect_left(self._astral_units, units)
        if before and self._astral_units[before - 1] + 1 == units:
            # ``units`` falls between the two halves of a surrogate pair.
            return self._astral_units[before - 1] - (before - 1)
        return units - before
