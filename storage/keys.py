"""The one place where Redis key names are built.

Every key of one conversation carries the conversation's scope as a Redis Cluster hash
tag: ``cb:{<scope>}:<name>``. Redis Cluster hashes only the text between the first
``{`` and the next ``}`` (https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/#hash-tags),
so all keys of one conversation live on one slot and a Lua script or a
``MULTI``/``EXEC`` over them is legal in a cluster. Scopes are opaque strings built by
the bot (``u:42``, ``c:-100123:u:42``, ``c:-100123:t:7:u:42``); they must not contain
``{`` or ``}``, which would move the tag.

Global keys (update de-duplication, provider sessions, per-user daily usage) have no
hash tag; each is only ever used alone. The per-user question pace keys are built by
the ``limits`` library under :data:`PACE_PREFIX` (:mod:`storage.pace`).
"""

from __future__ import annotations

__all__ = [
    "PACE_PREFIX",
    "PREFIX",
    "SCOPE_TTL_NAMES",
    "chat_key_patterns",
    "key",
    "moved_key",
    "provider_session_key",
    "update_key",
    "user_usage_key",
]

PREFIX = "cb"
PACE_PREFIX = f"{PREFIX}:pace"

# The per-scope keys whose TTL `append_exchange` refreshes (the lock has its own TTL).
SCOPE_TTL_NAMES = ("history", "model", "options", "usage")


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
    chat = int(chat_id)
    return f"{PREFIX}:{{c:{chat}}}:*", f"{PREFIX}:{{c:{chat}:*"


def moved_key(name: str, *, old_chat_id: int, new_chat_id: int) -> str:
    """Return key ``name`` of a scope of group ``old_chat_id`` as it is for ``new_chat_id``.

    Raises ``ValueError`` when ``name`` is not a key of that group (see
    :func:`chat_key_patterns`).
    """
    old = f"{PREFIX}:{{c:{int(old_chat_id)}"
    if not name.startswith(old) or name[len(old)] not in ":}":
        raise ValueError(f"{name!r} is not a key of chat {old_chat_id}")
    return f"{PREFIX}:{{c:{int(new_chat_id)}" + name[len(old):]


def update_key(update_id: int) -> str:
    """Return the global key that marks Telegram update ``update_id`` as seen."""
    return f"{PREFIX}:update:{int(update_id)}"


def provider_session_key(provider: str) -> str:
    """Return the global hash key holding ``provider``'s session cookies."""
    return f"{PREFIX}:provider:{_check(provider, what='provider')}:session"


def user_usage_key(user_id: int, *, day: str) -> str:
    """Return the global hash key of user ``user_id``'s usage on ``day`` (``YYYY-MM-DD``, UTC)."""
    return f"{PREFIX}:usage:u:{int(user_id)}:{_check(day, what='day')}"
