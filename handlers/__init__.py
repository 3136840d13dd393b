"""Thin PTB callbacks: parse the update, call one service, answer."""

from handlers.callbacks import answer_unknown_button, change_setting, choose_model
from handlers.commands import (
    regenerate_answer,
    reset_conversation,
    show_help,
    show_model_menu,
    show_settings,
    show_usage,
    start_bot,
    stop_answer,
    toggle_shared,
)
from handlers.errors import report_error
from handlers.filters import UNSUPPORTED_KINDS, AddressedMessage, AddressedText, CommandToThisBot
from handlers.gate import gate_update
from handlers.messages import answer_message
from handlers.migration import follow_migration
from handlers.photos import answer_photo
from handlers.unsupported import hint_unknown_command, tell_unsupported

__all__ = [
    "UNSUPPORTED_KINDS",
    "AddressedMessage",
    "AddressedText",
    "CommandToThisBot",
    "answer_message",
    "answer_photo",
    "answer_unknown_button",
    "change_setting",
    "choose_model",
    "follow_migration",
    "gate_update",
    "hint_unknown_command",
    "regenerate_answer",
    "report_error",
    "reset_conversation",
    "show_help",
    "show_model_menu",
    "show_settings",
    "show_usage",
    "start_bot",
    "stop_answer",
    "tell_unsupported",
    "toggle_shared",
]
