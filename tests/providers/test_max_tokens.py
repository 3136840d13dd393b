"""max_tokens: the catalogue field, its default, and the OpenAI-compatible request body."""

from __future__ import annotations

import pytest

from providers.catalogue import (
    BUILTIN_PLATFORMS,
    Catalogue,
    CatalogueError,
    ModelInfo,
    builtin_entries,
    parse_catalogue,
)
from providers.openai_compat import OpenAIQuirks, build_chat_body
from providers.types import ChatMessage, ChatRequest

REQUEST = ChatRequest(model="m", messages=(ChatMessage("user", "hi"),))


def catalogue(text: str) -> Catalogue:
    """The built-in catalogue with ``text`` (a models file) applied, every platform enabled."""
    base = Catalogue(BUILTIN_PLATFORMS.values(), enabled=BUILTIN_PLATFORMS)
    return base.apply(builtin_entries()).apply(parse_catalogue(text, source="models.toml"))


def test_body_carries_max_tokens() -> None:
    """A request's max_tokens is the body's max_tokens."""
    body = build_chat_body(
        ChatRequest(model="m", messages=REQUEST.messages, max_tokens=321), quirks=OpenAIQuirks()
    )
    assert body["max_tokens"] == 321


def test_body_without_max_tokens_has_no_cap() -> None:
    """No max_tokens in the request (the catalogue's 0): no max_tokens in the body."""
    assert "max_tokens" not in build_chat_body(REQUEST, quirks=OpenAIQuirks())


def test_models_file_sets_and_overrides_max_tokens() -> None:
    """A models file gives a new model its cap and changes a built-in model's."""
    found = catalogue(
        '[[models]]\nplatform = "zju"\nmodel = "new-model"\nmax_tokens = 1000\n'
        '[[models]]\nplatform = "dashscope"\nmodel = "qwen-vl-max"\nmax_tokens = 512\n'
    )
    assert found.get("zju:new-model") == ModelInfo(
        "zju:new-model", "zju", "new-model", "new-model", max_tokens=1000
    )
    vl_max = found.get("dashscope:qwen-vl-max")
    assert vl_max is not None and vl_max.max_tokens == 512


def test_default_fills_only_models_without_a_cap() -> None:
    """MAX_TOKENS goes to models that name none; a model's own cap and its 0 stay."""
    found = catalogue(
        '[[models]]\nplatform = "zju"\nmodel = "own"\nmax_tokens = 100\n'
        '[[models]]\nplatform = "zju"\nmodel = "uncapped"\nmax_tokens = 0\n'
        '[[models]]\nplatform = "zju"\nmodel = "plain"\n'
    ).with_default_max_tokens(4096)
    caps = {
        key: info.max_tokens
        for key in ("zju:own", "zju:uncapped", "zju:plain")
        if (info := found.get(key)) is not None
    }
    assert caps == {"zju:own": 100, "zju:uncapped": 0, "zju:plain": 4096}
    assert all(m.max_tokens is not None for m in found.all_models())


def test_negative_default_is_refused() -> None:
    """A negative default is a programming error (Settings refuses it first)."""
    with pytest.raises(ValueError, match="max_tokens"):
        catalogue("").with_default_max_tokens(-1)


@pytest.mark.parametrize(
    ("value", "message"),
    [("-5", "number of tokens"), ('"4096"', "must be a int"), ("true", "must be a int")],
)
def test_invalid_max_tokens_is_refused(value: str, message: str) -> None:
    """A negative or non-integer max_tokens is a one-line error naming the entry."""
    with pytest.raises(CatalogueError, match=message) as info:
        parse_catalogue(
            f'[[models]]\nplatform = "zju"\nmodel = "x"\nmax_tokens = {value}\n',
            source="models.toml",
        )
    assert "models.toml: [[models]] #1 (zju:x)" in str(info.value)


def test_builtin_caps_fit_their_context_windows() -> None:
    """Every built-in cap is positive and leaves room for a prompt in its context window."""
    capped = [m for m in catalogue("").all_models() if m.max_tokens is not None]
    assert capped, "the built-in catalogue caps some models"
    for model in capped:
        assert model.max_tokens is not None
        assert 0 < model.max_tokens <= model.context_window // 4, model.key
