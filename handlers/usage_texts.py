"""The texts of usage and quotas: a refused question, ``/usage``, ``/quota`` (no I/O).

Times are the quota day's local times with the zone's IANA name (``04:00
Asia/Shanghai``), so a user in another zone can tell what is meant.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from bot.conversation.quota import ChatQuota, QuotaLimits, Refusal, hours_and_minutes
from bot.texts import Lang, t
from storage.usage import QuotaDay, Tally, UsageCount

__all__ = [
    "clock_text",
    "day_start_text",
    "limit_text",
    "model_lines",
    "quota_text",
    "refusal_text",
    "usage_text",
]

_REFUSAL_KEYS = {
    "turns": "daily_limit",
    "user_tokens": "token_limit_user",
    "chat_tokens": "token_limit_chat",
}


def clock_text(moment: datetime) -> str:
    """``HH:MM <zone>`` of an aware ``moment`` in its own zone (``00:00 UTC``)."""
    return f"{moment:%H:%M} {moment.tzinfo}"


def day_start_text(day: QuotaDay) -> str:
    """When every quota day starts, e.g. ``04:00 Asia/Shanghai``."""
    return f"{day.reset_hour:02d}:00 {day.zone}"


def refusal_text(refusal: Refusal, lang: Lang) -> str:
    """The answer to a refused question: the quota reached, then when the user can ask
    again (the local time of the next reset, and in how many hours and minutes)."""
    hours, minutes = hours_and_minutes(refusal.seconds)
    return (
        t(_REFUSAL_KEYS[refusal.reason], lang, limit=refusal.limit)
        + "\n"
        + t("ask_again", lang, at=clock_text(refusal.resets_at), hours=hours, minutes=minutes)
    )


def model_lines(models: Mapping[str, UsageCount], lang: Lang) -> list[str]:
    """One ``usage_model`` line per model, most tokens first (then by name)."""
    ordered = sorted(models.items(), key=lambda item: (-item[1].tokens, item[0]))
    return [
        t("usage_model", lang, model=name, requests=count.requests, tokens=count.tokens)
        for name, count in ordered
    ]


def usage_text(
    *,
    today: Tally,
    total: Tally,
    day: QuotaDay,
    limits: QuotaLimits,
    chat: ChatQuota | None,
    lang: Lang,
) -> str:
    """``/usage``: the caller's questions and tokens today and in total, each by model,
    then what is left of each daily quota that applies (``chat``: in a group)."""
    lines = [
        t(
            "usage_today",
            lang,
            start=day_start_text(day),
            requests=today.total.requests,
            tokens=today.total.tokens,
        ),
        *model_lines(today.models, lang),
        t("usage_total", lang, requests=total.total.requests, tokens=total.total.tokens),
        *model_lines(total.models, lang),
    ]
    if limits.user_daily_turns:
        left = max(0, limits.user_daily_turns - today.total.requests)
        lines.append(t("usage_limit", lang, limit=limits.user_daily_turns, left=left))
    if limits.user_daily_tokens:
        left = max(0, limits.user_daily_tokens - today.total.tokens)
        lines.append(t("usage_token_limit", lang, limit=limits.user_daily_tokens, left=left))
    if chat is not None and chat.limit:
        left = max(0, chat.limit - chat.used.tokens)
        lines.append(t("usage_chat_limit", lang, limit=chat.limit, left=left))
    return "\n".join(lines)


def limit_text(limit: int, lang: Lang) -> str:
    """A quota as shown in ``/quota``: the number, or "no limit" for 0."""
    return str(limit) if limit else t("quota_none", lang)


def quota_text(*, day: QuotaDay, limits: QuotaLimits, chat: ChatQuota | None, lang: Lang) -> str:
    """``/quota``: every daily quota (``chat``: this group's, in a group) and when the day
    starts; in a group, how its admins change the group's."""
    lines = [
        t("quota_title", lang, start=day_start_text(day)),
        t("quota_turns", lang, limit=limit_text(limits.user_daily_turns, lang)),
        t("quota_user_tokens", lang, limit=limit_text(limits.user_daily_tokens, lang)),
    ]
    if chat is not None:
        lines.append(
            t("quota_chat_tokens", lang, limit=limit_text(chat.limit, lang), used=chat.used.tokens)
        )
        if chat.own is not None:
            lines.append(t("quota_chat_own", lang, operator=limit_text(chat.operator, lang)))
        lines.append(t("quota_hint", lang))
    return "\n".join(lines)
