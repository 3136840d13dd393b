"""Polling mode: the Updater long-polls ``getUpdates`` until SIGTERM or SIGINT, then the
bot stops as :mod:`bot.app.shutdown` says (replies in flight get the grace, the rest
are ended and stored, updates not begun are kept for the next start).

PTB's ``Application.run_polling`` would stop on the same signals, but its
``Application.stop`` waits for every update in progress with no bound, so a long reply
outlived Docker's stop timeout and the SIGKILL lost it whole.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from bot.app.shutdown import StopSignals, processor_of, wind_down
from bot.app.wiring import BotApplication, started

__all__ = ["run_polling", "serve_polling"]


async def serve_polling(
    app: BotApplication, *, grace: float, allowed_updates: Sequence[str]
) -> None:
    """Run ``app`` (built by :func:`bot.app.wiring.build_application`) with long polling
    until SIGTERM or SIGINT; ``grace`` is ``SHUTDOWN_GRACE_SECONDS``.

    ``app`` is initialized, started, stopped and shut down here (:func:`started`). A
    signal during the start stops the bot as soon as it has started.
    """
    with StopSignals() as signals:
        async with started(app):
            assert app.updater is not None
            await app.updater.start_polling(allowed_updates=list(allowed_updates))
            await signals.stop.wait()
            processor_of(app).close()  # nothing begins while the Updater stops
            await app.updater.stop()
            await wind_down(app, grace=grace, hurry=signals.hurry)


def run_polling(app: BotApplication, *, grace: float, allowed_updates: Sequence[str]) -> None:
    """:func:`serve_polling` on the current event loop, which is closed after."""
    loop = asyncio.get_event_loop()
    try:
        loop.run_until_complete(serve_polling(app, grace=grace, allowed_updates=allowed_updates))
    finally:
        loop.close()
