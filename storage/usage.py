"""Usage counted per quota day: per user, per group chat, bot-wide; and the quota day itself.

The quota day (:class:`QuotaDay`) starts at ``reset_hour``:00 local time in a time zone
(``QUOTA_RESET_HOUR``, ``QUOTA_TIMEZONE``; default midnight UTC) and is named by the
local date it starts on (``YYYY-MM-DD``): with a reset at 04:00 Asia/Shanghai, 03:59 on
2026-03-11 local time is still day ``2026-03-10``.

Keys (built only by :mod:`storage.keys`; ``D`` a quota day, ``U`` a user id, ``C`` a
group's chat id). Each is only ever used alone (pipelines over them are not
transactions), so they need no common hash tag in a Redis Cluster:

| key | type | TTL | content |
|---|---|---|---|
| ``cb:usage:u:U:D`` | hash | :data:`DAY_TTL` | the user's totals and per-model counts on day D |
| ``cb:usage:u:U:total`` | hash | none | the same, all time |
| ``cb:usage:c:C:D`` | hash | :data:`DAY_TTL` | a group's totals, per model, platform, user |
| ``cb:usage:bot:D`` | hash | :data:`DAY_TTL` | the bot's totals, per model, platform, user |
| ``cb:usage:name:U`` | string | :data:`DAY_TTL` | the user's display name, as last seen |

A hash holds ``requests`` and ``tokens`` (the totals) and, per breakdown, fields
``requests|<dimension>|<value>`` and ``tokens|<dimension>|<value>`` where dimension is
``model`` (a catalogue key ``platform:model``), ``platform`` or ``user`` (a user id).
A group's own token quota (set by its admins, ``/quota``) is the field
:data:`CHAT_QUOTA_SETTING` of the chat's settings hash (:mod:`storage.store`), so it
lives, expires and moves to a supergroup with the chat's other settings.

The client may retry a command whose reply was lost (:mod:`storage.backend`), so a
counter can count a turn twice after a Redis blip; counters only, so that is accepted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo

import redis.asyncio
from redis.asyncio.client import Pipeline

from storage.keys import (
    CHAT_SCOPE,
    SETTINGS,
    bot_usage_key,
    chat_usage_key,
    key,
    user_name_key,
    user_total_key,
    user_usage_key,
)

__all__ = [
    "CHAT_QUOTA_SETTING",
    "DAY_TTL",
    "QuotaDay",
    "Spent",
    "Tally",
    "UsageCount",
    "UsageLedger",
    "parse_quota",
    "utc_now",
]

DAY_TTL = 8 * 24 * 3600
"""Seconds a day's usage hash (and a user's name) is kept: the 7 days of ``/stats``, and
one more so that the oldest day is whole whatever the time of the report."""
CHAT_QUOTA_SETTING = "quota_tokens"
"""The chat settings field holding the token quota a group's admins set (decimal)."""


def utc_now() -> datetime:
    """The current time, aware, in UTC (the ledger's default clock)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class QuotaDay:
    """The quota day: it starts at ``reset_hour``:00 local time in ``zone``.

    Raises ``ValueError`` when ``reset_hour`` is not 0-23. On a day when the clocks go
    forward past the reset time, the day starts when the local clock first shows a later
    time (``zoneinfo`` reads a non-existent time with the offset before the change).
    """

    zone: tzinfo = UTC
    reset_hour: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.reset_hour <= 23:
            raise ValueError(f"reset_hour must be 0-23, not {self.reset_hour}")

    def day_of(self, now: datetime) -> date:
        """The quota day ``now`` (aware) falls in: the local date it started on."""
        local = now.astimezone(self.zone)
        return (local.replace(tzinfo=None) - timedelta(hours=self.reset_hour)).date()

    def start_of(self, day: date) -> datetime:
        """When quota day ``day`` starts, aware, in the zone."""
        return datetime.combine(day, time(self.reset_hour), tzinfo=self.zone)

    def next_reset(self, now: datetime) -> datetime:
        """When the quota day after the one ``now`` falls in starts, aware, in the zone."""
        return self.start_of(self.day_of(now) + timedelta(days=1))

    def seconds_to_reset(self, now: datetime) -> float:
        """Seconds from ``now`` to :meth:`next_reset` (elapsed time, DST changes included)."""
        until = self.next_reset(now).astimezone(UTC) - now.astimezone(UTC)
        return max(0.0, until.total_seconds())

    def days_back(self, now: datetime, count: int) -> list[date]:
        """The ``count`` quota days ending with today's, newest first."""
        today = self.day_of(now)
        return [today - timedelta(days=back) for back in range(count)]


