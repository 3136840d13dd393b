"""The bot side of a benchmark run: the real Application, driven against the fake servers.

Runs in its own process (spawned fresh per scenario), so the CPU time, the event-loop
lag and the peak RSS measured here are the bot's alone — the fake servers live in
another process (:mod:`bench.fakes`). The Application is run as the e2e tests run
it (:func:`bench.loopback.running_bot`: initialize, post_init, polling, start),
with the default streaming settings (drafts in private chats every 0.5 s, edits
every 1 s / 3 s, limits 1/s per chat, 20/min per group, 24/s global, see
:class:`bot.scheduler.limits.Limits`) and the embedded store (``memory://``) unless a
Redis URL is given. Provider streams go through the client's default network
(aiohttp), or httpx's own with ``network="httpcore"``.

One extra observer is added: a handler in group 99 that runs after the message
handler finished a turn — so the driver knows when every reply's final text went out.

The answers' format (:data:`FORMATS`): ``classic`` leaves every format setting unset
(answers are classic by default); ``rich`` stores, before the first message arrives,
each user's choice of rich messages and each group's default
(:class:`bot.conversation.formats.Formats`, the settings a user's and an admin's
``/settings`` menus write), so every answer goes out as rich messages.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from telegram import Update
from telegram.ext import TypeHandler

from bench.fakes import Arrival
from bench.loopback import TOKEN, running_bot
from bot.__main__ import install_event_loop
from bot.conversation.formats import Formats, ReplyFormat
from bot.settings import Settings
from handlers.context import BotContext
from providers.http import stream_limits
from storage import ConversationStore

__all__ = [
    "FORMATS",
    "NETWORKS",
    "LagProbe",
    "bot_settings",
    "choose_format",
    "peak_rss_kib",
    "run_bot",
]

LAG_TICK = 0.010  # seconds the lag probe sleeps between samples


class LagProbe:
    """Samples event-loop lag: how late a ``LAG_TICK``-second sleep wakes up (seconds)."""

    def __init__(self) -> None:
        """Create a probe with no samples."""
        self.samples: list[float] = []

    async def run(self) -> None:
        """Sleep ``LAG_TICK`` s again and again, recording each overshoot, until cancelled."""
        while True:
            before = time.perf_counter()
            await asyncio.sleep(LAG_TICK)
            self.samples.append(time.perf_counter() - before - LAG_TICK)


def peak_rss_kib() -> int:
    """Return this process's peak resident set size in KiB.

    Linux: ``VmHWM`` of ``/proc/self/status`` — the peak of this address space only.
    (``ru_maxrss`` is not used there: Linux carries the parent's peak over ``fork`` +
    ``exec``, so a spawned child would report the orchestrator's memory.) Elsewhere:
    ``ru_maxrss`` (KiB on Linux, bytes on macOS — converted).
    """
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def bot_settings(ports: dict[str, int], *, redis_url: str) -> Settings:
    """Settings pointing the bot at the fakes; every streaming setting keeps its default."""
    return Settings(
        telegram_bot_token=SecretStr(TOKEN),
        telegram_base_url=f"http://127.0.0.1:{ports['telegram']}/bot",
        telegram_base_file_url=f"http://127.0.0.1:{ports['telegram']}/file/bot",
        redis_url=redis_url,
        openai_name="local",
        openai_base_url=f"http://127.0.0.1:{ports['provider']}/v1",
        openai_api_key=SecretStr("sk-bench-key-abcdefghijklmnop"),
        openai_models=["model-a"],
        default_model="local:model-a",
        log_level="WARNING",
        _env_file=None,  # type: ignore[call-arg]
    )


NETWORKS = ("aiohttp", "httpcore")
"""The provider client's network: its default (aiohttp via httpx-aiohttp) or httpx's own."""
FORMATS = ("classic", "rich")
"""The answers' format: classic messages (the default of every user) or rich messages."""


async def choose_format(store: ConversationStore, arrivals: list[Arrival], name: str) -> None:
    """Make every answer to ``arrivals`` go out in format ``name`` (one of :data:`FORMATS`):
    for ``rich``, store each user's choice and each group's default; for ``classic``,
    nothing (classic is the default). Raises ``ValueError`` for another name, Redis
    errors as the store raises them."""
    if name not in FORMATS:
        raise ValueError(f"unknown format {name!r}")
    if name == "classic":
        return
    formats = Formats(store)
    for user_id in sorted({a.user_id for a in arrivals}):
        await formats.set_user_format(user_id, ReplyFormat.RICH)
    for chat_id in sorted({a.chat_id for a in arrivals if a.chat_id < 0}):
        await formats.set_chat_format(chat_id, ReplyFormat.RICH)


def run_bot(
    ports: dict[str, int],
    arrivals: list[Arrival],
    *,
    redis_url: str,
    timeout: float,
    network: str = "aiohttp",
    reply_format: str = "classic",
) -> dict[str, Any]:
    """Process entry point: run the bot until every arrival was answered; return measurements.

    Returns ``cpu_s`` (process CPU time from the plan's start to the last reply's
    end), ``wall_s``, ``lag_s`` (probe samples), ``peak_rss_kib`` (:func:`peak_rss_kib`),
    ``answered`` (turns finished), ``timed_out`` (not all finished within ``timeout``
    seconds) and the scheduler's counters. ``network`` is one of :data:`NETWORKS`,
    ``reply_format`` one of :data:`FORMATS` (:func:`choose_format`); raises
    ``ValueError`` for another.
    """
    if network not in NETWORKS:
        raise ValueError(f"unknown network {network!r}")
    if reply_format not in FORMATS:
        raise ValueError(f"unknown format {reply_format!r}")
    os.environ.setdefault("PTB_TIMEDELTA", "true")  # RetryAfter.retry_after as a timedelta
    logging.basicConfig(level=logging.WARNING, format="bot: %(levelname)s %(name)s %(message)s")
    install_event_loop()  # the loop `python -m bot` runs on (uvloop where installed)
    loop = asyncio.get_event_loop()
    try:
        return loop.run_until_complete(
            _drive(
                ports,
                arrivals,
                redis_url=redis_url,
                within=timeout,
                network=network,
                reply_format=reply_format,
            )
        )
    finally:
        loop.close()


async def _drive(
    ports: dict[str, int],
    arrivals: list[Arrival],
    *,
    redis_url: str,
    within: float,
    network: str,
    reply_format: str,
) -> dict[str, Any]:
    answered = 0
    all_done = asyncio.Event()

    async def count_answered(update: object, context: BotContext) -> None:
        nonlocal answered
        answered += 1
        if answered >= len(arrivals):
            all_done.set()

    probe = LagProbe()
    transport = httpx.AsyncHTTPTransport(limits=stream_limits()) if network == "httpcore" else None
    async with running_bot(bot_settings(ports, redis_url=redis_url), transport=transport) as app:
        app.add_handler(TypeHandler(Update, count_answered), group=99)
        await choose_format(app.bot_data.services.store, arrivals, reply_format)
        probe_task = asyncio.create_task(probe.run())
        cpu, wall = time.process_time(), time.monotonic()
        async with httpx.AsyncClient() as control:
            response = await control.post(
                f"http://127.0.0.1:{ports['control']}/start",
                json={"arrivals": [asdict(a) for a in arrivals]},
            )
            response.raise_for_status()
        timed_out = False
        try:
            await asyncio.wait_for(all_done.wait(), within)
        except TimeoutError:
            timed_out = True
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        probe_task.cancel()
        stats = app.bot_data.services.replies.scheduler.stats
        counters = {
            name: getattr(stats, name)
            for name in (
                "sends",
                "superseded",
                "duplicates",
                "retries",
                "dropped",
                "errors",
                "streams_failed",
            )
        }
    peak = peak_rss_kib()
    return {
        "cpu_s": cpu,
        "wall_s": wall,
        "lag_s": probe.samples,
        "peak_rss_kib": peak,
        "answered": answered,
        "timed_out": timed_out,
        "scheduler": counters,
    }
