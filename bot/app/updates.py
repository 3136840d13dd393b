"""Updates PTB cannot parse ("poison" updates) are skipped, logged once, and moved past.

The failure this prevents (PTB 22.8, ``telegram/_bot.py`` ``Bot.get_updates`` and
``telegram/ext/_updater.py``): ``get_updates`` posts ``getUpdates`` and parses the whole
batch with ``Update.de_list``; one update that does not parse (a message whose ``chat``
has no ``id`` or is not an object, a ``date`` out of range, …) raises for the batch. PTB
logs the whole raw batch at CRITICAL, the Updater confirms nothing and asks again with the
same ``offset``: polling is wedged for every user, across restarts, with the batch logged
on every retry.

The fix for long polling is :class:`SkippingBot`, an ``ExtBot`` given to the
ApplicationBuilder with ``.bot(...)`` (see :func:`skipping_bot`). It overrides two steps:

* ``_do_post`` (PTB's documented hook between ``Bot._post`` and the HTTP request, the one
  ``ExtBot`` itself overrides for rate limiting): for ``getUpdates`` it tries
  ``Update.de_json`` on each update of the raw result and drops the ones that raise, so
  ``Update.de_list`` after it parses only good updates (each good one is parsed twice;
  an update is a few KB, which costs microseconds).
* ``get_updates``: the Updater confirms updates with ``offset = last update_id + 1`` of
  what it got. When the batch ends in poison there is nothing after it to confirm it, so
  the next call, if it asks for exactly the offset the Updater would have computed, asks
  for the one after the poison instead. (Only then: an Updater that dropped its batch
  asks again with the old offset, and its updates come back.)

Webhook mode uses :func:`parse_update` the same way (:mod:`bot.app.webhook`): an update
that does not parse is answered 200 so Telegram does not deliver it again (Bot API
``setWebhook``: a non-2xx answer is retried).

Logging is bounded by :class:`PoisonLog`: one WARNING per poison ``update_id`` with the
id, the exception's class and the update's type (``message``, ``callback_query``, …),
never the body; at most :data:`POISON_LINES_PER_MINUTE` such lines a minute, the rest
counted in one summary line.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from telegram import Update
from telegram._utils.defaultvalue import DEFAULT_NONE
from telegram._utils.types import JSONDict, ODVInput, TimePeriod
from telegram.constants import UpdateType
from telegram.ext import ExtBot
from telegram.request import HTTPXRequest

from bot.app.bot_api import BotApiPath

__all__ = [
    "POISON_LINES_PER_MINUTE",
    "PoisonLog",
    "SkippingBot",
    "parse_update",
    "skipping_bot",
    "update_id_of",
]

log = logging.getLogger(__name__)

POISON_LINES_PER_MINUTE = 10
"""At most this many "skipped update" lines a minute; the rest are counted in one line."""
_REMEMBERED_IDS = 1024
_UPDATE_TYPES = frozenset(UpdateType)


def update_id_of(data: object) -> int | None:
    """The ``update_id`` of a raw update: an ``int`` (not a ``bool``), else ``None``."""
    if not isinstance(data, dict):
        return None
    update_id = data.get("update_id")
    if isinstance(update_id, int) and not isinstance(update_id, bool):
        return update_id
    return None


class PoisonLog:
    """Logs skipped updates: once per ``update_id``, at most ``per_minute`` lines a minute.

    ``clock`` gives seconds (monotonic). When a minute's lines ran out, the next line after
    the minute says how many were skipped unlogged meanwhile, so at most
    ``per_minute + 1`` lines are written in any minute.
    """

    def __init__(
        self,
        *,
        per_minute: int = POISON_LINES_PER_MINUTE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._per_minute = per_minute
        self._clock = clock
        self._seen: OrderedDict[int, None] = OrderedDict()
        self._window_start = clock()
        self._lines = 0
        self._unlogged = 0

    def skipped(self, data: object, exc: BaseException) -> None:
        """Record that the raw update ``data`` was skipped because parsing it raised ``exc``."""
        update_id = update_id_of(data)
        if update_id is not None:
            if update_id in self._seen:
                return
            self._seen[update_id] = None
            if len(self._seen) > _REMEMBERED_IDS:
                self._seen.popitem(last=False)
        now = self._clock()
        if now - self._window_start >= 60.0:
            if self._unlogged:
                log.warning(
                    "%d more unparsable updates skipped in the last minute, unlogged",
                    self._unlogged,
                )
            self._window_start, self._lines, self._unlogged = now, 0, 0
        if self._lines >= self._per_minute:
            self._unlogged += 1
            return
        self._lines += 1
        kinds = sorted(k for k in data if k in _UPDATE_TYPES) if isinstance(data, dict) else []
        log.warning(
            "skipped update %s that PTB cannot parse (%s; type: %s)",
            "?" if update_id is None else update_id,
            type(exc).__name__,
            ", ".join(kinds) or "?",
        )


def parse_update(data: object, bot: ExtBot[Any], poison: PoisonLog) -> Update | None:
    """``Update.de_json(data, bot)``, or ``None`` (logged to ``poison``) when that raises or
    ``data`` is not an object with an integer ``update_id``.

    Any exception counts: PTB's parsers raise ``TypeError``, ``KeyError``, ``ValueError``,
    ``AttributeError``, ``OverflowError``… on shapes they do not expect.
    """
    try:
        if update_id_of(data) is None:  # the Updater adds 1 to it: a str would wedge it too
            raise TypeError("an update is a JSON object with an integer update_id")
        return Update.de_json(data, bot)  # type: ignore[arg-type]  # a dict, checked above
    except Exception as exc:  # any parse failure of foreign data makes it a poison update
        poison.skipped(data, exc)
        return None


class SkippingBot(ExtBot[None]):
    """An ``ExtBot`` whose ``get_updates`` skips updates PTB cannot parse (module docstring).

    Construct it like ``ExtBot`` (or with :func:`skipping_bot`); ``poison`` is where skipped
    updates are logged (a fresh :class:`PoisonLog` by default).
    """

    __slots__ = ("_pending_skip", "_poison")

    def __init__(self, *args: Any, poison: PoisonLog | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._poison = poison or PoisonLog()
        # (offset the Updater will ask for next, offset past the poison that ended the batch)
        self._pending_skip: tuple[int, int] | None = None

    @property
    def poison(self) -> PoisonLog:
        """Where skipped updates are logged."""
        return self._poison

    async def get_updates(
        self,
        offset: int | None = None,
        limit: int | None = None,
        timeout: TimePeriod | None = None,  # noqa: ASYNC109 (PTB's signature)
        allowed_updates: Sequence[str] | None = None,
        *,
        read_timeout: ODVInput[float] = DEFAULT_NONE,
        write_timeout: ODVInput[float] = DEFAULT_NONE,
        connect_timeout: ODVInput[float] = DEFAULT_NONE,
        pool_timeout: ODVInput[float] = DEFAULT_NONE,
        api_kwargs: JSONDict | None = None,
    ) -> tuple[Update, ...]:
        """``ExtBot.get_updates``, past a poison update that ended the previous batch."""
        pending, self._pending_skip = self._pending_skip, None
        if pending is not None and offset == pending[0]:
            offset = pending[1]
        return await super().get_updates(
            offset=offset,
            limit=limit,
            timeout=timeout,
            allowed_updates=allowed_updates,
            read_timeout=read_timeout,
            write_timeout=write_timeout,
            connect_timeout=connect_timeout,
            pool_timeout=pool_timeout,
            api_kwargs=api_kwargs,
        )

    async def _do_post(
        self,
        endpoint: str,
        data: JSONDict,
        *,
        read_timeout: ODVInput[float] = DEFAULT_NONE,
        write_timeout: ODVInput[float] = DEFAULT_NONE,
        connect_timeout: ODVInput[float] = DEFAULT_NONE,
        pool_timeout: ODVInput[float] = DEFAULT_NONE,
    ) -> bool | JSONDict | list[JSONDict]:
        result = await super()._do_post(
            endpoint,
            data,
            read_timeout=read_timeout,
            write_timeout=write_timeout,
            connect_timeout=connect_timeout,
            pool_timeout=pool_timeout,
        )
        if endpoint != "getUpdates" or not isinstance(result, list):
            return result
        good: list[JSONDict] = []
        poison_tail: int | None = None  # the last update_id, when the last update is poison
        for raw in result:
            if parse_update(raw, self, self._poison) is None:
                poison_tail = update_id_of(raw)
            else:
                good.append(raw)
                poison_tail = None
        if poison_tail is not None:
            sent = data.get("offset")
            next_offset = good[-1]["update_id"] + 1 if good else sent
            if isinstance(next_offset, int):
                self._pending_skip = (next_offset, poison_tail + 1)
        return good


def skipping_bot(
    token: str,
    *,
    base_url: str,
    base_file_url: str,
    make_request: Callable[[int], HTTPXRequest] = lambda size: HTTPXRequest(
        connection_pool_size=size
    ),
) -> SkippingBot:
    """A :class:`SkippingBot` with what ``ApplicationBuilder`` would give its ``ExtBot``.

    PTB 22.8 ``ApplicationBuilder._build_request``: an ``HTTPXRequest`` with 256
    connections for the Bot API calls and one for ``getUpdates``, default timeouts.
    ``make_request(connection_pool_size)`` makes each (an ``HTTPXRequest`` subclass that
    counts the calls, :class:`bot.app.metrics.CountingRequest`, in the bot). Its rate
    limiter, :class:`bot.app.bot_api.BotApiPath`, is the one path of every other Bot API
    call: the handlers' sends into chats within the send scheduler's budget once the
    services attach it, Telegram's ``retry_after`` waited out, network errors and 5xx
    retried within a bound.
    """
    return SkippingBot(
        token=token,
        base_url=base_url,
        base_file_url=base_file_url,
        request=make_request(256),
        get_updates_request=make_request(1),
        rate_limiter=BotApiPath(),
    )
