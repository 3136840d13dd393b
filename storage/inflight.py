"""What a restart must not lose: the turns in flight, and the updates set aside unstarted.

Keys (built in :mod:`storage.keys`; both global, no hash tag):

| key | type | TTL (refreshed by each write) | content |
|---|---|---|---|
| ``cb:inflight`` | hash | :data:`INFLIGHT_TTL` | turn id → :class:`InflightTurn` JSON |
| ``cb:deferred-updates`` | list | :data:`DEFERRED_TTL` | raw update JSON, oldest first |

A turn's record is put when the turn starts and removed when it ends, so the records
found at a start are the turns of a process that was killed outright (SIGKILL, OOM):
the next start tells their users and frees their conversations' locks. A record older
than :data:`INFLIGHT_TTL` is dropped unread (the key's TTL is the backstop when no
process starts again). The bot runs as one process (the send scheduler's budgets are
per process), so every record found at a start belongs to a process that is gone.

Updates a shutdown received but did not start are saved as their raw JSON and put
back on the Application's queue by the next start (Telegram does not deliver them
again: polling confirmed them, the webhook answered 200).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio

from storage.keys import deferred_updates_key, inflight_key, key
from storage.messages import StoredMessage

__all__ = [
    "DEFERRED_TTL",
    "INFLIGHT_TTL",
    "DeferredUpdates",
    "InflightTurn",
    "InflightTurns",
]

logger = logging.getLogger(__name__)

INFLIGHT_TTL = 24 * 3600
"""Seconds a turn's record is kept: an older one is dropped at a start, unread."""
DEFERRED_TTL = 24 * 3600
"""Seconds deferred updates are kept (Telegram too keeps an update 24 hours)."""


def _text(value: str | bytes) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _nonempty(raw: dict[str, Any], name: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"in-flight record has no valid {name}")
    return value


def _int_or_none(value: object, name: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"in-flight record has an invalid {name}")
    return value


@dataclass(frozen=True)
class InflightTurn:
    """One turn in flight: where its reply is and what it answers.

    ``turn_id`` names the record; ``scope`` is the conversation (its lock is
    ``cb:{scope}:lock``); ``chat_id``, ``thread_id`` (forum topic, or ``None``),
    ``lang`` (``"en"``/``"zh"``), ``reply_to`` (the user's message id) and
    ``message_id`` (the reply's first message, once sent) say where to tell the user;
    ``started_at`` is Unix time in seconds; ``question`` is the user's message as the
    history stores it, ``None`` once a start has stored it.
    """

    turn_id: str
    scope: str
    chat_id: int
    thread_id: int | None
    lang: str
    reply_to: int | None
    message_id: int | None
    started_at: float
    question: StoredMessage | None = None

    def to_json(self) -> str:
        """Compact JSON: ``{"turn", "scope", "chat", "thread", "lang", "reply_to",
        "message", "started", "question"}`` (``question``: :meth:`StoredMessage.to_json`
        text, or ``null``)."""
        fields: dict[str, object] = {
            "turn": self.turn_id,
            "scope": self.scope,
            "chat": self.chat_id,
            "thread": self.thread_id,
            "lang": self.lang,
            "reply_to": self.reply_to,
            "message": self.message_id,
            "started": self.started_at,
            "question": None if self.question is None else self.question.to_json(),
        }
        return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, data: str | bytes) -> InflightTurn:
        """Parse what :meth:`to_json` wrote; raises ``ValueError`` for anything else."""
        raw: Any = json.loads(data)
        if not isinstance(raw, dict):
            raise ValueError("in-flight record is not a JSON object")
        turn_id, scope, lang = (_nonempty(raw, name) for name in ("turn", "scope", "lang"))
        chat, started, question = raw.get("chat"), raw.get("started"), raw.get("question")
        if not isinstance(chat, int) or isinstance(chat, bool):
            raise ValueError("in-flight record has no valid chat")
        if not isinstance(started, int | float) or isinstance(started, bool):
            raise ValueError("in-flight record has no valid start time")
        if question is not None and not isinstance(question, str):
            raise ValueError("in-flight record has an invalid question")
        return cls(
            turn_id=turn_id,
            scope=scope,
            chat_id=chat,
            thread_id=_int_or_none(raw.get("thread"), "thread"),
            lang=lang,
            reply_to=_int_or_none(raw.get("reply_to"), "reply_to"),
            message_id=_int_or_none(raw.get("message"), "message"),
            started_at=float(started),
            question=None if question is None else StoredMessage.from_json(question),
        )


class InflightTurns:
    """The records of the turns in flight, in the hash ``cb:inflight`` on ``redis``.

    Redis errors are raised to the caller.
    """

    def __init__(self, redis: redis.asyncio.Redis, *, ttl: int = INFLIGHT_TTL) -> None:
        if ttl < 1:
            raise ValueError("ttl must be >= 1 second")
        self.redis = redis
        self.ttl = ttl

    async def put(self, turn: InflightTurn) -> None:
        """Add or replace the record of ``turn``; the hash lives ``ttl`` s from now."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(inflight_key(), turn.turn_id, turn.to_json())
            pipe.expire(inflight_key(), self.ttl)
            await pipe.execute()

    async def remove(self, turn_id: str) -> None:
        """Remove the record ``turn_id`` (nothing when there is none)."""
        await self.redis.hdel(inflight_key(), turn_id)

    async def all(self, *, now: float | None = None) -> list[InflightTurn]:
        """Every record, oldest first. One that does not parse, or started over ``ttl``
        seconds before ``now`` (Unix seconds, default the current time), is removed and
        left out (logged)."""
        now = time.time() if now is None else now
        found: list[InflightTurn] = []
        for name, raw in (await self.redis.hgetall(inflight_key())).items():
            try:
                turn = InflightTurn.from_json(raw)
            except ValueError:
                logger.warning("dropped an unreadable in-flight record %s", _text(name))
                await self.remove(_text(name))
                continue
            if now - turn.started_at > self.ttl:
                logger.info("dropped the in-flight record %s: too old", turn.turn_id)
                await self.remove(turn.turn_id)
                continue
            found.append(turn)
        return sorted(found, key=lambda turn: turn.started_at)

    async def release_lock(self, scope: str) -> bool:
        """Delete the conversation lock of ``scope`` whoever holds it; True when there was one.

        Only for the lock of a turn whose process is gone (see the module docstring):
        it would otherwise hold the conversation for the rest of its TTL.
        """
        return bool(await self.redis.delete(key(scope, "lock")))


class DeferredUpdates:
    """Updates set aside at a shutdown, as raw JSON, in the list ``cb:deferred-updates``.

    Redis errors are raised to the caller.
    """

    def __init__(self, redis: redis.asyncio.Redis, *, ttl: int = DEFERRED_TTL) -> None:
        if ttl < 1:
            raise ValueError("ttl must be >= 1 second")
        self.redis = redis
        self.ttl = ttl

    async def save(self, updates: Sequence[str]) -> None:
        """Append ``updates`` (raw JSON texts, in arrival order); the list lives ``ttl`` s."""
        if not updates:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(deferred_updates_key(), *updates)
            pipe.expire(deferred_updates_key(), self.ttl)
            await pipe.execute()

    async def take(self) -> list[str]:
        """Remove and return every saved update, oldest first (``[]`` when none)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lrange(deferred_updates_key(), 0, -1)
            pipe.delete(deferred_updates_key())
            raw, _ = await pipe.execute()
        return [_text(item) for item in raw]
