"""What a group's admins choose for their chat, and each user's own prompt.

Stored as settings (:meth:`storage.ConversationStore.get_settings`) of the chat's scope
``c:<chat_id>`` (kept while the chat is active, moved along when a group becomes a
supergroup), next to the ``shared`` switch of :mod:`bot.conversation.groups`:

- ``prompt``: the chat's prompt, the course rules (text, at most :data:`PROMPT_MAX`
  characters; how it combines with the others: :mod:`bot.conversation.prompts`);
- ``models``: the models members may choose (a JSON list of model keys; absent or
  empty: every enabled model);
- ``default_model``: the model of a conversation in this chat that chose none, or chose
  one no longer allowed (a model key);
- ``triggers``: a group message containing one of these words or phrases (ignoring
  case) is answered without a mention (a JSON list of strings);
- ``comments``: ``"1"`` answers every comment under the channel's posts in its
  discussion group, mention or not (``"0"`` or absent: only those addressed to the bot).

A user's own prompt is the ``prompt`` setting of the user's scope ``u:<user_id>``.

Which model a conversation uses (:func:`pick_model`): its own stored choice if that model
is enabled and allowed in the chat, else the chat's default if enabled and allowed, else
the bot's default model if allowed, else the first allowed enabled model in catalogue
order (and the bot's default when nothing allowed is enabled any more). Outside groups
only the stored choice and the bot's default count, as before.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from bot.conversation.scope import chat_scope, user_scope
from providers.catalogue import ModelInfo
from storage import ConversationStore

__all__ = [
    "COMMENTS",
    "DEFAULT_MODEL",
    "MODELS",
    "PROMPT",
    "PROMPT_MAX",
    "TRIGGERS",
    "TRIGGERS_MAX",
    "TRIGGER_MAX",
    "ChatSettings",
    "load_chat_settings",
    "load_user_prompt",
    "parse_chat_settings",
    "pick_model",
    "set_allowed_models",
    "set_answer_comments",
    "set_chat_prompt",
    "set_default_model",
    "set_triggers",
    "set_user_prompt",
    "split_words",
    "triggered_by",
]

PROMPT = "prompt"
MODELS = "models"
DEFAULT_MODEL = "default_model"
TRIGGERS = "triggers"
COMMENTS = "comments"

PROMPT_MAX = 4000
"""Characters a chat's or a user's prompt may hold (a Telegram message holds 4096)."""
TRIGGERS_MAX = 20
"""Trigger words one chat may have."""
TRIGGER_MAX = 64
"""Characters one trigger word (or phrase) may hold."""

_WORD_SEPARATORS = re.compile(r"[,，、;；\n]+")
"""Between trigger words in ``/triggers add a, b``: commas (ASCII, full-width, the
ideographic enumeration comma), semicolons, line breaks."""


@dataclass(frozen=True)
class ChatSettings:
    """A group's settings as its admins chose them (see the module docstring)."""

    prompt: str = ""
    allowed_models: frozenset[str] = frozenset()
    default_model: str = ""
    triggers: tuple[str, ...] = ()
    answer_comments: bool = False

    def allows(self, key: str) -> bool:
        """Whether members may use model ``key`` here (every model when no list is set)."""
        return not self.allowed_models or key in self.allowed_models


def _json_strings(raw: str | None) -> list[str]:
    """The strings of a stored JSON list; [] when absent or not such a list."""
    if not raw:
        return []
    try:
        value = json.loads(raw)
    except ValueError:
        return []
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, str) and item]


def parse_chat_settings(raw: Mapping[str, str]) -> ChatSettings:
    """The :class:`ChatSettings` of a chat's stored settings hash (name → value).

    Values that do not parse count as unset; never raises.
    """
    return ChatSettings(
        prompt=raw.get(PROMPT, ""),
        allowed_models=frozenset(_json_strings(raw.get(MODELS))),
        default_model=raw.get(DEFAULT_MODEL, ""),
        triggers=tuple(_json_strings(raw.get(TRIGGERS))),
        answer_comments=raw.get(COMMENTS) == "1",
    )


async def load_chat_settings(store: ConversationStore, chat_id: int) -> ChatSettings:
    """The settings of group ``chat_id`` (one Redis read)."""
    return parse_chat_settings(await store.get_settings(chat_scope(chat_id)))


async def load_user_prompt(store: ConversationStore, user_id: int) -> str:
    """User ``user_id``'s own prompt ("" when none)."""
    return (await store.get_settings(user_scope(user_id))).get(PROMPT, "")


