"""Rich messages (Bot API 10.1+) from python-telegram-bot 22.8, which knows Bot API 10.0 only.

Typed helpers for the methods and the update PTB does not have yet
(docs/telegram.md "Rich messages (Bot API 10.1+)"):

- :func:`send_rich_message`: ``sendRichMessage`` → the sent :class:`telegram.Message`;
- :func:`send_rich_message_draft`: ``sendRichMessageDraft`` (private chats only) → ``True``;
- :func:`edit_message_rich_text`: ``editMessageText`` with ``rich_message`` instead of
  ``text`` → the edited :class:`telegram.Message`;
- :func:`stopped_generation`: the ``stopped_message_generation`` update (the user pressed
  the stop button of a draft sent with ``can_stop``) as a :class:`StoppedGeneration`;
- :data:`RICH_ALLOWED_UPDATES`: the update type names to add to ``allowed_updates``;
- :func:`is_rich_unsupported` and :func:`is_rich_rejected`: what an error raised by the
  helpers means (the server lacks rich messages; Telegram refused this content).

The new methods go through :meth:`telegram.Bot.do_api_request`. It JSON-encodes nested
``dict``/``list`` values and PTB objects (``ReplyParameters``, keyboards) as form fields,
as PTB does for its own methods, and with ``return_type=Message`` parses the answer into a
:class:`telegram.Message`: fields PTB does not know, such as ``rich_message`` (the
received block tree, not our Markdown), end up in ``Message.api_kwargs``. The edit goes
through :meth:`telegram.Bot.edit_message_text` with ``text`` removed (``None`` in
``api_kwargs``, which PTB drops) and ``rich_message`` added: ``do_api_request`` warns
("Please use 'Bot.editMessageText'") for a method PTB has. Calls pass through the bot's
rate limiter like any other (``ExtBot._do_post``).

When PTB supports Bot API 10.1–10.3 (python-telegram-bot issue #5261), only this module
changes: the helpers keep their signatures and call PTB's own methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, TypeGuard

from telegram import (
    Bot,
    ForceReply,
    InlineKeyboardMarkup,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    ReplyParameters,
    Update,
)
from telegram._utils.defaultvalue import DEFAULT_NONE
from telegram._utils.types import ODVInput
from telegram.error import BadRequest, EndPointNotFound, TelegramError

__all__ = [
    "RICH_ALLOWED_UPDATES",
    "STOPPED_MESSAGE_GENERATION",
    "StoppedGeneration",
    "edit_message_rich_text",
    "is_rich_rejected",
    "is_rich_unsupported",
    "send_rich_message",
    "send_rich_message_draft",
    "stopped_generation",
]

STOPPED_MESSAGE_GENERATION: Final = "stopped_message_generation"
"""The update field (and ``allowed_updates`` name) of a press on a draft's stop button
(Bot API 10.3, https://core.telegram.org/bots/api/types/messagegenerationstopped.md)."""

RICH_ALLOWED_UPDATES: Final = (STOPPED_MESSAGE_GENERATION,)
"""Update type names to add to ``allowed_updates`` for rich messages. PTB's
``Update.ALL_TYPES`` lacks them: an explicit list without them filters the stop button's
update out (docs/telegram.md "Rich messages (Bot API 10.1+)")."""

ReplyMarkup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | ForceReply
"""What ``sendRichMessage`` takes as ``reply_markup`` (the edit takes an inline keyboard only)."""


@dataclass(frozen=True)
class StoppedGeneration:
    """A user pressed the stop button of a draft (``MessageGenerationStopped``).

    ``chat_id`` is the private chat, ``draft_id`` the stopped draft's id, and
    ``message_thread_id`` its topic, if any: together they name the generation to cancel.
    Telegram only stops showing the draft; the generation runs on until the bot cancels it.
    """

    chat_id: int
    draft_id: int
    message_thread_id: int | None = None


def _timeout(seconds: float | None) -> ODVInput[float]:
    """A PTB ``read_timeout``/``write_timeout`` of ``seconds`` (None: PTB's default, 5 s)."""
    return DEFAULT_NONE if seconds is None else seconds


def _rich_message(markdown: str, skip_entity_detection: bool) -> dict[str, Any]:
    """The ``InputRichMessage`` JSON object for ``markdown``."""
    rich: dict[str, Any] = {"markdown": markdown}
    if skip_entity_detection:
        rich["skip_entity_detection"] = True
    return rich


async def send_rich_message(
    bot: Bot,
    chat_id: int | str,
    markdown: str,
    *,
    message_thread_id: int | None = None,
    reply_parameters: ReplyParameters | None = None,
    reply_markup: ReplyMarkup | None = None,
    skip_entity_detection: bool = False,
    request_timeout: float | None = None,
) -> Message:
    """Send ``markdown`` (Telegram's rich Markdown style) as a rich message (``sendRichMessage``).

    ``skip_entity_detection`` turns off Telegram's linking of bare URLs, e-mails,
    @mentions, #hashtags, $cashtags, /commands and phone numbers; ``request_timeout`` is the
    seconds the request may take to be written and answered (each helper takes it; None:
    PTB's defaults). Returns the sent
    message; its ``text`` is ``None`` and the parsed blocks are in
    ``message.api_kwargs["rich_message"]``.

    Raises PTB's errors: ``EndPointNotFound`` when the Bot API server has no
    ``sendRichMessage`` (:func:`is_rich_unsupported`), ``BadRequest`` when Telegram refuses
    the content (:func:`is_rich_rejected`) or for other reasons, ``RetryAfter``,
    ``Forbidden``, ``NetworkError``/``TimedOut``; ``TelegramError`` when the answer is not
    a message.
    """
    api_kwargs: dict[str, Any] = {
        "chat_id": chat_id,
        "rich_message": _rich_message(markdown, skip_entity_detection),
        "message_thread_id": message_thread_id,
        "reply_parameters": reply_parameters,
        "reply_markup": reply_markup,
    }
    result = await bot.do_api_request(
        "sendRichMessage",
        api_kwargs=api_kwargs,
        return_type=Message,
        read_timeout=_timeout(request_timeout),
        write_timeout=_timeout(request_timeout),
    )
    if not isinstance(result, Message):
        raise TelegramError(f"sendRichMessage answered {type(result).__name__}, not a Message")
    return result


async def send_rich_message_draft(
    bot: Bot,
    chat_id: int,
    draft_id: int,
    markdown: str,
    *,
    message_thread_id: int | None = None,
    can_stop: bool = False,
    keep_on_stop: bool = False,
    skip_entity_detection: bool = False,
    request_timeout: float | None = None,
) -> bool:
    """Show ``markdown`` as the draft ``draft_id`` in the private chat ``chat_id``
    (``sendRichMessageDraft``); returns ``True``.

    A draft is a ~30 s preview, not a message: calls with the same non-zero ``draft_id``
    update one animated bubble, and the reply must end with :func:`send_rich_message`.
    ``<tg-thinking>…</tg-thinking>`` is allowed here only. ``can_stop`` shows the user a
    stop button (its press arrives as a ``stopped_message_generation`` update:
    :func:`stopped_generation`); ``keep_on_stop`` keeps the draft shown a while after
    the press (Bot API 10.3).

    Raises as :func:`send_rich_message`; a group or channel ``chat_id`` is a
    ``BadRequest`` (its text is not documented).
    """
    api_kwargs: dict[str, Any] = {
        "chat_id": chat_id,
        "draft_id": draft_id,
        "rich_message": _rich_message(markdown, skip_entity_detection),
        "message_thread_id": message_thread_id,
        "can_stop": can_stop or None,
        "keep_on_stop": keep_on_stop or None,
    }
    result = await bot.do_api_request(
        "sendRichMessageDraft",
        api_kwargs=api_kwargs,
        read_timeout=_timeout(request_timeout),
        write_timeout=_timeout(request_timeout),
    )
    return bool(result)


async def edit_message_rich_text(
    bot: Bot,
    chat_id: int | str,
    message_id: int,
    markdown: str,
    *,
    reply_markup: InlineKeyboardMarkup | None = None,
    skip_entity_detection: bool = False,
    request_timeout: float | None = None,
) -> Message | bool:
    """Replace the text of the bot's message ``message_id`` with the rich ``markdown``
    (``editMessageText`` with ``rich_message``); a plain-text message becomes rich.

    Returns the edited message (``True`` is what Telegram answers for inline messages,
    which this helper does not address). No ``reply_markup`` removes the message's
    inline keyboard, as with any ``editMessageText``.

    Raises as :func:`send_rich_message`. Identical content is ``BadRequest`` "Message is
    not modified" (treat it as success). A Bot API server older than 10.1 ignores
    ``rich_message`` and answers ``BadRequest`` "Message text is empty"
    (:func:`is_rich_unsupported` recognises it).
    """
    api_kwargs: dict[str, Any] = {
        "text": None,  # PTB drops None values: the call carries rich_message only
        "rich_message": _rich_message(markdown, skip_entity_detection),
    }
    return await bot.edit_message_text(
        "",
        chat_id=chat_id,
        message_id=message_id,
        reply_markup=reply_markup,
        api_kwargs=api_kwargs,
        read_timeout=_timeout(request_timeout),
        write_timeout=_timeout(request_timeout),
    )


def stopped_generation(update: Update) -> StoppedGeneration | None:
    """The stop-button press ``update`` carries, or ``None`` when it carries none.

    PTB 22.8 keeps the unknown ``stopped_message_generation`` field in
    ``Update.api_kwargs`` (as the raw JSON object ``{"chat": {...}, "draft_id": D,
    "message_thread_id"?: T}``); a later PTB's ``Update.stopped_message_generation``
    attribute is read as well. A field without an integer chat id and ``draft_id`` is
    treated as absent. Catch these updates with ``TypeHandler(Update, callback)``: no
    other PTB handler matches them.
    """
    known = getattr(update, STOPPED_MESSAGE_GENERATION, None)
    raw: Any = update.api_kwargs.get(STOPPED_MESSAGE_GENERATION)
    if known is not None:
        raw = known.to_dict() if hasattr(known, "to_dict") else None
    if not isinstance(raw, dict):
        return None
    chat = raw.get("chat")
    chat_id = chat.get("id") if isinstance(chat, dict) else None
    draft_id = raw.get("draft_id")
    thread_id = raw.get("message_thread_id")
    if not _is_int(chat_id) or not _is_int(draft_id):
        return None
    return StoppedGeneration(
        chat_id=chat_id,
        draft_id=draft_id,
        message_thread_id=thread_id if _is_int(thread_id) else None,
    )


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def is_rich_unsupported(error: BaseException) -> bool:
    """Whether ``error`` says the Bot API server has no rich messages (before 10.1).

    True for PTB's ``EndPointNotFound`` (a 404 "Not Found: method not found" from an
    initialised bot's ``do_api_request``) and for ``BadRequest`` "Message text is empty"
    (an older server ignoring ``rich_message`` on ``editMessageText``). An uninitialised
    bot gets ``InvalidToken`` for the same 404, which PTB cannot tell from a rejected
    token: that is not counted.
    """
    if isinstance(error, EndPointNotFound):
        return True
    return isinstance(error, BadRequest) and error.message.lower().startswith(
        "message text is empty"
    )


def is_rich_rejected(error: BaseException) -> bool:
    """Whether ``error`` is Telegram refusing this rich content (400), so that the same
    text may be sent the classic way instead.

    True for a ``BadRequest`` whose text names a ``RICH_*`` error code (e.g.
    ``RICH_MESSAGE_URL_INVALID``, ``RICH_VALIDATE_CTOR_NOT_ALLOWED``), mentions a rich
    message (TDLib's "Rich message must be non-empty"), or is a parse failure ("can't
    parse …"). PTB strips "Bad Request: " and lower-cases all but the first letter
    (``RICH_MESSAGE_URL_INVALID`` arrives as "Rich_message_url_invalid"), so the match
    ignores case. "Message is not modified", "message to edit not found", a refused
    draft chat and every non-400 error are not rejections of the content.
    """
    if not isinstance(error, BadRequest):
        return False
    text = error.message.lower()
    return "rich_" in text or "rich message" in text or text.startswith("can't parse")
