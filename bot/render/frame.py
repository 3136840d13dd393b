"""What the classic and the rich reply frames share: their texts, the header that says how
long the model thought, which layout a frame takes, and where a cut reasoning tail starts.

:mod:`bot.render.markdown` (text + entities) and :mod:`bot.render.rich` (rich Markdown) lay
out the same frame; each measures and marks it in its own form. Pure, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["ELLIPSIS", "ReplyStrings", "frame_header", "start_tail_at_break"]

ELLIPSIS = "…"
"""Leads a reasoning tail that was cut."""


@dataclass(frozen=True)
class ReplyStrings:
    """User-facing texts of a reply frame; ``{seconds}`` is replaced by whole seconds.

    The defaults are English; the bot's localisation passes its own.
    """

    thinking: str = "Thinking… {seconds}s"
    thinking_untimed: str = "Thinking…"
    thought_for: str = "Thought for {seconds}s"
    thought_untimed: str = "Thought"


def frame_header(
    strings: ReplyStrings,
    *,
    reasoning: str,
    answer_markdown: str,
    partial: bool,
    seconds: float | None,
) -> tuple[bool, str]:
    """Which layout a frame takes and its reasoning header: ``(True, thinking header)``
    while the model still thinks (``partial``, ``reasoning`` but no answer yet), else
    ``(False, "thought for" title)``.

    ``seconds`` is rounded to whole seconds (negative ones to 0); None or a non-finite
    value uses the untimed text. ``reasoning`` is expected already stripped.
    """
    if reasoning and partial and not answer_markdown.strip():
        return True, _fill(strings.thinking, strings.thinking_untimed, seconds)
    return False, _fill(strings.thought_for, strings.thought_untimed, seconds)


def start_tail_at_break(tail: str) -> str:
    """A tail already cut to size, started after the first line break (else space) in its
    first third, its leading whitespace dropped and :data:`ELLIPSIS` put in front."""
    window = len(tail) // 3
    for separator in ("\n", " "):
        found = tail.find(separator, 0, window)
        if found >= 0:
            tail = tail[found + 1 :]
            break
    return ELLIPSIS + tail.lstrip()


def _fill(template: str, untimed: str, seconds: float | None) -> str:
    """Fill ``template`` with whole ``seconds``; ``untimed`` when seconds are unknown."""
    if seconds is None or not math.isfinite(seconds):
        return untimed
    return template.format(seconds=max(0, round(seconds)))
