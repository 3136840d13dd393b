"""Fixtures shared by the whole test suite: PTB_TIMEDELTA, a real, throw-away ``redis-server``."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio

REDIS_SERVER = "redis-server"
STARTUP_TIMEOUT = 10.0  # seconds to wait for the first PONG


@pytest.fixture(scope="session", autouse=True)
def ptb_timedelta() -> Iterator[None]:
    """PTB reports time periods as timedelta, as ``python -m bot`` asks it to (PTB_TIMEDELTA)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PTB_TIMEDELTA", "true")
        yield


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _wait_until_ready(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not _answers_ping(port):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            output = log.read_text(errors="replace")[-2000:]
            pytest.fail(f"redis-server on 127.0.0.1:{port} did not answer PING:\n{output}")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Run a real ``redis-server`` on a free loopback port; yield ``redis://127.0.0.1:PORT/0``."""
    binary = shutil.which(REDIS_SERVER)
    if binary is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server); it is required")
    workdir = tmp_path_factory.mktemp("redis")
    log = workdir / "redis.log"
    port = _free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", str(workdir)]  # fmt: skip
    with log.open("wb") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        _wait_until_ready(process, port, log)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _flushall(url: str) -> None:
    client = redis.asyncio.from_url(url)
    try:
        await client.flushall()
    finally:
        await client.aclose()


@pytest.fixture
async def redis_url(redis_server: str) -> AsyncIterator[str]:
    """Yield the real server's URL after FLUSHALL, so each test starts with an empty Redis."""
    await _flushall(redis_server)
    yield redis_server


@pytest.fixture(params=["redis", "memory"])
async def store_backend_url(
    request: pytest.FixtureRequest, redis_server: str
) -> AsyncIterator[str]:
    """Yield an empty real Redis URL, then ``memory://`` (the embedded backend)."""
    if request.param == "redis":
        await _flushall(redis_server)
        yield redis_server
    else:
        yield "memory://"
