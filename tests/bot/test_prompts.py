"""The system prompt's parts and their order, the chat's model rules, trigger words, and a
turn asked under them (a real Redis, a recording provider client)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from telegram import Chat, Message

from bot.conversation.chat_settings import (
    PROMPT_MAX,
    ChatSettings,
    load_chat_settings,
    parse_chat_settings,
    pick_model,
    set_allowed_models,
    set_chat_prompt,
    set_default_model,
    set_triggers,
    set_user_prompt,
    split_words,
    triggered_by,
)
from bot.conversation.prompts import CHAT_HEADING, USER_HEADING, combine_prompts
from bot.conversation.scope import chat_of, chat_scope, local_scope, scope_of, user_scope
from bot.conversation.turn import ConversationService, Outcome, TurnInput
from providers.catalogue import Catalogue, ModelInfo, PlatformInfo
from providers.types import AnswerDelta, ChatRequest, Chunk, Finish
from storage import ConversationStore, open_store
from tests.bot.turn_fixtures import QuietSink

pytestmark = pytest.mark.timeout(20)

A = ModelInfo(key="p:a", platform="p", model="a", display_name="A")
B = ModelInfo(key="p:b", platform="p", model="b", display_name="B")
C = ModelInfo(key="p:c", platform="p", model="c", display_name="C")
OFF = ModelInfo(key="q:x", platform="q", model="x", display_name="X")  # platform not enabled
ENABLED = [A, B, C]
GROUP = -100123
MEMBER = 42


# -- combine_prompts ---------------------------------------------------------------------


def test_parts_come_operator_then_user_then_chat() -> None:
    """One text: the operator's prompt, the user's under its heading, the chat's last."""
    text = combine_prompts("Be brief.", user="Answer in French.", chat="No full solutions.")
    assert text == (
        f"Be brief.\n\n{USER_HEADING}\nAnswer in French.\n\n{CHAT_HEADING}\nNo full solutions."
    )


def test_the_chat_heading_says_it_takes_precedence() -> None:
    """The chat's rules are announced as overriding the user's own instructions."""
    assert "take precedence over the user's own instructions" in CHAT_HEADING


def test_without_user_or_chat_prompt_the_operator_prompt_is_unchanged() -> None:
    """No user or chat prompt: exactly the SYSTEM_PROMPT, whitespace and all."""
    assert combine_prompts("  Be brief.\n") == "  Be brief.\n"
    assert combine_prompts("") == ""


def test_empty_parts_are_left_out_and_newlines_kept() -> None:
    """An empty operator prompt leaves no blank start; a multi-line chat prompt keeps its
    lines."""
    text = combine_prompts("", chat="Step by step.\nNever the full solution.")
    assert text == f"{CHAT_HEADING}\nStep by step.\nNever the full solution."
    assert combine_prompts("Op.", user="   ") == "Op."


# -- scopes, settings parsing, words -----------------------------------------------------


def test_chat_of_reads_the_group_out_of_every_group_scope() -> None:
    """Chat, topic and member scopes name their group; user and terminal scopes none."""
    assert chat_of(chat_scope(GROUP)) == GROUP
    assert chat_of(chat_scope(GROUP) + ":t:5:u:7") == GROUP
    assert chat_of(user_scope(7)) is None
    assert chat_of(local_scope("alice")) is None


def test_stored_settings_that_do_not_parse_count_as_unset() -> None:
    """Garbled JSON or a wrong type leaves the list empty instead of raising."""
    settings = parse_chat_settings({"models": "{oops", "triggers": '"word"', "comments": "yes"})
    assert settings == ChatSettings()
    assert parse_chat_settings({"models": '["p:a"]', "comments": "1"}) == ChatSettings(
        allowed_models=frozenset({"p:a"}), answer_comments=True
    )


