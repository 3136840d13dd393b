"""Callback-query handlers: the /model and /settings inline menus.

A press on a menu the bot can no longer read (e.g. older than 48 h) carries an
``InaccessibleMessage``, "date" 0, as ``callback_query.message``
(https://core.telegram.org/bots/api#maybeinaccessiblemessage). PTB 22 parses it into a
:class:`telegram.Message` all the same, with no thread, text or sender, so
``is_accessible`` (date not 0) is what tells. Such a press changes nothing (its scope
cannot be known: a forum topic's is gone with the thread id, and the message cannot be
edited); the user is told to open the menu again.
"""

from __future__ import annotations

from telegram import Message, Update

from bot.conversation.scope import user_scope
from bot.texts import t
from handlers.commands import model_key_of, model_keyboard, settings_keyboard
from handlers.common import lang_of, scope_for
from handlers.context import BotContext

__all__ = ["change_setting", "choose_model"]


def _owner_and_rest(data: str) -> tuple[int, list[str]] | None:
    parts = data.split("|")
    if len(parts) < 3 or not parts[1].lstrip("-").isdigit():
        return None
    return int(parts[1]), parts[2:]


async def choose_model(update: Update, context: BotContext) -> None:
    """Set the model pressed in a /model menu; refuse presses by anyone but its owner and
    presses on a menu the bot can no longer read."""
    query, user = update.callback_query, update.effective_user
    if query is None or user is None or query.data is None:
        return
    lang = lang_of(update)
    parsed, menu = _owner_and_rest(query.data), query.message
    if parsed is None or parsed[0] != user.id or menu is None:
        await query.answer(t("not_your_menu", lang), show_alert=True)
        return
    if not isinstance(menu, Message) or not menu.is_accessible:
        await query.answer(t("menu_too_old", lang, command="/model"), show_alert=True)
        return
    key = model_key_of("|".join(parsed[1]), context.services.catalogue)
    scope = await scope_for(context, menu, user)
    info = await context.services.conversations.set_model(scope, key)
    if info is None:
        await query.answer(t("model_unknown", lang), show_alert=True)
        return
    await query.answer(t("model_set", lang, model=info.display_name))
    text = t("model_set", lang, model=info.display_name)
    keyboard = model_keyboard(context, owner=user.id, current=info.key)
    await query.edit_message_text(text, reply_markup=keyboard)


async def change_setting(update: Update, context: BotContext) -> None:
    """Apply a /settings toggle for its owner, unless its menu is too old to read."""
    query, user = update.callback_query, update.effective_user
    if query is None or user is None or query.data is None:
        return
    lang = lang_of(update)
    parsed = _owner_and_rest(query.data)
    if parsed is None or parsed[0] != user.id or len(parsed[1]) != 2:
        await query.answer(t("not_your_menu", lang), show_alert=True)
        return
    if query.message is not None and not query.message.is_accessible:
        await query.answer(t("menu_too_old", lang, command="/settings"), show_alert=True)
        return
    name, value = parsed[1]
    await context.services.store.set_setting(user_scope(user.id), name, value)
    await query.answer(t("settings_saved", lang))
    keyboard = settings_keyboard(owner=user.id, show_reasoning=value != "hide", lang=lang)
    await query.edit_message_reply_markup(reply_markup=keyboard)
