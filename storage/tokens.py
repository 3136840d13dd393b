"""A cheap token estimate for the history budget (an estimate, not a tokenizer).

Rule of thumb: one CJK character (Han, kana, Hangul, CJK and full-width punctuation)
is about one token; other text is about one token per four characters (the figure
OpenAI gives for English, https://help.openai.com/en/articles/4936856). Real counts
differ per model by tens of percent; the budget only has to be roughly right.
An image kept in history counts as a flat :data:`IMAGE_TOKENS`.
"""

from __future__ import annotations

import re

__all__ = ["IMAGE_TOKENS", "estimate_tokens"]

IMAGE_TOKENS = 256
"""Flat estimate (tokens) for one image in a message (a low-detail image costs 85–300)."""

_CJK_RANGES = (
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x2E80, 0x2FDF),  # CJK radicals
    (0x3000, 0x30FF),  # CJK punctuation, Hiragana, Katakana
    (0x3100, 0x31FF),  # Bopomofo, Hangul compatibility Jamo, Katakana ext.
    (0x3400, 0x4DBF),  # CJK Extension A
    (0x4E00, 0x9FFF),  # CJK Unified Ideographs
    (0xAC00, 0xD7AF),  # Hangul syllables
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF00, 0xFFEF),  # half-/full-width forms
    (0x20000, 0x3FFFF),  # CJK Extensions B and later
)


_CJK_RUN = re.compile("[" + "".join(f"{chr(low)}-{chr(high)}" for low, high in _CJK_RANGES) + "]+")
"""A run of CJK characters; one regex scan instead of a Python loop per character."""


def estimate_tokens(text: str) -> int:
    """Estimate the tokens of ``text``: CJK characters count 1 each, other characters 1/4.

    Returns a non-negative int; ``""`` is 0 and any non-empty text is at least 1.
    """
    cjk = sum(map(len, _CJK_RUN.findall(text)))
    other = len(text) - cjk
    return cjk + (other + 3) // 4
