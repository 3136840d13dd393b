"""End to end in webhook mode: updates POSTed over loopback, answers through the fake Bot API."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from bot.webhook import SECRET_HEADER, running_webhook_bot
from tests.e2e.conftest import World, replied, serve, settle
from tests.e2e.fake_openai import Answer

pytestmark = pytest.mark.timeout(30)

CHAT = USER = 801
SECRET = "webhook-Secret_801"
URL = "https://bot.example.test/telegram/hook"


def update(update_id: int, text: str) -> dict[str, Any]:
    """A private text message update, as Telegram POSTs it."""
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": int(time.time()), "text": text,
        "chat": {"id": CHAT, "type": "private", "first_name": "W"},
        "from": {"id": USER, "is_bot": False, "first_name": "W", "language_code": "en"}}}


async def test_posted_updates_are_answered_and_others_refused(world: World) -> None:
    """setWebhook gets the URL and secret; a POST with the secret is answered; a wrong
    secret (403) and a body that is not an update (400) reach nothing; no polling."""
    world.openai.script.append(Answer("answered through the webhook"))
    settings = world.settings(webhook_url=URL, webhook_secret=SECRET)
    async with (running_webhook_bot(settings) as asgi, serve(asgi) as port,
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client):
        forged = await client.post("/telegram/hook", json=update(1, "forged"),
                                   headers={SECRET_HEADER: "guess"})
        unsigned = await client.post("/telegram/hook", json=update(2, "unsigned"))
        garbage = [await client.post("/telegram/hook", content=body,
                                     headers={SECRET_HEADER: SECRET})
                   for body in (b"{not json", b'"a string"', b"[1, 2]", b"{}")]
        real = await client.post("/telegram/hook", json=update(3, "hello"),
                                 headers={SECRET_HEADER: SECRET})
        health = await client.get("/healthz")
        await settle(lambda: replied(world, CHAT, "answered through the webhook"))
    assert (forged.status_code, unsigned.status_code) == (403, 403)
    assert [r.status_code for r in garbage] == [400, 400, 400, 400]
    assert (real.status_code, health.status_code, health.text) == (200, 200, "ok")
    (registered,) = world.telegram.calls_of("setWebhook")
    assert registered.params["url"] == URL and registered.params["secret_token"] == SECRET
    assert not world.telegram.calls_of("getUpdates")
    assert [r["messages"][-1]["content"] for r in world.openai.requests] == ["hello"]
