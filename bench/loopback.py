"""Running things on loopback: an ASGI app under uvicorn, and the real bot polling a fake.

Shared by the e2e tests (``tests/e2e/conftest.py``) and the benchmark
(:mod:`bench.fakes`, :mod:`bench.driver`); needs only the package's own dependencies
(uvicorn, starlette, httpx, python-telegram-bot), not the test tools.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import uvicorn
from starlette.types import ASGIApp

from bot.app.wiring import BotApplication, build_application, started
from bot.settings import Settings

__all__ = ["POLL_TIMEOUT", "TOKEN", "running_bot", "serve", "serve_all"]

TOKEN = "123456:TEST-token-never-logged"
"""The bot token the fakes are called with (Bot API form ``<bot id>:<secret>``); not real."""

POLL_TIMEOUT = 1
"""Seconds of ``getUpdates`` long polling (the Bot API's ``timeout`` parameter)."""

STARTUP_POLLS = 500  # 10 ms apart: uvicorn gets 5 s to start listening
SHUTDOWN_TIMEOUT = 5.0  # seconds uvicorn gets to finish the requests in flight


@contextlib.asynccontextmanager
async def serve(app: ASGIApp) -> AsyncIterator[int]:
    """Serve ``app`` on a free loopback port for the duration of the block; yields the port.

    Errors as :func:`serve_all`.
    """
    async with serve_all(app) as (port,):
        yield port


@contextlib.asynccontextmanager
async def serve_all(*apps: ASGIApp) -> AsyncIterator[tuple[int, ...]]:
    """Serve each of ``apps`` on its own free loopback port; yields the ports, in order.

    The servers stop together at the end of the block (uvicorn's shutdown takes about
    0.2 s however idle the server is: up to one 0.1 s tick to notice, then a fixed 0.1 s
    for connections to close). Raises ``AssertionError`` when a server is not listening
    within 5 s, and ``TimeoutError`` when the shutdown (waiting for the requests in
    flight) takes over 5 s.
    """
    servers = [
        uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        )
        for app in apps
    ]
    tasks = [asyncio.create_task(server.serve()) for server in servers]
    try:
        for _ in range(STARTUP_POLLS):
            if all(server.started for server in servers) or any(t.done() for t in tasks):
                break
            await asyncio.sleep(0.01)
        assert all(server.started for server in servers), "uvicorn did not start"
        yield tuple(int(server.servers[0].sockets[0].getsockname()[1]) for server in servers)
    finally:
        for server in servers:
            server.should_exit = True
        await asyncio.wait_for(asyncio.gather(*tasks), SHUTDOWN_TIMEOUT)


@contextlib.asynccontextmanager
async def running_bot(
    settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
) -> AsyncIterator[BotApplication]:
    """Run the real Application with polling, as ``python -m bot`` does, until the block ends.

    Polls ``settings.telegram_base_url`` every time the last poll returns, each a
    :data:`POLL_TIMEOUT`-second long poll. ``transport``, when given, is every provider
    client's network (see :func:`bot.app.wiring.build_application`).
    """
    async with started(build_application(settings, transport=transport)) as app:
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0.0, timeout=POLL_TIMEOUT)
        try:
            yield app
        finally:
            await app.updater.stop()
