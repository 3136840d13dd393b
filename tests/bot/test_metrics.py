"""The metrics and readiness pieces on their own: Bot API call counting against the fake
Bot API, the turn observer through a real ConversationService, the scheduler collector,
and the /readyz decisions (real Redis, a silent TCP server, a fake clock)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest
import redis.asyncio
import stamina
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from telegram import Update
from telegram.error import NetworkError, RetryAfter

from bench.fake_telegram import FakeTelegram
from bench.loopback import TOKEN, serve
from bot.app.health import HealthServer, Readiness
from bot.app.metrics import Telemetry, update_type
from bot.app.updates import skipping_bot
from bot.app.wiring import build_application
from bot.conversation.turn import ConversationService, Outcome, StreamState, TurnInput, scope_digest
from bot.scheduler.clock import FakeClock as SchedulerClock
from bot.scheduler.core import Limits, SendScheduler
from bot.settings import ConfigError
from providers.catalogue import Catalogue, ModelInfo, PlatformInfo
from providers.errors import ProviderError, RateLimitError
from providers.types import (
    AnswerDelta,
    ChatRequest,
    Chunk,
    Finish,
    ReasoningDelta,
    Usage,
    UsageReport,
)
from storage import ConversationStore, open_store
from storage.backend import ObservedRedis, connect
from tests.bot.fake_providers import make_settings

pytestmark = pytest.mark.timeout(20)

MODEL = ModelInfo(key="fake:m", platform="fake", model="m", display_name="M")


class FakeClock:
    """Monotonic seconds the test sets by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def samples(telemetry: Telemetry) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The registry's exposition, parsed back: (sample name, labels) → value."""
    text = generate_latest(telemetry.registry).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(telemetry: Telemetry, name: str, **labels: str) -> float:
    """One sample's value; 0 when absent."""
    return samples(telemetry).get((name, frozenset(labels.items())), 0.0)


# -- Bot API calls ------------------------------------------------------------------------


async def test_bot_api_calls_are_counted_by_method_and_status() -> None:
    """Each call is counted by method and HTTP status (429 included, a refused connection
    as "network", a file download as "file"); only HTTP 200 refreshes the age of the last
    successful call; neither the token nor a file path shows in the exposition."""
    telegram, clock = FakeTelegram(), FakeClock()
    telemetry = Telemetry(clock=clock)
    # a wait past the Bot API path's retry window (bot.app.bot_api): given back, not waited
    telegram.inject("sendMessage", status=429, description="Too Many Requests", retry_after=30)
    file_id = telegram.add_file(b"jpeg bytes")
    async with serve(telegram.app) as port:
        base = f"http://127.0.0.1:{port}"
        bot = skipping_bot(
            TOKEN,
            base_url=f"{base}/bot",
            base_file_url=f"{base}/file/bot",
            make_request=telemetry.counting_request,
        )
        async with bot:  # initialize: getMe
            clock.now = 1010.0
            with pytest.raises(RetryAfter):
                await bot.send_message(chat_id=5, text="hi")
            age_after_429 = telemetry.telegram_age()
            photo = await bot.get_file(file_id)
            assert await photo.download_as_bytearray() == bytearray(b"jpeg bytes")
    refused = skipping_bot(
        TOKEN,
        base_url=f"http://127.0.0.1:{port}/bot",
        base_file_url="http://127.0.0.1:9/file/bot",
        make_request=telemetry.counting_request,
    )
    await refused.request.initialize()
    try:
        with pytest.raises(NetworkError):
            await refused.get_me()
    finally:
        await refused.request.shutdown()
    assert age_after_429 == 10.0
    assert telemetry.telegram_age() == 0.0  # getFile's 200 at t=1010
    calls = "classbot_telegram_requests_total"
    assert value(telemetry, calls, method="getMe", status="200") == 1
    assert value(telemetry, calls, method="sendMessage", status="429") == 1
    assert value(telemetry, calls, method="getFile", status="200") == 1
    assert value(telemetry, calls, method="file", status="200") == 1
    assert value(telemetry, calls, method="getMe", status="network") == 1
    exposition = generate_latest(telemetry.registry).decode()
    assert TOKEN not in exposition and TOKEN.split(":")[1] not in exposition
    assert "photos/" not in exposition


