"""Who may change a chat's settings: its creator and administrators, as Telegram says.

:func:`is_chat_admin` asks the Bot API (``getChatMember``; a member whose ``status`` is
``"creator"`` or ``"administrator"`` is an admin, https://core.telegram.org/bots/api#chatmember)
and keeps the answer for :data:`ADMIN_CACHE_SECONDS` in the process, per chat and user,
so a run of admin commands or menu presses costs one call. A demoted admin keeps their
rights for that long at most.

A message an admin sends anonymously, "on behalf of the group", comes from the group
itself (``sender_chat`` is the chat; Bot API "Message": ``sender_chat``), and only
admins can send those: :func:`sent_by_admin` counts it as an admin's without a call.
"""

from __future__ import annotations

import time
from typing import Any

from telegram import Message
from telegram.constants import ChatMemberStatus
from telegram.error import BadRequest, Forbidden

from handlers.context import BotContext

__all__ = ["ADMIN_CACHE_SECONDS", "ADMIN_STATUSES", "is_chat_admin", "sent_by_admin"]

ADMIN_CACHE_SECONDS = 60.0
"""Seconds an answer of ``getChatMember`` is reused for the same chat and user."""
ADMIN_STATUSES = frozenset({ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR})
"""``ChatMember.status`` values of a chat's admins (``OWNER`` is ``"creator"``)."""

_CACHE = "admin_status"
"""The key of the cache in the chat's ``chat_data``: user id → (is admin, monotonic expiry)."""


async def is_chat_admin(context: BotContext, chat_id: int, user_id: int) -> bool:
    """Whether ``user_id`` is the creator or an administrator of chat ``chat_id``.

    One ``getChatMember`` call per chat and user every :data:`ADMIN_CACHE_SECONDS` at
    most (the answer is kept in ``context.application.chat_data[chat_id]``). A
    ``BadRequest`` (no such member or chat) or ``Forbidden`` (the bot is no longer in the
    chat) answer means "not an admin"; other Telegram errors (network, flood control)
    propagate, and nothing is cached then.
    """
    cache: dict[int, tuple[bool, float]] = _chat_cache(context, chat_id)
    now = time.monotonic()
    cached = cache.get(user_id)
    if cached is not None and cached[1] > now:
        return cached[0]
    try:
        member = await context.bot.get_chat_member(chat_id, user_id)
        admin = member.status in ADMIN_STATUSES
    except (BadRequest, Forbidden):
        admin = False
    cache[user_id] = (admin, now + ADMIN_CACHE_SECONDS)
    return admin


async def sent_by_admin(context: BotContext, message: Message, user_id: int) -> bool:
    """Whether ``message`` (from ``user_id``) was sent by an admin of its chat: anonymously
    on behalf of the chat, or by a user :func:`is_chat_admin` says is one."""
    if message.sender_chat is not None and message.sender_chat.id == message.chat_id:
        return True
    return await is_chat_admin(context, message.chat_id, user_id)


def _chat_cache(context: BotContext, chat_id: int) -> dict[int, tuple[bool, float]]:
    data: dict[Any, Any] = context.application.chat_data[chat_id]
    cache: dict[int, tuple[bool, float]] = data.setdefault(_CACHE, {})
    return cache
