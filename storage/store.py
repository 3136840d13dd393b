"""The conversation store: every piece of bot state kept in Redis.

Keys (built only by :mod:`storage.keys`; ``S`` is the conversation scope, ``O`` the
scope of a user ``u:<user_id>`` or of a chat ``c:<chat_id>``, see :mod:`storage.keys`):

| key | type | TTL | content |
|---|---|---|---|
| ``cb:{S}:history`` | list | ttl_seconds | :class:`StoredMessage` JSON, oldest first |
| ``cb:{S}:model`` | string | ttl_seconds | the chosen model id |
| ``cb:{S}:options`` | hash | ttl_seconds | options of one conversation (name → value) |
| ``cb:{S}:usage`` | hash | ttl_seconds | ``requests``, ``tokens`` of this scope |
| ``cb:{S}:lock`` | string | lock ttl | the lock holder's random token |
| ``cb:{O}:settings`` | hash | ttl_seconds | a user's or a chat's settings (name → value) |
| ``cb:update:<update_id>`` | string | 1 day | update de-duplication marker |
| ``cb:provider:<name>:session`` | hash | none | provider cookies (name → value) |
| ``cb:usage:…`` | hash, string | 8 days, none | usage per quota day and in total (see below) |

Each :meth:`ConversationStore.append_exchange` refreshes the TTL of the conversation's
history, model, options and usage keys, so a conversation idle for ``ttl_seconds``
disappears as a whole. Settings belong to a user or a chat, not to one conversation:
:meth:`ConversationStore.touch_settings` refreshes their TTL whenever that user or chat
is active anywhere, so they outlive any one idle conversation and go only when their
owner has been idle for ``ttl_seconds``.

The client retries a command whose connection failed (:mod:`storage.backend`), so a
command may run twice when only its reply was lost. The writes where that would show
are idempotent: an exchange carries a turn id and is appended once
(:meth:`ConversationStore.append_exchange`), ``/retry`` removes exactly the exchange it
read (:meth:`ConversationStore.pop_last_exchange`), and an update marker and a lock are
recognised by their random value. Usage counters may count a retried command twice.

Usage per quota day (per user, per group, bot-wide, all time per user) is the
:class:`storage.usage.UsageLedger` at :attr:`ConversationStore.usage`; the quota day
(its zone and reset hour) and the clock are that ledger's.
"""

from __future__ import annotations

import logging
import secrets
from contextlib import AbstractAsyncContextManager, suppress
from datetime import date

import redis.asyncio
import stamina
from redis.exceptions import RedisError
from redis.typing import EncodableT, FieldT

from storage.errors import redis_unavailable
from storage.keys import (
    SCOPE_TTL_NAMES,
    SETTINGS,
    chat_key_patterns,
    key,
    moved_key,
    provider_session_key,
    update_key,
)
from storage.lock import LockScripts, hold_lock
from storage.messages import StoredMessage
from storage.scripts import lua_source
from storage.usage import DAY_TTL, UsageLedger

__all__ = [
    "LOCK_TTL",
    "SAVE_WAIT_MAX",
    "SAVE_WITHIN",
    "USER_USAGE_TTL",
    "ConversationStore",
    "StoredMessage",
]

logger = logging.getLogger(__name__)

USER_USAGE_TTL = DAY_TTL
"""Seconds a per-user daily usage hash is kept (:data:`storage.usage.DAY_TTL`)."""
LOCK_TTL = 30.0
"""Seconds a conversation lock outlives a holder that stopped refreshing it (crashed, or
cut off from Redis); a live holder refreshes it every ``LOCK_TTL / 3`` s."""
SAVE_WITHIN = 30.0
"""Seconds :meth:`ConversationStore.save_exchange` keeps trying while Redis is unavailable."""
SAVE_WAIT_MAX = 2.0
"""Seconds between two of its attempts at most (exponential backoff from 0.1 s, jitter)."""


def _new_turn_id() -> str:
    return secrets.token_hex(8)


def _text(value: str | bytes) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _text_or_none(value: str | bytes | None) -> str | None:
    return None if value is None else _text(value)


def _text_dict(raw: dict[str | bytes, str | bytes]) -> dict[str, str]:
    return {_text(name): _text(value) for name, value in raw.items()}


