"""A local fake OpenAI-compatible streaming server (``POST /v1/chat/completions``).

Each request takes the next scripted reply (or, with the script empty, the one
:attr:`FakeOpenAI.plan` picks for it, else the default: an answer built from the last user
message) and streams it as SSE chunks with an optional delay between them. Every request
body is recorded. Used by the e2e tests (``tests/e2e``) and, wrapped in
:class:`bench.fakes.PacedProvider`, by the streaming benchmark.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass
class Answer:
    """Stream ``text`` in pieces of ``piece`` characters, ``delay`` seconds apart.

    ``reasoning`` streams first as ``reasoning_content``; ``truncate_after`` closes
    the connection after that many pieces, without ``[DONE]``; ``stall_after`` sends
    nothing more after that many pieces, until the client leaves (a stalled stream);
    ``first_delay`` waits
    that many seconds before the first piece (a model that takes time to start,
    sending an SSE comment meanwhile); ``hold`` waits on the
    event before finishing (for /stop tests); ``usage`` is the ``(prompt_tokens,
    completion_tokens)`` reported in the last chunk (``None``: no usage). A stream the
    client closes before its end is counted in :attr:`FakeOpenAI.disconnects`.
    """

    text: str
    piece: int = 8
    delay: float = 0.0
    reasoning: str = ""
    first_delay: float = 0.0
    truncate_after: int | None = None
    stall_after: int | None = None
    hold: asyncio.Event | None = None
    usage: tuple[int, int] | None = (10, 20)


@dataclass
class Failure:
    """Answer with an HTTP error status and an OpenAI/Zhipu-style error body."""

    status: int
    code: str = ""
    message: str = "failure"
    headers: dict[str, str] = field(default_factory=dict)


def default_answer(body: dict[str, Any]) -> str:
    """The default answer: Markdown that echoes the last user message."""
    last = body["messages"][-1]["content"]
    if isinstance(last, list):
        last = " ".join(p.get("text", "") for p in last if p.get("type") == "text")
    return f"**Echo:** {last}\n\n- one\n- two 你好 😀\n\n```python\nprint('hi')\n```"


@dataclass
class FakeOpenAI:
    """The fake server's state; ``app`` is the Starlette application.

    ``plan(body)``, when set, picks the reply to each request the script leaves unanswered
    (``body`` is the parsed request JSON): a test's fault chooser, e.g. seeded per request.
    """

    script: list[Answer | Failure] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    disconnects: int = 0
    plan: Callable[[dict[str, Any]], Answer | Failure] | None = None

    def __post_init__(self) -> None:
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._completions, methods=["POST"]),
            ]
        )

    async def _completions(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        if self.script:
            step = self.script.pop(0)
        else:
            step = self.plan(body) if self.plan else Answer(default_answer(body))
        if isinstance(step, Failure):
            error = {"error": {"code": step.code, "message": step.message, "type": "error"}}
            return JSONResponse(error, status_code=step.status, headers=step.headers)
        self.answers.append(step.text)
        return StreamingResponse(self._stream(step, body["model"]), media_type="text/event-stream")

    async def _stream(self, step: Answer, model: str) -> AsyncIterator[bytes]:
        try:
            async for event in self._events(step, model):
                yield event
        except asyncio.CancelledError:  # starlette cancels the stream when the client leaves
            self.disconnects += 1
            raise

    async def _events(self, step: Answer, model: str) -> AsyncIterator[bytes]:
        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            choice: dict[str, Any] = {"index": 0, "delta": delta}
            if finish:
                choice["finish_reason"] = finish
            data = {
                "id": "c1",
                "object": "chat.completion.chunk",
                "model": model,
                "choices": [choice],
            }
            return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()

        pieces = [step.text[i : i + step.piece] for i in range(0, len(step.text), step.piece)]
        if step.first_delay:
            yield b": starting\n\n"
            await asyncio.sleep(step.first_delay)
        for i in range(0, len(step.reasoning), step.piece):
            piece = step.reasoning[i : i + step.piece]
            yield chunk({"role": "assistant", "reasoning_content": piece})
            await asyncio.sleep(step.delay)
        for count, piece in enumerate(pieces):
            if step.truncate_after is not None and count >= step.truncate_after:
                return
            if step.stall_after is not None and count >= step.stall_after:
                await asyncio.Event().wait()  # until the client leaves (cancelled)
            yield chunk({"role": "assistant", "content": piece})
            await asyncio.sleep(step.delay)
        if step.hold is not None:
            await step.hold.wait()
        yield chunk({}, finish="stop")
        if step.usage is not None:
            prompt, completion = step.usage
            usage = {"prompt_tokens": prompt, "completion_tokens": completion,
                     "total_tokens": prompt + completion}  # fmt: skip
            yield f"data: {json.dumps({'id': 'c1', 'choices': [], 'usage': usage})}\n\n".encode()
        yield b"data: [DONE]\n\n"
