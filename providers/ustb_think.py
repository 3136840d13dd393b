"""A small incremental splitter for inline ``<think>…</think>`` reasoning (USTB only).

USTB deep-search answers may carry the model's reasoning inline in ``d.answer``,
wrapped in ``<think>…</think>``, with a tag possibly cut across two events
(providers.md "USTB web chat"; the sister deployment at aiassist.sdu.edu.cn sends
``"answer":"<think>好的"``). This module is private to the USTB client until the
project-wide splitter (providers/thinktags.py) replaces it through
``USTBClient(splitter_factory=…)``.
"""

from __future__ import annotations

from typing import Protocol

from providers.types import AnswerDelta, ReasoningDelta

__all__ = ["InlineThinkSplitter", "ThinkSplitter"]

_OPEN = "<think>"
_CLOSE = "</think>"


class ThinkSplitter(Protocol):
    """What the USTB client needs from a think-tag splitter.

    ``feed`` takes the next piece of answer text and returns the deltas it can
    already decide; ``flush`` returns whatever is held back at the end of the stream.
    """

    def feed(self, text: str) -> list[AnswerDelta | ReasoningDelta]:
        """Split the next piece of text into answer and reasoning deltas."""
        ...

    def flush(self) -> list[AnswerDelta | ReasoningDelta]:
        """Return the held-back text at the end of the stream."""
        ...


def _partial_tag_length(text: str, tag: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``tag``."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0


class InlineThinkSplitter:
    """Route text between ``<think>`` and ``</think>`` to reasoning, the rest to the answer.

    Tags may be split across ``feed`` calls: a trailing fragment that could start a
    tag is held back until the next call or ``flush``. Whitespace right after a tag
    (the ``"\\n"`` R1 models print) is dropped. An unclosed ``<think>`` at the end of
    the stream leaves its text as reasoning.
    """

    def __init__(self) -> None:
        self._in_think = False
        self._pending = ""
        self._strip_start = False

    def feed(self, text: str) -> list[AnswerDelta | ReasoningDelta]:
        """Split ``text`` (the next piece of ``d.answer``) into deltas, in order."""
        out: list[AnswerDelta | ReasoningDelta] = []
        buffer = self._pending + text
        while True:
            tag = _CLOSE if self._in_think else _OPEN
            index = buffer.find(tag)
            if index < 0:
                keep = _partial_tag_length(buffer, tag)
                self._emit(out, buffer[: len(buffer) - keep])
                self._pending = buffer[len(buffer) - keep :]
                return out
            self._emit(out, buffer[:index])
            buffer = buffer[index + len(tag) :]
            self._in_think = not self._in_think
            self._strip_start = True

    def flush(self) -> list[AnswerDelta | ReasoningDelta]:
        """Return the held-back fragment (a would-be tag that never completed)."""
        out: list[AnswerDelta | ReasoningDelta] = []
        self._emit(out, self._pending)
        self._pending = ""
        return out

    def _emit(self, out: list[AnswerDelta | ReasoningDelta], text: str) -> None:
        if self._strip_start:
            text = text.lstrip()
            if text:
                self._strip_start = False
        if not text:
            return
        kind = ReasoningDelta if self._in_think else AnswerDelta
        if out and type(out[-1]) is kind:
            out[-1] = kind(out[-1].text + text)
        else:
            out.append(kind(text))
