"""Chat settings by a chat's admins, and each user's own prompt.

- ``/system <text>`` sets the prompt: in a group the chat's (its admins only), in a
  private chat the user's own. The text is everything after the command, line breaks
  kept, at most :data:`~bot.conversation.chat_settings.PROMPT_MAX` characters (a longer
  one is refused, nothing changes). ``/system`` alone shows it, ``/system clear``
  removes it. How the prompts combine: :mod:`bot.conversation.prompts`.
- ``/triggers`` (groups, admins): ``/triggers`` lists the trigger words, ``/triggers add
  <words>`` and ``/triggers remove <words>`` (comma-separated) change them, ``/triggers
  clear`` removes them all. A group message containing one is answered without a
  mention (:func:`answer_if_triggered`).
- ``/settings`` in a group shows its admins the chat's menu (prompt, allowed models,
  default model, trigger words, the comment switch, the answer format of members who
  chose none: :mod:`bot.conversation.formats`); anyone else, and everyone in a private
  chat, gets their own display options (:func:`handlers.commands.show_settings`).
- ``/model`` in a group gives its admins a button to the chat's model menu
  (``cm|…`` presses, :func:`change_chat_models`): allow or forbid each model, pick the
  chat's default (:mod:`bot.conversation.chat_settings`).
- In a channel's discussion group with the comment switch on, every comment under the
  channel's posts is answered, mention or not.

Admins are verified with ``getChatMember`` (:mod:`handlers.admins`, cached 60 s). A
non-admin's attempt at any of these is refused politely and changes nothing.

The bot sees group messages that neither mention it nor reply to it only when its
privacy mode is off (@BotFather ``/setprivacy``) or it is an admin of the group
(https://core.telegram.org/bots/features#privacy-mode); when neither holds, the
replies that turn triggers or comments on say so.
"""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType

from bot.conversation.chat_settings import (
    PROMPT_MAX,
    TRIGGER_MAX,
    TRIGGERS_MAX,
    ChatSettings,
    load_chat_settings,
    load_user_prompt,
    set_allowed_models,
    set_answer_comments,
    set_chat_prompt,
    set_default_model,
    set_triggers,
    set_user_prompt,
    split_words,
    triggered_by,
)
from bot.conversation.formats import FORMAT, Formats, ReplyFormat
from bot.conversation.scope import thread_of
from bot.texts import Lang, t
from handlers.admins import is_chat_admin, sent_by_admin
from handlers.callbacks import _answered_on_error, _edit_menu, _owner_and_rest
from handlers.commands import (
    model_key_of,
    model_menu_keyboard,
    personal_settings_keyboard,
    show_settings,
)
from handlers.common import lang_of, scope_for
from handlers.context import BotContext
from handlers.messages import answer_message
from providers.catalogue import ModelInfo

__all__ = [
    "answer_if_triggered",
    "change_chat_models",
    "change_chat_setting",
    "chat_menu_text",
    "edit_triggers",
    "set_system_prompt",
    "show_settings_menu",
]

MESSAGE_MAX = 4096
"""UTF-16 code units of text one Telegram message holds (Bot API ``sendMessage``)."""
MENU_PROMPT_MAX = 300
"""Characters of the chat's prompt the /settings menu shows (``/system`` shows it all)."""
CLEAR = "clear"


def _argument(message: Message) -> str:
    """The text after the command (``/system@bot`` included), line breaks kept, stripped."""
    parts = (message.text or "").split(maxsplit=1)
    return parts[1].strip() if len(parts) > 1 else ""


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


async def _reply_prompt(message: Message, heading: str, prompt: str) -> None:
    """``heading`` and ``prompt`` in one message, or in two when one would be too long."""
    text = f"{heading}\n\n{prompt}"
    if _utf16_length(text) <= MESSAGE_MAX:
        await message.reply_text(text)
        return
    await message.reply_text(heading)
    await message.reply_text(prompt)  # it came in one message, after "/system "


async def _refused(context: BotContext, message: Message, user_id: int, lang: Lang) -> bool:
    """Tell a non-admin of a group that only its admins may do this; True when refused."""
    if await sent_by_admin(context, message, user_id):
        return False
    await message.reply_text(t("chat_admins_only", lang))
    return True


