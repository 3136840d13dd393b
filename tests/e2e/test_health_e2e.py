"""End to end: ``/healthz``, ``/readyz`` and ``/metrics`` in polling mode (a server on
``METRICS_PORT``) and in webhook mode (on the webhook server), against the fake Bot API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench.fake_openai import Answer
from bench.loopback import running_bot
from bot.app.webhook import SECRET_HEADER, running_webhook_bot
from bot.conversation.scope import user_scope
from bot.conversation.turn import scope_digest
from tests.e2e.conftest import World, free_port, replied, serve, settle

pytestmark = pytest.mark.timeout(30)

CHAT = USER = 901
QUESTION = "what is the secret number 4242?"
SECRET = "webhook-Secret_901"
URL = "https://bot.example.test/telegram/hook"
REDIS_PASSWORD = "redis-pass-never-shown"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """The samples of a Prometheus text exposition: (sample name, labels) → value."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The value of sample ``name`` with exactly ``labels``; 0 when absent."""
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape_until(
    client: httpx.AsyncClient, done: Callable[[Samples], bool], within: float = 5.0
) -> Samples:
    """Scrape ``/metrics`` every 20 ms until ``done(samples)``; fails after ``within`` s."""
    deadline = time.monotonic() + within
    while True:
        response = await client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        samples = parse(response.text)
        if done(samples) or time.monotonic() > deadline:
            return samples
        await asyncio.sleep(0.02)


def answered(samples: Samples) -> bool:
    """One turn counted as completed."""
    return value(samples, "classbot_turns_total", model="local:model-a", outcome="completed") >= 1


def webhook_update(update_id: int, text: str) -> dict[str, Any]:
    """A private text message update, as Telegram POSTs it."""
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(time.time()),
            "text": text,
            "chat": {"id": CHAT, "type": "private", "first_name": "H"},
            "from": {"id": USER, "is_bot": False, "first_name": "H", "language_code": "en"},
        },
    }


def turn_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The per-turn INFO lines the conversation logged."""
    return [
        r
        for r in caplog.records
        if r.name == "bot.conversation.turn" and r.getMessage().startswith("turn: ")
    ]


async def test_polling_mode_serves_health_and_metrics(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """With METRICS_PORT set, polling mode serves /healthz, /readyz (200) and /metrics,
    which after one answered message counts the update, a completed turn, the model's
    tokens and the Bot API calls by method; the server is gone once the bot stopped; the
    turn is logged in one INFO line with the hashed scope and no message text."""
    caplog.set_level(logging.INFO, logger="bot.conversation.turn")
    world.openai.script.append(Answer("metrics answer"))
    port = free_port()
    async with (
        running_bot(world.settings(metrics_port=port)),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client,
    ):
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text=QUESTION)
        await settle(lambda: replied(world, CHAT, "metrics answer"))
        samples = await scrape_until(client, answered)
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
    assert (health.status_code, health.text) == (200, "ok")
    assert (ready.status_code, ready.text) == (200, "ready")
    assert value(samples, "classbot_updates_total", type="message") == 1
    assert answered(samples)
    # bench.fake_openai reports usage 10 prompt + 20 completion tokens per answer
    assert value(samples, "classbot_tokens_total", model="local:model-a", kind="prompt") == 10
    assert value(samples, "classbot_tokens_total", model="local:model-a", kind="completion") == 20
    assert value(samples, "classbot_provider_first_token_seconds_count", model="local:model-a") == 1
    assert value(samples, "classbot_provider_stream_seconds_count", model="local:model-a") == 1
    assert (
        value(samples, "classbot_telegram_requests_total", method="sendMessage", status="200") >= 1
    )
    assert (
        value(samples, "classbot_telegram_requests_total", method="getUpdates", status="200") >= 1
    )
    assert value(samples, "classbot_telegram_requests_total", method="getMe", status="200") == 1
    assert value(samples, "classbot_scheduler_sends_total", kind="first") >= 1
    assert value(samples, "classbot_scheduler_rate_per_second", level="chat") == 1.0
    assert 0 <= value(samples, "classbot_telegram_last_success_age_seconds") < 5
    async with httpx.AsyncClient(timeout=2) as after:
        with pytest.raises(httpx.ConnectError):
            await after.get(f"http://127.0.0.1:{port}/healthz")
    (line,) = turn_lines(caplog)
    text = line.getMessage()
    assert line.levelno == logging.INFO
    assert f"scope={scope_digest(user_scope(USER))} " in text
    assert "model=local:model-a outcome=completed tokens=30 seconds=" in text
    assert QUESTION not in text and "4242" not in text and str(USER) not in text
    assert "metrics answer" not in text


async def test_webhook_mode_serves_health_and_metrics_on_the_webhook_server(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """In webhook mode the webhook server answers /healthz, /readyz (200) and /metrics,
    which after one POSTed message counts the update, the completed turn, its tokens and
    the Bot API calls (setWebhook, sendMessage); one turn line, no text."""
    caplog.set_level(logging.INFO, logger="bot.conversation.turn")
    world.openai.script.append(Answer("webhook metrics answer"))
    settings = world.settings(webhook_url=URL, webhook_secret=SECRET)
    async with (
        running_webhook_bot(settings) as asgi,
        serve(asgi) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client,
    ):
        posted = await client.post(
            "/telegram/hook", json=webhook_update(1, QUESTION), headers={SECRET_HEADER: SECRET}
        )
        await settle(lambda: replied(world, CHAT, "webhook metrics answer"))
        samples = await scrape_until(client, answered)
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
    assert posted.status_code == 200
    assert (health.status_code, health.text) == (200, "ok")
    assert (ready.status_code, ready.text) == (200, "ready")
    assert value(samples, "classbot_updates_total", type="message") == 1
    assert answered(samples)
    assert value(samples, "classbot_tokens_total", model="local:model-a", kind="completion") == 20
    assert (
        value(samples, "classbot_telegram_requests_total", method="setWebhook", status="200") == 1
    )
    assert (
        value(samples, "classbot_telegram_requests_total", method="sendMessage", status="200") >= 1
    )
    assert not any(
        name == "classbot_telegram_requests_total" and ("method", "getUpdates") in labels
        for name, labels in samples
    )
    (line,) = turn_lines(caplog)
    assert "outcome=completed" in line.getMessage()
    assert QUESTION not in line.getMessage()


@contextlib.contextmanager
def own_redis(workdir: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A password-protected ``redis-server`` on a free loopback port for this test alone;
    yields its URL (with the password) and the process, stopped on exit if still running."""
    binary = shutil.which("redis-server")
    assert binary is not None, "redis-server is required"
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--requirepass",
            REDIS_PASSWORD,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock,
            ):
                sock.sendall(b"PING\r\n")
                if sock.recv(64):  # -NOAUTH: it is up
                    break
            assert process.poll() is None and time.monotonic() < deadline, "redis did not start"
            time.sleep(0.05)
        yield f"redis://:{REDIS_PASSWORD}@127.0.0.1:{port}/0", process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)


