"""Tests for the incremental ``<think>…</think>`` splitter."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from providers.thinktags import ThinkTagSplitter
from providers.types import AnswerDelta, ReasoningDelta

Piece = AnswerDelta | ReasoningDelta


def run(pieces: list[str]) -> list[Piece]:
    """Feed every piece to a fresh splitter and flush it."""
    splitter = ThinkTagSplitter()
    out: list[Piece] = []
    for piece in pieces:
        out.extend(splitter.feed(piece))
    out.extend(splitter.flush())
    return out


def texts(out: list[Piece]) -> tuple[str, str]:
    """Return the concatenated (reasoning, answer) texts."""
    reasoning = "".join(p.text for p in out if isinstance(p, ReasoningDelta))
    answer = "".join(p.text for p in out if isinstance(p, AnswerDelta))
    return reasoning, answer


def split_at(text: str, cuts: list[int]) -> list[str]:
    """Cut ``text`` at the given offsets (sorted, deduplicated)."""
    points = [0, *sorted(set(cuts)), len(text)]
    return [text[a:b] for a, b in pairwise(points)]


def test_plain_answer_passes_through_at_once() -> None:
    """Text that cannot start a tag is emitted immediately, delta by delta."""
    splitter = ThinkTagSplitter()
    assert splitter.feed("Hello") == [AnswerDelta("Hello")]
    assert splitter.feed(", world") == [AnswerDelta(", world")]
    assert splitter.flush() == []


def test_think_block_then_answer() -> None:
    """A leading think block becomes reasoning; whitespace after </think> is dropped."""
    out = run(["<think>plan it</think>\n\nThe answer."])
    assert out == [ReasoningDelta("plan it"), AnswerDelta("The answer.")]


def test_open_tag_split_across_deltas() -> None:
    """``"<thi" + "nk>"`` still opens reasoning, with nothing emitted for the partial tag."""
    splitter = ThinkTagSplitter()
    assert splitter.feed("<thi") == []
    assert splitter.feed("nk>why") == [ReasoningDelta("why")]
    assert splitter.in_reasoning


def test_close_tag_split_across_deltas() -> None:
    """A ``</think>`` cut in three pieces closes reasoning at the right place."""
    out = run(["<think>abc</", "thi", "nk>done"])
    assert texts(out) == ("abc", "done")


def test_reasoning_holds_back_only_a_possible_partial_tag() -> None:
    """Inside reasoning, only the suffix that could become ``</think>`` is held back."""
    splitter = ThinkTagSplitter()
    splitter.feed("<think>")
    assert splitter.feed("step one <") == [ReasoningDelta("step one ")]
    assert splitter.feed("b>") == [ReasoningDelta("<b>")]
    assert splitter.feed("x</thi") == [ReasoningDelta("x")]


def test_leading_whitespace_before_think_is_dropped() -> None:
    """Whitespace before an opening ``<think>`` is not part of the answer."""
    assert texts(run(["\n  ", "<think>r</think>a"])) == ("r", "a")


def test_think_later_in_answer_is_plain_text() -> None:
    """Only a ``<think>`` at the start opens reasoning; later ones are answer text."""
    out = run(["Use ", "<think>", " tags</think> like this"])
    assert texts(out) == ("", "Use <think> tags</think> like this")


def test_text_resembling_the_tag_is_released() -> None:
    """A held ``<th`` that turns out not to be a tag is emitted as answer."""
    splitter = ThinkTagSplitter()
    assert splitter.feed("<th") == []
    assert splitter.feed("ree>") == [AnswerDelta("<three>")]


def test_flush_releases_held_text() -> None:
    """At the end, a held partial open tag is answer and an unclosed block's tail is reasoning."""
    assert run(["<thin"]) == [AnswerDelta("<thin")]
    assert texts(run(["<think>still going</th"])) == ("still going</th", "")


def test_no_empty_deltas() -> None:
    """Empty content and tag-only deltas never yield empty pieces."""
    out = run(["", "<think>", "", "</think>", "\n", "", "x"])
    assert out == [AnswerDelta("x")]
    assert all(piece.text for piece in out)


answer_text = st.text(alphabet="ab <>/thinkz\n中", max_size=30)


@given(
    reasoning=st.text(alphabet="ab <>/thinkz\n中", max_size=30).filter(
        lambda s: "</think>" not in s
    ),
    answer=answer_text.filter(lambda s: not s[:1].isspace()),
    lead=st.sampled_from(["", " ", "\n\n"]),
    gap=st.sampled_from(["", "\n", "\n\n "]),
    cuts=st.lists(st.integers(min_value=0, max_value=80), max_size=8),
)
def test_any_split_of_tagged_text_gives_same_texts(
    reasoning: str, answer: str, lead: str, gap: str, cuts: list[int]
) -> None:
    """Any split of a think-tagged string yields exactly its reasoning and answer texts."""
    whole = f"{lead}<think>{reasoning}</think>{gap}{answer}"
    pieces = split_at(whole, [c for c in cuts if c <= len(whole)])
    out = run(pieces)
    assert texts(out) == (reasoning, answer)
    assert all(piece.text for piece in out)


@given(
    text=st.text(alphabet="ab <>/thinkz\n", max_size=40),
    cuts=st.lists(st.integers(min_value=0, max_value=40), max_size=8),
)
def test_splitting_never_changes_the_result(text: str, cuts: list[int]) -> None:
    """For arbitrary content, the split points do not change the reasoning and answer texts."""
    pieces = split_at(text, [c for c in cuts if c <= len(text)])
    assert texts(run(pieces)) == texts(run([text]))
