"""Answers in private (:mod:`bot.conversation.private_answers`): a group's questions
answered in each asker's private chat.

- :func:`answered_in_private`, called by the text and photo handlers with the turn they
  built: in a group with the setting on, the question is quoted in the asker's private
  chat (:func:`~bot.conversation.private_answers.question_header`) and the answer streams
  there as a reply to that quote, while the group gets "📬 Answered you in private." as a
  reply to the question. When Telegram refuses the private message with 403 (the asker
  never started the bot, or blocked it), the question is kept (24 h,
  :class:`storage.pending.PendingQuestions`) and the group reply carries a button with
  the deep link that starts the bot.
- :func:`answer_pending`, called by ``/start``: ``/start q_<token>`` in a private chat
  answers the kept question there, once, and only for its asker; anyone else is told the
  link is not theirs and learns nothing of the question.
- ``/private_answers on|off`` (:func:`switch_private_answers`): a group's admins turn it
  on or off (admins as :func:`handlers.admins.sent_by_admin` says: ``getChatMember``,
  cached 60 s); ``/private_answers`` alone says which way it is.
"""

from __future__ import annotations

import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType
from telegram.error import Forbidden, TelegramError

from bot.conversation.images import ImageError, fetch_images
from bot.conversation.private_answers import (
    answers_in_private,
    pending_of,
    question_header,
    set_answers_in_private,
    start_link,
    token_of,
    turn_of,
)
from bot.conversation.types import TurnInput
from bot.texts import Lang, t
from handlers.admins import sent_by_admin
from handlers.common import lang_of, shows_reasoning
from handlers.context import BotContext
from providers.types import ImagePart
from storage.pending import Claim, PendingQuestions

__all__ = ["answer_pending", "answered_in_private", "switch_private_answers"]

log = logging.getLogger(__name__)


def _pending(context: BotContext) -> PendingQuestions:
    """The questions waiting for their askers, on the store's Redis."""
    return PendingQuestions(context.services.store.redis)


async def answered_in_private(
    context: BotContext, message: Message, turn: TurnInput, lang: Lang
) -> bool:
    """Answer ``turn``, asked by ``message`` in a group that answers in private, in the
    asker's private chat (or leave the deep link when the bot may not write there);
    True then. False, having sent nothing, in a private chat, a group with the setting
    off, or when the private chat fails for another reason than 403 (the caller answers
    in the group, as without the setting). Redis errors propagate."""
    chat = message.chat
    if chat.type == ChatType.PRIVATE:
        return False
    if not await answers_in_private(context.services.store, chat.id):
        return False
    title = chat.title or chat.effective_name or ""
    try:
        quote = await _quote_question(context, turn, chat_title=title, lang=lang)
    except Forbidden:
        await _leave_start_link(context, message, turn, chat_title=title, lang=lang)
        return True
    except TelegramError as exc:
        log.warning(
            "could not write to an asker's private chat (%s); answering in the group", exc.message
        )
        return False
    # the group's line goes alongside: in a busy group it may wait for the group's budget
    context.application.create_task(_reply_quietly(message, t("private_answered", lang)))
    await _answer(context, turn, reply_to=quote.message_id, lang=lang)
    return True