def test_update_type_names_the_field_the_update_carries() -> None:
    """A message update is "message", a button press "callback_query", an empty one "other"."""
    user = {"id": 1, "is_bot": False, "first_name": "U"}
    message = {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}, "text": "x"}
    press = {"id": "q", "from": user, "chat_instance": "c", "data": "d"}
    assert update_type(Update.de_json({"update_id": 1, "message": message}, None)) == "message"
    assert update_type(Update.de_json({"update_id": 2, "callback_query": press}, None)) == (
        "callback_query"
    )
    assert update_type(Update(update_id=3)) == "other"


# -- the turn -----------------------------------------------------------------------------


@dataclass
class ScriptedClient:
    """A ChatClient that plays one list of chunks (then an error, if any) per request."""

    scripts: list[tuple[list[Chunk], ProviderError | None]]
    name: str = "fake"

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        chunks, error = self.scripts.pop(0)
        for chunk in chunks:
            await asyncio.sleep(0.01)
            yield chunk
        if error is not None:
            raise error

    async def aclose(self) -> None:
        return None


@dataclass
class QuietSink:
    """A ReplySink that only remembers the outcome."""

    outcomes: list[Outcome] = field(default_factory=list)

    async def begin(self) -> None:
        return None

    def update(self, state: StreamState) -> None:
        return None

    async def restart(self, state: StreamState) -> None:
        return None

    async def finish(self, state: StreamState, outcome: Outcome) -> None:
        self.outcomes.append(outcome)

    async def fail(self, state: StreamState, error: ProviderError) -> None:
        self.outcomes.append(Outcome.FAILED)

    async def abandon(self) -> None:
        return None


@pytest.fixture(autouse=True)
def no_retry_waits() -> Iterator[None]:
    """Provider retries do not sleep (stamina's testing mode); one attempt only."""
    stamina.set_testing(True, attempts=1)
    yield
    stamina.set_testing(False)


@pytest.fixture
async def store() -> AsyncIterator[ConversationStore]:
    """An embedded store."""
    opened, _ = await open_store("memory://", max_turns=20, max_tokens=10000, ttl_seconds=600)
    yield opened
    await opened.aclose()


