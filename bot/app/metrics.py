"""The bot's Prometheus metrics: one :class:`Telemetry` (one ``CollectorRegistry``) per
Application, fed by the update handlers, the conversation turn, the Bot API requests and
the send scheduler; served as ``/metrics`` by :mod:`bot.app.health`.

Every metric name starts with ``classbot_``; counters end in ``_total`` (prometheus-client
adds the suffix, and a ``_created`` sample, to each counter). Labels hold no user data:
``model`` is a catalogue key (``"<platform>:<model>"``), ``method`` a Bot API method name,
``type`` an update type (Bot API ``Update`` field names, PTB ``telegram.constants.UpdateType``).

=================================================  ==============================================
metric                                             meaning
=================================================  ==============================================
``classbot_updates_total{type}``                   updates received (before the duplicate gate)
``classbot_turns_total{model,outcome}``            conversation turns by how they ended
                                                   (see :class:`bot.conversation.turn.TurnObserver`)
``classbot_tokens_total{model,kind}``              tokens the provider reported, ``kind`` =
                                                   ``prompt`` or ``completion``
``classbot_provider_first_token_seconds{model}``   request → first answer or reasoning text
``classbot_provider_stream_seconds{model}``        request → end of a stream that completed
``classbot_provider_errors_total{model,error}``     provider errors by class (after retries)
``classbot_telegram_requests_total{method,status}``  Bot API calls by HTTP status (``"200"``,
                                                   ``"429"``, …, or ``timeout`` / ``network``);
                                                   file downloads count as ``method="file"``
``classbot_telegram_last_success_age_seconds``     seconds since a Bot API call last got HTTP 200
``classbot_redis_errors_total{error}``             errors Redis commands raised, after redis-py's
                                                   retries (:class:`storage.backend.ObservedRedis`)
``classbot_scheduler_*``                           the send scheduler (:class:`SchedulerCollector`)
``process_*``                                      CPU, memory, file descriptors (Linux)
=================================================  ==============================================
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from telegram import Update
from telegram._utils.defaultvalue import DEFAULT_NONE
from telegram._utils.types import ODVInput
from telegram.constants import UpdateType
from telegram.error import NetworkError, TimedOut
from telegram.ext import Application
from telegram.request import HTTPXRequest, RequestData

from bot.scheduler.core import SendScheduler
from handlers.context import BotContext, BotData
from providers.types import Usage
from storage.backend import ObservedRedis

if TYPE_CHECKING:
    from bot.app.health import HealthServer

__all__ = [
    "FIRST_TOKEN_BUCKETS",
    "STREAM_BUCKETS",
    "AppData",
    "CountingRequest",
    "SchedulerCollector",
    "Telemetry",
    "app_data",
    "telemetry_of",
    "update_type",
]

FIRST_TOKEN_BUCKETS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)
"""Seconds; a model answers in well under a second to tens of seconds (reasoning models)."""
STREAM_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0, 40.0, 60.0, 120.0, 300.0)
"""Seconds; a whole answer takes seconds to minutes."""
_UPDATE_TYPES: tuple[str, ...] = tuple(str(kind.value) for kind in UpdateType)


def update_type(update: Update) -> str:
    """The Bot API field an update carries (``"message"``, ``"callback_query"``, …).

    ``"other"`` when none of the fields PTB knows (``telegram.constants.UpdateType``) is set.
    """
    for kind in _UPDATE_TYPES:
        if getattr(update, kind, None) is not None:
            return kind
    return "other"


class Telemetry:
    """The metrics of one Application, in their own ``registry`` (not prometheus-client's
    global one, so several Applications, as in the tests, never collide).

    It is the conversation turn's :class:`~bot.conversation.turn.TurnObserver`, the Bot
    API requests' recorder (:class:`CountingRequest`), a PTB update handler
    (:meth:`count_update`) and the Redis client's error listener (:meth:`watch_redis`).
    ``clock`` gives
    seconds (monotonic) for the age of the last successful Bot API call.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.registry = CollectorRegistry()
        self.clock = clock
        self._telegram_ok_at: float | None = None
        self._scheduler: SendScheduler | None = None
        r = self.registry
        self.updates = Counter(
            "classbot_updates", "Updates received, by type", ["type"], registry=r
        )
        self.turns = Counter(
            "classbot_turns",
            "Conversation turns, by model and outcome",
            ["model", "outcome"],
            registry=r,
        )
        self.tokens = Counter(
            "classbot_tokens",
            "Tokens the provider reported, by model and kind",
            ["model", "kind"],
            registry=r,
        )
        self.first_token = Histogram(
            "classbot_provider_first_token_seconds",
            "Seconds from the request to the first answer or reasoning text",
            ["model"],
            buckets=FIRST_TOKEN_BUCKETS,
            registry=r,
        )
        self.stream_seconds = Histogram(
            "classbot_provider_stream_seconds",
            "Seconds from the request to the end of a completed stream",
            ["model"],
            buckets=STREAM_BUCKETS,
            registry=r,
        )
        self.provider_errors = Counter(
            "classbot_provider_errors",
            "Provider errors after retries, by model and class",
            ["model", "error"],
            registry=r,
        )
        self.telegram_requests = Counter(
            "classbot_telegram_requests",
            "Bot API calls, by method and HTTP status",
            ["method", "status"],
            registry=r,
        )
        self.redis_errors = Counter(
            "classbot_redis_errors",
            "Redis errors that reached the error handler, by class",
            ["error"],
            registry=r,
        )
        r.register(_LiveCollector(self))
        ProcessCollector(registry=r)

    # -- the conversation turn (bot.conversation.turn.TurnObserver) ---------------------

    def turn_ended(self, model: str, outcome: str, seconds: float) -> None:
        """Count one turn of ``model`` that ended with ``outcome``."""
        self.turns.labels(model=model, outcome=outcome).inc()

    def first_text(self, model: str, seconds: float) -> None:
        """Observe the seconds from a request to its first answer or reasoning text."""
        self.first_token.labels(model=model).observe(seconds)

    def stream_ended(self, model: str, seconds: float) -> None:
        """Observe the seconds from a request to the end of its completed stream."""
        self.stream_seconds.labels(model=model).observe(seconds)

    def provider_failed(self, model: str, error: BaseException) -> None:
        """Count a provider error by its class name."""
        self.provider_errors.labels(model=model, error=type(error).__name__).inc()

    def usage(self, model: str, usage: Usage) -> None:
        """Add the prompt and completion tokens of one reported usage."""
        self.tokens.labels(model=model, kind="prompt").inc(usage.prompt_tokens)
        self.tokens.labels(model=model, kind="completion").inc(usage.completion_tokens)

    # -- Telegram ------------------------------------------------------------------------

    def telegram_call(self, method: str, status: str) -> None:
        """Count one Bot API call; HTTP 200 also marks Telegram as answering now."""
        self.telegram_requests.labels(method=method, status=status).inc()
        if status == "200":
            self._telegram_ok_at = self.clock()

    def telegram_age(self) -> float | None:
        """Seconds since a Bot API call last got HTTP 200; ``None`` before the first."""
        if self._telegram_ok_at is None:
            return None
        return self.clock() - self._telegram_ok_at

    def counting_request(self, connection_pool_size: int) -> CountingRequest:
        """A Bot API request object that reports each call here."""
        return CountingRequest(self, connection_pool_size=connection_pool_size)

    async def count_update(self, update: Update, context: BotContext) -> None:
        """A PTB ``TypeHandler`` callback: count ``update`` by its type."""
        self.updates.labels(type=update_type(update)).inc()

    def watch_redis(self, client: object) -> None:
        """Count the errors of ``client``'s commands (a :class:`storage.backend.ObservedRedis`;
        another client, the embedded one, is left alone)."""
        if isinstance(client, ObservedRedis):
            client.on_error = self.redis_failed

    def redis_failed(self, error: BaseException) -> None:
        """Count one Redis error by its class name."""
        self.redis_errors.labels(error=type(error).__name__).inc()

    # -- the send scheduler --------------------------------------------------------------

    def watch_scheduler(self, scheduler: SendScheduler) -> None:
        """Report ``scheduler``'s state at each scrape (:class:`SchedulerCollector`)."""
        if self._scheduler is None:
            self.registry.register(SchedulerCollector(scheduler))
        self._scheduler = scheduler


