"""The benchmark's fake servers, run in their own process so the bot's CPU and loop are its own.

Three uvicorn servers on loopback, in one process and one event loop:

- the fake Bot API (:class:`bench.fake_telegram.FakeTelegram`) with a
  :class:`bench.flood.FloodGate` as its ``throttle``: 429 + ``retry_after`` like Telegram;
- a paced provider (:class:`PacedProvider`): the e2e fake OpenAI server
  (:class:`bench.fake_openai.FakeOpenAI`) wrapped as ASGI so that each request gets
  its benchmark answer, and each SSE chunk of the answer is released on a fixed
  schedule — chunk ``n`` at ``start + n / rate`` — and time-stamped when released;
- a control server: ``POST /start`` (the arrival plan: which user writes what, where,
  when) and ``GET /records`` (everything the analysis needs, as JSON: the pushes, the
  counted calls — a rich call's ``text`` is its ``rich_message.markdown``, ``rich``
  true — and ``stored``, the bot's messages in each chat as the fake holds them at the
  end, a rich one's ``text`` its Markdown).

All time stamps are ``time.monotonic()`` seconds; on Linux that clock is shared by
every process, so the bot process and the analysis compare them directly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from bench.answers import chunk_count, make_answer
from bench.fake_openai import Answer, FakeOpenAI
from bench.fake_telegram import FakeTelegram
from bench.flood import COUNTED_METHODS, FloodGate
from bench.loopback import serve_all
from bot.scheduler.limits import TELEGRAM_LIMITS

__all__ = ["Arrival", "PacedProvider", "serve_fakes"]


@dataclass(frozen=True)
class Arrival:
    """One user message of the plan: ``text`` from ``user_id`` in ``chat_id``, ``offset`` s in.

    ``key`` is what the provider sees as the last user message (the text without a
    leading ``@bot`` mention); ``variant`` picks the answer (:func:`make_answer`).
    """

    key: str
    chat_id: int
    user_id: int
    chat_type: str
    text: str
    offset: float
    variant: int


@dataclass
class Emissions:
    """When the provider released each answer chunk of one request (monotonic seconds)."""

    start: float
    times: list[float] = field(default_factory=list)
    finished: float | None = None


class PacedProvider:
    """An ASGI app: the fake OpenAI server, answering each request with its planned answer.

    ``answer_for(last_user_text)`` gives the Markdown answer; chunks are
    ``chars_per_token`` characters, released ``1 / rate`` seconds apart on a fixed
    schedule from the request's arrival. ``streams`` maps the last user text to its
    :class:`Emissions`.
    """

    def __init__(self, *, answer_for: Callable[[str], str], rate: float, chars_per_token: int):
        """Create the wrapper; ``rate`` in chunks (tokens) per second."""
        self.answer_for = answer_for
        self.rate = rate
        self.chars_per_token = chars_per_token
        self.streams: dict[str, Emissions] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request through a fresh :class:`FakeOpenAI` scripted with its answer."""
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        key = _last_user_text(json.loads(body or b"{}"))
        answer = self.answer_for(key)
        fake = FakeOpenAI(script=[Answer(answer, piece=self.chars_per_token, delay=0.0)])
        record = self.streams[key] = Emissions(start=time.monotonic())
        pieces = chunk_count(answer, self.chars_per_token)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def paced(message: Message) -> None:
            if message["type"] == "http.response.body" and message.get("body"):
                sent = len(record.times)
                if sent < pieces:
                    due = record.start + sent / self.rate
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
                    record.times.append(time.monotonic())
                elif record.finished is None:
                    record.finished = time.monotonic()
            await send(message)

        await fake.app(scope, replay, paced)


def _rich_markdown(params: dict[str, Any]) -> str | None:
    """The Markdown of a call's ``rich_message`` (a rich send, draft or edit), else ``None``."""
    rich = params.get("rich_message")
    if isinstance(rich, dict) and isinstance(rich.get("markdown"), str):
        return str(rich["markdown"])
    return None


def _last_user_text(body: dict[str, Any]) -> str:
    messages = body.get("messages") or [{}]
    content = messages[-1].get("content", "")
    return content if isinstance(content, str) else json.dumps(content)


