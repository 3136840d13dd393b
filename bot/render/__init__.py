"""Markdown to Telegram, two ways. Classic: the model's Markdown rendered to text +
entities (UTF-16 offsets), the structures a growing answer leaves open closed at its
edge, and a rendered reply split into messages of at most 4,096 characters. Rich (Bot API
10.1+ rich messages, :mod:`bot.render.rich`): the model's Markdown sanitised into
Telegram's rich Markdown, closed at the edge, measured against the rich limits and split
between blocks. Pure functions, no I/O."""

from bot.render.close import close_open_markdown
from bot.render.markdown import (
    ReplyStrings,
    compose_reply,
    render_markdown,
    render_reply,
    slice_rendered,
)
from bot.render.rich import (
    RichLimits,
    RichSize,
    close_rich_markdown,
    compose_rich_reply,
    escape_rich_text,
    fits_rich,
    measure_rich,
    render_rich_markdown,
    render_rich_reply,
    sanitize_rich_markdown,
    split_rich_markdown,
)
from bot.render.split import split_rendered
from bot.render.types import Rendered, utf16_len

__all__ = [
    "Rendered",
    "ReplyStrings",
    "RichLimits",
    "RichSize",
    "close_open_markdown",
    "close_rich_markdown",
    "compose_reply",
    "compose_rich_reply",
    "escape_rich_text",
    "fits_rich",
    "measure_rich",
    "render_markdown",
    "render_reply",
    "render_rich_markdown",
    "render_rich_reply",
    "sanitize_rich_markdown",
    "slice_rendered",
    "split_rendered",
    "split_rich_markdown",
    "utf16_len",
]
