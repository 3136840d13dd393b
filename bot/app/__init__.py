"""The process around the bot: it builds the PTB Application from the settings, opens
and closes the long-lived services (store, provider clients, send scheduler), keeps
each conversation's updates in order, serves webhook mode and sets up logging. It is
the only part of :mod:`bot` that imports :mod:`handlers`; nothing else imports it
but the entry point and the operator tools."""

from bot.app.logs import RedactingFilter, setup_logging
from bot.app.ordering import OrderedUpdateProcessor
from bot.app.platforms import build_catalogue, build_clients, check_default_model
from bot.app.services import open_configured_store, restore_sessions
from bot.app.wiring import (
    ALLOWED_UPDATES,
    COMMANDS,
    BotApplication,
    build_application,
    build_services,
    limits_of,
    started,
)

__all__ = [
    "ALLOWED_UPDATES",
    "COMMANDS",
    "BotApplication",
    "OrderedUpdateProcessor",
    "RedactingFilter",
    "build_application",
    "build_catalogue",
    "build_clients",
    "build_services",
    "check_default_model",
    "limits_of",
    "open_configured_store",
    "restore_sessions",
    "setup_logging",
    "started",
]
