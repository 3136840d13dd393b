"""Callback-query handlers: the /model and /settings inline menus, and every other press.

Every press is answered (``answerCallbackQuery``): until it is, the user's Telegram client
shows a progress indicator on the button (Bot API "answerCallbackQuery"). Presses with
data the bot does not know (a garbled button, one from an older version of the bot) get
"this button no longer works" from :func:`answer_unknown_button`, registered after the
menus' handlers; a handler that fails before answering still answers (bare) before the
error goes on to the error handler.

A press on a menu the bot can no longer read (e.g. older than 48 h) carries an
``InaccessibleMessage``, "date" 0, as ``callback_query.message``
(https://core.telegram.org/bots/api#maybeinaccessiblemessage). PTB 22 parses it into a
:class:`telegram.Message` all the same, with no thread, text or sender, so
``is_accessible`` (date not 0) is what tells. Such a press changes nothing (its scope
cannot be known: a forum topic's is gone with the thread id, and the message cannot be
edited); the user is told to open the menu again.

A press repeated (a double tap, a second press on the choice already made) changes
nothing and edits nothing: the menu already shows that state, and Telegram refuses an
edit to the same content with "Bad Request: message is not modified". Two presses racing
can still both edit; that refusal, and the menu being gone, are logged and dropped.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import CallbackQuery, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest, TelegramError

from bot.conversation.formats import FORMAT, ReplyFormat
from bot.conversation.scope import user_scope
from bot.texts import t
from handlers.commands import model_key_of, model_menu_keyboard, personal_settings_keyboard
from handlers.common import lang_of, scope_for
from handlers.context import BotContext

__all__ = ["answer_unknown_button", "change_setting", "choose_model"]

log = logging.getLogger(__name__)

_Callback = Callable[[Update, BotContext], Coroutine[Any, Any, None]]

_SETTINGS = {"reasoning": ("show", "hide"), FORMAT: tuple(f.value for f in ReplyFormat)}
"""The /settings toggles the bot knows: name → its values."""

_STALE_EDIT = ("message is not modified", "message to edit not found", "can't be edited")
"""Bot API ``BadRequest`` descriptions of a menu edit that needs not or cannot happen:
the same content again (a repeated press), the menu deleted, or too old to edit."""


def _answered_on_error(handler: _Callback) -> _Callback:
    """``handler``, answering its callback query (no text) when it raises, then re-raising.

    If the query was already answered, Telegram refuses the second answer; that refusal
    is dropped, and the original error still reaches the error handler.
    """

    @functools.wraps(handler)
    async def run(update: Update, context: BotContext) -> None:
        try:
            await handler(update, context)
        except Exception:
            if update.callback_query is not None:
                with contextlib.suppress(TelegramError):
                    await update.callback_query.answer()
            raise

    return run


def _owner_and_rest(data: str) -> tuple[int, list[str]] | None:
    parts = data.split("|")
    if len(parts) < 3 or not parts[1].lstrip("-").isdigit():
        return None
    return int(parts[1]), parts[2:]


async def _edit_menu(
    query: CallbackQuery, markup: InlineKeyboardMarkup, text: str | None = None
) -> None:
    """Show ``markup`` (and ``text``, when given) on the pressed menu, unless its keyboard
    is ``markup`` already; a stale edit (:data:`_STALE_EDIT`) is logged and dropped."""
    menu = query.message
    if isinstance(menu, Message) and menu.reply_markup == markup:
        return
    try:
        if text is None:
            await query.edit_message_reply_markup(reply_markup=markup)
        else:
            await query.edit_message_text(text, reply_markup=markup)
    except BadRequest as exc:
        if not any(stale in exc.message.lower() for stale in _STALE_EDIT):
            raise
        log.info("menu not edited: %s", exc.message)


@_answered_on_error
async def choose_model(update: Update, context: BotContext) -> None:
    """Set the model pressed in a /model menu; refuse presses by anyone but its owner and
    presses on a menu the bot can no longer read; a press on the model already chosen is
    answered "already selected" and changes nothing; a model the chat's admins no longer
    allow is refused ("not allowed here") and the menu shows the allowed ones."""
    query, user = update.callback_query, update.effective_user
    if query is None or user is None:
        return
    lang = lang_of(update)
    parsed, menu = _owner_and_rest(query.data or ""), query.message
    if parsed is None or menu is None:
        await query.answer(t("button_unknown", lang), show_alert=True)
        return
    if parsed[0] != user.id:
        await query.answer(t("not_your_menu", lang), show_alert=True)
        return
    if not isinstance(menu, Message) or not menu.is_accessible:
        await query.answer(t("menu_too_old", lang, command="/model"), show_alert=True)
        return
    key = model_key_of("|".join(parsed[1]), context.services.catalogue)
    scope = await scope_for(context, menu, user)
    conversations = context.services.conversations
    current = await conversations.current_model(scope)
    keyboard = functools.partial(
        model_menu_keyboard, context, menu.chat, owner=user.id, scope=scope, lang=lang
    )
    if key == current.key:
        await query.answer(t("model_already", lang, model=current.display_name))
        text = t("model_set", lang, model=current.display_name)
        await _edit_menu(query, await keyboard(current=current.key), text)
        return
    info = await conversations.set_model(scope, key)
    if info is None:
        if context.services.catalogue.get(key) is None:
            await query.answer(t("model_unknown", lang), show_alert=True)
            return
        # enabled, but not allowed in this chat (its admins changed the list)
        await query.answer(t("model_not_allowed", lang), show_alert=True)
        text = t("model_current", lang, model=current.display_name)
        await _edit_menu(query, await keyboard(current=current.key), text)
        return
    text = t("model_set", lang, model=info.display_name)
    await query.answer(text)
    await _edit_menu(query, await keyboard(current=info.key), text)


@_answered_on_error
async def change_setting(update: Update, context: BotContext) -> None:
    """Apply a /settings toggle for its owner (the reasoning shown or hidden; the answer
    format, :mod:`bot.conversation.formats`), unless its menu is too old to read; a toggle
    the bot does not know is answered "this button no longer works"."""
    query, user = update.callback_query, update.effective_user
    if query is None or user is None:
        return
    lang = lang_of(update)
    parsed = _owner_and_rest(query.data or "")
    if parsed is None or len(parsed[1]) != 2 or parsed[1][1] not in _SETTINGS.get(parsed[1][0], ()):
        await query.answer(t("button_unknown", lang), show_alert=True)
        return
    if parsed[0] != user.id:
        await query.answer(t("not_your_menu", lang), show_alert=True)
        return
    if query.message is not None and not query.message.is_accessible:
        await query.answer(t("menu_too_old", lang, command="/settings"), show_alert=True)
        return
    name, value = parsed[1]
    await context.services.store.set_setting(user_scope(user.id), name, value)
    await query.answer(t("settings_saved", lang))
    await _edit_menu(query, await personal_settings_keyboard(context, owner=user.id, lang=lang))


async def answer_unknown_button(update: Update, context: BotContext) -> None:
    """Answer a press whose data no menu handler took (garbled, from an older version of
    the bot, or a game button): "this button no longer works", as an alert."""
    if update.callback_query is not None:
        await update.callback_query.answer(t("button_unknown", lang_of(update)), show_alert=True)
