"""Wiring: the PTB Application, its handlers, and the services it starts and stops."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from redis.exceptions import RedisError
from telegram import BotCommand, BotCommandScopeDefault, Update
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

import handlers
from bot.app.health import start_health_server, stop_health_server
from bot.app.inflight import InflightTracker, recover_interrupted, tell_interrupted
from bot.app.metrics import AppData, Telemetry, telemetry_of
from bot.app.platforms import build_catalogue, build_clients, check_default_model
from bot.app.services import open_configured_store, restore_sessions
from bot.app.shutdown import DrainingUpdateProcessor, requeue_deferred
from bot.app.updates import skipping_bot
from bot.conversation.formats import Formats
from bot.conversation.quota import QuotaLimits, Quotas
from bot.conversation.turn import ConversationService
from bot.reply.rich_api import RICH_ALLOWED_UPDATES
from bot.reply.stream import ReplyFactory
from bot.scheduler.clock import MonotonicClock
from bot.scheduler.core import Limits, SendScheduler
from bot.settings import Settings
from bot.texts import Lang, t
from handlers.access import warn_if_open
from handlers.chat_admin import (
    answer_if_triggered,
    change_chat_models,
    change_chat_setting,
    edit_triggers,
    set_system_prompt,
    show_settings_menu,
)
from handlers.context import BotContext, Services
from handlers.private_answers import switch_private_answers
from handlers.reports import show_quota, show_stats
from handlers.rich import StoppedGenerationHandler
from storage import ConversationStore
from storage.inflight import DeferredUpdates, InflightTurns
from storage.usage import QuotaDay

__all__ = [
    "ALLOWED_UPDATES",
    "COMMANDS",
    "build_application",
    "build_services",
    "limits_of",
    "quotas_of",
    "started",
]

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ["message", "callback_query", "channel_post", *RICH_ALLOWED_UPDATES]
"""The update types the bot asks Telegram for (polling and webhook alike); with
``stopped_message_generation``, the stop button of a rich draft (:mod:`handlers.rich`),
which an explicit list without it filters out (docs/telegram.md "Rich messages")."""
COMMANDS = (
    "start",
    "help",
    "model",
    "settings",
    "reset",
    "stop",
    "retry",
    "usage",
    "shared",
    "quota",
    "stats",
    "system",
    "triggers",
    "private_answers",
)
MAX_CONCURRENT_UPDATES = 512

BotApplication = Application[Any, BotContext, dict[Any, Any], dict[Any, Any], AppData, Any]


async def build_services(
    settings: Settings, app: BotApplication, *, transport: httpx.AsyncBaseTransport | None = None
) -> Services:
    """Open the store and the provider clients; check the default model.

    Raises :class:`bot.settings.ConfigError` when the configuration cannot work.
    """
    catalogue = build_catalogue(settings)
    default = check_default_model(settings, catalogue)
    clients = build_clients(settings, transport=transport)
    store, embedded = await open_configured_store(settings)
    if embedded:
        log.warning("REDIS_URL is not set: using the embedded store; history is lost at restart")
    warn_if_open(settings)  # no ALLOWED_USER_IDS: anyone may use the bot (handlers.access)
    telemetry_of(app).watch_redis(store.redis)
    await restore_sessions(store, clients)
    conversations = ConversationService(
        store=store,
        clients=clients,
        catalogue=catalogue,
        default_model=default,
        system_prompt=settings.system_prompt,
        daily_turn_limit=settings.user_daily_turns,
        turns_per_minute=settings.user_turns_per_minute,
        observer=telemetry_of(app),
        quotas=quotas_of(settings, store),
        tracker=InflightTracker(InflightTurns(store.redis)),
    )
    log.info(
        "starting: platforms=%s default_model=%s models=%d storage=%s",
        ", ".join(f"{p.name}@{p.base_url}" for p in catalogue.platforms() if p.name in clients),
        default.key,
        len(catalogue.enabled_models()),
        "embedded" if embedded else "redis",
    )
    scheduler = SendScheduler(
        limits=limits_of(settings),
        clock=MonotonicClock(),
        give_up_seconds=settings.reply_give_up_seconds,
    )
    await scheduler.start()
    telemetry_of(app).watch_scheduler(scheduler)
    return Services(
        settings=settings,
        store=store,
        conversations=conversations,
        catalogue=catalogue,
        replies=ReplyFactory(app.bot, settings, scheduler, formats=Formats(store)),
    )


def quotas_of(settings: Settings, store: ConversationStore) -> Quotas:
    """The daily quotas of ``settings`` (``USER_DAILY_TURNS``, ``USER_DAILY_TOKENS``,
    ``CHAT_DAILY_TOKENS``), on a quota day starting at ``QUOTA_RESET_HOUR`` in
    ``QUOTA_TIMEZONE`` (set on the store's usage ledger)."""
    store.usage.day = QuotaDay(ZoneInfo(settings.quota_timezone), settings.quota_reset_hour)
    limits = QuotaLimits(
        user_daily_turns=settings.user_daily_turns,
        user_daily_tokens=settings.user_daily_tokens,
        chat_daily_tokens=settings.chat_daily_tokens,
    )
    return Quotas(store, limits)


def limits_of(settings: Settings) -> Limits:
    """The scheduler's limits from the ``LIMIT_*`` settings."""
    return Limits(
        per_chat_per_second=settings.limit_per_chat_per_second,
        per_group_per_minute=settings.limit_per_group_per_minute,
        per_group_burst=settings.limit_group_burst,
        global_per_second=settings.limit_global_per_second,
        global_burst=settings.limit_global_burst,
        max_in_flight=settings.limit_max_in_flight,
        final_reserve=settings.limit_final_reserve,
    )


def _commands(lang: Lang) -> list[BotCommand]:
    return [BotCommand(name, t(f"cmd_{name}", lang)) for name in COMMANDS]


class _Lifecycle:
    """What ``post_init`` starts for ``post_shutdown`` to stop: the restart notices."""

    def __init__(self) -> None:
        self.notices: asyncio.Task[None] | None = None


async def _recover(app: BotApplication, services: Services, lifecycle: _Lifecycle) -> None:
    """Before any update: act on what the last stop left (:mod:`bot.app.inflight`: free
    the locks of turns a killed process left, store their questions, tell their users in
    the background; :mod:`bot.app.shutdown`: queue the updates it set aside). A Redis
    error is logged: the locks then expire by their TTL."""
    turns = InflightTurns(services.store.redis)
    try:
        records = await recover_interrupted(services.store, turns)
        await requeue_deferred(app, DeferredUpdates(services.store.redis))
    except (RedisError, OSError) as exc:
        log.warning("could not recover what the last stop left: %s", type(exc).__name__)
        return
    if records:
        notices = tell_interrupted(app.bot, services.replies.scheduler, turns, records)
        lifecycle.notices = asyncio.create_task(_logged(notices))


async def _logged(work: Awaitable[None]) -> None:
    try:
        await work
    except (RedisError, OSError, TelegramError) as exc:
        log.warning("telling users of interrupted answers failed: %s", type(exc).__name__)


async def _post_init(
    app: BotApplication,
    *,
    settings: Settings,
    transport: httpx.AsyncBaseTransport | None,
    lifecycle: _Lifecycle,
) -> None:
    services = app.bot_data.services = await build_services(settings, app, transport=transport)
    await _recover(app, services, lifecycle)
    try:
        await app.bot.set_my_commands(_commands("en"), scope=BotCommandScopeDefault())
        await app.bot.set_my_commands(_commands("zh"), language_code="zh")
    except TelegramError as exc:
        log.warning("could not register the bot commands: %s", exc)
    await start_health_server(app, settings)  # polling mode with METRICS_PORT only


async def _post_shutdown(app: BotApplication, *, lifecycle: _Lifecycle) -> None:
    if lifecycle.notices is not None:  # the records not yet told stay for the next start
        lifecycle.notices.cancel()
        await asyncio.gather(lifecycle.notices, return_exceptions=True)
    await stop_health_server(app)
    try:
        services = app.bot_data.services
    except RuntimeError:
        return
    await services.replies.scheduler.aclose()
    for client in services.conversations.clients.values():
        await client.aclose()
    await services.store.aclose()


@contextlib.asynccontextmanager
async def started(app: BotApplication) -> AsyncIterator[BotApplication]:
    """Run ``app`` by hand, as PTB's ``run_polling`` does around its loop.

    ``initialize``, ``post_init`` (PTB calls it only from its ``run_*`` methods, so the
    services start here), ``start``; on exit ``stop`` (unless the block stopped it, as
    :func:`bot.app.shutdown.wind_down` does), ``post_shutdown``, ``shutdown``.
    The caller starts and stops what feeds updates (polling, a webhook server) inside
    the block.
    """
    await app.initialize()
    try:
        if app.post_init is not None:
            await app.post_init(app)
        await app.start()
        try:
            yield app
        finally:
            if app.running:
                await app.stop()
            if app.post_shutdown is not None:
                await app.post_shutdown(app)
    finally:
        await app.shutdown()


def build_application(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    polling: bool = True,
) -> BotApplication:
    """Build the Application for ``settings``; services start in ``post_init``.

    ``transport`` points every provider client at a fake (tests, benchmarks);
    ``polling=False`` builds it without an Updater (webhook mode, :mod:`bot.app.webhook`).
    The process entry (:mod:`bot.__main__`) sets ``PTB_TIMEDELTA``; this leaves the
    environment alone.
    """
    context_types = ContextTypes(context=BotContext, bot_data=AppData)
    telemetry = Telemetry()  # the Bot API requests count into it, so it comes first
    lifecycle = _Lifecycle()
    builder = Application.builder()
    if not polling:
        builder = builder.updater(None)
    app: BotApplication = (
        builder.bot(
            skipping_bot(
                settings.telegram_bot_token.get_secret_value(),
                base_url=settings.telegram_base_url,
                base_file_url=settings.telegram_base_file_url,
                make_request=telemetry.counting_request,
            )
        )
        .context_types(context_types)
        .concurrent_updates(DrainingUpdateProcessor(MAX_CONCURRENT_UPDATES))
        .post_init(
            functools.partial(
                _post_init, settings=settings, transport=transport, lifecycle=lifecycle
            )
        )
        .post_shutdown(functools.partial(_post_shutdown, lifecycle=lifecycle))
        .build()
    )
    app.bot_data.telemetry = telemetry
    # group -3: every update is counted, duplicates included
    app.add_handler(TypeHandler(Update, telemetry.count_update), group=-3)
    # group -2: a group that became a supergroup takes its conversations along
    app.add_handler(
        MessageHandler(filters.StatusUpdate.MIGRATE, handlers.follow_migration), group=-2
    )
    # group -2: a rich draft's stop button stops its answer (it has no user for the gate)
    app.add_handler(StoppedGenerationHandler(), group=-2)
    # group -1: the gate (duplicates, allow-list) runs before everything else
    app.add_handler(TypeHandler(object, handlers.gate_update), group=-1)
    # group 0: commands, then menus, then conversation messages
    app.add_handler(CommandHandler("start", handlers.start_bot), group=0)
    app.add_handler(CommandHandler("help", handlers.show_help), group=0)
    app.add_handler(CommandHandler("reset", handlers.reset_conversation), group=0)
    app.add_handler(CommandHandler("model", handlers.show_model_menu), group=0)
    app.add_handler(CommandHandler("settings", show_settings_menu), group=0)
    app.add_handler(CommandHandler("stop", handlers.stop_answer), group=0)
    app.add_handler(CommandHandler("retry", handlers.regenerate_answer), group=0)
    app.add_handler(CommandHandler("usage", handlers.show_usage), group=0)
    app.add_handler(CommandHandler("shared", handlers.toggle_shared), group=0)
    app.add_handler(CommandHandler("quota", show_quota), group=0)
    app.add_handler(CommandHandler("stats", show_stats), group=0)
    app.add_handler(CommandHandler("system", set_system_prompt), group=0)
    app.add_handler(CommandHandler("triggers", edit_triggers), group=0)
    app.add_handler(CommandHandler("private_answers", switch_private_answers), group=0)
    app.add_handler(CallbackQueryHandler(handlers.choose_model, pattern=r"^m\|"), group=0)
    app.add_handler(CallbackQueryHandler(handlers.change_setting, pattern=r"^s\|"), group=0)
    app.add_handler(CallbackQueryHandler(change_chat_setting, pattern=r"^cs\|"), group=0)
    app.add_handler(CallbackQueryHandler(change_chat_models, pattern=r"^cm\|"), group=0)
    app.add_handler(MessageHandler(handlers.AddressedText(), handlers.answer_message), group=0)
    # group 0: other group texts, answered for a trigger word or as a channel-post comment
    unaddressed = filters.UpdateType.MESSAGE & filters.ChatType.GROUPS & filters.TEXT
    app.add_handler(MessageHandler(unaddressed & ~filters.COMMAND, answer_if_triggered), group=0)
    # group 0: photos and image documents (an album is one turn) for vision models
    photos = filters.PHOTO | filters.Document.IMAGE
    app.add_handler(MessageHandler(photos, handlers.answer_photo), group=0)
    # group 0, after the real handlers: a command to this bot none of them took gets a /help hint
    unknown_command = filters.UpdateType.MESSAGES & handlers.CommandToThisBot()
    app.add_handler(MessageHandler(unknown_command, handlers.hint_unknown_command), group=0)
    # group 0: a kind the bot cannot read (sticker, voice, PDF, …), if addressed to it
    unsupported = (
        filters.UpdateType.MESSAGES & handlers.UNSUPPORTED_KINDS & handlers.AddressedMessage()
    )
    app.add_handler(MessageHandler(unsupported, handlers.tell_unsupported), group=0)
    # group 0, last: a button press no menu handler took is answered all the same
    app.add_handler(CallbackQueryHandler(handlers.answer_unknown_button), group=0)
    app.add_error_handler(handlers.report_error)
    return app
