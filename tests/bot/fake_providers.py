"""A fake OpenAI-compatible chat-completions service behind ``httpx.MockTransport``.

Tests pass ``FakeChatService().transport`` as ``transport=`` to the bot's clients.
Each request to a host takes the host's fixed failure if it has one, else the next
scripted step, else an echo of the last user message; every request body is recorded.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from bot.settings import Settings

API_KEY = "sk-testkey-123456789"
FAKE_BASE_URL = "http://fake.local/v1"


@dataclass
class Reply:
    """Stream ``reasoning`` (as ``reasoning_content``) then ``text`` in ``piece``-sized deltas.

    ``truncated`` ends the body after the text, without ``finish_reason`` or ``[DONE]``.
    """

    text: str
    reasoning: str = ""
    piece: int = 4
    truncated: bool = False


@dataclass
class Failure:
    """Answer with an HTTP error ``status`` and an OpenAI-style error body."""

    status: int
    message: str = "failure"
    code: str = ""


@dataclass
class Unreachable:
    """Fail the connection itself (``httpx.ConnectError``)."""


@dataclass
class Stall:
    """Accept the request, then send nothing for ``seconds``."""

    seconds: float


Step = Reply | Failure | Unreachable | Stall


def sse_body(reply: Reply, *, model: str) -> bytes:
    """The ``text/event-stream`` body of ``reply``: chunk events, ``finish_reason``, ``[DONE]``."""
    deltas: list[dict[str, str]] = []
    if reply.reasoning:
        deltas.append({"reasoning_content": reply.reasoning})
    text = reply.text
    deltas += [{"content": text[i : i + reply.piece]} for i in range(0, len(text), reply.piece)]
    events: list[dict[str, Any]] = [
        {"id": "c1", "model": model, "choices": [{"index": 0, "delta": delta}]} for delta in deltas
    ]
    lines = [f"data: {json.dumps(event)}\n\n" for event in events]
    if not reply.truncated:
        finish = {"index": 0, "delta": {}, "finish_reason": "stop"}
        lines.append(f"data: {json.dumps({'id': 'c1', 'model': model, 'choices': [finish]})}\n\n")
        lines.append("data: [DONE]\n\n")
    return "".join(lines).encode()


@dataclass
class FakeChatService:
    """The fake service's state: per-host failures, a script, and the recorded requests.

    ``requests`` holds ``(host, body)`` for every request, in arrival order.
    """

    script: list[Step] = field(default_factory=list)
    host_steps: dict[str, Step] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def transport(self) -> httpx.MockTransport:
        """A transport that answers every client request from this service."""
        return httpx.MockTransport(self._handle)

    def bodies(self) -> list[dict[str, Any]]:
        """The recorded request bodies, in arrival order."""
        return [body for _host, body in self.requests]

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        host = request.url.host
        self.requests.append((host, body))
        step = self.host_steps.get(host) or (self.script.pop(0) if self.script else None)
        if step is None:
            last = body["messages"][-1]["content"]
            step = Reply(f"Echo: {last}")
        if isinstance(step, Stall):
            await asyncio.sleep(step.seconds)
            step = Reply("late")
        if isinstance(step, Unreachable):
            raise httpx.ConnectError("connection refused", request=request)
        if isinstance(step, Failure):
            error = {"error": {"message": step.message, "code": step.code, "type": "error"}}
            return httpx.Response(step.status, json=error)
        return httpx.Response(
            200,
            headers={"content-type": "text/event-stream"},
            content=sse_body(step, model=body["model"]),
        )


def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Drop every environment variable Settings would read, so a developer's env can't leak in."""
    fields = set(Settings.model_fields)
    for name in list(os.environ):
        if name.lower() in fields:
            monkeypatch.delenv(name)


def make_settings(**values: Any) -> Settings:
    """Settings for the quick-start endpoint at the fake host (models m1, m2), no `.env`."""
    defaults: dict[str, Any] = {
        "telegram_bot_token": SecretStr("123:abc"),
        "openai_base_url": FAKE_BASE_URL,
        "openai_models": ["m1", "m2"],
        "openai_api_key": SecretStr(API_KEY),
        "redis_url": "memory://",
        "system_prompt": "be brief",
    }
    return Settings(_env_file=None, **{**defaults, **values})  # type: ignore[call-arg]
