"""Command handlers: /start, /help, /reset, /model, /stop, /retry, /settings."""

from __future__ import annotations

import functools
from collections.abc import Collection

from telegram import Chat, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatType

from bot.conversation.formats import Formats, ReplyFormat
from bot.conversation.groups import is_shared, set_shared
from bot.conversation.images import fetch_images
from bot.texts import Lang, t
from handlers.admins import is_chat_admin, sent_by_admin
from handlers.common import lang_of, refused_for_quota, scope_for, shows_reasoning
from handlers.context import BotContext
from handlers.private_answers import answer_pending
from handlers.usage_texts import usage_text
from providers.catalogue import Catalogue

__all__ = [
    "model_button_data",
    "model_key_of",
    "model_keyboard",
    "model_menu_keyboard",
    "personal_settings_keyboard",
    "regenerate_answer",
    "reset_conversation",
    "settings_keyboard",
    "show_help",
    "show_model_menu",
    "show_settings",
    "show_usage",
    "start_bot",
    "stop_answer",
    "toggle_shared",
]


async def start_bot(update: Update, context: BotContext) -> None:
    """Say what the bot is and which model answers; ``/start q_<token>`` (a deep link the
    bot left in a group answering in private) answers the question kept under it instead
    (:func:`handlers.private_answers.answer_pending`)."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    if await answer_pending(update, context):
        return
    model = await context.services.conversations.current_model(
        await scope_for(context, message, user)
    )
    await message.reply_text(t("start", lang_of(update), model=model.display_name))


async def show_help(update: Update, context: BotContext) -> None:
    """List the commands."""
    if update.effective_message is not None:
        await update.effective_message.reply_text(t("help", lang_of(update)))


async def reset_conversation(update: Update, context: BotContext) -> None:
    """Clear the caller's conversation and confirm."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    await context.services.conversations.reset(await scope_for(context, message, user))
    await message.reply_text(t("reset_done", lang_of(update)))


def model_keyboard(
    context: BotContext, *, owner: int, current: str, allowed: Collection[str] | None = None
) -> InlineKeyboardMarkup:
    """One button per enabled model, grouped by platform; 👁 vision, 🧠 reasoning, ✅ current.

    ``allowed`` (model keys), when given, leaves out the models not in it (a group's
    allowed models, :mod:`bot.conversation.chat_settings`).
    """
    rows: list[list[InlineKeyboardButton]] = []
    catalogue = context.services.catalogue
    for platform, models in catalogue.by_platform().items():
        if platform not in context.services.conversations.clients:
            continue
        for index, info in enumerate(models):
            if allowed is not None and info.key not in allowed:
                continue
            marks = ("👁" if info.vision else "") + ("🧠" if info.reasoning else "")
            check = "✅ " if info.key == current else ""
            label = f"{check}{info.display_name} {marks}".strip()
            data = model_button_data(owner, info.key, platform, index)
            rows.append([InlineKeyboardButton(f"[{platform}] {label}", callback_data=data)])
    return InlineKeyboardMarkup(rows)


def model_button_data(owner: int, key: str, platform: str, index: int) -> str:
    """``m|<owner>|<model key>``, or ``m|<owner>|#<platform>#<index>`` when that would pass
    the Bot API's 64-byte ``callback_data`` limit (read back by :func:`model_key_of`)."""
    data = f"m|{owner}|{key}"
    return data if len(data.encode()) <= 64 else f"m|{owner}|#{platform}#{index}"


def model_key_of(pressed: str, catalogue: Catalogue) -> str:
    """The model key a /model button names (the part after ``m|<owner>|``); "" if none."""
    if not pressed.startswith("#"):
        return pressed
    platform, _, index = pressed[1:].partition("#")
    models = catalogue.by_platform().get(platform, [])
    return models[int(index)].key if index.isdigit() and int(index) < len(models) else ""


async def model_menu_keyboard(
    context: BotContext, chat: Chat, *, owner: int, scope: str, current: str, lang: Lang
) -> InlineKeyboardMarkup:
    """The /model keyboard of ``owner`` in ``chat``: the models ``scope`` may choose (in a
    group, those its admins allow) and, for a group's admins, a last button opening the
    chat's model settings (``cm|<owner>|open``, :mod:`handlers.chat_admin`)."""
    allowed = {m.key for m in await context.services.conversations.allowed_models(scope)}
    keyboard = model_keyboard(context, owner=owner, current=current, allowed=allowed)
    if chat.type == ChatType.PRIVATE or not await is_chat_admin(context, chat.id, owner):
        return keyboard
    button = InlineKeyboardButton(t("chat_models_open", lang), callback_data=f"cm|{owner}|open")
    return InlineKeyboardMarkup([*keyboard.inline_keyboard, [button]])