class ConversationStore:
    """All Redis state of the bot, keyed by conversation scope (see the module docstring).

    The store does not own ``redis`` unless ``owns_client=True`` (as
    :func:`storage.open_store` sets); :meth:`aclose` closes only an owned client.
    ``max_turns`` bounds the exchanges (user+assistant pairs) kept per conversation,
    ``max_tokens`` their estimated tokens (:func:`storage.estimate_tokens`),
    ``ttl_seconds`` how long an idle conversation is kept. :attr:`usage` counts usage
    per quota day on the same client (:class:`storage.usage.UsageLedger`).
    """

    def __init__(
        self,
        redis: redis.asyncio.Redis,
        *,
        max_turns: int,
        max_tokens: int,
        ttl_seconds: int,
        owns_client: bool = False,
    ) -> None:
        if max_turns < 1 or max_tokens < 1 or ttl_seconds < 1:
            raise ValueError("max_turns, max_tokens and ttl_seconds must be >= 1")
        self.redis = redis
        self.max_turns = max_turns
        self.max_tokens = max_tokens
        self.ttl_seconds = ttl_seconds
        self._owns_client = owns_client
        self._append = redis.register_script(lua_source("append_exchange.lua"))
        self._pop = redis.register_script(lua_source("pop_exchange.lua"))
        self._lock_scripts = LockScripts.register(redis)
        self.usage = UsageLedger(redis)

    async def aclose(self) -> None:
        """Close the Redis client if this store owns it (opened by ``open_store``)."""
        if self._owns_client:
            await self.redis.aclose()

    # -- history -----------------------------------------------------------------

    async def load_history(self, scope: str) -> list[StoredMessage]:
        """Return the conversation's messages, oldest first (``[]`` when none).

        A stored element that does not parse is skipped with a warning.
        """
        raw_items = await self.redis.lrange(key(scope, "history"), 0, -1)
        messages: list[StoredMessage] = []
        for raw in raw_items:
            try:
                messages.append(StoredMessage.from_json(raw))
            except ValueError:
                logger.warning("skipped an unreadable history message in scope %s", scope)
        return messages

    async def append_exchange(
        self,
        scope: str,
        user: StoredMessage,
        assistant: StoredMessage,
        *,
        turn_id: str | None = None,
    ) -> bool:
        """Append one exchange atomically, trim, and refresh the conversation's TTLs.

        Trimming drops whole exchanges from the oldest side until at most ``max_turns``
        remain and their estimated tokens are <= ``max_tokens``; the newest exchange is
        always kept. Runs ``append_exchange.lua``. ``turn_id`` (default: a new random
        one) is stored with the user message; a call whose ``turn_id`` is in the history
        already changes nothing and returns False, else it returns True, so a call
        repeated after an unknown outcome stores the exchange once. Raises
        ``ValueError`` when the roles are not ``user`` then ``assistant``, and Redis
        errors.
        """
        if user.role != "user" or assistant.role != "assistant":
            raise ValueError("an exchange is a user message then an assistant message")
        turn_id = _new_turn_id() if turn_id is None else turn_id
        keys = [key(scope, "history")] + [
            key(scope, name) for name in SCOPE_TTL_NAMES if name != "history"
        ]
        args: list[str | int] = [
            user.to_json(turn_id=turn_id),
            assistant.to_json(),
            self.max_turns,
            self.max_tokens,
            self.ttl_seconds,
            turn_id,
        ]
        return bool(await self._append(keys=keys, args=args))

    async def save_exchange(
        self,
        scope: str,
        user: StoredMessage,
        assistant: StoredMessage,
        *,
        within: float = SAVE_WITHIN,
    ) -> bool:
        """Store one exchange whose answer the user already has; never raises a Redis error.

        Runs :meth:`append_exchange` with one turn id, retried with exponential backoff
        (0.1 s up to :data:`SAVE_WAIT_MAX`, stamina) while Redis is unavailable
        (:func:`storage.errors.redis_unavailable`), for up to ``within`` seconds, so a
        Redis blip delays the save but does not lose it, and a retry of an append whose
        reply was lost does not store it twice. Returns True once stored; False (logged
        at ERROR with the scope, never the text) when Redis was not back in time or
        refused it otherwise. Raises ``ValueError`` as :meth:`append_exchange` does.
        """
        turn_id = _new_turn_id()
        try:
            async for attempt in stamina.retry_context(
                on=redis_unavailable, attempts=None, timeout=within, wait_max=SAVE_WAIT_MAX
            ):
                with attempt:
                    await self.append_exchange(scope, user, assistant, turn_id=turn_id)
        except (RedisError, OSError) as exc:
            logger.error(
                "an exchange of scope %s was not stored (its answer was delivered): %s: %s",
                scope,
                type(exc).__name__,
                exc,
            )
            return False
        return True

    async def pop_last_exchange(self, scope: str) -> tuple[StoredMessage, StoredMessage] | None:
        """Remove and return the newest ``(user, assistant)`` pair (for /retry).

        Returns ``None`` (and changes nothing) when the history holds fewer than two
        messages. Reads the pair, then ``pop_exchange.lua`` removes exactly that pair,
        so a retried removal never takes a second exchange. Call it under the
        conversation's :meth:`lock`: the pair read is returned as removed.
        """
        history_key = key(scope, "history")
        last = await self.redis.lrange(history_key, -2, -1)
        if len(last) < 2:
            return None
        user_raw, assistant_raw = last
        await self._pop(keys=[history_key], args=[user_raw, assistant_raw])
        return StoredMessage.from_json(user_raw), StoredMessage.from_json(assistant_raw)

    async def clear(self, scope: str) -> None:
        """Delete the conversation's history (/reset); model, options and usage stay."""
        await self.redis.delete(key(scope, "history"))

    # -- per-conversation settings -----------------------------------------------

    async def get_model(self, scope: str) -> str | None:
        """Return the model chosen in this conversation, or ``None`` if none was set."""
        value = await self.redis.get(key(scope, "model"))
        return None if value is None else _text(value)

    async def set_model(self, scope: str, model: str) -> None:
        """Store ``model`` as this conversation's model, with the conversation TTL."""
        await self.redis.set(key(scope, "model"), model, ex=self.ttl_seconds)

    async def get_options(self, scope: str) -> dict[str, str]:
        """Return the conversation's options (name → value; ``{}`` when none)."""
        return _text_dict(await self.redis.hgetall(key(scope, "options")))

    async def set_option(self, scope: str, name: str, value: str) -> None:
        """Set one option of the conversation (e.g. a thread's ``post``); refresh its TTL."""
        await self._hset_with_ttl(key(scope, "options"), name, value)

    # -- per-user and per-chat settings ------------------------------------------

    async def get_settings(self, owner: str) -> dict[str, str]:
        """Return the settings of ``owner`` (name → value; ``{}`` when none).

        ``owner`` is a user's scope ``u:<user_id>`` or a chat's ``c:<chat_id>``.
        Settings stored by an older version as that scope's conversation ``options``
        are taken over (renamed to the settings key) on the first read.
        """
        settings_key, legacy_key = key(owner, SETTINGS), key(owner, "options")
        async with self.redis.pipeline(transaction=False) as pipe:  # one slot, one round trip
            pipe.hgetall(settings_key)
            pipe.exists(legacy_key)
            settings, legacy = await pipe.execute()
        if settings or not legacy:
            return _text_dict(settings)
        # LEGACY (until HISTORY_TTL_SECONDS after the release that moved settings out of
        # `options`): a user's or chat's settings used to be its scope's conversation
        # options. RENAMENX keeps the TTL and never overwrites newer settings.
        with suppress(redis.exceptions.ResponseError):  # gone meanwhile
            await self.redis.renamenx(legacy_key, settings_key)
        return _text_dict(await self.redis.hgetall(settings_key))

    async def set_setting(self, owner: str, name: str, value: str) -> None:
        """Set one setting of ``owner`` (e.g. ``reasoning`` → ``hide``) and refresh its TTL.

        ``owner`` is as for :meth:`get_settings`.
        """
        await self._hset_with_ttl(key(owner, SETTINGS), name, value)

    async def delete_setting(self, owner: str, name: str) -> None:
        """Remove one setting of ``owner`` (``HDEL``; nothing happens when it is not set).

        ``owner`` is as for :meth:`get_settings`.
        """
        await self.redis.hdel(key(owner, SETTINGS), name)

    async def touch_settings(self, *owners: str) -> None:
        """Keep the settings of ``owners`` for another ``ttl_seconds``: they were active.

        Call on every update the bot handles from a user (and from a chat); an owner
        without settings costs one no-op ``EXPIRE``. The keys live on different cluster
        slots, so the pipeline is not a transaction.
        """
        if not owners:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for owner in owners:
                pipe.expire(key(owner, SETTINGS), self.ttl_seconds)
            await pipe.execute()

    async def _hset_with_ttl(self, hash_key: str, name: str, value: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(hash_key, name, value)
            pipe.expire(hash_key, self.ttl_seconds)
            await pipe.execute()

    # -- coordination ------------------------------------------------------------

    async def move_chat(self, old_chat_id: int, new_chat_id: int) -> int:
        """Move every conversation of group ``old_chat_id`` to ``new_chat_id``; return the
        number of keys moved.

        For a group that became a supergroup (Telegram's ``migrate_to_chat_id``): its
        members' histories, models, options, usage and the group's settings (keys of its
        scope ``c:<chat_id>``) go on under the new id. Each key is copied with
        ``DUMP``/``RESTORE`` (keeping its TTL) and then deleted, one key at a time, so it
        works in a Redis Cluster too, where the old and new keys hash to different slots.
        Locks are not moved (a reply streaming now releases its own). A key that already
        exists under the new id is kept and the old one dropped: the new chat's own state
        is newer. Idempotent: a second call moves nothing.
        """
        moved = 0
        for pattern in chat_key_patterns(old_chat_id):
            async for raw in self.redis.scan_iter(match=pattern, count=500):
                name = _text(raw)
                if name.endswith(":lock"):
                    continue
                target = moved_key(name, old_chat_id=old_chat_id, new_chat_id=new_chat_id)
                dumped = await self.redis.dump(name)
                if dumped is None:  # expired meanwhile
                    continue
                ttl = await self.redis.pttl(name)
                try:
                    await self.redis.restore(target, max(ttl, 0), dumped)
                    moved += 1
                except redis.exceptions.ResponseError as exc:
                    if "BUSYKEY" not in str(exc):
                        raise
                await self.redis.delete(name)
        return moved

    def lock(
        self, scope: str, *, ttl: float = LOCK_TTL, wait: float = 600
    ) -> AbstractAsyncContextManager[None]:
        """Return ``async with`` lock of one conversation, kept alive while held.

        ``ttl`` (seconds) is how long the lock survives a crashed holder; while held a
        background task refreshes it every ``ttl / 3`` s, so no ``extend`` call is
        needed. ``wait`` (seconds) bounds the wait for another holder; then
        :class:`storage.LockTimeout` is raised. Leaving the block never raises a Redis
        error (the release is retried for up to ``ttl`` s, then left to the TTL). Not
        re-entrant. See :mod:`storage.lock`.
        """
        return hold_lock(
            self.redis, self._lock_scripts, key(scope, "lock"), scope=scope, ttl=ttl, wait=wait
        )

    async def mark_update_seen(self, update_id: int, *, ttl: int = 86400) -> bool:
        """Return True the first time ``update_id`` is seen, False for a duplicate.

        The marker (a random value) expires after ``ttl`` seconds (``SET NX EX``); a
        retried ``SET`` that finds this call's own value still counts as the first.
        """
        marker, value = update_key(update_id), secrets.token_hex(8)
        if await self.redis.set(marker, value, nx=True, ex=ttl):
            return True
        return _text_or_none(await self.redis.get(marker)) == value

    # -- provider sessions -------------------------------------------------------

    async def get_provider_session(self, provider: str) -> dict[str, str]:
        """Return ``provider``'s stored cookies (name → value; ``{}`` when none)."""
        return _text_dict(await self.redis.hgetall(provider_session_key(provider)))

    async def set_provider_session(self, provider: str, cookies: dict[str, str]) -> None:
        """Replace ``provider``'s stored cookies with ``cookies`` (kept without TTL)."""
        session_key = provider_session_key(provider)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(session_key)
            if cookies:
                mapping: dict[FieldT, EncodableT] = {name: val for name, val in cookies.items()}
                pipe.hset(session_key, mapping=mapping)
            await pipe.execute()

    # -- usage -------------------------------------------------------------------

    async def count_usage(
        self,
        scope: str,
        *,
        user_id: int,
        tokens: int,
        model: str = "",
        platform: str = "",
        chat_id: int | None = None,
    ) -> None:
        """Count one answered question and its ``tokens``: for the user, the group
        ``chat_id`` (if any) and the bot on today's quota day, by ``model`` and
        ``platform`` (:meth:`storage.usage.UsageLedger.queue_record`), and for the
        conversation ``scope``.

        The keys live on different cluster slots, so this pipeline is not a
        transaction (counters only; a partial count after a failure is acceptable).
        Counts the answer of a turn already delivered, so Redis being unavailable is
        logged (a WARNING; the count is lost), not raised; other Redis errors raise.
        """
        scope_key = key(scope, "usage")
        async with self.redis.pipeline(transaction=False) as pipe:
            self.usage.queue_record(
                pipe,
                user_id=user_id,
                tokens=tokens,
                model=model,
                platform=platform,
                chat_id=chat_id,
            )
            pipe.hincrby(scope_key, "requests", 1)
            pipe.hincrby(scope_key, "tokens", tokens)
            pipe.expire(scope_key, self.ttl_seconds)
            try:
                await pipe.execute()
            except (RedisError, OSError) as exc:
                if not redis_unavailable(exc):
                    raise
                logger.warning("usage of scope %s not counted: %s", scope, type(exc).__name__)

    async def get_user_usage(self, user_id: int, *, day: str | None = None) -> dict[str, int]:
        """Return ``{"requests": n, "tokens": n}`` of ``user_id`` on quota day ``day``
        (``YYYY-MM-DD``; default: today's, see :attr:`usage`)."""
        tally = await self.usage.user_day(user_id, date.fromisoformat(day) if day else None)
        return {"requests": tally.total.requests, "tokens": tally.total.tokens}

    async def get_scope_usage(self, scope: str) -> dict[str, int]:
        """Return ``{"requests": n, "tokens": n}`` counted in this conversation."""
        return _usage(_text_dict(await self.redis.hgetall(key(scope, "usage"))))


def _usage(raw: dict[str, str]) -> dict[str, int]:
    return {name: int(raw.get(name, "0")) for name in ("requests", "tokens")}