@dataclass(frozen=True)
class UsageCount:
    """Questions asked (``requests``: answered turns) and the tokens they took."""

    requests: int = 0
    tokens: int = 0

    def __add__(self, other: UsageCount) -> UsageCount:
        return UsageCount(self.requests + other.requests, self.tokens + other.tokens)


def _add_into(target: dict[str, UsageCount], source: dict[str, UsageCount]) -> None:
    for name, count in source.items():
        target[name] = target.get(name, UsageCount()) + count


@dataclass
class Tally:
    """One usage hash read back: the totals and the breakdowns (name → count).

    ``users`` is keyed by the user id as text; :attr:`active_users` is its size.
    """

    total: UsageCount = UsageCount()
    models: dict[str, UsageCount] = field(default_factory=dict)
    platforms: dict[str, UsageCount] = field(default_factory=dict)
    users: dict[str, UsageCount] = field(default_factory=dict)

    @property
    def active_users(self) -> int:
        """Users who asked at least one question."""
        return len(self.users)

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> Tally:
        """Parse a usage hash (see the module docstring); unknown fields are ignored."""
        tally = cls(total=UsageCount(int(raw.get("requests", 0)), int(raw.get("tokens", 0))))
        breakdowns = {"model": tally.models, "platform": tally.platforms, "user": tally.users}
        for name, value in raw.items():
            kind, _, rest = name.partition("|")
            dimension, _, item = rest.partition("|")
            if kind not in ("requests", "tokens") or dimension not in breakdowns:
                continue
            counts = breakdowns[dimension]
            old = counts.get(item, UsageCount())
            if kind == "requests":
                counts[item] = UsageCount(old.requests + int(value), old.tokens)
            else:
                counts[item] = UsageCount(old.requests, old.tokens + int(value))
        return tally

    @classmethod
    def merged(cls, tallies: Iterable[Tally]) -> Tally:
        """The sum of ``tallies`` (an active user of any of them is active in the sum)."""
        out = cls()
        for tally in tallies:
            out.total = out.total + tally.total
            _add_into(out.models, tally.models)
            _add_into(out.platforms, tally.platforms)
            _add_into(out.users, tally.users)
        return out


@dataclass(frozen=True)
class Spent:
    """What counts against the quotas today: the user's and (in a group) the chat's
    usage, and the token quota the group's admins set (``None``: none set)."""

    user: UsageCount
    chat: UsageCount | None
    chat_quota: int | None


def _text(value: str | bytes) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _text_dict(raw: dict[str | bytes, str | bytes]) -> dict[str, str]:
    return {_text(name): _text(value) for name, value in raw.items()}


def _chat_settings_key(chat_id: int) -> str:
    return key(CHAT_SCOPE.format(chat_id=int(chat_id)), SETTINGS)


def parse_quota(raw: str | bytes | None) -> int | None:
    """A stored group quota (decimal tokens) as an int; ``None`` for none or unreadable."""
    text = "" if raw is None else _text(raw).strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