class _Control:
    """The control server's state: the fakes, the plan, the pushes made."""

    def __init__(
        self,
        *,
        tokens: int,
        chars_per_token: int,
        rate: float,
        jitter: float,
        group_burst: int = TELEGRAM_LIMITS.per_group_burst,
        group_jitter: float = 0.0,
    ) -> None:
        self.tokens = tokens
        self.chars_per_token = chars_per_token
        limits = dataclasses.replace(TELEGRAM_LIMITS, per_group_burst=group_burst)
        self.gate = FloodGate(limits, jitter=jitter, group_jitter=group_jitter)
        self.telegram = FakeTelegram(throttle=self.gate)
        self.provider = PacedProvider(
            answer_for=self.answer_for, rate=rate, chars_per_token=chars_per_token
        )
        self.variants: dict[str, int] = {}
        self.answers: dict[int, str] = {}
        self.pushes: list[dict[str, Any]] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.cpu_start = time.process_time()
        self.app = Starlette(
            routes=[
                Route("/start", self.start, methods=["POST"]),
                Route("/records", self.records, methods=["GET"]),
            ]
        )

    def answer_for(self, key: str) -> str:
        variant = self.variants.get(key, 0)
        if variant not in self.answers:
            self.answers[variant] = make_answer(
                variant, tokens=self.tokens, chars_per_token=self.chars_per_token
            )
        return self.answers[variant]

    async def start(self, request: Request) -> JSONResponse:
        arrivals = [Arrival(**item) for item in (await request.json())["arrivals"]]
        self.variants.update({a.key: a.variant for a in arrivals})
        for variant in {a.variant for a in arrivals}:
            self.answer_for(next(a.key for a in arrivals if a.variant == variant))
        self.cpu_start = time.process_time()
        task = asyncio.create_task(self._push_all(arrivals, time.monotonic()))
        self.tasks.add(task)
        return JSONResponse({"ok": True})

    async def _push_all(self, arrivals: list[Arrival], t0: float) -> None:
        for arrival in sorted(arrivals, key=lambda a: a.offset):
            await asyncio.sleep(max(0.0, t0 + arrival.offset - time.monotonic()))
            message_id = self.telegram.push_text(
                chat_id=arrival.chat_id,
                user_id=arrival.user_id,
                text=arrival.text,
                chat_type=arrival.chat_type,
            )
            self.pushes.append(
                {
                    "key": arrival.key,
                    "chat_id": arrival.chat_id,
                    "message_id": message_id,
                    "at": time.monotonic(),
                }
            )

    async def records(self, request: Request) -> JSONResponse:
        calls = []
        for call in self.telegram.calls:
            if call.method not in COUNTED_METHODS:
                continue
            params = call.params
            reply = params.get("reply_parameters") or {}
            result = call.result if isinstance(call.result, dict) else {}
            rich = _rich_markdown(params)
            calls.append(
                {
                    "method": call.method,
                    "at": call.at,
                    "error_code": call.error_code,
                    "chat_id": int(params["chat_id"]),
                    "text": rich if rich is not None else params.get("text") or "",
                    "entities": params.get("entities") or [],
                    "rich": rich is not None,
                    "message_id": params.get("message_id") or result.get("message_id"),
                    "reply_to": reply.get("message_id") if isinstance(reply, dict) else None,
                }
            )
        streams = {
            key: {"start": e.start, "times": e.times, "finished": e.finished}
            for key, e in self.provider.streams.items()
        }
        chats = {push["chat_id"] for push in self.pushes}
        stored = {
            str(chat_id): [
                {
                    "text": m.text,
                    "entities": m.entities,
                    "rich": m.rich_message is not None,
                }
                for m in self.telegram.bot_messages(chat_id)
            ]
            for chat_id in sorted(chats)
        }
        return JSONResponse(
            {
                "pushes": self.pushes,
                "calls": calls,
                "stored": stored,
                "streams": streams,
                "rejected": self.gate.rejected,
                "violated": self.gate.violated,
                "all_calls": len(self.telegram.calls),
                "cpu_s": time.process_time() - self.cpu_start,
            }
        )


async def _serve_all(options: dict[str, Any], ports: Queue[Any], stop: Event) -> None:
    control = _Control(**options)
    apps = (control.telegram.app, control.provider, control.app)
    async with serve_all(*apps) as (telegram_port, provider_port, control_port):
        ports.put({"telegram": telegram_port, "provider": provider_port, "control": control_port})
        await asyncio.to_thread(stop.wait)
        control.telegram.close()  # the bot left: answer its last long poll now


def serve_fakes(options: dict[str, Any], ports: Queue[Any], stop: Event) -> None:
    """Process entry point: serve the fakes until ``stop`` is set; put the ports on ``ports``.

    ``options``: ``tokens``, ``chars_per_token``, ``rate`` (chunks/s), ``jitter``
    (seconds, see :class:`bench.flood.FloodGate`) and optionally ``group_burst`` (the
    fake's per-group burst; Telegram's limits when left out) and ``group_jitter`` (a
    stricter, jumpy group pace; 0 when left out).
    """
    asyncio.run(_serve_all(options, ports, stop))