def test_split_words_takes_commas_of_both_widths_and_drops_repeats() -> None:
    """ASCII and full-width commas and line breaks separate words; a repeat in another case
    is dropped; inner spaces are kept as one."""
    assert split_words("homework, due  date，作业\nHomework") == ["homework", "due date", "作业"]


def test_triggered_by_ignores_case_and_finds_chinese_inside_a_sentence() -> None:
    """A trigger is found anywhere, in any case; no trigger, no match."""
    assert triggered_by("When is the HOMEWORK due?", ["homework"])
    assert triggered_by("这次作业怎么做", ["作业"])
    assert not triggered_by("When is the exam?", ["homework"])
    assert not triggered_by("anything", [])


# -- pick_model --------------------------------------------------------------------------


def test_outside_groups_the_choice_else_the_bots_default() -> None:
    """Without chat settings: the stored choice if enabled, else the fallback."""
    assert pick_model("p:b", enabled=ENABLED, chat=None, fallback=A) == B
    assert pick_model("q:x", enabled=ENABLED, chat=None, fallback=A) == A
    assert pick_model(None, enabled=ENABLED, chat=None, fallback=A) == A


def test_a_choice_no_longer_allowed_falls_back_to_the_chats_default() -> None:
    """Stored B, allowed {A, C}, chat default C: C."""
    chat = ChatSettings(allowed_models=frozenset({"p:a", "p:c"}), default_model="p:c")
    assert pick_model("p:b", enabled=ENABLED, chat=chat, fallback=A) == C
    assert pick_model("p:a", enabled=ENABLED, chat=chat, fallback=A) == A


def test_without_a_usable_chat_default_the_bots_default_then_the_first_allowed() -> None:
    """No chat default: the bot's default if allowed, else the first allowed model."""
    only_c = ChatSettings(allowed_models=frozenset({"p:c"}))
    assert pick_model(None, enabled=ENABLED, chat=ChatSettings(), fallback=B) == B
    assert pick_model("p:b", enabled=ENABLED, chat=only_c, fallback=A) == C
    gone = ChatSettings(allowed_models=frozenset({"q:x"}), default_model="q:x")
    assert pick_model(None, enabled=ENABLED, chat=gone, fallback=A) == A


# -- a turn asked under them -------------------------------------------------------------


@dataclass
class RecordingClient:
    """A ChatClient that answers "ok" and records each request."""

    name: str = "p"
    requests: list[ChatRequest] = field(default_factory=list)

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        """Record ``request``; answer "ok"."""
        self.requests.append(request)
        yield AnswerDelta("ok")
        yield Finish("stop")

    async def aclose(self) -> None:
        """Nothing to close."""


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[ConversationStore]:
    """A store on the real, emptied Redis."""
    opened, _ = await open_store(redis_url, max_turns=20, max_tokens=10000, ttl_seconds=600)
    yield opened
    await opened.aclose()


def service(store: ConversationStore, client: RecordingClient) -> ConversationService:
    """Platform ``p`` with models A, B, C (A the default); the operator prompt "Op."."""
    catalogue = Catalogue(
        [
            PlatformInfo("p", "P", "openai", "http://p"),
            PlatformInfo("q", "Q", "openai", "http://q"),
        ],
        [A, B, C, OFF],
        enabled=["p"],
    )
    return ConversationService(
        store=store,
        clients={"p": client},
        catalogue=catalogue,
        default_model=A,
        system_prompt="Op.",
    )


def member_scope() -> str:
    """MEMBER's own conversation in GROUP."""
    return chat_scope(GROUP) + f":u:{MEMBER}"