async def _set_or_delete(store: ConversationStore, owner: str, name: str, value: str) -> None:
    if value:
        await store.set_setting(owner, name, value)
    else:
        await store.delete_setting(owner, name)


async def set_chat_prompt(store: ConversationStore, chat_id: int, text: str) -> None:
    """Set group ``chat_id``'s prompt to ``text`` ("" removes it).

    Raises ``ValueError`` when ``text`` is longer than :data:`PROMPT_MAX`.
    """
    await _set_or_delete(store, chat_scope(chat_id), PROMPT, _checked_prompt(text))


async def set_user_prompt(store: ConversationStore, user_id: int, text: str) -> None:
    """Set user ``user_id``'s own prompt to ``text`` ("" removes it).

    Raises ``ValueError`` when ``text`` is longer than :data:`PROMPT_MAX`.
    """
    await _set_or_delete(store, user_scope(user_id), PROMPT, _checked_prompt(text))


def _checked_prompt(text: str) -> str:
    text = text.strip()
    if len(text) > PROMPT_MAX:
        raise ValueError(f"a prompt holds at most {PROMPT_MAX} characters, not {len(text)}")
    return text


async def set_allowed_models(store: ConversationStore, chat_id: int, keys: Iterable[str]) -> None:
    """Allow only the models ``keys`` in group ``chat_id`` (none given: every model)."""
    allowed = sorted(set(keys))
    await _set_or_delete(store, chat_scope(chat_id), MODELS, json.dumps(allowed) if allowed else "")


async def set_default_model(store: ConversationStore, chat_id: int, key: str) -> None:
    """Make ``key`` group ``chat_id``'s default model ("" returns to the bot's default)."""
    await _set_or_delete(store, chat_scope(chat_id), DEFAULT_MODEL, key)


async def set_triggers(store: ConversationStore, chat_id: int, words: Sequence[str]) -> None:
    """Set group ``chat_id``'s trigger words to ``words`` (none: only mentions are answered).

    Raises ``ValueError`` for more than :data:`TRIGGERS_MAX` words or a word longer than
    :data:`TRIGGER_MAX` characters.
    """
    if len(words) > TRIGGERS_MAX:
        raise ValueError(f"at most {TRIGGERS_MAX} trigger words, not {len(words)}")
    if any(len(word) > TRIGGER_MAX for word in words):
        raise ValueError(f"a trigger word holds at most {TRIGGER_MAX} characters")
    value = json.dumps(list(words), ensure_ascii=False) if words else ""
    await _set_or_delete(store, chat_scope(chat_id), TRIGGERS, value)


async def set_answer_comments(store: ConversationStore, chat_id: int, on: bool) -> None:
    """Answer every comment under the channel's posts in group ``chat_id`` (or only those
    that mention the bot or reply to it)."""
    await store.set_setting(chat_scope(chat_id), COMMENTS, "1" if on else "0")


def split_words(text: str) -> list[str]:
    """The trigger words in ``text`` (``homework, due date``): split at commas,
    semicolons and line breaks, stripped, empty ones and repeats (ignoring case) left out."""
    words: list[str] = []
    seen: set[str] = set()
    for word in _WORD_SEPARATORS.split(text):
        word = " ".join(word.split())
        if word and word.casefold() not in seen:
            seen.add(word.casefold())
            words.append(word)
    return words


def triggered_by(text: str, triggers: Iterable[str]) -> bool:
    """Whether ``text`` contains one of ``triggers``, ignoring case (Unicode case folding).

    A plain substring test: ``homework`` matches "Homeworks due?", and it works for
    Chinese, which does not separate words with spaces.
    """
    folded = text.casefold()
    return any(word.casefold() in folded for word in triggers if word)


def pick_model(
    stored: str | None,
    *,
    enabled: Sequence[ModelInfo],
    chat: ChatSettings | None,
    fallback: ModelInfo,
) -> ModelInfo:
    """The model a conversation uses (the rule is in the module docstring).

    ``stored`` is the conversation's own choice (a model key, or ``None``), ``enabled``
    the models of the enabled platforms in catalogue order, ``chat`` the group's settings
    (``None`` outside groups), ``fallback`` the bot's default model.
    """
    usable = {m.key: m for m in enabled if chat is None or chat.allows(m.key)}
    for key in (stored, chat.default_model if chat is not None else None):
        if key and key in usable:
            return usable[key]
    if chat is None or chat.allows(fallback.key):
        return fallback
    return next(iter(usable.values()), fallback)