async def set_system_prompt(update: Update, context: BotContext) -> None:
    """``/system``: show, set or clear the chat's prompt (group admins) or the user's own
    (private chats)."""
    message, user, chat = update.effective_message, update.effective_user, update.effective_chat
    if message is None or user is None or chat is None:
        return
    lang = lang_of(update)
    private = chat.type == ChatType.PRIVATE
    if not private and await _refused(context, message, user.id, lang):
        return
    store, whose = context.services.store, "user" if private else "chat"
    text = _argument(message)
    if not text:
        current = (
            await load_user_prompt(store, user.id)
            if private
            else (await load_chat_settings(store, chat.id)).prompt
        )
        if current:
            await _reply_prompt(message, t(f"system_show_{whose}", lang), current)
        else:
            await message.reply_text(t(f"system_none_{whose}", lang, limit=PROMPT_MAX))
        return
    if text.casefold() == CLEAR:
        text = ""
    elif len(text) > PROMPT_MAX:
        await message.reply_text(t("system_too_long", lang, length=len(text), limit=PROMPT_MAX))
        return
    if private:
        await set_user_prompt(store, user.id, text)
    else:
        await set_chat_prompt(store, chat.id, text)
    if text:
        await message.reply_text(t(f"system_set_{whose}", lang, length=len(text)))
    else:
        await message.reply_text(t(f"system_cleared_{whose}", lang))


async def _privacy_hint(context: BotContext, chat_id: int, lang: Lang) -> str:
    """Nothing when the bot sees every message of the group (privacy mode off, or an
    admin); else a paragraph (after a blank line) saying how to let it."""
    if context.bot.can_read_all_group_messages or await is_chat_admin(
        context, chat_id, context.bot.id
    ):
        return ""
    return "\n\n" + t("privacy_hint", lang)


def _words(triggers: tuple[str, ...] | list[str], lang: Lang) -> str:
    return ", ".join(triggers) if triggers else t("chat_none", lang)


async def edit_triggers(update: Update, context: BotContext) -> None:
    """``/triggers`` in a group: list, add, remove or clear its trigger words (admins)."""
    message, user, chat = update.effective_message, update.effective_user, update.effective_chat
    if message is None or user is None or chat is None:
        return
    lang = lang_of(update)
    if chat.type == ChatType.PRIVATE:
        await message.reply_text(t("shared_groups_only", lang))
        return
    if await _refused(context, message, user.id, lang):
        return
    store = context.services.store
    current = list((await load_chat_settings(store, chat.id)).triggers)
    verb, _, rest = _argument(message).partition(" ")
    verb, words = verb.strip().casefold(), split_words(rest)
    if not verb:
        await message.reply_text(t("triggers_list", lang, words=_words(current, lang)))
        return
    if verb == "add" and words:
        known = {w.casefold() for w in current}
        wanted = current + [w for w in words if w.casefold() not in known]
    elif verb == "remove" and words:
        gone = {w.casefold() for w in words}
        wanted = [w for w in current if w.casefold() not in gone]
    elif verb == CLEAR and not rest.strip():
        wanted = []
    else:
        await message.reply_text(t("triggers_usage", lang))
        return
    if len(wanted) > TRIGGERS_MAX:
        await message.reply_text(t("triggers_too_many", lang, limit=TRIGGERS_MAX))
        return
    if any(len(w) > TRIGGER_MAX for w in wanted):
        await message.reply_text(t("triggers_too_long", lang, limit=TRIGGER_MAX))
        return
    await set_triggers(store, chat.id, wanted)
    hint = await _privacy_hint(context, chat.id, lang) if wanted else ""
    await message.reply_text(t("triggers_saved", lang, words=_words(wanted, lang)) + hint)


# -- the /settings chat menu -----------------------------------------------------------


