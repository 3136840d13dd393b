"""Reply and quote context: the message a question replies to (or quotes part of), shown to
the model as part of the question.

What is quoted (:func:`quoted_source`), for a question that replies to a message
(``Message.reply_to_message``) or to a message of another chat (``Message.external_reply``,
Bot API ``ExternalReplyInfo``):

- with a quote (``Message.quote``, Bot API ``TextQuote``: the part of the replied message
  the user selected), only the quoted ``text``; no image;
- else the replied message's text or caption, and its photo or image document (the
  largest ``PhotoSize``; a ``Document`` whose ``mime_type`` is ``image/*``);
- a message of another chat (``external_reply``) carries no text in the Bot API: only its
  quote, if any, else its photo or image document;
- the sender's name in groups: the user's first name, or the chat's title for a message
  sent on behalf of a chat (a channel post's automatic forward, an anonymous admin). In
  private chats only the user and the bot write, so no name is given; a message of
  another chat is named by its origin (``MessageOrigin``) everywhere.

What is left out:

- the bot's own answers, unless the user quotes part of one by hand (``is_manual``): the
  answer is already in the history, and in a group replying to the bot is how users
  address it, so most such replies point at nothing in particular. A manual quote says
  which part the question is about, so that part is shown (from "your earlier answer");
- the forum-topic creation message: every message of a topic without a reply of its
  own replies to it (docs/telegram.md "PTB architecture notes");
- the text of a channel post's automatic forward when the question is asked with that
  post as context already (``post_shown``, :func:`bot.conversation.groups.thread_context`
  gives it as a system message): it is not doubled. Its photo is still attached.

Bounds: at most :data:`QUOTE_MAX` characters of quoted text (a longer one is cut and ends
in ``…``), a name of at most :data:`NAME_MAX` characters, and at most one image.

The format (:func:`quote_block`) is a block that precedes the question in the user
message, separated by a blank line, so the model reads it with the question and the
history keeps it as part of that user turn (later turns still see what was asked about)::

    [Quoted from Alice]
    > first line of the quoted text
    > second line

    the question

The header is ``[Quoted]`` in private chats, ``[Quoted from <name>]`` in groups,
``[Quoted from your earlier answer]`` for a part of the bot's answer; a photo or image
document adds its kind and where it is: ``[Quoted photo from Alice (the first image)]``
when the image is sent to a vision model (as the first image part of the user message),
``[Quoted photo from Alice (not shown)]`` when it is not (a model without vision, or the
download failed); then its caption, if any, follows as quoted lines. Markdown readers take
``> `` lines as a block quote, which chat models know from their training text.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from telegram import (
    Bot,
    Chat,
    Document,
    Message,
    MessageOrigin,
    MessageOriginChannel,
    MessageOriginChat,
    MessageOriginHiddenUser,
    MessageOriginUser,
    PhotoSize,
)
from telegram.error import TelegramError

from bot.conversation.images import ImageError, prepare_image
from providers.types import ImagePart

__all__ = [
    "ANSWER_SENDER",
    "NAME_MAX",
    "QUOTE_MAX",
    "QuotedContext",
    "QuotedImage",
    "QuotedSource",
    "load_quoted",
    "quote_block",
    "quoted_source",
]

log = logging.getLogger(__name__)

QUOTE_MAX = 2000
"""Characters of quoted text at most, the closing ``…`` included."""
NAME_MAX = 64
"""Characters of a sender's name at most."""
ANSWER_SENDER = "your earlier answer"
"""The sender named in the header of a part of the bot's own answer."""

_NAME_JUNK = re.compile(r"[\[\]\s]+")
"""Brackets (they would end the header) and runs of whitespace (newlines) in a name."""


@dataclass(frozen=True)
class QuotedImage:
    """An image of the quoted message, not downloaded yet.

    ``file_id`` names it for ``getFile``; ``file_size`` is its size in bytes when
    Telegram told it; ``kind`` is ``"photo"`` or ``"image"`` (an image document).
    """

    file_id: str
    file_size: int | None
    kind: str


@dataclass(frozen=True)
class QuotedSource:
    """What a question replies to: ``sender`` (``None``: no name), the quoted ``text``
    (at most :data:`QUOTE_MAX` characters, possibly empty) and an ``image`` to attach."""

    sender: str | None
    text: str
    image: QuotedImage | None = None


@dataclass(frozen=True)
class QuotedContext:
    """The quote as the turn takes it: ``block`` precedes the question in the user
    message (:class:`bot.conversation.types.TurnInput` ``quoted``); ``images`` (zero or
    one) go first among the message's images, ``file_ids`` are their Telegram ids."""

    block: str
    images: tuple[ImagePart, ...] = ()
    file_ids: tuple[str, ...] = ()


