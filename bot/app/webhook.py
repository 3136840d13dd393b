"""Webhook mode: Telegram POSTs each update to a starlette app that uvicorn serves.

Wire facts: Bot API ``setWebhook`` (HTTPS URL; ``secret_token``, 1-256 characters,
sent back in the ``X-Telegram-Bot-Api-Secret-Token`` header of every request; a non-2xx
answer makes Telegram deliver the update again later) and docs/telegram.md "PTB
architecture notes" (an Application without an Updater; ``Update.de_json`` onto
``application.update_queue``; ``post_init`` is not called by PTB when the Application
is driven by hand, so it is called here).

One process: the send scheduler's budgets (Telegram's per-chat, per-group and global
limits) are counted in this process, so several replicas behind one bot token would
each spend the whole budget.

What a request can cost is bounded: a body over :data:`MAX_BODY_BYTES` is refused with
413 (by its ``Content-Length``, or while a chunked body streams in), a body not complete
within :data:`BODY_TIMEOUT_SECONDS` gets 408 and the connection closed, JSON nested
deeper than :data:`MAX_JSON_DEPTH` (or too deep for ``json.loads``, which raises
``RecursionError``) is a 400. An update PTB cannot parse is answered 200 and logged once
(:mod:`bot.app.updates`). uvicorn's loggers write through the root logger's handlers,
which :func:`bot.app.logs.setup_logging` gives the secret redaction. uvicorn has no
timeout for a client that trickles its request *headers*; the reverse proxy that
terminates TLS in front of it bounds those.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import signal
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from bot.app.health import health_routes
from bot.app.shutdown import StopSignals, wind_down
from bot.app.updates import PoisonLog, parse_update, update_id_of
from bot.app.wiring import ALLOWED_UPDATES, BotApplication, build_application, started
from bot.settings import Settings

__all__ = [
    "BODY_TIMEOUT_SECONDS",
    "MAX_BODY_BYTES",
    "MAX_JSON_DEPTH",
    "SECRET_HEADER",
    "SHUTDOWN_REQUESTS_SECONDS",
    "UVICORN_LOGGERS",
    "running_webhook_bot",
    "serve_webhook",
    "server_config",
    "webhook_app",
]

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_BODY_BYTES = 1024 * 1024
"""A larger request body gets 413 (an update is a few KB; Telegram caps a text at 4096
characters)."""
BODY_TIMEOUT_SECONDS = 10.0
"""The whole body must arrive within this many seconds of the headers, else 408."""
MAX_JSON_DEPTH = 64
"""Deeper-nested JSON gets 400 (a real update nests about ten levels)."""
SHUTDOWN_REQUESTS_SECONDS = 2
"""Seconds uvicorn's shutdown waits for the requests in flight (an update is a few KB)."""
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
"""The loggers uvicorn writes to (uvicorn ``config.LOGGING_CONFIG`` and ``configure_logging``)."""


class _Refused(Exception):
    """The request is answered ``status`` without reaching the bot."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


async def _read_body(request: Request, *, limit: int, within: float) -> bytes:
    """The request body, at most ``limit`` bytes, all of it within ``within`` seconds.

    Raises :class:`_Refused` (413 too large, 408 too slow, 400 when the client went away).
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdecimal() and int(declared) > limit:
        raise _Refused(413, f"Content-Length {declared}")
    body = bytearray()
    try:
        async with asyncio.timeout(within):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise _Refused(413, f"body over {limit} bytes")
    except TimeoutError:
        raise _Refused(408, f"body not complete within {within:g} s") from None
    except ClientDisconnect:
        raise _Refused(400, "client disconnected mid-body") from None
    return bytes(body)