async def test_turns_are_observed_and_logged_once_each(
    store: ConversationStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A completed turn counts its outcome, tokens, first-text and stream latencies; a
    failed one its provider error class; each logs one INFO line with the hashed scope,
    model, outcome, tokens and seconds, and neither the question nor the answer."""
    caplog.set_level(logging.INFO, logger="bot.conversation.turn")
    telemetry = Telemetry()
    answer = [
        ReasoningDelta("let me think"),
        AnswerDelta("forty-two"),
        UsageReport(Usage(7, 5, 12)),
        Finish("stop"),
    ]
    client = ScriptedClient([(answer, None), ([], RateLimitError("slow down", status=429))])
    catalogue = Catalogue(
        [PlatformInfo("fake", "Fake", "openai", "http://fake")], [MODEL], enabled=["fake"]
    )
    service = ConversationService(
        store=store,
        clients={"fake": client},
        catalogue=catalogue,
        default_model=MODEL,
        system_prompt="sys",
        observer=telemetry,
    )
    sink = QuietSink()
    await service.run_turn(TurnInput("u:77", 77, "the hidden question"), sink)
    await service.run_turn(TurnInput("u:77", 77, "the second hidden question"), sink)
    assert sink.outcomes == [Outcome.COMPLETED, Outcome.FAILED]
    turns = "classbot_turns_total"
    assert value(telemetry, turns, model="fake:m", outcome="completed") == 1
    assert value(telemetry, turns, model="fake:m", outcome="failed") == 1
    assert value(telemetry, "classbot_tokens_total", model="fake:m", kind="prompt") == 7
    assert value(telemetry, "classbot_tokens_total", model="fake:m", kind="completion") == 5
    first = value(telemetry, "classbot_provider_first_token_seconds_sum", model="fake:m")
    total = value(telemetry, "classbot_provider_stream_seconds_sum", model="fake:m")
    assert value(telemetry, "classbot_provider_first_token_seconds_count", model="fake:m") == 1
    assert value(telemetry, "classbot_provider_stream_seconds_count", model="fake:m") == 1
    assert 0.005 < first < total  # the first text is the first chunk; the stream has four
    assert (
        value(telemetry, "classbot_provider_errors_total", model="fake:m", error="RateLimitError")
        == 1
    )
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.name == "bot.conversation.turn" and r.getMessage().startswith("turn: ")
    ]
    digest = scope_digest("u:77")
    assert len(digest) == 10 and int(digest, 16) >= 0
    assert [line.rsplit(" seconds=", 1)[0] for line in lines] == [
        f"turn: scope={digest} model=fake:m outcome=completed tokens=12",
        f"turn: scope={digest} model=fake:m outcome=failed tokens=0",
    ]
    seconds = [float(line.rsplit("seconds=", 1)[1]) for line in lines]
    assert seconds[0] >= 0.04 and seconds[1] >= 0  # four chunks 10 ms apart; a failure at once
    assert not any("hidden" in line or "forty" in line or "77" in line for line in lines)


# -- Redis --------------------------------------------------------------------------------


async def test_redis_errors_of_commands_and_pipelines_are_counted(redis_url: str) -> None:
    """A failing command and a failing pipeline each count one error by class; a script the
    server did not know yet (redis-py loads it and calls again) counts none."""
    telemetry = Telemetry()
    client, embedded = await connect(redis_url)
    assert isinstance(client, ObservedRedis) and not embedded
    telemetry.watch_redis(client)
    try:
        await client.set("metrics:text", "not a number")
        with pytest.raises(redis.exceptions.ResponseError):
            await client.incr("metrics:text")
        with pytest.raises(redis.exceptions.ResponseError):
            async with client.pipeline(transaction=False) as pipe:
                pipe.set("metrics:other", "1")
                pipe.lpush("metrics:text", "x")  # WRONGTYPE
                await pipe.execute()
        script = client.register_script("return 41 + 1")
        assert await script() == 42
    finally:
        await client.aclose()
    assert value(telemetry, "classbot_redis_errors_total", error="ResponseError") == 2
    assert value(telemetry, "classbot_redis_errors_total", error="NoScriptError") == 0


# -- the scheduler ------------------------------------------------------------------------


async def test_scheduler_state_is_read_at_each_scrape() -> None:
    """The collector reports the scheduler's public counters and its rates as they are when
    scraped: after a 429 in a private chat, that chat level's lowered rate, one adapted
    chat and one rate cut, while the configured rates stay."""
    telemetry = Telemetry()
    limits = Limits(per_chat_per_second=1.0, per_group_per_minute=20, global_per_second=24)
    scheduler = SendScheduler(limits=limits, clock=SchedulerClock())  # time stands still
    telemetry.watch_scheduler(scheduler)
    assert value(telemetry, "classbot_scheduler_sends_total", kind="final") == 0
    assert value(telemetry, "classbot_scheduler_rate_per_second", level="chat") == 1.0
    assert value(telemetry, "classbot_scheduler_adapted", level="chat") == 0
    scheduler.stats.record_send(chat_id=-5, kind="final", queued=0.1)
    scheduler.stats.retries += 2
    scheduler.open_stream(7).retry_after(3.0)  # Telegram said 429 to a send in chat 7
    lowered = scheduler.current_rates().chats[7].per_second
    assert lowered == 0.5  # halved (bot.scheduler.adapt)
    assert value(telemetry, "classbot_scheduler_sends_total", kind="final") == 1
    assert value(telemetry, "classbot_scheduler_retries_total") == 2
    assert value(telemetry, "classbot_scheduler_rate_cuts_total", level="chat") == 1
    assert value(telemetry, "classbot_scheduler_rate_per_second", level="chat") == lowered
    assert value(telemetry, "classbot_scheduler_adapted", level="chat") == 1
    assert value(telemetry, "classbot_scheduler_adapted", level="global") == 0
    rate = "classbot_scheduler_configured_rate_per_second"
    assert value(telemetry, rate, level="chat") == 1.0
    assert value(telemetry, rate, level="group") == pytest.approx(20 / 60)
    assert value(telemetry, rate, level="global") == 24.0
    assert value(telemetry, "classbot_scheduler_rate_per_second", level="global") == 24.0
    assert value(telemetry, "classbot_scheduler_max_in_flight") == limits.max_in_flight


# -- readiness ----------------------------------------------------------------------------


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    """A client of the real test redis-server."""
    client = redis.asyncio.from_url(redis_url)
    yield client
    await client.aclose()


async def test_readiness_follows_the_last_successful_bot_api_call(
    redis_client: redis.asyncio.Redis,
) -> None:
    """Without a probe (polling): not ready before any 200, ready within the freshness
    window, not ready after it, each time with one line saying so."""
    clock = FakeClock()
    telemetry = Telemetry(clock=clock)
    readiness = Readiness(telemetry, redis_of=lambda: redis_client, fresh_seconds=30)
    assert await readiness.problem() == "telegram: no successful Bot API call yet"
    telemetry.telegram_call("getUpdates", "429")
    assert await readiness.problem() == "telegram: no successful Bot API call yet"
    telemetry.telegram_call("getUpdates", "200")
    clock.now += 30
    assert await readiness.problem() is None
    clock.now += 1
    assert await readiness.problem() == "telegram: no successful Bot API call for 31 s"


async def test_a_stale_answer_is_refreshed_by_one_probe_at_a_time(
    redis_client: redis.asyncio.Redis,
) -> None:
    """With a probe (webhook mode), concurrent checks of a stale answer probe once and are
    ready when it succeeds; a failing probe is named by its error class."""
    clock = FakeClock()
    telemetry = Telemetry(clock=clock)
    probes: list[float] = []

    async def get_me() -> object:
        probes.append(clock.now)
        await asyncio.sleep(0.05)
        telemetry.telegram_call("getMe", "200")
        return True

    async def failing() -> object:
        raise NetworkError("httpx.ConnectError: refused")

    readiness = Readiness(telemetry, redis_of=lambda: redis_client, probe=get_me)
    assert await asyncio.gather(*(readiness.problem() for _ in range(3))) == [None] * 3
    assert probes == [1000.0]
    clock.now += 100
    broken = Readiness(telemetry, redis_of=lambda: redis_client, probe=failing)
    assert await broken.problem() == "telegram: getMe failed (NetworkError)"


async def test_redis_that_does_not_answer_or_is_not_open_fails_readiness() -> None:
    """A Redis server that accepts but never answers PING fails within the timeout; a store
    not open yet is "starting"; both are one line next to the Telegram verdict."""
    telemetry = Telemetry()
    telemetry.telegram_call("getUpdates", "200")

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client goes away; never answers
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = redis.asyncio.Redis(host="127.0.0.1", port=port)
    try:
        readiness = Readiness(telemetry, redis_of=lambda: client, ping_timeout=0.2)
        assert await readiness.problem() == "redis: no answer to PING within 0.2 s"
    finally:
        await client.aclose()
        server.close()
        await server.wait_closed()

    def not_open() -> redis.asyncio.Redis:
        raise RuntimeError("services are not started yet")

    starting = Readiness(Telemetry(), redis_of=not_open)
    assert await starting.problem() == (
        "starting: the store is not open yet; telegram: no successful Bot API call yet"
    )


async def test_a_metrics_port_in_use_is_a_configuration_error() -> None:
    """The polling-mode server on a port something else listens on fails with a
    ConfigError naming METRICS_PORT (the entry's exit status 2), not uvicorn's exit."""
    app = build_application(make_settings())
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"METRICS_PORT {port} on METRICS_HOST 127.0.0.1"):
            await HealthServer.start(app, host="127.0.0.1", port=port)