def chat_menu_text(
    settings: ChatSettings,
    *,
    enabled: list[ModelInfo],
    default: ModelInfo,
    lang: Lang,
    reply_format: ReplyFormat = ReplyFormat.CLASSIC,
) -> str:
    """The /settings chat menu's text: each setting of ``settings`` and its value.

    ``enabled`` are the enabled models (names of the allowed ones are shown), ``default``
    the bot's default model, ``reply_format`` the chat's default answer format.
    """
    names = {m.key: m.display_name for m in enabled}
    prompt = settings.prompt or t("chat_none", lang)
    if len(prompt) > MENU_PROMPT_MAX:
        prompt = prompt[:MENU_PROMPT_MAX] + "…"
    allowed = [names[k] for k in names if settings.allows(k)]
    models = t("chat_models_all", lang) if not settings.allowed_models else ", ".join(allowed)
    chat_default = names.get(settings.default_model)
    return t(
        "chat_menu",
        lang,
        prompt=prompt,
        models=models or t("chat_none", lang),
        default=chat_default or t("chat_default_bot", lang, model=default.display_name),
        triggers=_words(settings.triggers, lang),
        comments=t("chat_comments_all" if settings.answer_comments else "chat_comments_some", lang),
        format=t(f"format_{reply_format.value}", lang),
    )


def _chat_menu_keyboard(
    settings: ChatSettings, *, owner: int, lang: Lang, reply_format: ReplyFormat
) -> InlineKeyboardMarkup:
    on = settings.answer_comments
    other = ReplyFormat.CLASSIC if reply_format is ReplyFormat.RICH else ReplyFormat.RICH
    rows = [
        [
            InlineKeyboardButton(
                t("chat_comments_button_on" if on else "chat_comments_button_off", lang),
                callback_data=f"cs|{owner}|comments|{'off' if on else 'on'}",
            )
        ],
        [InlineKeyboardButton(t("chat_models_open", lang), callback_data=f"cm|{owner}|open")],
        [
            InlineKeyboardButton(
                t("chat_format_button", lang, format=t(f"format_{reply_format.value}", lang)),
                callback_data=f"cs|{owner}|{FORMAT}|{other.value}",
            )
        ],
    ]
    if settings.triggers:
        rows.append(
            [
                InlineKeyboardButton(
                    t("chat_triggers_clear", lang), callback_data=f"cs|{owner}|triggers|clear"
                )
            ]
        )
    rows.append(
        [
            InlineKeyboardButton(
                t("chat_personal_open", lang), callback_data=f"cs|{owner}|personal|open"
            )
        ]
    )
    return InlineKeyboardMarkup(rows)


async def _chat_menu(
    context: BotContext, chat_id: int, *, owner: int, lang: Lang
) -> tuple[str, InlineKeyboardMarkup]:
    settings = await load_chat_settings(context.services.store, chat_id)
    reply_format = await Formats(context.services.store).chat_format(chat_id)
    conversations = context.services.conversations
    text = chat_menu_text(
        settings,
        enabled=conversations.enabled_models(),
        default=conversations.default_model,
        lang=lang,
        reply_format=reply_format,
    )
    keyboard = _chat_menu_keyboard(settings, owner=owner, lang=lang, reply_format=reply_format)
    return text, keyboard


async def show_settings_menu(update: Update, context: BotContext) -> None:
    """``/settings``: the chat's menu for a group's admins; the caller's own display
    options for everyone else (and in private chats)."""
    message, user, chat = update.effective_message, update.effective_user, update.effective_chat
    if message is None or user is None or chat is None:
        return
    if chat.type == ChatType.PRIVATE or not await sent_by_admin(context, message, user.id):
        await show_settings(update, context)
        return
    text, keyboard = await _chat_menu(context, chat.id, owner=user.id, lang=lang_of(update))
    await message.reply_text(text, reply_markup=keyboard)


