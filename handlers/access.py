"""Who may use the bot: the allow-lists of the settings, checked by the gate
(:mod:`handlers.gate`) before anything else, with no Redis call.

- In a private chat (and for an update with no chat), ``ALLOWED_USER_IDS`` decides
  (empty: everyone); the operators, ``ADMIN_USER_IDS``, are always let in. A user
  refused in a private chat is told their numeric id, to send to the operator.
- In a group, supergroup or channel, when ``ALLOWED_CHAT_IDS`` is set, the chat must be
  on it, and then everyone in it may ask; in a chat not on it the bot answers no one,
  operators included: it stays silent (``UNLISTED_CHAT_ACTION=ignore``, the default;
  one INFO line per chat gives its id) or says one short message giving the chat's id
  and leaves it (``leave``, once: again only if it is added back).
  When ``ALLOWED_CHAT_IDS`` is empty, every group is served and ``ALLOWED_USER_IDS``
  (with the operators) decides who may ask there; anyone else is ignored silently.
- A user outside ``ALLOWED_USER_IDS`` who asked in a group the bot serves and got a
  deep link to their answer in private (``/start q_<token>``, see
  :mod:`handlers.private_answers`) is let through with that one message: the link
  answers only the question kept for its own asker, and says nothing else to anyone.
- A listed group that becomes a supergroup (Telegram posts ``migrate_to_chat_id`` in the
  old chat and ``migrate_from_chat_id`` in the new one, Bot API ``Message``) is served
  under its new id until the bot restarts; a WARNING names the id to add.

A private chat's id is its user's id; groups', supergroups' and channels' ids are
negative (Bot API ``Chat.id``).
"""

from __future__ import annotations

import enum
import logging
from typing import Any

from telegram import Chat, Message, Update
from telegram.constants import ChatType
from telegram.error import TelegramError

from bot.conversation.private_answers import token_of
from bot.settings import Settings
from bot.texts import t
from handlers.common import lang_of
from handlers.context import BotContext

__all__ = ["Verdict", "admitted", "open_access_warnings", "verdict", "warn_if_open"]

log = logging.getLogger(__name__)

CARRIED_OVER = "access.migrated_from"
"""``chat_data`` key of a supergroup served as a listed group's continuation: the old id."""
NOTED = "access.noted"
"""``chat_data`` key: the unlisted chat's id was logged."""
LEFT = "access.left"
"""``chat_data`` key: the bot left this unlisted chat (``UNLISTED_CHAT_ACTION=leave``)."""


class Verdict(enum.Enum):
    """What the allow-lists say of an update."""

    ALLOWED = "allowed"
    STRANGER = "stranger"
    """A user outside ``ALLOWED_USER_IDS`` and ``ADMIN_USER_IDS``."""
    UNLISTED_CHAT = "unlisted chat"
    """A group, supergroup or channel outside ``ALLOWED_CHAT_IDS``."""


def verdict(
    settings: Settings,
    user_id: int | None,
    chat_id: int | None,
    *,
    group: bool,
    carried_over: bool = False,
) -> Verdict:
    """The verdict on an update from ``user_id`` (``None``: no user) in chat ``chat_id``
    (``None``: no chat); ``group`` for a group, supergroup or channel, else a private
    chat; ``carried_over`` when the chat is a listed group's supergroup (see the module
    docstring)."""
    if group and chat_id is not None and settings.allowed_chat_ids:
        listed = chat_id in settings.allowed_chat_ids or carried_over
        return Verdict.ALLOWED if listed else Verdict.UNLISTED_CHAT
    if not settings.allowed_user_ids:
        return Verdict.ALLOWED
    if user_id is not None and (
        user_id in settings.allowed_user_ids or user_id in settings.admin_user_ids
    ):
        return Verdict.ALLOWED
    return Verdict.STRANGER


async def admitted(update: Update, context: BotContext) -> bool:
    """True when ``update`` may go on; otherwise it was refused as the module docstring
    says (a stranger told their id in a private chat, an unlisted chat ignored or left)
    and False. Telegram errors while telling or leaving are logged, never raised."""
    settings = context.services.settings
    user, chat = update.effective_user, update.effective_chat
    group = chat is not None and chat.type != ChatType.PRIVATE
    if group:
        _follow_migration(update.effective_message, context, settings)
    outcome = verdict(
        settings,
        user.id if user is not None else None,
        chat.id if chat is not None else None,
        group=group,
        carried_over=chat is not None and _carried_over(context, chat.id),
    )
    if outcome is Verdict.STRANGER and _opens_private_answer(update):
        return True
    if outcome is Verdict.STRANGER:
        await _tell_stranger(update)
    elif outcome is Verdict.UNLISTED_CHAT and chat is not None:
        await _unlisted_chat(update, context, chat)
    return outcome is Verdict.ALLOWED


