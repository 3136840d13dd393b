"""Stopping without losing replies or updates (SIGTERM from ``docker compose stop``, SIGINT).

On the first signal the bot stops taking updates (polling: :mod:`bot.app.polling` stops
the Updater; webhook: uvicorn stops accepting connections, :mod:`bot.app.webhook`), then
:func:`wind_down`:

1. closes the :class:`DrainingUpdateProcessor`: no update begins from now on. Each
   update received but not begun (still queued, or waiting behind an earlier update of
   its conversation) is set aside;
2. gives the updates in progress (the replies being written) up to
   ``SHUTDOWN_GRACE_SECONDS`` to finish (a second signal cuts this short);
3. ends the rest (:meth:`ConversationService.end_for_restart`): each provider stream is
   closed, the partial answer is shown finished under "interrupted by a restart — send
   /retry" (en/zh) and stored, so ``/retry`` works; they get :data:`END_SECONDS` for
   their final frames. A reply still not finished then is cancelled: its in-flight
   record stays, and the next start tells its user (:mod:`bot.app.inflight`);
4. saves the updates set aside to Redis (:class:`storage.inflight.DeferredUpdates`);
   the next start handles them before any new one (:func:`requeue_deferred`).

Why set aside rather than leave to Telegram: PTB's Updater confirms each batch of
``getUpdates`` as soon as it asks for the next one (offset = last ``update_id`` + 1,
PTB 22.8 ``Updater._start_polling``), and confirms the last batch once more on stop
(``_get_updates_cleanup``), so Telegram holds none of the updates the bot has
received; a webhook update was answered 200 when it was queued. Holding the offset
back instead would make every long poll return at once with the same updates.

The process exits within about ``SHUTDOWN_GRACE_SECONDS`` + :data:`END_SECONDS` + 1 s;
Docker's stop timeout (10 s by default; compose ``stop_grace_period``) must exceed
that. A process killed outright (SIGKILL, OOM) loses the updates it had received and
not begun; its replies in flight are recorded and their users told at the next start.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import logging
import signal
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError
from telegram import Update
from telegram.ext import Application

from bot.app.ordering import OrderedUpdateProcessor
from bot.app.updates import PoisonLog, parse_update
from storage.inflight import DeferredUpdates

if TYPE_CHECKING:
    from handlers.context import Services

__all__ = [
    "END_SECONDS",
    "STOP_SIGNALS",
    "DrainingUpdateProcessor",
    "StopSignals",
    "processor_of",
    "requeue_deferred",
    "wind_down",
]

log = logging.getLogger(__name__)

AnyApplication = Application[Any, Any, Any, Any, Any, Any]

END_SECONDS = 2.0
"""Seconds the replies a shutdown ended get to show their final text, after the grace."""
GIVE_UP_SECONDS = 1.0
"""Seconds the Application then gets to stop once the updates still running are cancelled."""
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class DrainingUpdateProcessor(OrderedUpdateProcessor):
    """An :class:`OrderedUpdateProcessor` a shutdown can close (see the module docstring).

    An update *begins* when its handlers start to run. Once :meth:`close` was called no
    update begins: each one that reaches the processor, or was waiting in it, is set
    aside (:meth:`take_set_aside`). ``running`` counts the updates begun and not ended.
    """

    def __init__(self, max_concurrent_updates: int, **kwargs: Any) -> None:
        super().__init__(max_concurrent_updates, **kwargs)
        self.closed = False
        self._waiting: set[asyncio.Task[Any]] = set()
        self._running: set[asyncio.Task[Any]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._set_aside: list[tuple[int, object]] = []  # (arrival number, update)
        self._arrivals = itertools.count()

    @property
    def running(self) -> int:
        """The updates begun and not yet ended."""
        return len(self._running)

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Run ``coroutine`` in conversation order, unless the processor is closed by then."""
        task = asyncio.current_task()
        assert task is not None  # PTB runs each update in a task of its own
        arrival = next(self._arrivals)
        began = False

        async def begin() -> None:
            nonlocal began
            if self.closed:
                return
            began = True
            self._waiting.discard(task)
            self._running.add(task)
            self._idle.clear()
            await coroutine

        guarded = begin()
        self._waiting.add(task)
        try:
            await super().do_process_update(update, guarded)
        finally:
            self._waiting.discard(task)
            self._running.discard(task)
            if not self._running:
                self._idle.set()
            if not began:
                guarded.close()
                if inspect.iscoroutine(coroutine):
                    coroutine.close()
                self._set_aside.append((arrival, update))

    def close(self) -> int:
        """Let no update begin from now on; the ones waiting are set aside now. Returns
        how many were waiting."""
        self.closed = True
        waiting = list(self._waiting)
        for task in waiting:
            task.cancel()
        return len(waiting)

    async def wait_idle(self, within: float, hurry: asyncio.Event | None = None) -> bool:
        """Wait up to ``within`` seconds (less once ``hurry`` is set) for no update to be
        running; returns whether none is."""
        waits: set[asyncio.Future[Any]] = {asyncio.ensure_future(self._idle.wait())}
        if hurry is not None:
            waits.add(asyncio.ensure_future(hurry.wait()))
        try:
            await asyncio.wait(waits, timeout=within, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        return self._idle.is_set()

    def cancel_running(self) -> int:
        """Cancel every update still running; returns how many there were."""
        running = list(self._running)
        for task in running:
            task.cancel()
        return len(running)

    def take_set_aside(self) -> list[object]:
        """The updates set aside so far, in the order they reached the processor; forgets
        them."""
        taken, self._set_aside = sorted(self._set_aside, key=lambda item: item[0]), []
        return [update for _, update in taken]


def _services_of(app: AnyApplication) -> Services | None:
    """The bot's services, or ``None`` when ``post_init`` did not build them."""
    try:
        services: Services = app.bot_data.services
    except RuntimeError:
        return None
    return services


def processor_of(app: AnyApplication) -> DrainingUpdateProcessor:
    """``app``'s update processor; ``TypeError`` when it is not a
    :class:`DrainingUpdateProcessor` (see :func:`bot.app.wiring.build_application`)."""
    processor = app.update_processor
    if not isinstance(processor, DrainingUpdateProcessor):
        raise TypeError("the Application was not built with a DrainingUpdateProcessor")
    return processor


async def wind_down(
    app: AnyApplication,
    *,
    grace: float,
    hurry: asyncio.Event | None = None,
    end_within: float = END_SECONDS,
) -> None:
    """Steps 1-4 of the module docstring, then ``app`` is stopped (``Application.stop``).

    Call it once nothing feeds the update queue any more (the Updater stopped, the
    webhook server closed). ``grace``: seconds for the updates in progress to finish;
    ``hurry``: set (a second signal) to end them at once. Raises ``TypeError`` when
    ``app`` has no :class:`DrainingUpdateProcessor`. Never raises a Redis error (a failed
    save of the set-aside updates is logged).
    """
    processor = processor_of(app)
    processor.close()
    if processor.running:
        log.info(
            "stopping: %d update(s) in progress get up to %g s to finish", processor.running, grace
        )
    if not await processor.wait_idle(grace, hurry):
        log.info("stopping: ending %d update(s) still in progress", processor.running)
    services = _services_of(app)
    if services is not None:
        services.conversations.end_for_restart()
    stopping = asyncio.ensure_future(app.stop())
    await asyncio.wait({stopping}, timeout=end_within)
    if not stopping.done():
        cancelled = processor.cancel_running()
        log.warning(
            "stopping: gave up on %d update(s); their users are told at the next start", cancelled
        )
        await asyncio.wait({stopping}, timeout=GIVE_UP_SECONDS)
        if not stopping.done():
            log.error("stopping: the Application did not stop in time")
    set_aside = [u for u in processor.take_set_aside() if isinstance(u, Update)]
    if set_aside and services is not None:
        await _save(DeferredUpdates(services.store.redis), set_aside)


async def _save(deferred: DeferredUpdates, updates: Sequence[Update]) -> None:
    try:
        await deferred.save([update.to_json() for update in updates])
    except (RedisError, OSError) as exc:
        log.error(
            "stopping: %d update(s) received and not begun are lost (%s)",
            len(updates),
            type(exc).__name__,
        )
        return
    log.info(
        "stopping: %d update(s) received and not begun are saved for the next start", len(updates)
    )


async def requeue_deferred(app: AnyApplication, deferred: DeferredUpdates) -> int:
    """Put the updates the last shutdown set aside on ``app``'s update queue, oldest first,
    ahead of any new one; returns how many. One that does not parse is logged and dropped
    (:func:`bot.app.updates.parse_update`). Raises Redis errors."""
    poison = PoisonLog()
    count = 0
    for raw in await deferred.take():
        try:
            data = json.loads(raw)
        except ValueError:
            data = raw
        update = parse_update(data, app.bot, poison)
        if update is not None:
            app.update_queue.put_nowait(update)
            count += 1
    if count:
        log.info("handling %d update(s) the last shutdown set aside", count)
    return count


class StopSignals:
    """SIGTERM and SIGINT as two events: ``stop`` at the first, ``hurry`` at the next.

    Installed on the running loop (``loop.add_signal_handler``) inside ``with``; the
    previous handling is restored on exit.
    """

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.hurry = asyncio.Event()

    def received(self, signum: int) -> None:
        """Note a signal: the first sets ``stop``, a later one ``hurry``."""
        name = signal.Signals(signum).name
        if self.stop.is_set():
            log.info("%s again: ending the replies in flight now", name)
            self.hurry.set()
        else:
            log.info("%s: stopping", name)
            self.stop.set()

    def __enter__(self) -> StopSignals:
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self.received, sig)
        return self

    def __exit__(self, *exc: object) -> None:
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
