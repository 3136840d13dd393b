"""End to end in webhook mode: updates POSTed over loopback, answers through the fake Bot API."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.fake_openai import Answer
from bot.app.webhook import SECRET_HEADER, running_webhook_bot
from tests.e2e.conftest import TOKEN, World, free_port, replied, serve, settle

pytestmark = pytest.mark.timeout(30)

CHAT = USER = 801
SECRET = "webhook-Secret_801"
URL = "https://bot.example.test/telegram/hook"


def update(update_id: int, text: str) -> dict[str, Any]:
    """A private text message update, as Telegram POSTs it."""
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(time.time()),
            "text": text,
            "chat": {"id": CHAT, "type": "private", "first_name": "W"},
            "from": {"id": USER, "is_bot": False, "first_name": "W", "language_code": "en"},
        },
    }


async def test_posted_updates_are_answered_and_others_refused(world: World) -> None:
    """setWebhook gets the URL and secret; a POST with the secret is answered; a wrong
    secret (403) and a body that is not an update (400) reach nothing; no polling."""
    world.openai.script.append(Answer("answered through the webhook"))
    settings = world.settings(webhook_url=URL, webhook_secret=SECRET)
    async with (
        running_webhook_bot(settings) as asgi,
        serve(asgi) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
    ):
        forged = await client.post(
            "/telegram/hook", json=update(1, "forged"), headers={SECRET_HEADER: "guess"}
        )
        unsigned = await client.post("/telegram/hook", json=update(2, "unsigned"))
        garbage = [
            await client.post("/telegram/hook", content=body, headers={SECRET_HEADER: SECRET})
            for body in (b"{not json", b'"a string"', b"[1, 2]", b"{}")
        ]
        real = await client.post(
            "/telegram/hook", json=update(3, "hello"), headers={SECRET_HEADER: SECRET}
        )
        health = await client.get("/healthz")
        await settle(lambda: replied(world, CHAT, "answered through the webhook"))
    assert (forged.status_code, unsigned.status_code) == (403, 403)
    assert [r.status_code for r in garbage] == [400, 400, 400, 400]
    assert (real.status_code, health.status_code, health.text) == (200, 200, "ok")
    (registered,) = world.telegram.calls_of("setWebhook")
    assert registered.params["url"] == URL and registered.params["secret_token"] == SECRET
    assert not world.telegram.calls_of("getUpdates")
    assert [r["messages"][-1]["content"] for r in world.openai.requests] == ["hello"]


@pytest.mark.timeout(60)
async def test_python_m_bot_serves_the_webhook_and_stops_on_sigterm(
    world: World, tmp_path: Path
) -> None:
    """The real process: ``python -m bot`` with WEBHOOK_URL answers a POSTed update, then
    exits 0 on SIGTERM with no traceback and no secret in its output."""
    world.openai.script.append(Answer("from the webhook process"))
    port = free_port()
    env = world.process_env(
        tmp_path,
        {
            "use_drafts": False,
            "private_edit_interval": 0.05,
            "webhook_url": URL,
            "webhook_secret": SECRET,
            "webhook_listen": "127.0.0.1",
            "webhook_port": port,
        },
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        env=env,
        cwd=str(Path(__file__).parents[2]),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(300):  # up to 15 s for the process to start
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.05)
            posted = await client.post(
                "/telegram/hook", json=update(5, "hi process"), headers={SECRET_HEADER: SECRET}
            )
        assert posted.status_code == 200
        await settle(lambda: replied(world, CHAT, "from the webhook process"), within=15)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        output = (await asyncio.wait_for(process.communicate(), 20))[0].decode()
    assert process.returncode == 0, output
    assert "Traceback" not in output
    assert TOKEN not in output and SECRET not in output
