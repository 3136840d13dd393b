"""The one place where Redis key names are built, and the format of a scope.

Every key of one conversation carries the conversation's scope as a Redis Cluster hash
tag: ``cb:{<scope>}:<name>``. Redis Cluster hashes only the text between the first
``{`` and the next ``}`` (https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/#hash-tags),
so all keys of one conversation live on one slot and a Lua script or a
``MULTI``/``EXEC`` over them is legal in a cluster. A scope must not contain ``{`` or
``}``, which would move the tag.

Scopes follow the formats below (:data:`USER_SCOPE`, :data:`CHAT_SCOPE`,
:data:`THREAD_PART`, :data:`MEMBER_PART`, :data:`LOCAL_SCOPE`); the bot builds them
only in :mod:`bot.conversation.scope`, and the storage layer reads the format only
where it must find a chat's keys (:func:`chat_key_patterns`, :func:`moved_key`) or
names a user (:func:`user_usage_key`):

- ``u:<user_id>``: a private chat with the user, and the user's own settings;
- ``c:<chat_id>``: a group's settings, and its one shared conversation;
- ``c:<chat_id>:t:<thread_id>``: a forum topic or a channel post's comment thread;
- ``…:u:<user_id>`` after a chat or thread scope: one member's conversation there;
- ``t:<name>``: the operator's terminal chat (``classbot chat``).

Global keys (update de-duplication, provider sessions, per-user daily usage, the turns
in flight and the updates deferred to the next start) have no hash tag; each is only
ever used alone. The per-user question pace keys are built by the ``limits`` library
under :data:`PACE_PREFIX` (:mod:`storage.pace`).
"""

from __future__ import annotations

__all__ = [
    "CHAT_SCOPE",
    "LOCAL_SCOPE",
    "MEMBER_PART",
    "PACE_PREFIX",
    "PREFIX",
    "SCOPE_TTL_NAMES",
    "SETTINGS",
    "THREAD_PART",
    "USER_SCOPE",
    "bot_usage_key",
    "chat_key_patterns",
    "chat_usage_key",
    "deferred_updates_key",
    "inflight_key",
    "key",
    "moved_key",
    "pending_question_key",
    "provider_session_key",
    "update_key",
    "user_name_key",
    "user_total_key",
    "user_usage_key",
]

PREFIX = "cb"
PACE_PREFIX = f"{PREFIX}:pace"

USER_SCOPE = "u:{user_id}"
"""The scope of user ``user_id``: their private chat with the bot, and their settings."""
CHAT_SCOPE = "c:{chat_id}"
"""The scope of group ``chat_id``: its settings, and its shared conversation."""
THREAD_PART = ":t:{thread_id}"
"""Appended to a chat scope: one forum topic or comment thread of the chat."""
MEMBER_PART = ":u:{user_id}"
"""Appended to a chat or thread scope: one member's own conversation there."""
LOCAL_SCOPE = "t:{name}"
"""The scope of the operator's terminal chat, ``name`` being the OS user."""

# The per-scope keys whose TTL `append_exchange` refreshes (the lock has its own TTL).
SCOPE_TTL_NAMES = ("history", "model", "options", "usage")

SETTINGS = "settings"
"""The key name of a user's or a chat's settings (``cb:{u:<id>}:settings``,
``cb:{c:<id>}:settings``); kept alive by activity, not by one conversation's turns."""


def _check(part: str, *, what: str) -> str:
    if not part:
        raise ValueError(f"{what} must not be empty")
    if "{" in part or "}" in part:
        raise ValueError(f"{what} must not contain '{{' or '}}': {part!r}")
    return part


def key(scope: str, name: str) -> str:
    """Return the key ``cb:{<scope>}:<name>`` of one conversation's ``name`` state.

    Raises ``ValueError`` when ``scope`` or ``name`` is empty or contains a brace.
    """
    return f"{PREFIX}:{{{_check(scope, what='scope')}}}:{_check(name, what='key name')}"


def chat_key_patterns(chat_id: int) -> tuple[str, str]:
    """Return the ``SCAN`` patterns matching every key of group ``chat_id``'s scopes.

    Group scopes are ``c:<chat_id>`` (shared, and the group's own options) and
    ``c:<chat_id>:…`` (per topic, per member); the two patterns match exactly those,
    not ``c:<chat_id>5…``. (``{`` and ``}`` are not special in Redis glob patterns.)
    """
    chat = CHAT_SCOPE.format(chat_id=int(chat_id))
    return f"{PREFIX}:{{{chat}}}:*", f"{PREFIX}:{{{chat}:*"


def moved_key(name: str, *, old_chat_id: int, new_chat_id: int) -> str:
    """Return key ``name`` of a scope of group ``old_chat_id`` as it is for ``new_chat_id``.

    Raises ``ValueError`` when ``name`` is not a key of that group (see
    :func:`chat_key_patterns`).
    """
    old = f"{PREFIX}:{{" + CHAT_SCOPE.format(chat_id=int(old_chat_id))
    if not name.startswith(old) or name[len(old)] not in ":}":
        raise ValueError(f"{name!r} is not a key of chat {old_chat_id}")
    return f"{PREFIX}:{{" + CHAT_SCOPE.format(chat_id=int(new_chat_id)) + name[len(old) :]


def update_key(update_id: int) -> str:
    """Return the global key that marks Telegram update ``update_id`` as seen."""
    return f"{PREFIX}:update:{int(update_id)}"


def provider_session_key(provider: str) -> str:
    """Return the global hash key holding ``provider``'s session cookies."""
    return f"{PREFIX}:provider:{_check(provider, what='provider')}:session"


def user_usage_key(user_id: int, *, day: str) -> str:
    """Return the global hash key of user ``user_id``'s usage on quota day ``day``
    (``YYYY-MM-DD``, see :class:`storage.usage.QuotaDay`)."""
    user = USER_SCOPE.format(user_id=int(user_id))
    return f"{PREFIX}:usage:{user}:{_check(day, what='day')}"


# -- usage per quota day (storage.usage) -----------------------------------------------


def user_total_key(user_id: int) -> str:
    """Return the global hash key of user ``user_id``'s usage since counting began."""
    return f"{PREFIX}:usage:{USER_SCOPE.format(user_id=int(user_id))}:total"


def chat_usage_key(chat_id: int, *, day: str) -> str:
    """Return the global hash key of group ``chat_id``'s usage on quota day ``day``."""
    chat = CHAT_SCOPE.format(chat_id=int(chat_id))
    return f"{PREFIX}:usage:{chat}:{_check(day, what='day')}"


def bot_usage_key(*, day: str) -> str:
    """Return the global hash key of the whole bot's usage on quota day ``day``."""
    return f"{PREFIX}:usage:bot:{_check(day, what='day')}"


def user_name_key(user_id: int) -> str:
    """Return the global string key of user ``user_id``'s display name (for ``/stats``)."""
    return f"{PREFIX}:usage:name:{int(user_id)}"


# -- what a restart must not lose (storage.inflight) -----------------------------------


def inflight_key() -> str:
    """Return the global hash key of the turns in flight (turn id → record JSON)."""
    return f"{PREFIX}:inflight"


def deferred_updates_key() -> str:
    """Return the global list key of the updates set aside at a shutdown (raw update JSON)."""
    return f"{PREFIX}:deferred-updates"


# -- questions waiting for their asker to start the bot (storage.pending) --------------


def pending_question_key(token: str) -> str:
    """Return the global string key of the pending question named by ``token``.

    Raises ``ValueError`` when ``token`` is empty or contains a brace.
    """
    return f"{PREFIX}:pending:{_check(token, what='token')}"
