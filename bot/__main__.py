"""``classbot`` (or ``python -m bot``): run the bot, or check or try its configuration.

``classbot`` / ``classbot run`` runs the bot (long polling, or a webhook server when
``WEBHOOK_URL`` is set); ``classbot check`` validates the configuration and probes every
enabled platform (:mod:`bot.ops.check`); ``classbot chat`` talks to the models in the
terminal (:mod:`bot.ops.chat`). Each subcommand has its own ``--help``. On SIGTERM or
SIGINT the bot stops without losing replies or updates (:mod:`bot.app.shutdown`).

The entry sets ``PTB_TIMEDELTA=true`` (unless set already) before anything runs: PTB 22
then reports time periods (``RetryAfter.retry_after``) as ``timedelta`` instead of
warning on every one; the reply stream reads either form.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from bot.settings import ConfigError, Settings, load_settings
from storage import StorageUnavailable

__all__ = ["build_parser", "main"]

PROG = "classbot"
"""The console script's name (pyproject ``[project.scripts]``), shown in ``--help``."""

COMMANDS: dict[str, tuple[str, str]] = {
    "run": (
        "run the bot (the default command)",
        "Run the bot: long polling, or a webhook server when WEBHOOK_URL is set.",
    ),
    "check": (
        "check the configuration and probe every enabled platform",
        "Validate the configuration, open the store, then send one short request to every "
        "enabled platform and print a table; exit status 1 when the default model's "
        "platform or the store fails, 2 for a configuration error.",
    ),
    "chat": (
        "talk to the models in the terminal",
        "Talk to the models in the terminal through the bot's own conversation path "
        "(history, retries, model choice), without Telegram; /help lists the commands.",
    ),
}
"""Subcommand → (one line for ``classbot --help``, its description for ``classbot <it> --help``)."""


def build_parser() -> argparse.ArgumentParser:
    """The command line: ``classbot [run | check | chat]``, each with its own ``--help``."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        usage="%(prog)s [-h] [COMMAND]",
        description="A Telegram bot for talking to large language models. Settings come "
        "from the environment and .env (see .env.example); with no command, run the bot.",
    )
    commands = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND", prog=PROG)
    for name, (summary, description) in COMMANDS.items():
        commands.add_parser(name, help=summary, description=description)
    return parser


def install_event_loop() -> None:
    """Make uvloop the event loop ``run_polling`` picks up, where uvloop is installed.

    uvloop cut the bot's event-loop lag p99 at 200 concurrent replies from ~250 ms to
    ~40 ms in bench/streaming.py; asyncio's own loop is the fallback (Windows).
    """
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop(uvloop.new_event_loop())


def _run(settings: Settings) -> int:
    from bot.app.platforms import build_catalogue, check_default_model
    from bot.app.wiring import ALLOWED_UPDATES, build_application

    check_default_model(settings, build_catalogue(settings))  # fail before any network call
    install_event_loop()
    if settings.webhook_url:
        from bot.app.webhook import serve_webhook

        loop = asyncio.get_event_loop()
        try:
            loop.run_until_complete(serve_webhook(settings))
        finally:
            loop.close()
        return 0
    from bot.app.polling import run_polling

    run_polling(
        build_application(settings),
        grace=settings.shutdown_grace_seconds,
        allowed_updates=ALLOWED_UPDATES,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, load the settings, run the chosen command; returns the exit status.

    Exit status 2 with one line on stderr when the configuration is missing or invalid;
    ``--help`` prints the usage and exits 0 (``SystemExit``), as argparse does.
    """
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        from bot.app.logs import setup_logging

        setup_logging(settings)
        if args.command == "check":
            from bot.ops.check import run_check

            return run_check(settings)
        if args.command == "chat":
            from bot.ops.chat import run_chat

            return run_chat(settings)
        return _run(settings)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except StorageUnavailable as exc:
        print(f"storage error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
