"""Tests for bot.conversation.images: preparing images for vision models and collecting albums."""

from __future__ import annotations

import asyncio
import io
import time

import pytest
from PIL import Image

from bot.conversation.images import MAX_SIDE, AlbumCollector, ImageError, prepare_image

JPEG_MAGIC = b"\xff\xd8\xff"
ORIENTATION = 0x0112  # EXIF tag; 6 = "rotate 90° clockwise to display"


def encoded(image: Image.Image, fmt: str, **params: object) -> bytes:
    """``image`` encoded as ``fmt``."""
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def decoded(data: bytes) -> Image.Image:
    """The image in ``data``, loaded."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def halves(
    size: tuple[int, int], left: tuple[int, int, int], right: tuple[int, int, int]
) -> Image.Image:
    """An RGB image whose left half is ``left`` and right half is ``right``."""
    image = Image.new("RGB", size, right)
    image.paste(left, (0, 0, size[0] // 2, size[1]))
    return image


def close_to(pixel: object, colour: tuple[int, int, int], tolerance: int = 40) -> bool:
    """True when the RGB ``pixel`` is within ``tolerance`` of ``colour`` on every channel."""
    assert isinstance(pixel, tuple)
    return all(abs(int(a) - b) <= tolerance for a, b in zip(pixel, colour, strict=True))


def test_large_png_is_downscaled_to_a_jpeg() -> None:
    """A 4000×3000 PNG becomes a JPEG whose longer side is 1568 px, aspect kept."""
    png = encoded(halves((4000, 3000), (255, 0, 0), (0, 0, 255)), "PNG")
    part = prepare_image(png)
    assert part.mime_type == "image/jpeg"
    assert part.data.startswith(JPEG_MAGIC)
    assert decoded(part.data).size == (MAX_SIDE, 1176)


def test_small_image_is_not_upscaled_and_max_side_is_honoured() -> None:
    """A small image keeps its size; ``max_side`` bounds the longer side when given."""
    jpeg = encoded(Image.new("RGB", (300, 120), (10, 200, 10)), "JPEG")
    assert decoded(prepare_image(jpeg).data).size == (300, 120)
    assert decoded(prepare_image(jpeg, max_side=100).data).size == (100, 40)


def test_exif_orientation_is_applied() -> None:
    """A landscape JPEG tagged orientation 6 comes out portrait, its left half on top."""
    image = halves((400, 200), (255, 0, 0), (0, 0, 255))
    exif = image.getexif()
    exif[ORIENTATION] = 6
    result = decoded(prepare_image(encoded(image, "JPEG", exif=exif.tobytes())).data)
    assert result.size == (200, 400)
    assert close_to(result.getpixel((100, 50)), (255, 0, 0))
    assert close_to(result.getpixel((100, 350)), (0, 0, 255))
    assert ORIENTATION not in result.getexif(), "no tag left to rotate it twice"


def test_exif_orientation_survives_downscaling() -> None:
    """A large JPEG tagged orientation 6 is rotated and downscaled to 1568 px high."""
    image = halves((3200, 1600), (255, 0, 0), (0, 0, 255))
    exif = image.getexif()
    exif[ORIENTATION] = 6
    result = decoded(prepare_image(encoded(image, "JPEG", exif=exif.tobytes())).data)
    assert result.size == (784, MAX_SIDE)


def test_transparent_rgba_becomes_rgb_on_white() -> None:
    """An RGBA PNG becomes an RGB JPEG; fully transparent pixels turn white, opaque ones stay."""
    image = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    image.paste((200, 0, 0, 255), (0, 0, 50, 100))
    result = decoded(prepare_image(encoded(image, "PNG")).data)
    assert result.mode == "RGB"
    assert close_to(result.getpixel((75, 50)), (255, 255, 255))
    assert close_to(result.getpixel((25, 50)), (200, 0, 0))


def test_palette_gif_becomes_rgb_jpeg() -> None:
    """A palette GIF is converted to an RGB JPEG."""
    gif = encoded(Image.new("P", (64, 64), 3), "GIF")
    part = prepare_image(gif)
    assert part.data.startswith(JPEG_MAGIC)
    assert decoded(part.data).mode == "RGB"


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\0" * 40])
def test_garbage_raises_image_error(data: bytes) -> None:
    """Bytes that are not a readable image raise ImageError, a ValueError."""
    with pytest.raises(ImageError) as caught:
        prepare_image(data)
    assert isinstance(caught.value, ValueError)
    assert str(caught.value)


def test_truncated_jpeg_raises_image_error() -> None:
    """A JPEG cut in half raises ImageError rather than an OSError."""
    jpeg = encoded(halves((800, 600), (255, 0, 0), (0, 0, 255)), "JPEG")
    with pytest.raises(ImageError):
        prepare_image(jpeg[: len(jpeg) // 2])


@pytest.mark.timeout(5)
async def test_album_collector_groups_two_updates() -> None:
    """Two updates of one album give one first slot, which collects both items in order."""
    albums: AlbumCollector[str] = AlbumCollector(window=0.05)
    first = albums.join((1, "g"))
    assert first is not None and first.first
    first.fill("a")
    collecting = asyncio.ensure_future(first.collect())
    await asyncio.sleep(0.01)
    second = albums.join((1, "g"), start=False)
    assert second is not None and not second.first
    second.fill("b")
    started = time.monotonic()
    assert await collecting == ["a", "b"]
    assert time.monotonic() - started >= 0.03, "waited for the window after the last update"
    assert len(albums) == 0


@pytest.mark.timeout(5)
async def test_album_waits_for_a_joined_slot_still_downloading() -> None:
    """The album is not complete while a joined slot is unfilled, even after the window."""
    albums: AlbumCollector[str] = AlbumCollector(window=0.01)
    first, second = albums.join((1, "g")), albums.join((1, "g"))
    assert first is not None and second is not None
    first.fill("a")
    collecting = asyncio.ensure_future(first.collect())
    await asyncio.sleep(0.1)
    assert not collecting.done()
    second.fill(None)
    assert await collecting == ["a"]


@pytest.mark.timeout(5)
async def test_album_gives_up_on_a_slot_never_filled() -> None:
    """A slot whose handler never fills it is left out after ``give_up`` seconds."""
    albums: AlbumCollector[str] = AlbumCollector(window=0.01, give_up=0.1)
    first, _never = albums.join((1, "g")), albums.join((1, "g"))
    assert first is not None
    first.fill("a")
    assert await first.collect() == ["a"]


@pytest.mark.timeout(5)
async def test_lone_message_and_other_albums_are_separate() -> None:
    """A message without album collects at once; other chats' albums do not mix in."""
    albums: AlbumCollector[str] = AlbumCollector(window=10.0)
    lone = albums.join(None)
    other = albums.join((2, "g"))
    assert lone is not None and lone.first and other is not None and other.first
    lone.fill("x")
    assert await asyncio.wait_for(lone.collect(), 1) == ["x"]
    assert albums.join(None, start=False) is None
    assert albums.join((3, "g"), start=False) is None, "an unaddressed update starts nothing"


def test_album_never_collected_is_forgotten() -> None:
    """An album nobody collects is dropped after ``give_up`` seconds on the next join."""
    now = [0.0]
    albums: AlbumCollector[str] = AlbumCollector(window=1.0, give_up=30.0, clock=lambda: now[0])
    albums.join((1, "g"))
    now[0] = 31.0
    albums.join((2, "h"))
    assert len(albums) == 1
    later = albums.join((1, "g"), start=False)
    assert later is None