Deliver = Callable[[int, str], Awaitable[None]]


@contextlib.asynccontextmanager
async def health_client(
    world: World, mode: str, redis_url: str
) -> AsyncIterator[tuple[httpx.AsyncClient, Deliver]]:
    """The bot running in ``mode`` ("polling" or "webhook") on ``redis_url``; yields a
    client of the server that serves its health routes, and ``deliver(update_id, text)``,
    which hands the bot a private message as that mode receives it."""
    if mode == "polling":
        port = free_port()

        async def push(update_id: int, text: str) -> None:
            world.telegram.push_text(chat_id=CHAT, user_id=USER, text=text)

        async with (
            running_bot(world.settings(redis_url=redis_url, metrics_port=port)),
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client,
        ):
            yield client, push
    else:
        settings = world.settings(redis_url=redis_url, webhook_url=URL, webhook_secret=SECRET)
        async with (
            running_webhook_bot(settings) as asgi,
            serve(asgi) as port,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client,
        ):

            async def post(update_id: int, text: str) -> None:
                response = await client.post(
                    "/telegram/hook",
                    json=webhook_update(update_id, text),
                    headers={SECRET_HEADER: SECRET},
                )
                assert response.status_code == 200

            yield client, post


def redis_errors(samples: Samples) -> float:
    """Redis errors counted, all classes together."""
    return sum(v for (name, _), v in samples.items() if name == "classbot_redis_errors_total")


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_readyz_fails_while_redis_is_down(world: World, tmp_path: Path, mode: str) -> None:
    """/readyz is 200 while the bot's redis-server runs and 503 with one line naming Redis
    (and no password) once that server is stopped; /healthz stays 200; a message that
    then fails on Redis is counted as a Redis error."""
    with own_redis(tmp_path) as (redis_url, process):
        async with health_client(world, mode, redis_url) as (client, deliver):
            before = await client.get("/readyz")
            process.terminate()
            process.wait(timeout=10)
            after = await client.get("/readyz")
            alive = await client.get("/healthz")
            await deliver(1, "anyone there?")
            samples = await scrape_until(client, lambda s: redis_errors(s) >= 1)
    assert (before.status_code, before.text) == (200, "ready")
    assert after.status_code == 503
    assert after.text.startswith("redis: ") and "\n" not in after.text
    assert REDIS_PASSWORD not in after.text
    assert (alive.status_code, alive.text) == (200, "ok")
    assert redis_errors(samples) >= 1
