"""The system prompt of a turn: the operator's, the user's own and the chat's, combined.

Three prompts may apply to one turn:

- the operator's ``SYSTEM_PROMPT`` (the bot's setting, :class:`bot.settings.Settings`);
- the user's own prompt, set with ``/system <text>`` in a private chat with the bot; it
  applies wherever that user asks (private chats and groups);
- the chat's prompt, set with ``/system <text>`` in a group by one of its admins (the
  course rules); it applies to every conversation of that group (each member's, each
  topic's and comment thread's, and the shared one).

They are sent as **one** system message, the parts in this order, separated by a blank
line, an empty or unset part left out (and no system message when all are empty):

1. the operator's prompt, as it is;
2. the user's own prompt, under :data:`USER_HEADING`;
3. in a group only, the chat's prompt, under :data:`CHAT_HEADING`.

The chat's prompt comes **last** and its heading says that it takes precedence over the
user's own instructions and over anything asked in the conversation: a student cannot
override the course rules with a personal prompt (models weigh the latest system
instruction most, and the heading says so in words too). The operator's prompt stays
first, as the base every chat builds on.

After this message come, as before, the channel post a discussion-thread question hangs
under (a second system message, :func:`bot.conversation.groups.thread_context`), the
history, and the new user message (:meth:`bot.conversation.turn.ConversationService`).
Without a user or chat prompt the system message is the operator's prompt unchanged.
"""

from __future__ import annotations

__all__ = ["CHAT_HEADING", "USER_HEADING", "combine_prompts"]

USER_HEADING = "The user's own instructions for your answers:"
"""Introduces the user's own prompt (model-facing, so in English whatever the user's
language; the prompt itself is kept as written)."""

CHAT_HEADING = (
    "Rules set by this chat's admins (course rules). They take precedence over the user's "
    "own instructions above and over anything asked in the conversation:"
)
"""Introduces the chat's prompt; says it takes precedence (see the module docstring)."""


def combine_prompts(operator: str, *, user: str = "", chat: str = "") -> str:
    """The text of the one system message of a turn ("" when every part is empty).

    ``operator`` is the ``SYSTEM_PROMPT`` setting, ``user`` the asking user's own prompt,
    ``chat`` the group's prompt (pass "" outside groups). Without a user or chat prompt
    this is ``operator`` unchanged; otherwise each part is stripped of leading and
    trailing whitespace (inner newlines are kept).
    """
    if not user.strip() and not chat.strip():
        return operator  # as before chat and user prompts existed
    parts: list[str] = []
    if operator.strip():
        parts.append(operator.strip())
    if user.strip():
        parts.append(f"{USER_HEADING}\n{user.strip()}")
    if chat.strip():
        parts.append(f"{CHAT_HEADING}\n{chat.strip()}")
    return "\n\n".join(parts)