class _LiveCollector:
    """Values read at scrape time from :class:`Telemetry` itself."""

    def __init__(self, telemetry: Telemetry) -> None:
        self._telemetry = telemetry

    def collect(self) -> Iterator[Metric]:
        """The age of the last successful Bot API call, once there was one."""
        age = self._telemetry.telegram_age()
        if age is not None:
            yield GaugeMetricFamily(
                "classbot_telegram_last_success_age_seconds",
                "Seconds since a Bot API call last got HTTP 200",
                value=age,
            )


class SchedulerCollector:
    """Reads a :class:`~bot.scheduler.core.SendScheduler`'s public state at each scrape.

    From ``scheduler.stats`` (:class:`~bot.scheduler.stats.SchedulerStats`):
    ``classbot_scheduler_sends_total{kind}``, ``classbot_scheduler_rate_cuts_total{level}``
    (429s that lowered a level's budget) and the counters ``superseded``, ``duplicates``,
    ``retries``, ``dropped``, ``errors`` and ``streams_failed`` (each
    ``classbot_scheduler_<name>_total``). From ``scheduler.current_rates()`` (adaptive
    flood control) and ``scheduler.limits``, per ``level`` (``chat``, ``group``,
    ``global``): ``classbot_scheduler_rate_per_second``, the send rate now (the global
    level's; for chats and groups the lowest one, the configured rate when none is
    adapted), ``classbot_scheduler_configured_rate_per_second``, and
    ``classbot_scheduler_adapted`` (chats or groups whose budget is lowered now; 0 or 1
    for global). Chat ids are never labels. ``classbot_scheduler_max_in_flight`` is the
    configured bound. The scheduler exposes no public queue length or count of sends in
    flight, so neither is reported.
    """

    _COUNTERS = ("superseded", "duplicates", "retries", "dropped", "errors", "streams_failed")
    _LEVELS = ("chat", "group", "global")

    def __init__(self, scheduler: SendScheduler) -> None:
        self._scheduler = scheduler

    def collect(self) -> Iterator[Metric]:
        """The scheduler's counters and rates, read now (in the event loop's thread)."""
        stats, limits = self._scheduler.stats, self._scheduler.limits
        sends = CounterMetricFamily(
            "classbot_scheduler_sends",
            "Bot API sends the scheduler launched, by job kind",
            labels=["kind"],
        )
        for kind, count in sorted(stats.sends_by_kind.items()):
            sends.add_metric([kind], count)
        yield sends
        cuts = CounterMetricFamily(
            "classbot_scheduler_rate_cuts",
            "Telegram 429s that lowered a level's send budget, by level",
            labels=["level"],
        )
        for level in self._LEVELS:
            cuts.add_metric([level], stats.rate_cuts[level])
        yield cuts
        for name in self._COUNTERS:
            yield CounterMetricFamily(
                f"classbot_scheduler_{name}",
                f"Scheduler {name.replace('_', ' ')}",
                value=getattr(stats, name),
            )
        configured = {
            "chat": limits.per_chat_per_second,
            "group": limits.per_group_per_minute / 60.0,
            "global": float(limits.global_per_second),
        }
        rates = self._scheduler.current_rates()
        adapted = {"chat": rates.chats, "group": rates.groups}
        now = {
            level: min((r.per_second for r in adapted[level].values()), default=configured[level])
            for level in ("chat", "group")
        }
        now["global"] = rates.global_.per_second
        counts = {level: len(adapted[level]) for level in ("chat", "group")}
        counts["global"] = int(rates.global_.per_second < rates.global_.nominal_per_second)
        for name, values, text in (
            ("rate_per_second", now, "Send rate now, by level (chats, groups: the lowest)"),
            ("configured_rate_per_second", configured, "Configured send rate, by level"),
            ("adapted", counts, "Levels whose send budget is lowered after a 429"),
        ):
            family = GaugeMetricFamily(f"classbot_scheduler_{name}", text, labels=["level"])
            for level in self._LEVELS:
                family.add_metric([level], float(values[level]))
            yield family
        yield GaugeMetricFamily(
            "classbot_scheduler_max_in_flight",
            "Sends allowed in flight at once",
            value=limits.max_in_flight,
        )


