"""Fixtures shared by the whole test suite: PTB_TIMEDELTA, a real, throw-away ``redis-server``,
and one a test may stop and start again (:class:`RedisProcess`)."""

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


class RedisProcess:
    """A ``redis-server`` of one test on its own loopback port, stopped and started at will.

    It runs with ``--save "" --appendonly no``: :meth:`stop` loses the data, unless
    ``keep_data`` asks for ``SHUTDOWN SAVE``, whose ``dump.rdb`` the next :meth:`start`
    loads (keys whose TTL ran out meanwhile are dropped on load). :meth:`start` and
    :meth:`stop` block until the server answers PING, or has exited (at most 10 s); an
    async test runs them with ``asyncio.to_thread`` so the bot keeps running meanwhile.
    """

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``, the same across restarts."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server on its port (loading ``dump.rdb`` if a stop kept the data)."""
        assert self.process is None, "already running"
        log = self.workdir / "redis.log"
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--dir", str(self.workdir)]  # fmt: skip
        with log.open("ab") as log_file:
            self.process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
        _wait_until_ready(self.process, self.port, log)

    def stop(self, *, keep_data: bool = False) -> None:
        """Stop the server; with ``keep_data`` it saves first and the next start reloads."""
        assert self.process is not None, "not running"
        process, self.process = self.process, None
        if keep_data:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                sock.sendall(b"SHUTDOWN SAVE\r\n")
                sock.recv(64)  # the server closes the connection once saved
        else:
            process.terminate()
        try:
            process.wait(timeout=STARTUP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if not keep_data:
            (self.workdir / "dump.rdb").unlink(missing_ok=True)


@pytest.fixture
def redis_process(tmp_path: Path) -> Iterator[RedisProcess]:
    """A running :class:`RedisProcess` of this test alone; stopped at the end of the test."""
    binary = shutil.which(REDIS_SERVER)
    if binary is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server); it is required")
    server = RedisProcess(binary, tmp_path)
    server.start()
    try:
        yield server
    finally:
        if server.process is not None:
            server.stop()