async def test_a_group_turn_sends_operator_user_and_chat_prompts_in_one_message(
    store: ConversationStore,
) -> None:
    """In a group the first message is the one system message, the chat's rules last; the
    question follows."""
    client = RecordingClient()
    await set_user_prompt(store, MEMBER, "Call me Sam.")
    await set_chat_prompt(store, GROUP, "Explain step by step;\nnever full solutions.")
    sink = QuietSink()
    await service(store, client).run_turn(TurnInput(member_scope(), MEMBER, "Q1?"), sink)
    assert sink.outcome is Outcome.COMPLETED
    system, question = client.requests[0].messages
    assert (system.role, question.content) == ("system", "Q1?")
    assert system.content == combine_prompts(
        "Op.", user="Call me Sam.", chat="Explain step by step;\nnever full solutions."
    )
    assert system.content.index("Call me Sam.") < system.content.index("never full solutions.")


async def test_a_private_turn_has_no_chat_rules_of_any_group(store: ConversationStore) -> None:
    """A user's private chat gets their own prompt, never a group's."""
    client = RecordingClient()
    await set_user_prompt(store, MEMBER, "Call me Sam.")
    await set_chat_prompt(store, GROUP, "Group rules.")
    await service(store, client).run_turn(TurnInput(user_scope(MEMBER), MEMBER, "hi"), QuietSink())
    system = client.requests[0].messages[0]
    assert system.content == f"Op.\n\n{USER_HEADING}\nCall me Sam."


async def test_clearing_prompts_restores_the_operator_prompt(store: ConversationStore) -> None:
    """After ``""`` is set for both, the system message is the operator's prompt alone."""
    client = RecordingClient()
    await set_user_prompt(store, MEMBER, "x")
    await set_chat_prompt(store, GROUP, "y")
    await set_user_prompt(store, MEMBER, "")
    await set_chat_prompt(store, GROUP, "")
    await service(store, client).run_turn(TurnInput(member_scope(), MEMBER, "hi"), QuietSink())
    assert client.requests[0].messages[0].content == "Op."
    assert "prompt" not in (await store.get_settings(chat_scope(GROUP)))


async def test_a_prompt_over_the_limit_is_refused(store: ConversationStore) -> None:
    """PROMPT_MAX + 1 characters raise ValueError and store nothing."""
    with pytest.raises(ValueError, match="at most"):
        await set_chat_prompt(store, GROUP, "x" * (PROMPT_MAX + 1))
    assert (await load_chat_settings(store, GROUP)).prompt == ""


async def test_a_group_turn_uses_an_allowed_model_and_set_model_refuses_others(
    store: ConversationStore,
) -> None:
    """Stored B, then the chat allows only A and C with default C: the turn asks C, choosing B
    is refused, choosing A works."""
    client = RecordingClient()
    conversations = service(store, client)
    assert await conversations.set_model(member_scope(), "p:b") == B
    await set_allowed_models(store, GROUP, ["p:a", "p:c"])
    await set_default_model(store, GROUP, "p:c")
    await conversations.run_turn(TurnInput(member_scope(), MEMBER, "hi"), QuietSink())
    assert client.requests[0].model == "c"
    assert await conversations.set_model(member_scope(), "p:b") is None
    assert await conversations.set_model(member_scope(), "p:a") == A
    assert [m.key for m in await conversations.allowed_models(member_scope())] == ["p:a", "p:c"]
    assert await conversations.current_model(user_scope(MEMBER)) == A  # private: unaffected


async def test_trigger_words_are_bounded(store: ConversationStore) -> None:
    """More than 20 words, or one over 64 characters, raise ValueError."""
    with pytest.raises(ValueError, match="at most"):
        await set_triggers(store, GROUP, [f"w{i}" for i in range(21)])
    with pytest.raises(ValueError, match="at most"):
        await set_triggers(store, GROUP, ["x" * 65])
    await set_triggers(store, GROUP, ["作业", "homework"])
    assert (await load_chat_settings(store, GROUP)).triggers == ("作业", "homework")


def test_scope_of_a_member_names_the_group() -> None:
    """chat_of inverts scope_of for a group member's scope (the two stay in step)."""
    message = Message(1, datetime.now(UTC), Chat(GROUP, "supergroup"))
    assert chat_of(scope_of(message, user_id=MEMBER)) == GROUP
