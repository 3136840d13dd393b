"""Markdown to Telegram: the model's Markdown rendered to text + entities (UTF-16
offsets), the structures a growing answer leaves open closed at its edge, and a
rendered reply split into messages of at most 4,096 characters. Pure functions, no I/O."""

from bot.render.close import close_open_markdown
from bot.render.markdown import (
    ReplyStrings,
    compose_reply,
    render_markdown,
    render_reply,
    slice_rendered,
)
from bot.render.split import split_rendered
from bot.render.types import Rendered, utf16_len

__all__ = [
    "Rendered",
    "ReplyStrings",
    "close_open_markdown",
    "compose_reply",
    "render_markdown",
    "render_reply",
    "slice_rendered",
    "split_rendered",
    "utf16_len",
]
