"""Health and metrics over HTTP: ``/healthz``, ``/readyz`` and ``/metrics``.

* ``GET /healthz``: ``200 ok`` while the process serves HTTP at all (liveness).
* ``GET /readyz``: ``200 ready`` when Redis answers ``PING`` within
  :data:`REDIS_PING_TIMEOUT` seconds and a Bot API call got HTTP 200 within the last
  :data:`TELEGRAM_FRESH_SECONDS` seconds; otherwise ``503`` with one line naming what
  failed (an exception's class, never its text, so no host or secret shows). In polling
  mode ``getUpdates`` succeeds at least once per long poll, so a stale answer means
  polling is stuck; in webhook mode an idle bot calls nothing, so a stale answer is
  refreshed by one ``getMe`` (timeout :data:`TELEGRAM_PROBE_TIMEOUT`), at most one at
  a time.
* ``GET /metrics``: the Application's registry (:class:`bot.app.metrics.Telemetry`) in
  the Prometheus text format (prometheus-client ``generate_latest``).

Webhook mode serves these routes on the webhook server (:func:`health_routes`, mounted
by :func:`bot.app.webhook.webhook_app`). Polling mode serves them on a small uvicorn
server of their own (:class:`HealthServer`) when ``METRICS_PORT`` is not 0, on
``METRICS_HOST`` (default 127.0.0.1: loopback only), started in ``post_init`` and
stopped in ``post_shutdown`` (:func:`start_health_server`, :func:`stop_health_server`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import redis.asyncio
import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from telegram.error import TelegramError
from telegram.ext import Application

from bot.app.metrics import Telemetry, app_data
from bot.settings import ConfigError, Settings

__all__ = [
    "REDIS_PING_TIMEOUT",
    "TELEGRAM_FRESH_SECONDS",
    "TELEGRAM_PROBE_TIMEOUT",
    "HealthServer",
    "Readiness",
    "health_app",
    "health_routes",
    "readiness_of",
    "start_health_server",
    "stop_health_server",
]

log = logging.getLogger(__name__)

AnyApplication = Application[Any, Any, Any, Any, Any, Any]

TELEGRAM_FRESH_SECONDS = 30.0
"""A Bot API call must have got HTTP 200 this recently: twice the long poll's 10 s
(PTB ``Application.run_polling`` ``timeout`` default) plus 10 s for the call itself."""
REDIS_PING_TIMEOUT = 1.0
"""Seconds Redis gets to answer ``PING``."""
TELEGRAM_PROBE_TIMEOUT = 2.0
"""Seconds (connect, write, read and pool each) the webhook-mode ``getMe`` gets."""
SHUTDOWN_TIMEOUT = 5.0
"""Seconds the polling-mode server gets to finish the requests in flight."""
STARTUP_TIMEOUT = 5.0
"""Seconds the polling-mode server gets to start serving."""


class Readiness:
    """Decides ``/readyz`` (module docstring) from ``telemetry``'s last successful Bot API
    call and a ``PING`` to the client ``redis_of()`` returns.

    ``redis_of`` raises ``RuntimeError`` while the store is not open yet (the Application
    is starting); ``probe``, when given (webhook mode), is called (at most one call at a
    time) when the last successful Bot API call is stale and should make one (``getMe``),
    raising ``TelegramError`` when it fails; without it a stale call fails readiness.
    """

    def __init__(
        self,
        telemetry: Telemetry,
        *,
        redis_of: Callable[[], redis.asyncio.Redis],
        probe: Callable[[], Awaitable[object]] | None = None,
        fresh_seconds: float = TELEGRAM_FRESH_SECONDS,
        ping_timeout: float = REDIS_PING_TIMEOUT,
    ) -> None:
        self._telemetry = telemetry
        self._redis_of = redis_of
        self._probe = probe
        self.fresh_seconds = fresh_seconds
        self.ping_timeout = ping_timeout
        self._probing = asyncio.Lock()

    async def problem(self) -> str | None:
        """``None`` when ready, else one line saying why not (Redis, then Telegram)."""
        problems = [p for p in (await self._redis(), await self._telegram()) if p]
        return "; ".join(problems) or None

    async def _redis(self) -> str | None:
        try:
            client = self._redis_of()
        except RuntimeError:
            return "starting: the store is not open yet"
        try:
            async with asyncio.timeout(self.ping_timeout):
                await client.ping()
        except TimeoutError:
            return f"redis: no answer to PING within {self.ping_timeout:g} s"
        except (RedisError, OSError) as exc:
            return f"redis: PING failed ({type(exc).__name__})"
        return None

    def _stale(self) -> str | None:
        age = self._telemetry.telegram_age()
        if age is None:
            return "telegram: no successful Bot API call yet"
        if age > self.fresh_seconds:
            return f"telegram: no successful Bot API call for {age:.0f} s"
        return None

    async def _telegram(self) -> str | None:
        stale = self._stale()
        if stale is None or self._probe is None:
            return stale
        async with self._probing:
            if self._stale() is None:  # the probe of a concurrent request succeeded
                return None
            try:
                await self._probe()
            except TelegramError as exc:
                return f"telegram: getMe failed ({type(exc).__name__})"
        return self._stale()


def readiness_of(app: AnyApplication) -> Readiness:
    """The :class:`Readiness` of ``app`` (built by :func:`bot.app.wiring.build_application`;
    ``TypeError`` for another): its store's Redis client, and ``getMe`` probes (timeout
    :data:`TELEGRAM_PROBE_TIMEOUT`) when it has no Updater (webhook mode)."""
    data = app_data(app)

    def redis_of() -> redis.asyncio.Redis:
        return data.services.store.redis

    async def get_me() -> object:
        seconds = TELEGRAM_PROBE_TIMEOUT
        return await app.bot.get_me(
            read_timeout=seconds,
            write_timeout=seconds,
            connect_timeout=seconds,
            pool_timeout=seconds,
        )

    return Readiness(
        data.telemetry, redis_of=redis_of, probe=get_me if app.updater is None else None
    )


def health_routes(app: AnyApplication) -> list[Route]:
    """``GET /healthz``, ``/readyz`` and ``/metrics`` for ``app`` (an Application built by
    :func:`bot.app.wiring.build_application`; ``TypeError`` for another). ``getMe``
    probes are on when ``app`` has no Updater (webhook mode)."""
    telemetry = app_data(app).telemetry
    readiness = readiness_of(app)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(request: Request) -> Response:
        problem = await readiness.problem()
        if problem is None:
            return PlainTextResponse("ready")
        return PlainTextResponse(problem, status_code=503)

    async def metrics(request: Request) -> Response:
        return Response(
            generate_latest(telemetry.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]


def health_app(app: AnyApplication) -> Starlette:
    """An ASGI app serving only :func:`health_routes` (the polling-mode server)."""
    return Starlette(routes=health_routes(app))


class _Server(uvicorn.Server):
    """uvicorn's server without its own signal handling.

    ``uvicorn.Server.serve`` replaces the SIGINT/SIGTERM handlers while it runs (uvicorn
    ``Server.capture_signals``), which would take the stop signals from PTB's
    ``run_polling``; this server is stopped by the Application instead.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Leave the signal handlers alone."""
        yield


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (IPv4 or IPv6, as ``host`` resolves).

    Raises :class:`ConfigError` when it cannot be bound (port in use, unknown host).
    """
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        raise ConfigError(
            f"METRICS_PORT {port} on METRICS_HOST {host} cannot be used: {exc.strerror or exc}"
        ) from None