async def _checked_press(
    update: Update, context: BotContext, lang: Lang, command: str, *, admin: bool = True
) -> tuple[Message, list[str]] | None:
    """The menu and the data after ``<prefix>|<owner>|`` of a chat-menu press that may go
    on: known data, its owner pressing, a menu the bot can read, in a group, and (with
    ``admin``) an admin pressing. Otherwise the press is answered and ``None`` returned."""
    query, user = update.callback_query, update.effective_user
    if query is None or user is None:
        return None
    parsed, menu = _owner_and_rest(query.data or ""), query.message
    if parsed is None or menu is None:
        await query.answer(t("button_unknown", lang), show_alert=True)
        return None
    if parsed[0] != user.id:
        await query.answer(t("not_your_menu", lang), show_alert=True)
        return None
    if not isinstance(menu, Message) or not menu.is_accessible:
        await query.answer(t("menu_too_old", lang, command=command), show_alert=True)
        return None
    if menu.chat.type == ChatType.PRIVATE:
        await query.answer(t("button_unknown", lang), show_alert=True)
        return None
    if admin and not await is_chat_admin(context, menu.chat.id, user.id):
        await query.answer(t("chat_admins_only", lang), show_alert=True)
        return None
    return menu, parsed[1]


@_answered_on_error
async def change_chat_setting(update: Update, context: BotContext) -> None:
    """A press in the /settings chat menu (``cs|<owner>|<name>|<value>``): the comment
    switch, clearing the trigger words, the default answer format (``format|classic``,
    ``format|rich``; admins only), or the presser's own options."""
    lang = lang_of(update)
    query, user = update.callback_query, update.effective_user
    if query is None or user is None:
        return
    personal = (query.data or "").endswith("|personal|open")
    checked = await _checked_press(update, context, lang, "/settings", admin=not personal)
    if checked is None:
        return
    chat, data = checked[0].chat, checked[1]
    name, value = (data[0], data[1]) if len(data) == 2 else ("", "")
    store = context.services.store
    if personal:
        await query.answer()
        keyboard = await personal_settings_keyboard(context, owner=user.id, lang=lang)
        await _edit_menu(query, keyboard, t("settings_title", lang))
        return
    formats = {f.value for f in ReplyFormat}
    if name == "comments" and value in ("on", "off"):
        await set_answer_comments(store, chat.id, value == "on")
    elif name == "triggers" and value == CLEAR:
        await set_triggers(store, chat.id, [])
    elif name == FORMAT and value in formats:
        await Formats(store).set_chat_format(chat.id, ReplyFormat(value))
    else:
        await query.answer(t("button_unknown", lang), show_alert=True)
        return
    hint = await _privacy_hint(context, chat.id, lang) if value == "on" else ""
    await query.answer(t("settings_saved", lang) + hint, show_alert=bool(hint))
    text, keyboard = await _chat_menu(context, chat.id, owner=user.id, lang=lang)
    await _edit_menu(query, keyboard, text)


# -- the chat's models (from /model or /settings) ---------------------------------------


def _model_data(owner: int, action: str, info: ModelInfo, index: int) -> str:
    """``cm|<owner>|<action>|<model key>``, or ``…|#<platform>#<index>`` when that would
    pass the 64-byte ``callback_data`` limit (read back by
    :func:`handlers.commands.model_key_of`)."""
    data = f"cm|{owner}|{action}|{info.key}"
    return data if len(data.encode()) <= 64 else f"cm|{owner}|{action}|#{info.platform}#{index}"


def chat_models_keyboard(
    context: BotContext, settings: ChatSettings, *, owner: int, lang: Lang
) -> InlineKeyboardMarkup:
    """One row per enabled model: ☑/☐ allowed here (``a``), ⭐/☆ the chat's default
    (``d``); then "back" to the presser's own /model menu."""
    rows: list[list[InlineKeyboardButton]] = []
    for platform, models in context.services.catalogue.by_platform().items():
        if platform not in context.services.conversations.clients:
            continue
        for index, info in enumerate(models):
            allowed = "☑" if settings.allows(info.key) else "☐"
            star = "⭐" if info.key == settings.default_model else "☆"
            label = f"{allowed} [{platform}] {info.display_name}"
            rows.append(
                [
                    InlineKeyboardButton(label, callback_data=_model_data(owner, "a", info, index)),
                    InlineKeyboardButton(star, callback_data=_model_data(owner, "d", info, index)),
                ]
            )
    rows.append(
        [InlineKeyboardButton(t("chat_models_back", lang), callback_data=f"cm|{owner}|back")]
    )
    return InlineKeyboardMarkup(rows)


