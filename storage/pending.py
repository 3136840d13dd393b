"""Questions waiting for their asker to start the bot in a private chat.

A group that answers in private (:mod:`bot.conversation.private_answers`) cannot write to
a student who never started the bot (Telegram refuses a bot's first message to a user:
403 "Forbidden: bot can't initiate conversation with a user"). The question is kept here
under a random token, which the bot puts in a deep link
(``https://t.me/<bot>?start=<payload>``); the student's ``/start <payload>`` claims it.

Key (built in :mod:`storage.keys`; global, no hash tag):

| key | type | TTL | content |
|---|---|---|---|
| ``cb:pending:<token>`` | string | :data:`PENDING_TTL` | :class:`PendingQuestion` JSON |

The token is opaque (:func:`secrets.token_urlsafe`, 128 bits): it names no user, and
nobody can guess another student's. A record is answered at most once: only its asker
may claim it, and of two claims at once only the one whose ``DEL`` removed the key wins.
"""

from __future__ import annotations

import enum
import json
import secrets
from dataclasses import dataclass
from typing import Any

import redis.asyncio

from storage.keys import pending_question_key

__all__ = ["PENDING_TTL", "TOKEN_BYTES", "Claim", "PendingQuestion", "PendingQuestions"]

PENDING_TTL = 24 * 3600
"""Seconds a question waits for its asker to start the bot."""
TOKEN_BYTES = 16
"""Random bytes of a token: 22 characters of ``A-Z a-z 0-9 _ -`` (base64url, unpadded),
inside the 64 characters of those a deep-link ``start`` parameter may hold
(https://core.telegram.org/bots/features#deep-linking)."""


def _int(raw: dict[str, Any], name: str) -> int:
    value = raw.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"pending question has no valid {name}")
    return value


@dataclass(frozen=True)
class PendingQuestion:
    """A question asked in a group, to be answered in its asker's private chat.

    ``user_id`` asked it in group ``chat_id`` (titled ``chat_title``) as message
    ``message_id``; ``scope`` is the conversation it belongs to (the asker's in that
    group); ``text``, ``quoted``, ``context`` and ``image_file_ids`` are the turn's input
    (:class:`bot.conversation.types.TurnInput`); ``asked_at`` is Unix time in seconds.
    """

    user_id: int
    chat_id: int
    chat_title: str
    message_id: int
    scope: str
    text: str
    quoted: str | None = None
    context: str | None = None
    image_file_ids: tuple[str, ...] = ()
    asked_at: float = 0.0

    def to_json(self) -> str:
        """Compact JSON: ``{"user", "chat", "title", "message", "scope", "text", "quoted",
        "context", "images", "asked"}``."""
        fields: dict[str, object] = {
            "user": self.user_id,
            "chat": self.chat_id,
            "title": self.chat_title,
            "message": self.message_id,
            "scope": self.scope,
            "text": self.text,
            "quoted": self.quoted,
            "context": self.context,
            "images": list(self.image_file_ids),
            "asked": self.asked_at,
        }
        return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, data: str | bytes) -> PendingQuestion:
        """Parse what :meth:`to_json` wrote; raises ``ValueError`` for anything else."""
        raw: Any = json.loads(data)
        if not isinstance(raw, dict):
            raise ValueError("pending question is not a JSON object")
        ints = [_int(raw, name) for name in ("user", "chat", "message")]
        title, scope, text = raw.get("title"), raw.get("scope"), raw.get("text")
        if not (isinstance(title, str) and isinstance(scope, str) and scope):
            raise ValueError("pending question has no valid title or scope")
        if not isinstance(text, str):
            raise ValueError("pending question has no valid text")
        quoted, context, images = raw.get("quoted"), raw.get("context"), raw.get("images", [])
        if not all(v is None or isinstance(v, str) for v in (quoted, context)):
            raise ValueError("pending question has an invalid quoted block or context")
        if not isinstance(images, list) or not all(isinstance(i, str) for i in images):
            raise ValueError("pending question has invalid images")
        asked = raw.get("asked", 0.0)
        if not isinstance(asked, int | float) or isinstance(asked, bool):
            raise ValueError("pending question has an invalid time")
        return cls(
            user_id=ints[0],
            chat_id=ints[1],
            chat_title=title,
            message_id=ints[2],
            scope=scope,
            text=text,
            quoted=quoted,
            context=context,
            image_file_ids=tuple(images),
            asked_at=float(asked),
        )


class Claim(enum.Enum):
    """Why :meth:`PendingQuestions.claim` gave no question."""

    NOT_YOURS = "not_yours"
    """Another user asked it; it stays for its asker."""
    GONE = "gone"
    """No such question: answered already, expired, unreadable, or never stored."""


class PendingQuestions:
    """The waiting questions on ``redis`` (module docstring); Redis errors are raised."""

    def __init__(self, redis: redis.asyncio.Redis, *, ttl: int = PENDING_TTL) -> None:
        if ttl < 1:
            raise ValueError("ttl must be >= 1 second")
        self.redis = redis
        self.ttl = ttl

    async def put(self, question: PendingQuestion) -> str:
        """Keep ``question`` for ``ttl`` seconds; return its new random token."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        await self.redis.set(pending_question_key(token), question.to_json(), ex=self.ttl)
        return token

    async def claim(self, token: str, user_id: int) -> PendingQuestion | Claim:
        """Remove and return the question ``token`` names when ``user_id`` asked it.

        :attr:`Claim.NOT_YOURS` (the question stays) when someone else asked it,
        :attr:`Claim.GONE` when there is none, or another claim removed it first (so a
        question is answered once however often its link is pressed).
        """
        name = pending_question_key(token)
        raw = await self.redis.get(name)
        if raw is None:
            return Claim.GONE
        try:
            question = PendingQuestion.from_json(raw)
        except ValueError:
            await self.redis.delete(name)
            return Claim.GONE
        if question.user_id != user_id:
            return Claim.NOT_YOURS
        if not await self.redis.delete(name):
            return Claim.GONE
        return question
