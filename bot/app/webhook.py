"""Webhook mode: Telegram POSTs each update to a starlette app that uvicorn serves.

Wire facts: Bot API ``setWebhook`` (HTTPS URL; ``secret_token``, 1-256 characters,
sent back in the ``X-Telegram-Bot-Api-Secret-Token`` header of every request; a non-2xx
answer makes Telegram deliver the update again later) and telegram.md "PTB
architecture notes" (an Application without an Updater; ``Update.de_json`` onto
``application.update_queue``; ``post_init`` is not called by PTB when the Application
is driven by hand, so it is called here).

One process: the send scheduler's budgets (Telegram's per-chat, per-group and global
limits) are counted in this process, so several replicas behind one bot token would
each spend the whole budget.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import signal
import threading
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from telegram import Update

from bot.app.wiring import ALLOWED_UPDATES, BotApplication, build_application, started
from bot.settings import Settings

__all__ = ["SECRET_HEADER", "running_webhook_bot", "serve_webhook", "webhook_app"]

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def webhook_app(application: BotApplication, *, secret: str, path: str) -> Starlette:
    """The ASGI app: ``POST path`` takes one update, ``GET /healthz`` answers ``ok``.

    A request without the right secret header gets 403 and is dropped; a body that is
    not an update gets 400 (logged; Telegram does not resend a 4xx); an update is put
    on the Application's queue and answered 200 at once (the turn runs after).
    """

    async def receive(request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not secrets.compare_digest(given.encode(), secret.encode()):
            log.warning("webhook request without the right secret token from %s",
                        request.client.host if request.client else "?")
            return Response(status_code=403)
        try:
            update = Update.de_json(await request.json(), application.bot)
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError, KeyError, ValueError,
                AttributeError) as exc:  # not JSON, not an object, not an Update
            log.warning("webhook body is not an update: %s", type(exc).__name__)
            return Response(status_code=400)
        await application.update_queue.put(update)
        return Response(status_code=200)

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(routes=[
        Route(path, receive, methods=["POST"]),
        Route("/healthz", health, methods=["GET"]),
    ])


@contextlib.asynccontextmanager
async def running_webhook_bot(settings: Settings) -> AsyncIterator[Starlette]:
    """Start the Application without polling, register the webhook; yield the ASGI app.

    On exit the Application stops (the webhook stays registered, so Telegram keeps the
    updates that arrive meanwhile and delivers them to the next start). Raises
    ``ValueError`` when ``settings.webhook_url`` is empty.
    """
    if not settings.webhook_url:
        raise ValueError("webhook mode needs WEBHOOK_URL")
    secret = settings.webhook_secret.get_secret_value()
    async with started(build_application(settings, polling=False)) as app:
        await app.bot.set_webhook(settings.webhook_url, secret_token=secret,
                                  allowed_updates=ALLOWED_UPDATES)
        yield webhook_app(app, secret=secret, path=urlsplit(settings.webhook_url).path or "/")


async def serve_webhook(settings: Settings) -> None:
    """Run the bot in webhook mode until SIGINT/SIGTERM (uvicorn on
    ``WEBHOOK_LISTEN:WEBHOOK_PORT``; put TLS in front, e.g. a reverse proxy).

    On a signal uvicorn stops serving, restores the handlers it found and raises the
    signal again (uvicorn ``Server.capture_signals``). With the default handlers that
    second signal would kill the process before the Application stops (replies
    unfinished, the store not closed), so this installs handlers that only log while
    it serves.
    """
    async with running_webhook_bot(settings) as asgi:
        config = uvicorn.Config(asgi, host=settings.webhook_listen, port=settings.webhook_port,
                                log_level="warning", lifespan="off")
        log.info("webhook mode: listening on %s:%d", settings.webhook_listen,
                 settings.webhook_port)
        with _signals_stop_gracefully():
            await uvicorn.Server(config).serve()


@contextlib.contextmanager
def _signals_stop_gracefully() -> Iterator[None]:
    """While the block runs, SIGINT/SIGTERM are only logged (uvicorn handles them first)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stopping(signum: int, frame: object) -> None:
        log.info("%s: stopping", signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, stopping) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
