"""``/quota`` (see and, for a group's admins, lower the group's token quota) and
``/stats`` (usage reports for the bot's operators and a group's admins, as text or CSV).

Who may do what:

- an operator is a user in ``ADMIN_USER_IDS``: ``/stats`` in a private chat reports the
  whole bot; in a group, that group;
- a group's admin (:func:`handlers.admins.sent_by_admin`: ``getChatMember`` says
  ``administrator`` or ``creator``, remembered for a minute; or an anonymous admin) may
  use ``/stats`` and ``/quota <tokens>`` in that group; so may an operator;
- everyone else is told politely that it is not for them.

A report covers today's quota day and the last 7 (today included): active users,
questions and tokens, by model and by platform; a group's report also names its top
users (the display names stored when they asked, :mod:`storage.usage`).
``/stats csv`` sends the same figures as a CSV document (UTF-8 with a BOM, so that
spreadsheet programs read the names right; a name that a spreadsheet would take for a
formula is prefixed with ``'``).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date

from telegram import Update, User
from telegram.constants import ChatType

from bot.conversation.quota import QuotaAboveOperator
from bot.texts import Lang, t
from handlers.admins import sent_by_admin
from handlers.common import lang_of
from handlers.context import BotContext
from handlers.usage_texts import day_start_text, quota_text
from storage.usage import Tally, UsageCount, UsageLedger

__all__ = [
    "CSV_COLUMNS",
    "TOP_USERS",
    "Report",
    "build_report",
    "report_csv",
    "report_text",
    "show_quota",
    "show_stats",
]

TOP_USERS = 10
"""Users named in a group's text report (the CSV lists them all)."""
CSV_COLUMNS = (
    "period", "first_day", "last_day", "dimension", "key", "name", "active_users",
    "questions", "tokens",
)  # fmt: skip
"""The CSV's header. ``period`` is ``today`` or ``7d``; ``dimension`` is ``total`` (with
``active_users``), ``model``, ``platform`` or (a group's report) ``user`` (``key`` the
user id, ``name`` the display name)."""

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _is_operator(context: BotContext, user: User) -> bool:
    return user.id in context.services.settings.admin_user_ids


# -- /quota ------------------------------------------------------------------------------