async def _toggle_allowed(
    context: BotContext, chat_id: int, settings: ChatSettings, info: ModelInfo, lang: Lang
) -> str | None:
    """Allow or forbid ``info`` in the chat; the refusal to show, or ``None`` when done."""
    enabled = {m.key for m in context.services.conversations.enabled_models()}
    allowed = {k for k in enabled if settings.allows(k)}
    if info.key in allowed:
        if info.key == settings.default_model:
            return t("chat_model_is_default", lang, model=info.display_name)
        if len(allowed) == 1:
            return t("chat_model_last", lang)
        allowed.discard(info.key)
    else:
        allowed.add(info.key)
    everything = allowed >= enabled
    await set_allowed_models(context.services.store, chat_id, () if everything else allowed)
    return None


@_answered_on_error
async def change_chat_models(update: Update, context: BotContext) -> None:
    """A press in the chat's model menu (``cm|<owner>|…``, admins only): ``open`` it,
    ``a|<model>`` allow or forbid a model (not the default, not the last allowed one),
    ``d|<model>`` make it the chat's default (allowing it) or, pressed again, return to
    the bot's default, ``back`` to the presser's own /model menu."""
    lang = lang_of(update)
    query, user = update.callback_query, update.effective_user
    if query is None or user is None:
        return
    checked = await _checked_press(update, context, lang, "/model")
    if checked is None:
        return
    menu, data = checked
    chat = menu.chat
    store, conversations = context.services.store, context.services.conversations
    settings = await load_chat_settings(store, chat.id)
    action = data[0] if data else ""
    if action == "back":
        await query.answer()
        scope = await scope_for(context, menu, user)
        current = await conversations.current_model(scope)
        keyboard = await model_menu_keyboard(
            context, chat, owner=user.id, scope=scope, current=current.key, lang=lang
        )
        text = t("model_current", lang, model=current.display_name) + "\n" + t("model_legend", lang)
        await _edit_menu(query, keyboard, text)
        return
    if action in ("a", "d") and len(data) >= 2:
        info = context.services.catalogue.get(
            model_key_of("|".join(data[1:]), context.services.catalogue)
        )
        if info is None or info.platform not in conversations.clients:
            await query.answer(t("model_unknown", lang), show_alert=True)
            return
        if action == "a":
            refusal = await _toggle_allowed(context, chat.id, settings, info, lang)
            if refusal is not None:
                await query.answer(refusal, show_alert=True)
                return
            await query.answer(t("settings_saved", lang))
        elif info.key == settings.default_model:
            await set_default_model(store, chat.id, "")
            await query.answer(t("chat_default_unset", lang))
        else:
            if not settings.allows(info.key):
                await set_allowed_models(store, chat.id, {*settings.allowed_models, info.key})
            await set_default_model(store, chat.id, info.key)
            await query.answer(t("chat_default_set", lang, model=info.display_name))
        settings = await load_chat_settings(store, chat.id)
    elif action != "open":
        await query.answer(t("button_unknown", lang), show_alert=True)
        return
    else:
        await query.answer()
    keyboard = chat_models_keyboard(context, settings, owner=user.id, lang=lang)
    await _edit_menu(query, keyboard, t("chat_models_title", lang))


# -- answering without a mention -----------------------------------------------------


def _is_comment(message: Message) -> bool:
    """A comment under a channel post in its discussion group (not the post itself)."""
    if message.is_automatic_forward or message.chat.is_forum:
        return False
    return thread_of(message) is not None


async def answer_if_triggered(update: Update, context: BotContext) -> None:
    """A group text that neither mentions the bot nor replies to it: answered as a turn
    (:func:`handlers.messages.answer_message`) when it contains one of the chat's trigger
    words, or when it is a comment under a channel post and the chat's comment switch is
    on; otherwise left alone (one Redis read)."""
    message, chat = update.effective_message, update.effective_chat
    if message is None or chat is None or chat.type == ChatType.PRIVATE:
        return
    text = message.text or ""
    if not text or text.startswith("/") or message.is_automatic_forward:
        return
    if update.effective_user is None or update.effective_user.is_bot:
        return
    settings = await load_chat_settings(context.services.store, chat.id)
    comment = settings.answer_comments and _is_comment(message)
    if comment or triggered_by(text, settings.triggers):
        await answer_message(update, context)
