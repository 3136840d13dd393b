"""Answers in private: a group setting that sends each answer to its asker's private chat.

A group shares Telegram's 20 messages a minute among all of the bot's replies there
(docs/telegram.md "Limits"), so a class of 200 asking at once cannot be answered in the group
in real time. With the setting on (the ``private_answers`` setting, ``"1"``, of the
chat's scope ``c:<chat_id>``, next to :mod:`bot.conversation.chat_settings`), a question
addressed to the bot in the group is answered in the asker's private chat, where drafts
and that chat's own flood budget apply; the group gets one short line in reply.

- The answer belongs to the asker's conversation **in the group** (its scope
  ``c:<chat_id>:u:<user_id>``, or the group's shared one): the chat's prompt and
  models apply, ``/reset`` and ``/stop`` in the group act on it, and a later question in
  the group continues it. The private chat's own conversation is not touched.
- The private answer replies to a message quoting the question
  (:func:`question_header`), so the student sees what it answers.
- A student who never started the bot cannot be written to (403 "Forbidden: bot can't
  initiate conversation with a user"); the question is kept for
  :data:`storage.pending.PENDING_TTL` under a random token
  (:class:`storage.pending.PendingQuestions`) and the group reply carries a deep link,
  ``https://t.me/<bot>?start=q_<token>`` (:func:`start_link`): pressing Start sends
  ``/start q_<token>`` in the private chat, and the bot answers there if the presser is
  the asker (https://core.telegram.org/bots/features#deep-linking).
"""

from __future__ import annotations

import re
import time

from telegram import MessageEntity

from bot.conversation.scope import chat_scope
from bot.conversation.types import TurnInput
from bot.render.types import utf16_len
from bot.texts import Lang, t
from providers.types import ImagePart
from storage import ConversationStore
from storage.pending import PendingQuestion

__all__ = [
    "PAYLOAD_PREFIX",
    "PRIVATE_ANSWERS",
    "QUESTION_SHOWN_MAX",
    "answers_in_private",
    "pending_of",
    "question_header",
    "set_answers_in_private",
    "start_link",
    "token_of",
    "turn_of",
]

PRIVATE_ANSWERS = "private_answers"
"""The chat setting: ``"1"`` answers in private, ``"0"`` or absent in the group."""
PAYLOAD_PREFIX = "q_"
"""The start parameter of a pending question's deep link: this, then its token."""
QUESTION_SHOWN_MAX = 1000
"""Characters of the question quoted above a private answer (longer ones end in "…")."""

_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,62}")
"""A token as a start parameter may carry one: 64 characters of ``A-Z a-z 0-9 _ -`` at
most, less the prefix (https://core.telegram.org/bots/features#deep-linking)."""


async def answers_in_private(store: ConversationStore, chat_id: int) -> bool:
    """Whether group ``chat_id`` answers questions in each asker's private chat."""
    return (await store.get_settings(chat_scope(chat_id))).get(PRIVATE_ANSWERS) == "1"


async def set_answers_in_private(store: ConversationStore, chat_id: int, on: bool) -> None:
    """Answer questions of group ``chat_id`` in private (``on``) or in the group."""
    await store.set_setting(chat_scope(chat_id), PRIVATE_ANSWERS, "1" if on else "0")


def start_link(bot_username: str, token: str) -> str:
    """The deep link that opens the bot's private chat and, on Start, sends
    ``/start q_<token>``."""
    return f"https://t.me/{bot_username}?start={PAYLOAD_PREFIX}{token}"


def token_of(payload: str) -> str | None:
    """The token of a ``/start`` parameter made by :func:`start_link`; ``None`` for any
    other parameter."""
    if not payload.startswith(PAYLOAD_PREFIX):
        return None
    token = payload[len(PAYLOAD_PREFIX) :]
    return token if _TOKEN.fullmatch(token) else None


def question_header(
    text: str, *, chat_title: str, images: int, lang: Lang
) -> tuple[str, list[MessageEntity]]:
    """The message a private answer replies to: "Your question in <chat>:" and the question
    (at most :data:`QUESTION_SHOWN_MAX` characters, a 🖼 per image) as a blockquote.

    Returns the text and its entities (offsets in UTF-16 code units, as the Bot API counts).
    """
    head = t("private_question_header", lang, chat=chat_title)
    shown = text.strip()
    if len(shown) > QUESTION_SHOWN_MAX:
        shown = shown[:QUESTION_SHOWN_MAX].rstrip() + "…"
    shown = ("🖼 " * images + shown).strip() or "🖼"
    quote = MessageEntity(
        MessageEntity.BLOCKQUOTE, offset=utf16_len(head) + 1, length=utf16_len(shown)
    )
    return f"{head}\n{shown}", [quote]


def pending_of(
    turn: TurnInput, *, chat_id: int, chat_title: str, message_id: int
) -> PendingQuestion:
    """What to keep of ``turn`` (asked in group ``chat_id`` as ``message_id``) until its
    asker starts the bot: everything but the image bytes (fetched again by ``file_id``)."""
    return PendingQuestion(
        user_id=turn.user_id,
        chat_id=chat_id,
        chat_title=chat_title,
        message_id=message_id,
        scope=turn.scope,
        text=turn.text,
        quoted=turn.quoted,
        context=turn.context,
        image_file_ids=turn.image_file_ids,
        asked_at=time.time(),
    )


def turn_of(question: PendingQuestion, images: tuple[ImagePart, ...]) -> TurnInput:
    """The turn that answers a pending question, with its ``images`` fetched again."""
    return TurnInput(
        question.scope,
        question.user_id,
        question.text,
        images=images,
        image_file_ids=question.image_file_ids,
        context=question.context,
        quoted=question.quoted,
    )
