"""The webhook server's bounds, over real HTTP on loopback: body size (413), body time (408),
malformed or over-deep JSON (400, never 500), and uvicorn's log lines redacted."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from bench.loopback import TOKEN
from bot.app.logs import RedactingFilter
from bot.app.webhook import (
    MAX_BODY_BYTES,
    MAX_JSON_DEPTH,
    SECRET_HEADER,
    UVICORN_LOGGERS,
    server_config,
    webhook_app,
)
from bot.app.wiring import build_application
from tests.e2e.conftest import World

pytestmark = pytest.mark.timeout(30)

SECRET = "webhook-Secret_limits"
PATH = "/telegram/hook"
BODY_TIMEOUT = 0.5  # seconds: the tests' stand-in for BODY_TIMEOUT_SECONDS


@contextlib.asynccontextmanager
async def serving(asgi: Starlette) -> AsyncIterator[int]:
    """Serve ``asgi`` with the webhook's own uvicorn configuration on a loopback port."""
    server = uvicorn.Server(server_config(asgi, host="127.0.0.1", port=0))
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(5):
        while not server.started:  # noqa: ASYNC110 (uvicorn sets a flag, no event)
            await asyncio.sleep(0.01)
    try:
        yield int(server.servers[0].sockets[0].getsockname()[1])
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 5)


@pytest.fixture
async def port(world: World) -> AsyncIterator[int]:
    """A webhook server (body timeout 0.5 s) in front of an Application that is not started:
    an update it accepts only lands on the queue."""
    app = build_application(world.settings(), polling=False)
    async with serving(
        webhook_app(app, secret=SECRET, path=PATH, body_timeout=BODY_TIMEOUT)
    ) as listening:
        yield listening


def update_of_size(size: int) -> bytes:
    """A well-formed update body exactly ``size`` bytes long (padded in the message text)."""
    body: dict[str, Any] = {
        "update_id": 1,
        "message": {
            "message_id": 1,
            "date": int(time.time()),
            "text": "",
            "chat": {"id": 1, "type": "private", "first_name": "A"},
        },
    }
    padding = size - len(json.dumps(body).encode())
    body["message"]["text"] = "x" * padding
    raw = json.dumps(body).encode()
    assert len(raw) == size
    return raw


async def raw_exchange(
    port: int, head: str, chunks: list[bytes] | None = None, gap: float = 0.0
) -> tuple[bytes, float]:
    """Send ``head`` (request line and headers, ending in a blank line), then ``chunks``
    ``gap`` seconds apart, until the server closes; return all it sent and the seconds
    until it closed.

    The answer is read as it arrives: a write after the server closed fails, and asyncio's
    stream reader then raises instead of returning what it had buffered.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    received = bytearray()

    async def read_until_closed() -> float:
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                received.extend(chunk)
        return time.monotonic() - started

    reading = asyncio.create_task(read_until_closed())
    try:
        writer.write(head.replace("\n", "\r\n").encode())
        for chunk in chunks or []:
            if reading.done():
                break
            with contextlib.suppress(ConnectionError):
                writer.write(chunk)
                await writer.drain()
            await asyncio.sleep(gap)
        seconds = await asyncio.wait_for(reading, 10)
        return bytes(received), seconds
    finally:
        reading.cancel()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def head_of(extra: str) -> str:
    """The head of a signed POST to the webhook path, with ``extra`` header lines."""
    return (
        f"POST {PATH} HTTP/1.1\nHost: 127.0.0.1\n{SECRET_HEADER}: {SECRET}\n"
        f"Content-Type: application/json\n{extra}\n"
    )


async def test_a_body_of_the_limit_is_taken_and_one_byte_more_is_413(port: int) -> None:
    """MAX_BODY_BYTES of update is answered 200; a Content-Length one byte over gets 413 and
    the connection closed at once, before any body byte is sent."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        taken = await client.post(
            PATH, content=update_of_size(MAX_BODY_BYTES), headers={SECRET_HEADER: SECRET}
        )
    answer, seconds = await raw_exchange(port, head_of(f"Content-Length: {MAX_BODY_BYTES + 1}\n"))
    assert taken.status_code == 200
    assert answer.startswith(b"HTTP/1.1 413 ") and b"connection: close" in answer.lower()
    assert seconds < BODY_TIMEOUT


