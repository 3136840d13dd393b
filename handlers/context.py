"""Typed access to the bot's services from PTB callbacks (``context.services``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from telegram.ext import Application, CallbackContext, ExtBot

if TYPE_CHECKING:
    from bot.conversation.turn import ConversationService
    from bot.reply.stream import ReplyFactory
    from bot.settings import Settings
    from providers.catalogue import Catalogue
    from storage import ConversationStore

__all__ = ["BotContext", "BotData", "Services"]


@dataclass
class Services:
    """The long-lived objects every handler needs; built in ``post_init``."""

    settings: Settings
    store: ConversationStore
    conversations: ConversationService
    catalogue: Catalogue
    replies: ReplyFactory


class BotData:
    """``application.bot_data``: holds :class:`Services` once the application started."""

    def __init__(self) -> None:
        self._services: Services | None = None

    @property
    def services(self) -> Services:
        """The services; raises ``RuntimeError`` before ``post_init`` ran."""
        if self._services is None:
            raise RuntimeError("services are not started yet")
        return self._services

    @services.setter
    def services(self, value: Services) -> None:
        self._services = value


class BotContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], BotData]):
    """The callback context of this bot: ``context.services`` is typed."""

    def __init__(
        self,
        application: Application[Any, Any, Any, Any, Any, Any],
        chat_id: int | None = None,
        user_id: int | None = None,
    ) -> None:
        super().__init__(application=application, chat_id=chat_id, user_id=user_id)

    @property
    def services(self) -> Services:
        """The bot's services."""
        return self.bot_data.services
