"""Fair use: the daily quotas of questions and tokens, per user and per group.

The operator sets three daily quotas (0 = no limit): ``USER_DAILY_TURNS`` questions per
user, ``USER_DAILY_TOKENS`` tokens per user, ``CHAT_DAILY_TOKENS`` tokens per group
(everyone in it together). A group's admins may lower their group's token quota
(``/quota``), never above the operator's. The day is the quota day of the store's
:class:`storage.usage.UsageLedger` (``QUOTA_RESET_HOUR`` in ``QUOTA_TIMEZONE``).

A question is refused once the day's count has reached a quota; the answer that
crosses a token quota is given in full (its size is known only at its end). Tokens are
what the provider reported for the request (prompt + completion); a provider that
reports none is charged an estimate (:func:`estimated_tokens`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from bot.conversation.scope import chat_scope
from providers.types import ChatMessage
from storage import IMAGE_TOKENS, ConversationStore, estimate_tokens
from storage.usage import CHAT_QUOTA_SETTING, UsageCount, UsageLedger

__all__ = [
    "ChatQuota",
    "QuotaAboveOperator",
    "QuotaLimits",
    "Quotas",
    "Refusal",
    "estimated_tokens",
    "hours_and_minutes",
]


def estimated_tokens(messages: Sequence[ChatMessage], *, answer: str, reasoning: str) -> int:
    """An estimate of a request's prompt + completion tokens, for a provider that reported
    no usage: :func:`storage.estimate_tokens` of every message sent and of the answer and
    reasoning received, and :data:`storage.IMAGE_TOKENS` per image sent. Message framing
    (a few tokens per message) is not counted."""
    sent = sum(estimate_tokens(m.content) + IMAGE_TOKENS * len(m.images) for m in messages)
    return sent + estimate_tokens(answer) + estimate_tokens(reasoning)


def hours_and_minutes(seconds: float) -> tuple[int, int]:
    """``seconds`` as whole hours and minutes, rounded up to the minute: 61 s is (0, 2)."""
    minutes = math.ceil(max(0.0, seconds) / 60)
    return divmod(minutes, 60)


@dataclass(frozen=True)
class QuotaLimits:
    """The operator's daily quotas; 0 = no limit."""

    user_daily_turns: int = 0
    user_daily_tokens: int = 0
    chat_daily_tokens: int = 0


@dataclass(frozen=True)
class Refusal:
    """Why a question is refused: ``reason`` names the quota reached (``"turns"``,
    ``"user_tokens"``, ``"chat_tokens"``), ``limit`` its size (questions or tokens);
    ``resets_at`` is the next quota day's start (aware, in the quota's zone) and
    ``seconds`` the time until then."""

    reason: Literal["turns", "user_tokens", "chat_tokens"]
    limit: int
    resets_at: datetime
    seconds: float


@dataclass(frozen=True)
class ChatQuota:
    """A group's daily token quota: ``limit`` the one in force (0 = none), ``own`` what
    its admins set (``None``: nothing), ``operator`` the operator's ``CHAT_DAILY_TOKENS``
    (0 = none) and ``used`` today's usage of the group."""

    limit: int
    own: int | None
    operator: int
    used: UsageCount


class QuotaAboveOperator(ValueError):
    """A group's admins asked for more tokens than the operator allows (``limit``)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the operator allows at most {limit} tokens a day")
        self.limit = limit


class Quotas:
    """The quotas of :class:`QuotaLimits`, checked against the store's usage ledger."""

    def __init__(self, store: ConversationStore, limits: QuotaLimits) -> None:
        self.store = store
        self.limits = limits

    @property
    def ledger(self) -> UsageLedger:
        """The store's usage ledger (its quota day and clock)."""
        return self.store.usage

    def chat_limit(self, own: int | None) -> int:
        """The token quota in force for a group whose admins set ``own`` (0 = none)."""
        operator = self.limits.chat_daily_tokens
        if own is None:
            return operator
        return own if not operator else min(own, operator)

    async def admit(self, user_id: int, *, chat_id: int | None, name: str = "") -> Refusal | None:
        """``None`` when ``user_id`` may ask now (in group ``chat_id``; ``None`` in a
        private chat), else the first quota reached: questions, the user's tokens, the
        group's tokens. ``name`` (the user's display name) is stored for ``/stats``.
        One Redis round trip; Redis errors raise."""
        spent = await self.ledger.spent_today(user_id, chat_id=chat_id, name=name)
        limits = self.limits
        reached: tuple[Literal["turns", "user_tokens", "chat_tokens"], int] | None = None
        if limits.user_daily_turns and spent.user.requests >= limits.user_daily_turns:
            reached = ("turns", limits.user_daily_turns)
        elif limits.user_daily_tokens and spent.user.tokens >= limits.user_daily_tokens:
            reached = ("user_tokens", limits.user_daily_tokens)
        elif spent.chat is not None:
            chat_limit = self.chat_limit(spent.chat_quota)
            if chat_limit and spent.chat.tokens >= chat_limit:
                reached = ("chat_tokens", chat_limit)
        if reached is None:
            return None
        now = self.ledger.now()
        day = self.ledger.day
        return Refusal(reached[0], reached[1], day.next_reset(now), day.seconds_to_reset(now))

    async def chat_quota(self, chat_id: int) -> ChatQuota:
        """The token quota of group ``chat_id`` and its usage today."""
        own = await self.ledger.chat_quota(chat_id)
        used = (await self.ledger.days(chat_id, 1))[0][1].total
        return ChatQuota(self.chat_limit(own), own, self.limits.chat_daily_tokens, used)

    async def set_chat_quota(self, chat_id: int, tokens: int | None) -> ChatQuota:
        """Set group ``chat_id``'s own daily token quota to ``tokens`` (>= 1), or remove it
        (``None``); return the quota now in force.

        Raises :class:`QuotaAboveOperator` when ``tokens`` is above the operator's
        ``CHAT_DAILY_TOKENS`` (when that is set), ``ValueError`` when it is below 1.
        """
        operator = self.limits.chat_daily_tokens
        if tokens is not None:
            if tokens < 1:
                raise ValueError("a quota is at least 1 token")
            if operator and tokens > operator:
                raise QuotaAboveOperator(operator)
        if tokens is None:
            await self.store.delete_setting(chat_scope(chat_id), CHAT_QUOTA_SETTING)
        else:
            await self.store.set_setting(chat_scope(chat_id), CHAT_QUOTA_SETTING, str(tokens))
        return await self.chat_quota(chat_id)
