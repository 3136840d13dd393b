"""The rich reply stream's pieces: the rest of an answer after a rich message sent
unconfirmed."""

from __future__ import annotations

from bot.reply.stream import _after


def test_the_rest_after_a_cut_reopens_a_code_block_it_falls_in() -> None:
    """Cut inside a fenced block, the rest starts with its opening fence; cut after the
    block (or in plain text), the rest is the text as it is."""
    answer = "Intro\n\n```python\nx = 1\ny = 2\n```\n\nAfter."
    inside = answer.index("y = 2")
    assert _after(answer, inside) == "```python\ny = 2\n```\n\nAfter."
    after = answer.index("After")
    assert _after(answer, after) == "After."
    assert _after("plain words here", 6) == "words here"
    tilde = "~~~\ncode\n```\nstill code\n~~~\nout"
    assert _after(tilde, tilde.index("still")) == "~~~\nstill code\n~~~\nout"