def quoted_source(
    message: Message, *, bot_id: int, post_shown: bool = False
) -> QuotedSource | None:
    """What ``message`` replies to or quotes, or ``None`` when there is nothing to show.

    ``bot_id`` is this bot's user id (its own answers are left out unless quoted by
    hand); ``post_shown`` is True when the question is asked with the channel post it
    comments on as context already. See the module docstring for the rules.
    """
    quote = message.quote
    quoted_text = quote.text if quote is not None and quote.text.strip() else None
    reply = message.reply_to_message
    if reply is not None:
        if reply.forum_topic_created is not None:
            return None
        if _is_from_bot(reply, bot_id):
            if quote is None or not quote.is_manual or quoted_text is None:
                return None
            return QuotedSource(ANSWER_SENDER, _bounded(quoted_text))
        sender = None if message.chat.type == Chat.PRIVATE else _sender_of(reply)
        if quoted_text is not None:
            return QuotedSource(sender, _bounded(quoted_text))
        text = reply.text or reply.caption or ""
        if reply.is_automatic_forward and post_shown:
            text = ""
        return _source(sender, text, _image_of(reply.photo, reply.document))
    external = message.external_reply
    if external is not None:
        sender = _origin_name(external.origin)
        if quoted_text is not None:
            return QuotedSource(sender, _bounded(quoted_text))
        return _source(sender, "", _image_of(external.photo, external.document))
    return None


def quote_block(source: QuotedSource, *, image_shown: bool) -> str:
    """The block that precedes the question: a header line, then the quoted text's lines
    each prefixed ``> `` (an empty line ``>``). ``image_shown`` says whether the source's
    image goes along as the first image of the message."""
    header = "[Quoted"
    if source.image is not None:
        header += f" {source.image.kind}"
    if source.sender:
        header += f" from {source.sender}"
    if source.image is not None:
        header += " (the first image)" if image_shown else " (not shown)"
    header += "]"
    if not source.text:
        return header
    lines = [f"> {line}" if line.strip() else ">" for line in source.text.splitlines()]
    return "\n".join([header, *lines])


async def load_quoted(
    source: QuotedSource, bot: Bot, *, vision: bool, max_bytes: int
) -> QuotedContext:
    """The quote of ``source`` for the turn; its image is downloaded and prepared
    (:func:`bot.conversation.images.prepare_image`) when the model has ``vision``.

    An image over ``max_bytes`` (the ``getFile`` limit), one Telegram refuses, or one
    that cannot be decoded is left out (logged, the header says ``not shown``): the
    question is still answered. Never raises ``TelegramError`` or ``ImageError``.
    """
    image = source.image
    part = await _fetch(bot, image, max_bytes) if vision and image is not None else None
    block = quote_block(source, image_shown=part is not None)
    if part is None or image is None:
        return QuotedContext(block)
    return QuotedContext(block, (part,), (image.file_id,))


async def _fetch(bot: Bot, image: QuotedImage, max_bytes: int) -> ImagePart | None:
    """The prepared image ``image`` names, or ``None`` when it cannot be had."""
    if (image.file_size or 0) > max_bytes:
        log.info("quoted %s not fetched: %d bytes is over the limit", image.kind, image.file_size)
        return None
    try:
        data = await (await bot.get_file(image.file_id)).download_as_bytearray()
        return await asyncio.to_thread(prepare_image, bytes(data))
    except (TelegramError, ImageError) as exc:
        log.info("quoted %s not fetched: %s", image.kind, type(exc).__name__)
        return None


def _is_from_bot(reply: Message, bot_id: int) -> bool:
    """True when this bot sent ``reply`` (not on behalf of a chat)."""
    return (
        reply.sender_chat is None and reply.from_user is not None and (reply.from_user.id == bot_id)
    )


def _source(sender: str | None, text: str, image: QuotedImage | None) -> QuotedSource | None:
    """A source of ``text`` and ``image``; ``None`` when it has neither."""
    text = text.strip()
    if not text and image is None:
        return None
    return QuotedSource(sender, _bounded(text), image)


def _bounded(text: str) -> str:
    """``text`` stripped, cut to :data:`QUOTE_MAX` characters with a closing ``…``."""
    text = text.strip()
    if len(text) <= QUOTE_MAX:
        return text
    return text[: QUOTE_MAX - 1].rstrip() + "…"


def _image_of(photo: Sequence[PhotoSize] | None, document: Document | None) -> QuotedImage | None:
    """The largest size of ``photo``, else ``document`` when it is an image."""
    if photo:
        largest = photo[-1]
        return QuotedImage(largest.file_id, largest.file_size, "photo")
    if document is not None and (document.mime_type or "").startswith("image/"):
        return QuotedImage(document.file_id, document.file_size, "image")
    return None


def _sender_of(reply: Message) -> str | None:
    """The name of who sent ``reply``: the chat it was sent on behalf of, else the user."""
    if reply.sender_chat is not None:
        return _name(reply.sender_chat.title or reply.sender_chat.username)
    if reply.from_user is not None:
        return _name(reply.from_user.first_name)
    return None


def _origin_name(origin: MessageOrigin) -> str | None:
    """The name of who first sent a message of another chat (Bot API ``MessageOrigin``)."""
    if isinstance(origin, MessageOriginUser):
        return _name(origin.sender_user.first_name)
    if isinstance(origin, MessageOriginHiddenUser):
        return _name(origin.sender_user_name)
    if isinstance(origin, MessageOriginChat):
        return _name(origin.sender_chat.title or origin.sender_chat.username)
    if isinstance(origin, MessageOriginChannel):
        return _name(origin.chat.title or origin.chat.username)
    return None


def _name(raw: str | None) -> str | None:
    """``raw`` on one line, without brackets, at most :data:`NAME_MAX` characters."""
    name = _NAME_JUNK.sub(" ", raw or "").strip()
    if not name:
        return None
    return name if len(name) <= NAME_MAX else name[: NAME_MAX - 1].rstrip() + "…"
