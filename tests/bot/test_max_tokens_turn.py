"""A turn's request carries its model's max_tokens, else MAX_TOKENS (the bot's wiring of the
catalogue, the turn and the OpenAI-compatible client, against a MockTransport platform)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app.platforms import build_catalogue, build_clients
from bot.conversation.turn import ConversationService, Outcome, TurnInput
from storage import ConversationStore
from tests.bot.fake_providers import FakeChatService, clean_environment, make_settings
from tests.bot.turn_fixtures import QuietSink, memory_store

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
async def store() -> AsyncIterator[ConversationStore]:
    """An embedded store."""
    async with memory_store() as opened:
        yield opened


async def bodies_of_two_turns(
    store: ConversationStore, tmp_path: Path, **settings: Any
) -> list[dict[str, Any]]:
    """Ask once with model m1 (no cap of its own) and once with m2 (max_tokens = 777 in the
    models file); return the two request bodies."""
    models = tmp_path / "models.toml"
    models.write_text('[[models]]\nplatform = "openai"\nmodel = "m2"\nmax_tokens = 777\n')
    config = make_settings(models_file=models, **settings)
    catalogue = build_catalogue(config)
    service = FakeChatService()
    clients = build_clients(config, transport=service.transport)
    first = catalogue.get("openai:m1")
    assert first is not None
    conversations = ConversationService(
        store=store, clients=clients, catalogue=catalogue, default_model=first, system_prompt=""
    )
    try:
        sink = QuietSink()
        await conversations.run_turn(TurnInput("u:1", 1, "one"), sink)
        assert sink.outcome is Outcome.COMPLETED
        assert await conversations.set_model("u:1", "openai:m2") is not None
        await conversations.run_turn(TurnInput("u:1", 1, "two"), sink)
        assert sink.outcome is Outcome.COMPLETED
    finally:
        for client in clients.values():
            await client.aclose()
    return service.bodies()


async def test_request_carries_the_model_cap_else_the_default(
    store: ConversationStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """m1 asks with MAX_TOKENS (1234), m2 with its catalogue entry's 777."""
    clean_environment(monkeypatch)
    bodies = await bodies_of_two_turns(store, tmp_path, max_tokens=1234)
    assert [body.get("max_tokens") for body in bodies] == [1234, 777]


async def test_default_max_tokens_is_4096(
    store: ConversationStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without MAX_TOKENS a model without a cap of its own asks for at most 4096 tokens."""
    clean_environment(monkeypatch)
    bodies = await bodies_of_two_turns(store, tmp_path)
    assert [body.get("max_tokens") for body in bodies] == [4096, 777]


async def test_max_tokens_zero_sends_no_cap(
    store: ConversationStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MAX_TOKENS=0 sends no max_tokens for m1; m2 keeps its own cap."""
    clean_environment(monkeypatch)
    bodies = await bodies_of_two_turns(store, tmp_path, max_tokens=0)
    assert "max_tokens" not in bodies[0]
    assert bodies[1]["max_tokens"] == 777
