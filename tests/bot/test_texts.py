"""The text catalogue: English counted nouns, and the same fields in both languages."""

from __future__ import annotations

import string

import pytest

from bot.texts import _TEXTS, plural_en, t


@pytest.mark.parametrize(
    ("count", "expected"),
    [(0, "0 questions"), (1, "1 question"), (2, "2 questions"), (21, "21 questions")],
)
def test_plural_en(count: int, expected: str) -> None:
    """English takes the singular for exactly one, the plural otherwise (zero too)."""
    assert plural_en(count, "question", "questions") == expected


def test_counts_in_english_texts_agree_with_their_nouns() -> None:
    """Every English count reads "1 question" / "2 questions"; Chinese shows the bare count."""
    assert t("usage_today", "en", start="00:00 UTC", requests=1, tokens=1) == (
        "Today (since 00:00 UTC) you asked 1 question using 1 token."
    )
    assert t("usage_today", "en", start="00:00 UTC", requests=2, tokens=300) == (
        "Today (since 00:00 UTC) you asked 2 questions using 300 tokens."
    )
    assert t("usage_limit", "en", limit=1, left=0) == "Daily limit: 1 question; 0 left."
    assert "limit of 1 question." in t("daily_limit", "en", limit=1)
    assert "at most 2 questions a minute" in t("too_fast", "en", limit=2, seconds=5)
    assert "1 次" in t("usage_today", "zh", start="00:00 UTC", requests=1, tokens=2)


def test_a_counted_noun_needs_an_integer() -> None:
    """A count that is not an int is a programming error, not a silent "None questions"."""
    with pytest.raises(TypeError, match="int count"):
        t("daily_limit", "en", limit=None)


def test_both_languages_name_the_same_fields() -> None:
    """Each text's English and Chinese templates take the same values."""
    formatter = string.Formatter()
    for name, texts in _TEXTS.items():
        fields = {
            lang: {f for _, f, _, _ in formatter.parse(text) if f} for lang, text in texts.items()
        }
        assert fields["en"] == fields["zh"], name
