"""Split inline ``<think>…</think>`` reasoning out of streamed answer text.

Some deployments (DeepSeek-R1 served by vLLM/SGLang without a reasoning parser, the
USTB deep-search mode) put the model's reasoning inside ``delta.content`` wrapped in
``<think>`` tags instead of sending ``delta.reasoning_content`` (docs/providers.md "Common
rules"). :class:`ThinkTagSplitter` turns such content deltas into
:class:`~providers.types.ReasoningDelta` and :class:`~providers.types.AnswerDelta`,
even when a tag is split across deltas (``"<thi"`` + ``"nk>"``).

Rules:

- Only a ``<think>`` at the start of the content (after optional whitespace, which is
  dropped) opens reasoning; a ``<think>`` later in the answer is ordinary text.
- Reasoning runs until the first ``</think>``; whitespace right after it (models send
  ``"\\n\\n"``) is dropped, the rest is answer.
- At most a possible partial tag is held back: at the start, text that could still
  become ``<think>``; inside reasoning, a suffix that could still become ``</think>``.
  Everything else is emitted at once. Empty deltas are never emitted.
"""

from __future__ import annotations

from enum import Enum, auto
from typing import Protocol

from providers.types import AnswerDelta, ReasoningDelta

__all__ = ["CLOSE_TAG", "OPEN_TAG", "ThinkSplitter", "ThinkTagSplitter"]

OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"


class _State(Enum):
    START = auto()
    THINK = auto()
    AFTER_THINK = auto()
    ANSWER = auto()


def _partial_tag_length(text: str, tag: str) -> int:
    """Return the length of the longest suffix of ``text`` that is a proper prefix of ``tag``."""
    for size in range(min(len(text), len(tag) - 1), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0


class ThinkSplitter(Protocol):
    """What a client needs from a think-tag splitter (:class:`ThinkTagSplitter` is one).

    ``feed`` takes the next piece of answer text and returns the deltas it can
    already decide; ``flush`` returns whatever is held back at the end of the stream.
    """

    def feed(self, text: str) -> list[AnswerDelta | ReasoningDelta]:
        """Split the next piece of text into answer and reasoning deltas."""
        ...

    def flush(self) -> list[AnswerDelta | ReasoningDelta]:
        """Return the held-back text at the end of the stream."""
        ...


class ThinkTagSplitter:
    """Incremental splitter of content deltas into reasoning and answer pieces.

    Feed each ``delta.content`` string to :meth:`feed` in stream order, then call
    :meth:`flush` once at the end of the stream. The concatenated outputs do not
    depend on how the content was split into deltas.
    """

    def __init__(self) -> None:
        self._state = _State.START
        self._pending = ""

    @property
    def in_reasoning(self) -> bool:
        """Whether the text fed so far ends inside an open ``<think>`` block."""
        return self._state is _State.THINK

    def feed(self, text: str) -> list[AnswerDelta | ReasoningDelta]:
        """Consume one content delta and return the pieces that are now certain."""
        if not text:
            return []
        if self._state is _State.ANSWER:
            return [AnswerDelta(text)]
        if self._state is _State.AFTER_THINK:
            return self._after_think(text)
        if self._state is _State.THINK:
            return self._think(text)
        return self._start(text)

    def flush(self) -> list[AnswerDelta | ReasoningDelta]:
        """Return whatever is still held back; call once when the content ends.

        A held-back partial ``<think>`` (or leading whitespace) is answer text; an
        unclosed reasoning block's held-back tail is reasoning text.
        """
        pending, self._pending = self._pending, ""
        if not pending:
            return []
        if self._state is _State.THINK:
            return [ReasoningDelta(pending)]
        return [AnswerDelta(pending)]

    def _start(self, text: str) -> list[AnswerDelta | ReasoningDelta]:
        self._pending += text
        stripped = self._pending.lstrip()
        if stripped.startswith(OPEN_TAG):
            self._state = _State.THINK
            self._pending = ""
            return self._think(stripped[len(OPEN_TAG) :])
        if OPEN_TAG.startswith(stripped):
            return []  # only whitespace, or a prefix of "<think>": undecided yet
        self._state = _State.ANSWER
        pending, self._pending = self._pending, ""
        return [AnswerDelta(pending)]

    def _think(self, text: str) -> list[AnswerDelta | ReasoningDelta]:
        self._pending += text
        end = self._pending.find(CLOSE_TAG)
        if end >= 0:
            reasoning = self._pending[:end]
            rest = self._pending[end + len(CLOSE_TAG) :]
            self._pending = ""
            self._state = _State.AFTER_THINK
            out: list[AnswerDelta | ReasoningDelta] = []
            if reasoning:
                out.append(ReasoningDelta(reasoning))
            return out + self._after_think(rest)
        keep = _partial_tag_length(self._pending, CLOSE_TAG)
        ready = self._pending[: len(self._pending) - keep]
        self._pending = self._pending[len(self._pending) - keep :]
        return [ReasoningDelta(ready)] if ready else []

    def _after_think(self, text: str) -> list[AnswerDelta | ReasoningDelta]:
        answer = text.lstrip()
        if not answer:
            return []
        self._state = _State.ANSWER
        return [AnswerDelta(answer)]