class HealthServer:
    """:func:`health_app` served by uvicorn on a socket bound here (so a port in use is a
    :class:`ConfigError`, not uvicorn's ``sys.exit``). Use :meth:`start` and :meth:`aclose`.
    """

    def __init__(self, server: uvicorn.Server, task: asyncio.Task[None], port: int) -> None:
        self._server = server
        self._task = task
        self.port = port
        """The port it listens on."""

    @classmethod
    async def start(cls, app: AnyApplication, *, host: str, port: int) -> HealthServer:
        """Listen on ``host:port`` and serve until :meth:`aclose`.

        Raises :class:`ConfigError` when the address cannot be bound, ``RuntimeError``
        when uvicorn is not serving within :data:`STARTUP_TIMEOUT` seconds.
        """
        sock = _listen(host, port)
        config = uvicorn.Config(
            health_app(app),
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        server = _Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]), name="health-server")
        try:
            async with asyncio.timeout(STARTUP_TIMEOUT):
                while not server.started and not task.done():  # noqa: ASYNC110 (a flag)
                    await asyncio.sleep(0.01)
        except TimeoutError:
            pass
        if not server.started:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            sock.close()
            raise RuntimeError(f"the health server on {host}:{port} did not start")
        bound = int(sock.getsockname()[1])
        log.info("health and metrics: http://%s:%d/metrics, /healthz, /readyz", host, bound)
        return cls(server, task, bound)

    async def aclose(self) -> None:
        """Stop serving; waits up to :data:`SHUTDOWN_TIMEOUT` s for requests in flight."""
        self._server.should_exit = True
        try:
            await asyncio.wait_for(self._task, SHUTDOWN_TIMEOUT)
        except TimeoutError:
            log.warning("the health server did not stop within %g s", SHUTDOWN_TIMEOUT)


async def start_health_server(app: AnyApplication, settings: Settings) -> None:
    """In polling mode with ``METRICS_PORT`` set, start ``app``'s :class:`HealthServer`.

    Nothing in webhook mode (no Updater: the webhook server serves the routes) or when
    ``METRICS_PORT`` is 0. Raises as :meth:`HealthServer.start`.
    """
    data = app_data(app)
    if app.updater is None or not settings.metrics_port or data.health_server is not None:
        return
    data.health_server = await HealthServer.start(
        app, host=settings.metrics_host, port=settings.metrics_port
    )


async def stop_health_server(app: AnyApplication) -> None:
    """Stop ``app``'s :class:`HealthServer`, if it runs."""
    data = app_data(app)
    server, data.health_server = data.health_server, None
    if server is not None:
        await server.aclose()
