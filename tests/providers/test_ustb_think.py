"""The USTB client's private inline <think> splitter."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from providers.types import AnswerDelta, ReasoningDelta
from providers.ustb_think import InlineThinkSplitter

TEXT = "<think>\nI add 2 and 2 < 5.\n</think>\n\nIt is 4 <b>."


def run(pieces: list[str]) -> list[AnswerDelta | ReasoningDelta]:
    """Feed ``pieces`` and flush, returning every delta."""
    splitter = InlineThinkSplitter()
    out = [delta for piece in pieces for delta in splitter.feed(piece)]
    return out + splitter.flush()


def joined(deltas: list[AnswerDelta | ReasoningDelta]) -> tuple[str, str]:
    """The reasoning text and the answer text."""
    reasoning = "".join(d.text for d in deltas if isinstance(d, ReasoningDelta))
    return reasoning, "".join(d.text for d in deltas if isinstance(d, AnswerDelta))


def test_whole_text_splits_into_reasoning_then_answer() -> None:
    """Think text becomes one reasoning delta, the rest one answer delta, tag whitespace dropped."""
    assert run([TEXT]) == [ReasoningDelta("I add 2 and 2 < 5.\n"), AnswerDelta("It is 4 <b>.")]


@given(st.lists(st.integers(min_value=0, max_value=len(TEXT)), max_size=8))
def test_any_cut_points_give_the_same_texts(cuts: list[int]) -> None:
    """Wherever the text is cut (even inside a tag), the joined texts are the same."""
    bounds = [0, *sorted(cuts), len(TEXT)]
    pieces = [TEXT[a:b] for a, b in itertools.pairwise(bounds)]
    assert joined(run(pieces)) == ("I add 2 and 2 < 5.\n", "It is 4 <b>.")


def test_text_without_tags_is_all_answer_and_a_dangling_prefix_is_flushed() -> None:
    """Plain text is answer; a trailing '<thi' that never completes comes out at flush."""
    splitter = InlineThinkSplitter()
    assert splitter.feed("a < b, see <thi") == [AnswerDelta("a < b, see ")]
    assert splitter.flush() == [AnswerDelta("<thi")]


def test_unclosed_think_stays_reasoning() -> None:
    """A stream that ends inside <think> leaves that text as reasoning."""
    assert run(["<think>still thinking</th"]) == [
        ReasoningDelta("still thinking"), ReasoningDelta("</th")
    ]