async def show_model_menu(update: Update, context: BotContext) -> None:
    """Show the current model and a keyboard of the ones the caller may choose."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    lang = lang_of(update)
    scope = await scope_for(context, message, user)
    current = await context.services.conversations.current_model(scope)
    text = t("model_current", lang, model=current.display_name) + "\n" + t("model_legend", lang)
    keyboard = await model_menu_keyboard(
        context, message.chat, owner=user.id, scope=scope, current=current.key, lang=lang
    )
    await message.reply_text(text, reply_markup=keyboard)


async def stop_answer(update: Update, context: BotContext) -> None:
    """Stop the caller's answer in progress."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    if not context.services.conversations.stop(await scope_for(context, message, user)):
        await message.reply_text(t("stop_nothing", lang_of(update)))


async def regenerate_answer(update: Update, context: BotContext) -> None:
    """Answer the caller's last message again, replacing the previous answer."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    lang = lang_of(update)
    if await refused_for_quota(context, message, user, lang):  # a retry is a question too
        return
    services = context.services
    scope = await scope_for(context, message, user)
    show = await shows_reasoning(context, user.id)
    reply = services.replies.open(
        message,
        lang=lang,
        show_reasoning=show,
        on_forbidden=lambda: services.conversations.stop(scope),
    )
    load = functools.partial(fetch_images, context.bot)
    outcome = await services.conversations.retry_last(scope, user.id, reply, load_images=load)
    if outcome is None:
        await reply.abandon()
        await message.reply_text(t("retry_nothing", lang))


def settings_keyboard(
    *, owner: int, show_reasoning: bool, rich: bool = False, lang: Lang
) -> InlineKeyboardMarkup:
    """The /settings menu: the reasoning toggle (``s|<owner>|reasoning|show|hide``), then
    the answer format, one button per format (``s|<owner>|format|classic|rich``), ✅ on
    the one chosen (``rich``; classic when the user chose none,
    :mod:`bot.conversation.formats`)."""
    label = t("settings_reasoning_show" if show_reasoning else "settings_reasoning_hide", lang)
    value = "hide" if show_reasoning else "show"
    rows = [[InlineKeyboardButton(label, callback_data=f"s|{owner}|reasoning|{value}")]]
    for choice in ReplyFormat:
        check = "✅ " if (choice is ReplyFormat.RICH) == rich else ""
        text = check + t(f"settings_format_{choice.value}", lang)
        rows.append([InlineKeyboardButton(text, callback_data=f"s|{owner}|format|{choice.value}")])
    return InlineKeyboardMarkup(rows)


async def personal_settings_keyboard(
    context: BotContext, *, owner: int, lang: Lang
) -> InlineKeyboardMarkup:
    """:func:`settings_keyboard` as ``owner``'s stored settings stand."""
    chosen = await Formats(context.services.store).user_format(owner)
    return settings_keyboard(
        owner=owner,
        show_reasoning=await shows_reasoning(context, owner),
        rich=chosen is ReplyFormat.RICH,
        lang=lang,
    )


async def show_settings(update: Update, context: BotContext) -> None:
    """Show the caller's display options as an inline menu."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    lang = lang_of(update)
    keyboard = await personal_settings_keyboard(context, owner=user.id, lang=lang)
    await message.reply_text(t("settings_title", lang), reply_markup=keyboard)


async def toggle_shared(update: Update, context: BotContext) -> None:
    """Group admins: switch between one shared conversation and one per member."""
    message, user, chat = update.effective_message, update.effective_user, update.effective_chat
    if message is None or user is None or chat is None:
        return
    lang = lang_of(update)
    if chat.type == ChatType.PRIVATE:
        await message.reply_text(t("shared_groups_only", lang))
        return
    if not await sent_by_admin(context, message, user.id):
        await message.reply_text(t("shared_admins_only", lang))
        return
    store = context.services.store
    shared = not await is_shared(store, chat.id)
    await set_shared(store, chat.id, shared)
    await message.reply_text(t("shared_on" if shared else "shared_off", lang))


async def show_usage(update: Update, context: BotContext) -> None:
    """Tell the caller their questions and tokens today and in total, by model, and what
    is left of each daily quota (:func:`handlers.usage_texts.usage_text`)."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    quotas = context.services.conversations.quotas
    today = await quotas.ledger.user_day(user.id)
    total = await quotas.ledger.user_total(user.id)
    group = message.chat.type != ChatType.PRIVATE
    chat = await quotas.chat_quota(message.chat.id) if group else None
    await message.reply_text(
        usage_text(
            today=today,
            total=total,
            day=quotas.ledger.day,
            limits=quotas.limits,
            chat=chat,
            lang=lang_of(update),
        )
    )