class UsageLedger:
    """Counts usage per quota day in Redis and reads it back (keys: module docstring).

    ``day`` is the quota day (default: midnight UTC) and ``now`` the clock (default
    :func:`utc_now`; it must return an aware datetime). Both are plain attributes: the
    bot sets ``day`` from its settings at start-up, and tests replace ``now`` with a
    clock of their own.
    """

    def __init__(
        self,
        redis_client: redis.asyncio.Redis,
        *,
        day: QuotaDay | None = None,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self.redis = redis_client
        self.day = day or QuotaDay()
        self.now = now

    def today(self) -> date:
        """The current quota day."""
        return self.day.day_of(self.now())

    def next_reset(self) -> datetime:
        """When the next quota day starts, aware, in the quota's zone."""
        return self.day.next_reset(self.now())

    def seconds_to_reset(self) -> float:
        """Seconds until the next quota day starts."""
        return self.day.seconds_to_reset(self.now())

    # -- writing ---------------------------------------------------------------------

    def queue_record(
        self,
        pipe: Pipeline,
        *,
        user_id: int,
        tokens: int,
        model: str = "",
        platform: str = "",
        chat_id: int | None = None,
    ) -> None:
        """Add to ``pipe`` (not a transaction) the commands counting one answered question.

        Counts one request and ``tokens`` today for the user (with ``model``), all time
        for the user, today bot-wide and, when ``chat_id`` is a group's, today for that
        group (with ``model``, ``platform`` and the user). An empty ``model`` or
        ``platform`` is not broken down.
        """
        today = self.today().isoformat()
        user = str(int(user_id))
        per_user = {"model": model}
        per_chat = {"model": model, "platform": platform, "user": user}
        targets: list[tuple[str, dict[str, str], int | None]] = [
            (user_usage_key(user_id, day=today), per_user, DAY_TTL),
            (user_total_key(user_id), per_user, None),
            (bot_usage_key(day=today), per_chat, DAY_TTL),
        ]
        if chat_id is not None:
            targets.append((chat_usage_key(chat_id, day=today), per_chat, DAY_TTL))
        for usage_key, breakdown, ttl in targets:
            pipe.hincrby(usage_key, "requests", 1)
            pipe.hincrby(usage_key, "tokens", tokens)
            for dimension, value in breakdown.items():
                if value:
                    pipe.hincrby(usage_key, f"requests|{dimension}|{value}", 1)
                    pipe.hincrby(usage_key, f"tokens|{dimension}|{value}", tokens)
            if ttl is not None:
                pipe.expire(usage_key, ttl)

    async def record(
        self,
        *,
        user_id: int,
        tokens: int,
        model: str = "",
        platform: str = "",
        chat_id: int | None = None,
    ) -> None:
        """Count one answered question (see :meth:`queue_record`); Redis errors raise."""
        async with self.redis.pipeline(transaction=False) as pipe:
            self.queue_record(
                pipe,
                user_id=user_id,
                tokens=tokens,
                model=model,
                platform=platform,
                chat_id=chat_id,
            )
            await pipe.execute()

    # -- reading ---------------------------------------------------------------------

    async def spent_today(self, user_id: int, *, chat_id: int | None, name: str = "") -> Spent:
        """Today's usage of ``user_id`` and, when ``chat_id`` is a group's, of that group
        and its admins' quota; one round trip.

        A non-empty ``name`` (the user's display name) is stored meanwhile for the
        group's ``/stats`` (kept :data:`DAY_TTL` seconds from the user's last question).
        """
        today = self.today().isoformat()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hmget(user_usage_key(user_id, day=today), ["requests", "tokens"])
            if chat_id is not None:
                pipe.hmget(chat_usage_key(chat_id, day=today), ["requests", "tokens"])
                pipe.hget(_chat_settings_key(chat_id), CHAT_QUOTA_SETTING)
            if name:
                pipe.set(user_name_key(user_id), name, ex=DAY_TTL)
            replies = await pipe.execute()
        user = _count(replies[0])
        if chat_id is None:
            return Spent(user, None, None)
        return Spent(user, _count(replies[1]), parse_quota(replies[2]))

    async def user_day(self, user_id: int, day: date | None = None) -> Tally:
        """The user's usage on quota day ``day`` (default: today), by model."""
        label = (day or self.today()).isoformat()
        return await self._tally(user_usage_key(user_id, day=label))

    async def user_total(self, user_id: int) -> Tally:
        """The user's usage since counting began, by model."""
        return await self._tally(user_total_key(user_id))

    async def days(self, chat_id: int | None, count: int = 7) -> list[tuple[date, Tally]]:
        """The last ``count`` quota days of group ``chat_id`` (``None``: bot-wide), newest
        (today) first, each with its tally; one round trip."""
        days = self.day.days_back(self.now(), count)
        async with self.redis.pipeline(transaction=False) as pipe:
            for day in days:
                label = day.isoformat()
                pipe.hgetall(
                    bot_usage_key(day=label)
                    if chat_id is None
                    else chat_usage_key(chat_id, day=label)
                )
            replies = await pipe.execute()
        return [
            (day, Tally.from_hash(_text_dict(raw))) for day, raw in zip(days, replies, strict=True)
        ]

    async def names(self, user_ids: Sequence[str]) -> dict[str, str]:
        """The stored display names of ``user_ids`` (ids as text); unknown ones are left out."""
        if not user_ids:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for user_id in user_ids:
                pipe.get(user_name_key(int(user_id)))
            replies = await pipe.execute()
        return {uid: _text(name) for uid, name in zip(user_ids, replies, strict=True) if name}

    async def chat_quota(self, chat_id: int) -> int | None:
        """The token quota group ``chat_id``'s admins set; ``None`` when none is set."""
        return parse_quota(await self.redis.hget(_chat_settings_key(chat_id), CHAT_QUOTA_SETTING))

    async def _tally(self, usage_key: str) -> Tally:
        return Tally.from_hash(_text_dict(await self.redis.hgetall(usage_key)))


def _count(pair: Sequence[str | bytes | None]) -> UsageCount:
    requests, tokens = (int(_text(value)) if value is not None else 0 for value in pair)
    return UsageCount(requests, tokens)