async def answer_pending(update: Update, context: BotContext) -> bool:
    """``/start q_<token>`` in a private chat: answer the question the token names there
    (its asker only, once); True when the parameter was such a token (answered, or the
    user told why not), False for a plain ``/start`` or any other parameter."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None or message.chat.type != ChatType.PRIVATE:
        return False
    token = token_of(context.args[0]) if context.args else None
    if token is None:
        return False
    lang = lang_of(update)
    claimed = await _pending(context).claim(token, user.id)
    if claimed is Claim.NOT_YOURS:
        await message.reply_text(t("private_link_not_yours", lang))
        return True
    if claimed is Claim.GONE:
        await message.reply_text(t("private_link_gone", lang))
        return True
    turn = turn_of(claimed, await _images_again(context, claimed.image_file_ids))
    try:
        quote = await _quote_question(context, turn, chat_title=claimed.chat_title, lang=lang)
    except Forbidden:  # blocked again since pressing Start: nobody to answer
        return True
    await _answer(context, turn, reply_to=quote.message_id, lang=lang)
    return True


async def switch_private_answers(update: Update, context: BotContext) -> None:
    """``/private_answers on|off`` in a group: its admins answer questions in private or in
    the group; ``/private_answers`` alone (anyone) says which."""
    message, user, chat = update.effective_message, update.effective_user, update.effective_chat
    if message is None or user is None or chat is None:
        return
    lang = lang_of(update)
    if chat.type == ChatType.PRIVATE:
        await message.reply_text(t("shared_groups_only", lang))
        return
    store = context.services.store
    choice = context.args[0].casefold() if context.args else ""
    if choice not in ("on", "off"):
        state = "on" if await answers_in_private(store, chat.id) else "off"
        await message.reply_text(t(f"private_answers_state_{state}", lang))
        return
    if not await sent_by_admin(context, message, user.id):
        await message.reply_text(t("chat_admins_only", lang))
        return
    await set_answers_in_private(store, chat.id, choice == "on")
    await message.reply_text(t(f"private_answers_{choice}", lang))


async def _quote_question(
    context: BotContext, turn: TurnInput, *, chat_title: str, lang: Lang
) -> Message:
    """Send the asker, in their private chat (whose id is their user id), the message
    quoting ``turn``'s question. Raises ``Forbidden`` when the bot may not write there and
    the other ``TelegramError``\\ s as Telegram answers."""
    text, entities = question_header(
        turn.text, chat_title=chat_title, images=len(turn.image_file_ids), lang=lang
    )
    return await context.bot.send_message(turn.user_id, text, entities=entities)


async def _answer(context: BotContext, turn: TurnInput, *, reply_to: int, lang: Lang) -> None:
    """Run ``turn`` in its conversation (the asker's in the group), shown in the asker's
    private chat as a reply to message ``reply_to`` there."""
    services = context.services
    reply = services.replies.open_in(
        turn.user_id,
        private=True,
        reply_to=reply_to,
        lang=lang,
        show_reasoning=await shows_reasoning(context, turn.user_id),
        on_forbidden=lambda: services.conversations.stop(turn.scope),
    )
    await services.conversations.run_turn(turn, reply)


async def _leave_start_link(
    context: BotContext, message: Message, turn: TurnInput, *, chat_title: str, lang: Lang
) -> None:
    """Keep the question and reply to it in the group with the button that starts the bot."""
    token = await _pending(context).put(
        pending_of(
            turn, chat_id=message.chat_id, chat_title=chat_title, message_id=message.message_id
        )
    )
    log.info("a question waits for its asker to start the bot in private")
    button = InlineKeyboardButton(
        t("private_start_button", lang), url=start_link(context.bot.username, token)
    )
    await _reply_quietly(
        message, t("private_start_needed", lang), markup=InlineKeyboardMarkup([[button]])
    )


async def _reply_quietly(
    message: Message, text: str, *, markup: InlineKeyboardMarkup | None = None
) -> None:
    """Reply ``text`` to ``message``; a Telegram error is logged, not raised (the answer
    itself, in private, must not fail for it)."""
    try:
        await message.reply_text(text, reply_markup=markup)
    except TelegramError as exc:
        log.warning("could not reply in chat %s: %s", message.chat_id, exc.message)


async def _images_again(context: BotContext, file_ids: tuple[str, ...]) -> tuple[ImagePart, ...]:
    """The images of a kept question, downloaded again; none when Telegram no longer gives
    them (the question is answered from its text)."""
    if not file_ids:
        return ()
    try:
        return await fetch_images(context.bot, file_ids)
    except (TelegramError, ImageError) as exc:
        log.info("a kept question's images are gone (%s); answering its text", exc)
        return ()