async def show_quota(update: Update, context: BotContext) -> None:
    """``/quota``: the daily quotas (and in a group its token quota and today's use);
    ``/quota <tokens>`` / ``/quota off`` in a group: its admins set or remove its own."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    lang = lang_of(update)
    quotas = context.services.conversations.quotas
    group = message.chat.type != ChatType.PRIVATE
    args = context.args or []
    if not args:
        chat = await quotas.chat_quota(message.chat.id) if group else None
        day = quotas.ledger.day
        await message.reply_text(quota_text(day=day, limits=quotas.limits, chat=chat, lang=lang))
        return
    if not group:
        await message.reply_text(t("shared_groups_only", lang))
        return
    if not (_is_operator(context, user) or await sent_by_admin(context, message, user.id)):
        await message.reply_text(t("shared_admins_only", lang))
        return
    word = args[0].lower()
    if word == "off" and len(args) == 1:
        now = await quotas.set_chat_quota(message.chat.id, None)
        limit = str(now.limit) if now.limit else t("quota_none", lang)
        await message.reply_text(t("quota_removed", lang, limit=limit))
        return
    if len(args) != 1 or not word.isdigit() or int(word) < 1:
        await message.reply_text(t("quota_bad", lang))
        return
    try:
        now = await quotas.set_chat_quota(message.chat.id, int(word))
    except QuotaAboveOperator as exc:
        await message.reply_text(t("quota_too_high", lang, limit=exc.limit))
        return
    await message.reply_text(t("quota_set", lang, limit=now.limit))


# -- /stats ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    """A usage report: the whole bot (``chat_id`` ``None``) or one group, today and over
    the last 7 quota days (``first_day`` .. ``today``); ``names`` maps a group's user ids
    (text) to their stored display names."""

    chat_id: int | None
    today: date
    first_day: date
    day_tally: Tally
    week_tally: Tally
    names: dict[str, str]


async def build_report(ledger: UsageLedger, chat_id: int | None) -> Report:
    """Read the last 7 quota days of group ``chat_id`` (``None``: the whole bot)."""
    days = await ledger.days(chat_id, 7)
    week = Tally.merged(tally for _, tally in days)
    names = await ledger.names(sorted(week.users)) if chat_id is not None else {}
    return Report(chat_id, days[0][0], days[-1][0], days[0][1], week, names)


def _by_tokens(counts: dict[str, UsageCount]) -> list[str]:
    return sorted(counts, key=lambda name: (-counts[name].tokens, -counts[name].requests, name))


def _user_name(report: Report, user_id: str, lang: Lang) -> str:
    return report.names.get(user_id) or t("stats_unknown_user", lang, user_id=user_id)


def report_text(report: Report, *, start: str, lang: Lang) -> str:
    """The report as a message: totals today and over 7 days, then by model and by
    platform (today / 7 days), then (a group's) the top :data:`TOP_USERS` users."""
    day, week = report.day_tally, report.week_tally
    title = "stats_title_bot" if report.chat_id is None else "stats_title_chat"
    lines = [
        t(title, lang, start=start),
        t(
            "stats_today",
            lang,
            users=day.active_users,
            requests=day.total.requests,
            tokens=day.total.tokens,
        ),
        t(
            "stats_week",
            lang,
            users=week.active_users,
            requests=week.total.requests,
            tokens=week.total.tokens,
        ),
    ]
    for heading, today_counts, week_counts in (
        ("stats_by_model", day.models, week.models),
        ("stats_by_platform", day.platforms, week.platforms),
    ):
        if not week_counts:
            continue
        lines.append(t(heading, lang))
        for name in _by_tokens(week_counts):
            now = today_counts.get(name, UsageCount())
            lines.append(
                t(
                    "stats_row",
                    lang,
                    name=name,
                    requests_today=now.requests,
                    requests_week=week_counts[name].requests,
                    tokens_today=now.tokens,
                    tokens_week=week_counts[name].tokens,
                )
            )
    if report.chat_id is not None and week.users:
        lines.append(t("stats_top", lang))
        for rank, user_id in enumerate(_by_tokens(week.users)[:TOP_USERS], start=1):
            count = week.users[user_id]
            lines.append(
                t(
                    "stats_user",
                    lang,
                    rank=rank,
                    name=_user_name(report, user_id, lang),
                    requests=count.requests,
                    tokens=count.tokens,
                )
            )
    return "\n".join(lines)


def _cell(text: str) -> str:
    """A name as a CSV cell a spreadsheet will not run as a formula (OWASP, "CSV
    Injection": prefix a leading ``= + - @``, tab or carriage return with ``'``)."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def report_csv(report: Report) -> bytes:
    """The report as CSV (:data:`CSV_COLUMNS`), UTF-8 with a BOM: per period (``today``,
    ``7d``) a ``total`` row, then ``model``, ``platform`` and (a group's) ``user`` rows,
    most tokens first."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    periods = (("today", report.today, report.day_tally),
               ("7d", report.first_day, report.week_tally))  # fmt: skip
    for period, first, tally in periods:
        head = [period, first.isoformat(), report.today.isoformat()]
        total = tally.total
        writer.writerow([*head, "total", "", "", tally.active_users, total.requests, total.tokens])
        breakdowns = [("model", tally.models), ("platform", tally.platforms)]
        if report.chat_id is not None:
            breakdowns.append(("user", tally.users))
        for dimension, counts in breakdowns:
            for name in _by_tokens(counts):
                label = _cell(report.names.get(name, "")) if dimension == "user" else ""
                writer.writerow(
                    [*head, dimension, name, label, "", counts[name].requests, counts[name].tokens]
                )
    return out.getvalue().encode("utf-8-sig")


async def show_stats(update: Update, context: BotContext) -> None:
    """``/stats``: an operator's report of the whole bot (private chat) or a group's
    report for its admins and operators (in that group); ``/stats csv`` as a document.
    Anyone else gets a polite refusal."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    lang = lang_of(update)
    group = message.chat.type != ChatType.PRIVATE
    allowed = _is_operator(context, user) or (
        group and await sent_by_admin(context, message, user.id)
    )
    if not allowed:
        await message.reply_text(t("stats_refused", lang))
        return
    ledger = context.services.conversations.quotas.ledger
    report = await build_report(ledger, message.chat.id if group else None)
    if [arg.lower() for arg in context.args or []] == ["csv"]:
        owner = "bot" if report.chat_id is None else f"chat{report.chat_id}"
        await message.reply_document(
            report_csv(report),
            filename=f"usage-{owner}-{report.today.isoformat()}.csv",
            caption=t("stats_csv_caption", lang),
        )
        return
    await message.reply_text(report_text(report, start=day_start_text(ledger.day), lang=lang))
