"""Images for vision models: re-encode what users send, and group albums into one turn.

:func:`prepare_image` turns whatever a user sent (JPEG, PNG, WebP, GIF …, up to the
20 MB ``getFile`` limit, docs/telegram.md "Limits") into a JPEG whose longer side is at
most 1568 px: the size past which Anthropic's vision guide says models gain nothing
and OpenAI's "high" detail tiles the image down anyway, so a larger upload only costs
bandwidth and tokens.

:class:`AlbumCollector` groups an album: Telegram sends each photo of an album as its
own update with the same ``media_group_id`` (docs/telegram.md "PTB architecture notes").
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from PIL import Image, ImageOps
from telegram import Bot

from providers.types import ImagePart

__all__ = ["AlbumCollector", "AlbumSlot", "ImageError", "prepare_image"]

MAX_SIDE = 1568
"""Pixels on the longer side of a prepared image."""
MAX_PIXELS = 60_000_000
"""Images with more pixels than this (about 7700 × 7700) are refused before decoding."""

T = TypeVar("T")
_WIDER = {"P": "RGBA", "1": "L"}


class ImageError(ValueError):
    """The bytes are not an image Pillow can read (or one too large to decode safely)."""


def prepare_image(data: bytes, *, max_side: int = MAX_SIDE, quality: int = 85) -> ImagePart:
    """Decode ``data``, upright it, and re-encode it as a JPEG no larger than ``max_side``.

    Applies the EXIF orientation tag (phones store pictures sideways plus a tag),
    flattens transparency onto white, converts to RGB, downscales so the longer side
    is ≤ ``max_side`` px (never upscales), and encodes a JPEG at ``quality`` (1–95).
    CPU-bound: call it through ``asyncio.to_thread`` from async code.
    Raises :class:`ImageError` when ``data`` is not a readable image.
    """
    try:
        with Image.open(io.BytesIO(data)) as opened:
            width, height = opened.size
            if width * height > MAX_PIXELS:
                raise ImageError(f"the image has too many pixels ({width}×{height})")
            # palette and 1-bit images would be resized with NEAREST: widen them first
            image = opened.convert(_WIDER[opened.mode]) if opened.mode in _WIDER else opened
            image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            rgb = _flatten(ImageOps.exif_transpose(image))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        if isinstance(exc, ImageError):
            raise
        raise ImageError(f"not a readable image: {exc}") from exc
    out = io.BytesIO()
    rgb.save(out, format="JPEG", quality=quality, optimize=True)
    return ImagePart(out.getvalue(), "image/jpeg")


async def fetch_images(bot: Bot, file_ids: tuple[str, ...]) -> tuple[ImagePart, ...]:
    """Download the images ``file_ids`` name again and prepare them (for ``/retry``).

    Raises ``telegram.error.TelegramError`` when Telegram refuses a file and
    :class:`ImageError` when one cannot be decoded.
    """
    parts = []
    for file_id in file_ids:
        data = await (await bot.get_file(file_id)).download_as_bytearray()
        parts.append(await asyncio.to_thread(prepare_image, bytes(data)))
    return tuple(parts)


def _flatten(image: Image.Image) -> Image.Image:
    """``image`` in RGB; transparent pixels become white (not black, as a bare convert does)."""
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image if image.mode == "RGB" else image.convert("RGB")


AlbumKey = tuple[int, str]
"""``(chat_id, media_group_id)``: one album of one chat."""


@dataclass
class _Album(Generic[T]):
    """The updates of one album seen so far; ``None`` marks a slot still being filled."""

    slots: list[T | None]
    filled: list[bool]
    last_join: float
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class AlbumSlot(Generic[T]):
    """One update's place in an album; ``first`` is True for the update that runs the turn."""

    def __init__(
        self, collector: AlbumCollector[T], key: AlbumKey | None, album: _Album[T], index: int
    ) -> None:
        self._collector = collector
        self._key = key
        self._album = album
        self._index = index
        self.first = index == 0

    def fill(self, item: T | None) -> None:
        """Give this update's item; ``None`` when it brings nothing (its image failed)."""
        self._album.slots[self._index] = item
        self._album.filled[self._index] = True
        self._album.changed.set()

    async def collect(self) -> list[T]:
        """The album's items in arrival order, once it is complete; call it on the first slot.

        Complete means: ``window`` seconds passed since the last update joined and every
        slot was filled — or ``give_up`` seconds passed since this call (a slot whose
        handler failed is then left out). The album is forgotten afterwards; an update
        of the same album arriving later starts a new one.
        """
        return await self._collector._collect(self._key, self._album)


class AlbumCollector(Generic[T]):
    """Groups the updates of one album so that only the first one runs a turn.

    Each update calls :meth:`join` (before its slow download, so the window does not
    close while it downloads), then :meth:`AlbumSlot.fill`; the first update's
    handler awaits :meth:`AlbumSlot.collect` and answers with every item. An update
    without ``media_group_id`` (``key=None``) gets a slot of its own.

    Kept in this process on purpose: with several webhook replicas, photos of one album
    may reach different processes and are then answered as separate turns. Because
    updates of one (chat, user) run one after another (:mod:`bot.app.ordering`), the first
    handler must ``collect`` in a task of its own, not inline, or it would wait for
    updates queued behind itself.
    """

    def __init__(
        self,
        *,
        window: float = 1.0,
        give_up: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window = window
        self.give_up = give_up
        self._clock = clock
        self._albums: dict[AlbumKey, _Album[T]] = {}

    def join(self, key: AlbumKey | None, *, start: bool = True) -> AlbumSlot[T] | None:
        """A slot in the album ``key``; ``None`` when there is no such album and not ``start``.

        ``start=False`` lets an update join an album another update started but not
        start one (a group album is answered when its captioned photo addresses the bot).
        """
        now = self._clock()
        self._forget_stale(now)
        album = self._albums.get(key) if key is not None else None
        if album is None:
            if not start:
                return None
            album = _Album[T](slots=[], filled=[], last_join=now)
            if key is not None:
                self._albums[key] = album
        album.slots.append(None)
        album.filled.append(False)
        album.last_join = now
        album.changed.set()
        return AlbumSlot(self, key, album, len(album.slots) - 1)

    def __len__(self) -> int:
        """The number of albums still being collected."""
        return len(self._albums)

    async def _collect(self, key: AlbumKey | None, album: _Album[T]) -> list[T]:
        deadline = self._clock() + self.give_up
        window = self.window if key is not None else 0.0  # a lone photo has nothing to wait for
        while True:
            now = self._clock()
            quiet_in = album.last_join + window - now
            if (quiet_in <= 0 and all(album.filled)) or now >= deadline:
                break
            album.changed.clear()
            wait = quiet_in if quiet_in > 0 else deadline - now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(album.changed.wait(), timeout=wait)
        if key is not None and self._albums.get(key) is album:
            del self._albums[key]
        return [item for item in album.slots if item is not None]

    def _forget_stale(self, now: float) -> None:
        """Drop albums nobody collected (their first update was refused) after ``give_up``."""
        stale = [k for k, a in self._albums.items() if now - a.last_join > self.give_up]
        for key in stale:
            del self._albums[key]