def _opens_private_answer(update: Update) -> bool:
    """A private ``/start q_<token>``: the deep link to an answer kept for its asker."""
    message = update.message
    if message is None or message.chat.type != ChatType.PRIVATE or not message.text:
        return False
    command, _, payload = message.text.partition(" ")
    return command == "/start" and token_of(payload.strip()) is not None


def _chat_data(context: BotContext, chat_id: int) -> dict[Any, Any] | None:
    """The chat's ``chat_data`` if it has any, without making one."""
    return context.application.chat_data.get(chat_id)


def _carried_over(context: BotContext, chat_id: int) -> bool:
    data = _chat_data(context, chat_id)
    return data is not None and data.get(CARRIED_OVER) is not None


def _follow_migration(message: Message | None, context: BotContext, settings: Settings) -> None:
    """On either migration message of a listed group, serve its supergroup too."""
    if message is None or not settings.allowed_chat_ids:
        return
    if message.migrate_to_chat_id is not None:
        old, new = message.chat_id, message.migrate_to_chat_id
    elif message.migrate_from_chat_id is not None:
        old, new = message.migrate_from_chat_id, message.chat_id
    else:
        return
    if new in settings.allowed_chat_ids or _carried_over(context, new):
        return
    if old not in settings.allowed_chat_ids and not _carried_over(context, old):
        return
    data: dict[Any, Any] = context.application.chat_data[new]  # made here if new
    data[CARRIED_OVER] = old
    log.warning(
        "chat %s in ALLOWED_CHAT_IDS became the supergroup %s: served until the bot "
        "restarts; add %s to ALLOWED_CHAT_IDS",
        old,
        new,
        new,
    )


async def _tell_stranger(update: Update) -> None:
    """Tell a stranger in a private chat their id, for the operator; elsewhere say nothing."""
    message, chat, user = update.effective_message, update.effective_chat, update.effective_user
    if message is None or chat is None or user is None or chat.type != ChatType.PRIVATE:
        return
    try:
        await message.reply_text(t("not_allowed", lang_of(update), user_id=user.id))
    except TelegramError as exc:
        log.warning("could not tell a stranger the bot is private: %s", exc)


async def _unlisted_chat(update: Update, context: BotContext, chat: Chat) -> None:
    """Ignore ``chat``, or say goodbye with its id and leave it once (``leave``)."""
    data = context.chat_data
    if data is None:  # PTB gives every update with a chat its chat_data
        return
    if context.services.settings.unlisted_chat_action != "leave":
        if not data.get(NOTED):
            data[NOTED] = True
            log.info("chat %s (%s) is not in ALLOWED_CHAT_IDS: ignoring it", chat.id, chat.type)
        return
    message = update.effective_message
    if data.get(LEFT) and not _bot_added(message, context.bot.id):
        return  # an update from before the bot left
    data[LEFT] = True  # before any await: the updates processed meanwhile leave it alone
    log.info("chat %s (%s) is not in ALLOWED_CHAT_IDS: leaving it", chat.id, chat.type)
    if chat.type != ChatType.CHANNEL:  # a channel's subscribers are not the ones to tell
        text = t("chat_not_allowed", lang_of(update), chat_id=chat.id)
        try:
            if message is not None:
                await message.reply_text(text, do_quote=False)
            else:
                await context.bot.send_message(chat.id, text)
        except TelegramError as exc:
            log.warning("could not tell chat %s why the bot leaves: %s", chat.id, exc)
    try:
        await context.bot.leave_chat(chat.id)
    except TelegramError as exc:
        log.warning("could not leave chat %s: %s", chat.id, exc)


def _bot_added(message: Message | None, bot_id: int) -> bool:
    """True when ``message`` says the bot joined the chat (added, or the chat created)."""
    if message is None:
        return False
    return (
        any(member.id == bot_id for member in message.new_chat_members)
        or bool(message.group_chat_created)
        or bool(message.supergroup_chat_created)
        or bool(message.channel_chat_created)
    )


def open_access_warnings(settings: Settings) -> list[str]:
    """The WARNING lines for settings that let anyone who finds the bot use it (and the
    operator's model credits): none when ``ALLOWED_USER_IDS`` is set; one when it is not,
    naming the settings to set (all chats open, or private chats only)."""
    if settings.allowed_user_ids:
        return []
    if settings.allowed_chat_ids:
        return [
            "private chats are open to everyone: ALLOWED_CHAT_IDS restricts only groups; "
            "set ALLOWED_USER_IDS to choose who may use the bot in private"
        ]
    return [
        "the bot is open to everyone: anyone who finds it can use it in a private chat or "
        "any group; set ALLOWED_USER_IDS (who may use it) and ALLOWED_CHAT_IDS (the groups "
        "it serves); ADMIN_USER_IDS are always let in"
    ]


def warn_if_open(settings: Settings) -> None:
    """Log :func:`open_access_warnings` at WARNING (at start)."""
    for line in open_access_warnings(settings):
        log.warning("%s", line)
