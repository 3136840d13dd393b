"""``python -m bot``: run the bot (long polling, or a webhook server when ``WEBHOOK_URL`` is
set); ``check`` and ``chat`` for operators."""

from __future__ import annotations

import argparse
import asyncio
import sys

from bot.settings import ConfigError, Settings, load_settings
from storage import StorageUnavailable

__all__ = ["main"]


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
    app = build_application(settings)
    app.run_polling(allowed_updates=ALLOWED_UPDATES)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, load the settings, run the chosen command; returns the exit status.

    Exit status 2 with one line on stderr when the configuration is missing or invalid.
    """
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    parser.add_argument("command", nargs="?", default="run", choices=["run", "check", "chat"])
    args = parser.parse_args(argv)
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