async def test_a_chunked_body_over_the_limit_is_413(port: int) -> None:
    """A body with no Content-Length (chunked) is cut off with 413 once it passes the limit."""
    piece = b"x" * 65536
    chunks = [b"%x\r\n%s\r\n" % (len(piece), piece)] * (MAX_BODY_BYTES // len(piece) + 1)
    answer, _ = await raw_exchange(
        port, head_of("Transfer-Encoding: chunked\n"), [*chunks, b"0\r\n\r\n"]
    )
    assert answer.startswith(b"HTTP/1.1 413 ")


async def test_a_stalled_body_gets_408_and_the_connection_closed(port: int) -> None:
    """Headers, a few body bytes, then nothing: 408 and the connection closed within the body
    timeout (plus slack), not left open."""
    answer, seconds = await raw_exchange(port, head_of("Content-Length: 100\n"), [b'{"upd'])
    assert answer.startswith(b"HTTP/1.1 408 ") and b"connection: close" in answer.lower()
    assert BODY_TIMEOUT <= seconds < BODY_TIMEOUT + 2


async def test_a_trickled_body_gets_408_though_bytes_keep_coming(port: int) -> None:
    """One byte every 0.1 s never completes a 100-byte body within the timeout: 408, closed."""
    answer, seconds = await raw_exchange(
        port, head_of("Content-Length: 100\n"), [b" "] * 40, gap=0.1
    )
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert seconds < BODY_TIMEOUT + 2


DEEP = 100_000


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"\xff\xfe\x00garbage",  # not UTF-8/16/32 text
        b"[" * DEEP + b"]" * DEEP,  # json.loads raises RecursionError
        b'{"update_id": 1, "x": ' + b"[" * DEEP + b"]" * DEEP + b"}",
        b'{"update_id": 1, "x": ' + b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH + b"}",
        b'{"update_id": 1' + b"0" * 5000 + b"}",  # past Python's int digit limit: ValueError
        b'{"update_id": 1e999}',  # inf, not an integer
        b'{"update_id": true}',
        b'"a string"',
    ],
)
async def test_malformed_or_over_deep_json_is_400(port: int, body: bytes) -> None:
    """Bodies that are not JSON, nest deeper than MAX_JSON_DEPTH (an object is one level
    more than its list), or have no integer update_id get 400, never 500."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        answer = await client.post(PATH, content=body, headers={SECRET_HEADER: SECRET})
    assert answer.status_code == 400


async def test_json_as_deep_as_allowed_is_taken(port: int) -> None:
    """An update nesting exactly MAX_JSON_DEPTH levels (an unknown field) is answered 200."""
    inner = MAX_JSON_DEPTH - 1
    body = b'{"update_id": 1, "x": ' + b"[" * inner + b"]" * inner + b"}"
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        answer = await client.post(PATH, content=body, headers={SECRET_HEADER: SECRET})
    assert answer.status_code == 200


@contextlib.contextmanager
def root_logging(secrets: list[str]) -> Iterator[io.StringIO]:
    """A root handler with the bot's redaction (as setup_logging installs one), writing to
    the yielded buffer; uvicorn's access lines let through at INFO. Undone on exit."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.addFilter(RedactingFilter(secrets))
    root, access = logging.getLogger(), logging.getLogger("uvicorn.access")
    root.addHandler(handler)
    saved = {name: logging.getLogger(name).level for name in UVICORN_LOGGERS}
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
        access.setLevel(saved["uvicorn.access"])


async def test_uvicorn_lines_go_through_the_redaction(
    world: World, capfd: pytest.CaptureFixture[str]
) -> None:
    """With the bot token in the webhook path and the secret in another path, uvicorn's
    access lines reach the root handler with both replaced by ***, and nothing unredacted
    is written to stdout or stderr."""
    app = build_application(world.settings(), polling=False)
    asgi = webhook_app(app, secret=SECRET, path=f"/{TOKEN}")
    with root_logging([TOKEN, SECRET]) as output:
        server = uvicorn.Server(server_config(asgi, host="127.0.0.1", port=0))
        logging.getLogger("uvicorn.access").setLevel(logging.INFO)  # one line a request
        task = asyncio.create_task(server.serve())
        try:
            async with asyncio.timeout(5):
                while not server.started:  # noqa: ASYNC110 (uvicorn sets a flag, no event)
                    await asyncio.sleep(0.01)
            port = int(server.servers[0].sockets[0].getsockname()[1])
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                posted = await client.post(
                    f"/{TOKEN}", content=update_of_size(300), headers={SECRET_HEADER: SECRET}
                )
                missing = await client.get(f"/{SECRET}")
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, 5)
    logged = output.getvalue()
    captured = capfd.readouterr()
    assert (posted.status_code, missing.status_code) == (200, 404)
    assert '"POST /*** HTTP/1.1" 200' in logged and '"GET /*** HTTP/1.1" 404' in logged
    for text in (logged, captured.out, captured.err):
        assert TOKEN not in text and SECRET not in text