class CountingRequest(HTTPXRequest):
    """PTB's ``HTTPXRequest`` that counts each Bot API call in ``telemetry`` by method and
    HTTP status (``"timeout"`` / ``"network"`` when no answer came).

    The method is the last path segment of a ``POST`` (Bot API URLs are
    ``<base_url><token>/<method>``); a ``GET`` is a file download
    (``<base_file_url><token>/<file_path>``) and counts as ``"file"``, so neither the
    token nor a file path becomes a label. Other arguments are ``HTTPXRequest``'s.
    """

    def __init__(self, telemetry: Telemetry, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._telemetry = telemetry

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = DEFAULT_NONE,
        write_timeout: ODVInput[float] = DEFAULT_NONE,
        connect_timeout: ODVInput[float] = DEFAULT_NONE,
        pool_timeout: ODVInput[float] = DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """See ``telegram.request.BaseRequest.do_request``; counts the call, then returns
        ``(status, body)`` or raises as ``HTTPXRequest`` does."""
        api_method = url.rsplit("/", 1)[-1] if method == "POST" else "file"
        try:
            status, body = await super().do_request(
                url,
                method,
                request_data,
                read_timeout,
                write_timeout,
                connect_timeout,
                pool_timeout,
            )
        except TimedOut:
            self._telemetry.telegram_call(api_method, "timeout")
            raise
        except NetworkError:
            self._telemetry.telegram_call(api_method, "network")
            raise
        self._telemetry.telegram_call(api_method, str(status))
        return status, body


class AppData(BotData):
    """``application.bot_data`` of this bot: :class:`BotData` plus the :class:`Telemetry`
    (set by :func:`bot.app.wiring.build_application`, which gives it to the Bot API
    requests before the Application exists) and, in polling mode with ``METRICS_PORT``,
    the health server (:class:`bot.app.health.HealthServer`)."""

    def __init__(self) -> None:
        super().__init__()
        self._telemetry: Telemetry | None = None
        self.health_server: HealthServer | None = None

    @property
    def telemetry(self) -> Telemetry:
        """The Application's telemetry; ``RuntimeError`` before it was set."""
        if self._telemetry is None:
            raise RuntimeError("the Application has no telemetry")
        return self._telemetry

    @telemetry.setter
    def telemetry(self, value: Telemetry) -> None:
        self._telemetry = value


def app_data(app: Application[Any, Any, Any, Any, Any, Any]) -> AppData:
    """``app.bot_data`` as :class:`AppData`; ``TypeError`` for an Application built
    without it (see :func:`bot.app.wiring.build_application`)."""
    data = app.bot_data
    if not isinstance(data, AppData):
        raise TypeError("the Application's bot_data is not AppData")
    return data


def telemetry_of(app: Application[Any, Any, Any, Any, Any, Any]) -> Telemetry:
    """The :class:`Telemetry` of ``app`` (``TypeError`` as :func:`app_data`)."""
    return app_data(app).telemetry