def _json_depth(value: object) -> int:
    """How deeply ``value`` (parsed JSON) nests: 0 for a scalar, 1 for ``[]`` or ``{}``."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def _decode_update(body: bytes) -> dict[str, Any]:
    """The body as a raw update: a JSON object with an integer ``update_id``.

    Raises :class:`_Refused` (400) for anything else: not JSON (or not UTF-8/16/32),
    nested deeper than :data:`MAX_JSON_DEPTH`, not an object, no integer ``update_id``.
    """
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError are too
        raise _Refused(400, f"not JSON ({type(exc).__name__})") from None
    if _json_depth(data) > MAX_JSON_DEPTH:
        raise _Refused(400, f"JSON nested deeper than {MAX_JSON_DEPTH}")
    if not isinstance(data, dict) or update_id_of(data) is None:
        raise _Refused(400, "not an object with an integer update_id")
    return data


def webhook_app(
    application: BotApplication,
    *,
    secret: str,
    path: str,
    body_timeout: float = BODY_TIMEOUT_SECONDS,
    poison: PoisonLog | None = None,
) -> Starlette:
    """The ASGI app: ``POST path`` takes one update; ``GET /healthz``, ``/readyz`` and
    ``/metrics`` are :func:`bot.app.health.health_routes`.

    A request without the right secret header gets 403 and is dropped (its body unread);
    a body over :data:`MAX_BODY_BYTES` gets 413 and one not complete within
    ``body_timeout`` seconds 408, both with ``Connection: close``; a body that is not an
    update (not JSON, too deep, not an object with an integer ``update_id``) gets 400
    (logged; Telegram does not resend a 4xx). An update is put on the Application's queue
    and answered 200 at once (the turn runs after); one PTB cannot parse is answered 200
    too, so Telegram does not deliver it again, and logged once to ``poison``.
    """
    skipped = poison or PoisonLog()

    async def receive(request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not secrets.compare_digest(given.encode(), secret.encode()):
            log.warning(
                "webhook request without the right secret token from %s",
                request.client.host if request.client else "?",
            )
            return Response(status_code=403)
        try:
            data = _decode_update(
                await _read_body(request, limit=MAX_BODY_BYTES, within=body_timeout)
            )
        except _Refused as refused:
            log.warning("webhook body refused with %d: %s", refused.status, refused.reason)
            headers = {"Connection": "close"} if refused.status in (408, 413) else None
            return Response(status_code=refused.status, headers=headers)
        update = parse_update(data, application.bot, skipped)
        if update is not None:
            await application.update_queue.put(update)
        return Response(status_code=200)

    return Starlette(routes=[Route(path, receive, methods=["POST"]), *health_routes(application)])


def server_config(asgi: Starlette, *, host: str, port: int) -> uvicorn.Config:
    """uvicorn's configuration for the webhook, logging through the root logger.

    ``log_config=None`` keeps uvicorn from installing its own handlers (uvicorn
    ``Config.configure_logging``), and handlers a previous uvicorn configuration left on
    its loggers in this process are removed, so uvicorn's lines (``uvicorn.error``;
    ``uvicorn.access``, quiet below WARNING) reach the root handlers and their secret
    redaction: a URL path holding the bot token or the webhook secret is logged as ``***``
    (uvicorn writes the path percent-encoded, the token's ``:`` as ``%3A``; the redaction
    knows that form too).
    """
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    return uvicorn.Config(
        asgi,
        host=host,
        port=port,
        log_config=None,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=SHUTDOWN_REQUESTS_SECONDS,
    )


@contextlib.asynccontextmanager
async def running_webhook_bot(settings: Settings) -> AsyncIterator[Starlette]:
    """Start the Application without polling, register the webhook; yield the ASGI app.

    On exit the Application stops (the webhook stays registered, so Telegram keeps the
    updates that arrive meanwhile and delivers them to the next start). The ASGI app's
    ``state.application`` is the Application. Raises ``ValueError`` when
    ``settings.webhook_url`` is empty.
    """
    if not settings.webhook_url:
        raise ValueError("webhook mode needs WEBHOOK_URL")
    secret = settings.webhook_secret.get_secret_value()
    async with started(build_application(settings, polling=False)) as app:
        await app.bot.set_webhook(
            settings.webhook_url, secret_token=secret, allowed_updates=ALLOWED_UPDATES
        )
        asgi = webhook_app(app, secret=secret, path=urlsplit(settings.webhook_url).path or "/")
        asgi.state.application = app
        yield asgi


async def serve_webhook(settings: Settings) -> None:
    """Run the bot in webhook mode until SIGINT/SIGTERM (uvicorn on
    ``WEBHOOK_LISTEN:WEBHOOK_PORT``; put TLS in front, e.g. a reverse proxy).

    On a signal uvicorn stops accepting connections, finishes the requests in flight
    (each update is queued before its 200) and returns; then the bot stops as
    :func:`bot.app.shutdown.wind_down` says: the replies in flight get
    ``SHUTDOWN_GRACE_SECONDS``, the rest are ended and stored, and the updates queued
    and not begun are saved for the next start (Telegram would not deliver them again).
    Updates Telegram sends meanwhile find no server and are delivered again later.

    uvicorn restores the signal handlers it found and raises the signal again
    (uvicorn ``Server.capture_signals``); with the default handlers that would kill the
    process before the bot stops, so while it serves this installs handlers that only
    log, and after, a further SIGINT/SIGTERM ends the replies in flight at once.
    """
    signals = StopSignals()
    async with running_webhook_bot(settings) as asgi:
        config = server_config(asgi, host=settings.webhook_listen, port=settings.webhook_port)
        log.info("webhook mode: listening on %s:%d", settings.webhook_listen, settings.webhook_port)
        with _signals_stop_gracefully(signals):
            await uvicorn.Server(config).serve()
            signals.stop.set()  # uvicorn took the first signal; a next one hurries
            await wind_down(
                asgi.state.application,
                grace=settings.shutdown_grace_seconds,
                hurry=signals.hurry,
            )


@contextlib.contextmanager
def _signals_stop_gracefully(signals: StopSignals) -> Iterator[None]:
    """While the block runs, SIGINT/SIGTERM are logged (uvicorn handles them first while
    it serves), and told to ``signals`` once its ``stop`` is set."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()

    def stopping(signum: int, frame: object) -> None:
        if signals.stop.is_set():
            loop.call_soon_threadsafe(signals.received, signum)
        else:
            log.info("%s: stopping", signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, stopping) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
