"""Operator tools: ``python -m bot check`` validates the configuration and probes
every enabled platform; ``python -m bot chat`` holds a conversation in the terminal
through the bot's own turn."""

from bot.ops.chat import run_chat
from bot.ops.check import run_check

__all__ = ["run_chat", "run_check"]
