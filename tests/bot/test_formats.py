"""The answer format: who gets rich messages, the one-time hint, and what counts as rich
content."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.conversation.formats import FormatChoice, Formats, ReplyFormat, wants_rich
from storage import ConversationStore, open_store

USER, OTHER, GROUP = 31, 32, -1003


@pytest.fixture
async def formats(store_backend_url: str) -> AsyncIterator[Formats]:
    """Formats over an empty store, on real Redis and on the embedded backend."""
    store: ConversationStore
    store, _ = await open_store(store_backend_url, max_turns=3, max_tokens=1000, ttl_seconds=60)
    yield Formats(store)
    await store.aclose()


@pytest.mark.parametrize(
    "markdown",
    [
        "| a | b |\n|---|---|\n| 1 | 2 |",
        "So $x^2 = 4$.",
        "$$E = mc^2$$",
        "Inline \\(x^2\\) here.",
        "\\[ x = 1 \\]",
    ],
)
def test_tables_and_formulas_want_rich(markdown: str) -> None:
    """A GFM table and each formula form ($, $$, \\(, \\[) count as rich content."""
    assert wants_rich(markdown)


@pytest.mark.parametrize(
    "markdown",
    [
        "It costs $5 and $10 today.",
        "In code: `$x$` and `| a | b |`.",
        "```\n$$x$$\n| a | b |\n|---|---|\n```",
        "a | b, plain words",
        "",
    ],
)
def test_prices_code_and_plain_pipes_do_not(markdown: str) -> None:
    """Prices, formulas and tables inside code, and a lone pipe are not rich content."""
    assert not wants_rich(markdown)


async def test_the_users_choice_wins_then_the_groups_default_then_classic(
    formats: Formats,
) -> None:
    """Nothing chosen: classic with the hint; a group's rich default reaches members who chose
    nothing, not one who chose classic; a private chat ignores group defaults."""
    assert await formats.choice(USER, USER) == FormatChoice(rich=False, hint=True)
    await formats.set_chat_format(GROUP, ReplyFormat.RICH)
    await formats.set_user_format(OTHER, ReplyFormat.CLASSIC)
    assert await formats.choice(USER, GROUP) == FormatChoice(rich=True, hint=True)
    assert await formats.choice(OTHER, GROUP) == FormatChoice(rich=False, hint=False)
    assert await formats.choice(USER, USER) == FormatChoice(rich=False, hint=True)
    assert await formats.choice(None, GROUP) == FormatChoice(rich=True, hint=False)
    await formats.set_user_format(USER, ReplyFormat.RICH)
    assert await formats.choice(USER, USER) == FormatChoice(rich=True, hint=False)
    assert await formats.user_format(USER) is ReplyFormat.RICH
    assert await formats.chat_format(-1004) is ReplyFormat.CLASSIC


async def test_the_hint_is_remembered(formats: Formats) -> None:
    """Once marked, the hint is no longer due for that user, and still due for another."""
    assert await formats.mark_hinted(USER)
    assert await formats.choice(USER, USER) == FormatChoice(rich=False, hint=False)
    assert await formats.choice(OTHER, OTHER) == FormatChoice(rich=False, hint=True)
