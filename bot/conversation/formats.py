"""Who gets rich messages: each user's format choice, a chat's default, the one-time hint.

Rich messages (Bot API 10.1+; docs/telegram.md "Rich messages (Bot API 10.1+)") show
tables and formulas, but Telegram's apps that lack them (Telegram Web, macOS, Apple
Watch, some third-party apps) show "This message is not supported" and no text, and the
Bot API does not say which app a user has. So the format is a choice, classic by default:

- a user's ``format`` setting (``/settings``), stored in the user's settings
  (:func:`bot.conversation.scope.user_scope`): ``"classic"`` (text and entities: works
  everywhere) or ``"rich"`` (needs Telegram for Android, iOS or Desktop);
- a group's default, the ``format`` setting of the chat's scope
  (:func:`bot.conversation.scope.chat_scope`), set by its admins in the group's
  ``/settings`` menu: it applies to members who made no choice of their own;
- nothing chosen anywhere: classic.

A user who never chose gets, once, a one-line hint under the first classic answer whose
Markdown holds a table or a formula (:func:`wants_rich`): the ``rich_hint`` setting
remembers that it was shown.

Redis errors while reading make the answer classic (no hint); they are never raised to
the reply.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from typing import Final

from redis.exceptions import RedisError

from bot.conversation.scope import chat_scope, user_scope
from bot.render.rich_parse import clean_source, parse
from bot.render.rich_sanitize import sanitize_rich_markdown
from storage import ConversationStore

__all__ = [
    "FORMAT",
    "RICH_HINT",
    "FormatChoice",
    "Formats",
    "ReplyFormat",
    "wants_rich",
]

log = logging.getLogger(__name__)

FORMAT: Final = "format"
"""The setting (of a user's scope, or a chat's) naming a :class:`ReplyFormat` value."""
RICH_HINT: Final = "rich_hint"
"""The user setting set to ``"1"`` once the rich-format hint was shown."""

_RICH_EVENTS: Final = frozenset({"InlineMath", "DisplayMath"})


class ReplyFormat(enum.StrEnum):
    """How answers are sent: ``classic`` (``sendMessage`` with entities) or ``rich``
    (``sendRichMessage`` Markdown)."""

    CLASSIC = "classic"
    RICH = "rich"


@dataclass(frozen=True)
class FormatChoice:
    """The format of one answer: ``rich`` to send it as rich messages; ``hint`` when a
    classic answer with a table or a formula may carry the one-time hint (the user chose
    no format and was not hinted yet)."""

    rich: bool = False
    hint: bool = False


def _format_of(value: str | None) -> ReplyFormat | None:
    """The stored ``value`` as a :class:`ReplyFormat`; ``None`` when unset or unknown."""
    try:
        return ReplyFormat(value) if value else None
    except ValueError:
        return None


def wants_rich(markdown: str) -> bool:
    """Whether the model's ``markdown`` holds what only rich messages show: a GFM table, or
    a formula (``$…$``, ``$$…$$``, ``\\(…\\)``, ``\\[…\\]``), outside code.

    It is judged on the text a rich message would carry
    (:func:`bot.render.rich_sanitize.sanitize_rich_markdown`: ``\\(``/``\\[`` become
    ``$``/``$$``, prices' ``$`` are escaped), so "$5 and $10" is not a formula.
    """
    if "|" not in markdown and "$" not in markdown and "\\" not in markdown:
        return False
    for event in parse(clean_source(sanitize_rich_markdown(markdown))):
        if event.kind in _RICH_EVENTS or (event.kind == "Start" and event.name == "Table"):
            return True
    return False


class Formats:
    """Reads and writes the format settings in ``store`` (module docstring)."""

    def __init__(self, store: ConversationStore) -> None:
        self.store = store

    async def user_format(self, user_id: int) -> ReplyFormat | None:
        """The user's own choice; ``None`` when they made none. Raises Redis errors."""
        settings = await self.store.get_settings(user_scope(user_id))
        return _format_of(settings.get(FORMAT))

    async def chat_format(self, chat_id: int) -> ReplyFormat:
        """The group's default (classic when its admins set none). Raises Redis errors."""
        settings = await self.store.get_settings(chat_scope(chat_id))
        return _format_of(settings.get(FORMAT)) or ReplyFormat.CLASSIC

    async def set_user_format(self, user_id: int, value: ReplyFormat) -> None:
        """Store the user's choice. Raises Redis errors."""
        await self.store.set_setting(user_scope(user_id), FORMAT, value.value)

    async def set_chat_format(self, chat_id: int, value: ReplyFormat) -> None:
        """Store the group's default. Raises Redis errors."""
        await self.store.set_setting(chat_scope(chat_id), FORMAT, value.value)

    async def choice(self, user_id: int | None, chat_id: int) -> FormatChoice:
        """The format of an answer to ``user_id`` (``None``: no user, e.g. a channel post)
        in chat ``chat_id``: the user's choice, else (in a group, ``chat_id < 0``) the
        chat's default, else classic. Never raises: a Redis error gives classic, no hint."""
        try:
            own: dict[str, str] = {}
            if user_id is not None:
                own = await self.store.get_settings(user_scope(user_id))
            chosen = _format_of(own.get(FORMAT))
            if chosen is None and chat_id < 0:
                chosen = await self.chat_format(chat_id)
        except (RedisError, OSError) as exc:
            log.warning("could not read the reply format: %s; classic", type(exc).__name__)
            return FormatChoice()
        hint = user_id is not None and _format_of(own.get(FORMAT)) is None
        return FormatChoice(
            rich=chosen is ReplyFormat.RICH, hint=hint and own.get(RICH_HINT) != "1"
        )

    async def mark_hinted(self, user_id: int) -> bool:
        """Remember that ``user_id`` was shown the hint; False (logged) when Redis failed,
        and then the hint is not shown (it would come again with every answer)."""
        try:
            await self.store.set_setting(user_scope(user_id), RICH_HINT, "1")
        except (RedisError, OSError) as exc:
            log.warning("could not remember the format hint: %s", type(exc).__name__)
            return False
        return True
