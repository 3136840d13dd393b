"""The stop button of a rich draft: a ``stopped_message_generation`` update stops its answer.

A private answer streamed as rich drafts (``sendRichMessageDraft`` with ``can_stop``,
:mod:`bot.reply.stream`) shows the user a stop button. A press arrives as an update with
only ``stopped_message_generation`` (Bot API 10.3, ``MessageGenerationStopped``: the
private chat, the ``draft_id``, the topic), which PTB 22.8 keeps in ``Update.api_kwargs``
(:func:`bot.reply.rich_api.stopped_generation`; docs/telegram.md "Rich messages (Bot API
10.1+)"). Telegram only hides the draft: the bot stops the answer itself, as ``/stop``
does (the provider stream closed, the partial answer kept and marked stopped, stored).

PTB sees no user and no chat in such an update (``effective_user`` and
``effective_chat`` are ``None``), so the gate (group -1) would take it for a stranger's
when ``ALLOWED_USER_IDS`` is set. :class:`StoppedGenerationHandler` therefore runs before
the gate (group -2, :mod:`bot.app.wiring`) and ends the update there
(``ApplicationHandlerStop``): it stops only a reply this process is showing in that very
chat with that draft id (:meth:`bot.reply.stream.ReplyFactory.stop_generation`), and only
for a chat the allow-lists admit (a private chat's id is its user's). Pressing twice, or
after the answer ended, changes nothing. It is never a poison update: it parses.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import Update
from telegram.ext import ApplicationHandlerStop, BaseHandler

from bot.reply.rich_api import StoppedGeneration, stopped_generation
from handlers.access import Verdict, verdict
from handlers.context import BotContext

__all__ = ["StoppedGenerationHandler", "stop_generation"]

log = logging.getLogger(__name__)


async def stop_generation(update: Update, context: BotContext) -> None:
    """Stop the answer whose rich draft's stop button was pressed (module docstring); the
    update goes no further."""
    pressed = stopped_generation(update)
    if pressed is None:
        return
    services = context.services
    admitted = verdict(services.settings, pressed.chat_id, pressed.chat_id, group=False)
    if admitted is not Verdict.ALLOWED:
        log.info("a stop button press from a chat the allow-lists refuse; ignored")
    elif not services.replies.stop_generation(pressed.chat_id, pressed.draft_id):
        log.info("a stop button press for no answer being written; ignored")
    raise ApplicationHandlerStop


class StoppedGenerationHandler(BaseHandler[Update, BotContext, None]):
    """Runs its callback for updates carrying ``stopped_message_generation`` only."""

    def __init__(
        self,
        callback: Callable[[Update, BotContext], Coroutine[Any, Any, None]] = stop_generation,
    ) -> None:
        """Handle stop presses with ``callback`` (:func:`stop_generation`)."""
        super().__init__(callback, block=True)

    def check_update(self, update: object) -> StoppedGeneration | None:
        """The press ``update`` carries, if it is an :class:`~telegram.Update` with one."""
        return stopped_generation(update) if isinstance(update, Update) else None
