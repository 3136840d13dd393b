"""End to end: reply streaming (drafts, edits, limits, /stop, /retry, reasoning, long answers).

Everything runs through the real PTB Application, the fake Bot API server and the
fake OpenAI-compatible server over HTTP on loopback.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from typing import Any

import pytest

from bench.fake_openai import Answer
from bench.fake_telegram import BOT_USERNAME, Call, StoredMessage
from bot.render.markdown import (
    Rendered,
    ReplyStrings,
    compose_reply,
    slice_rendered,
    split_rendered,
)
from bot.render.types import utf16_len
from bot.texts import t
from tests.e2e.conftest import BotRunner, World, settle, stored_history

pytestmark = pytest.mark.timeout(30)

CHAT = 601
USER = 601
GROUP = -100601
STRINGS = ReplyStrings(thinking=t("thinking", "en"), thought_for=t("thought_for", "en"))
# A roomy per-chat budget, so tests that are not about flood limits run fast.
FAST: dict[str, Any] = {"limit_per_chat_per_second": 50.0, "limit_per_group_per_minute": 3000}

Entities = list[dict[str, Any]]


def rendered(markdown: str, **options: Any) -> Rendered:
    """The whole final rendering of ``markdown`` (``options`` go to :func:`compose_reply`)."""
    return compose_reply(markdown, partial=False, strings=STRINGS, **options)


def parts_of(whole: Rendered) -> list[tuple[str, Entities]]:
    """The (text, entities) of each message ``whole`` is split into."""
    return [(p.text, [e.to_dict() for e in p.entities]) for p in split_rendered(whole)]


def shown(messages: list[StoredMessage]) -> list[tuple[str, Entities]]:
    """The (text, entities) of stored messages."""
    return [(m.text, m.entities) for m in messages]


def chat_calls(world: World, chat_id: int) -> list[Call]:
    """Every recorded Bot API call addressed to ``chat_id``, in order."""
    return [c for c in world.telegram.calls if str(c.params.get("chat_id")) == str(chat_id)]


def last_text(world: World, chat_id: int) -> str | None:
    """The text of the bot's newest message in ``chat_id``, if any."""
    messages = world.telegram.bot_messages(chat_id)
    return messages[-1].text if messages else None


def has_entity(entities: Entities, kind: str, *, at: int | None = None) -> bool:
    """Whether ``entities`` hold one of type ``kind`` (starting at ``at``, if given)."""
    return any(e["type"] == kind and (at is None or e["offset"] == at) for e in entities)


# ----- 1. drafts -----------------------------------------------------------------------


async def test_drafts_then_one_final_message(world: World, bot: BotRunner) -> None:
    """With drafts on: an empty draft, growing draft frames, then one exact sendMessage."""
    answer = (
        "Drafts **stream** the answer in a private chat, piece by piece, "
        "until the *whole* text is there.\n\n- one\n- two"
    )
    world.openai.script.append(Answer(answer, piece=6, delay=0.02))
    expected = parts_of(rendered(answer))
    async with bot(use_drafts=True, **FAST):
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="stream me")
        await settle(lambda: shown(world.telegram.bot_messages(CHAT)) == expected, within=5)
        await asyncio.sleep(0.2)
    calls = chat_calls(world, CHAT)
    drafts = [c for c in calls if c.method == "sendMessageDraft"]
    assert calls[0].method == "sendMessageDraft" and not calls[0].params.get("text")
    texts = [str(c.params["text"]) for c in drafts[1:]]
    assert len(texts) >= 2 and all(texts), "text drafts follow the empty one"
    assert all(len(a) < len(b) for a, b in itertools.pairwise(texts)), texts
    assert len({c.params["draft_id"] for c in drafts}) == 1, "one draft bubble"
    assert [c.method for c in calls if c.method != "sendMessageDraft"] == ["sendMessage"]
    assert calls[-1].method == "sendMessage"
    assert shown(world.telegram.bot_messages(CHAT)) == expected
    assert not world.telegram.calls_of("editMessageText")


async def test_a_full_first_message_goes_before_the_answer_ends(
    world: World, bot: BotRunner
) -> None:
    """Drafts every 30 s: once the answer outgrows one message, that message is sent at once
    (a high-priority frame), not left to the next draft turn or the final."""
    answer = "".join(
        f"Paragraph {n}: " + "streaming text that fills a message. " * 6 + "\n\n" for n in range(24)
    )
    parts = parts_of(rendered(answer))
    assert len(parts) == 2
    hold = asyncio.Event()
    world.openai.script.append(Answer(answer, piece=40, delay=0.002, hold=hold))
    async with bot(use_drafts=True, draft_interval=30.0, **FAST):
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="a long one")
        try:
            await settle(lambda: bool(world.telegram.bot_messages(CHAT)), within=5)
        finally:
            early = shown(world.telegram.bot_messages(CHAT))
            hold.set()  # now the answer ends
        assert early == parts[:1], "the full first message, while the answer was held"
        await settle(lambda: shown(world.telegram.bot_messages(CHAT)) == parts, within=5)
    sends = world.telegram.calls_of("sendMessage")
    assert len(sends) == 2
    drafts = [c for c in chat_calls(world, CHAT) if c.method == "sendMessageDraft"]
    assert len(drafts) <= 2 + 3, "the empty draft, the first text, at most three early ones"


async def test_draft_failure_falls_back_to_edits(world: World, bot: BotRunner) -> None:
    """A refused draft switches the chat to message edits; the text stays exact, and stays so."""
    first = "The first answer starts in a draft and ends in an edited message, " * 6
    second = "The second answer uses edits directly, with no draft at all. " * 2
    world.openai.script += [Answer(first, piece=6, delay=0.03), Answer(second, piece=6, delay=0.03)]
    async with bot(use_drafts=True, **FAST):
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="one")
        await settle(
            lambda: any(c.params.get("text") for c in world.telegram.calls_of("sendMessageDraft")),
            within=3,
        )
        world.telegram.inject(
            "sendMessageDraft", status=400, description="Bad Request: method is not available"
        )
        await settle(
            lambda: shown(world.telegram.bot_messages(CHAT)) == parts_of(rendered(first)), within=5
        )
        first_done = len(world.telegram.calls)
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="two")
        await settle(lambda: last_text(world, CHAT) == rendered(second).text, within=5)
    assert world.telegram.injections[0].times == 0, "a draft was refused"
    first_calls = [c.method for c in world.telegram.calls[:first_done]]
    assert "sendMessage" in first_calls and "editMessageText" in first_calls
    later = [c.method for c in world.telegram.calls[first_done:]]
    assert "sendMessageDraft" not in later
    assert later.count("sendMessage") == 1 and "editMessageText" in later
    assert shown(world.telegram.bot_messages(CHAT)) == (
        parts_of(rendered(first)) + parts_of(rendered(second))
    )


# ----- 3. groups -----------------------------------------------------------------------


async def test_group_reply_uses_typing_and_edits(world: World, bot: BotRunner) -> None:
    """In a group: typing (the model is slow to start), a first message, edits, exact final
    text; unaddressed text is ignored; the quick follow-up answer needs no typing."""
    answer = "Sorting puts things in **order**; merge sort splits, sorts and merges. " * 2
    follow = "Because merging sorted halves is linear."
    world.openai.script += [Answer(answer, piece=8, delay=0.03, first_delay=0.4), Answer(follow)]
    async with bot(**FAST):
        world.telegram.push_text(
            chat_id=GROUP, user_id=USER, chat_type="supergroup", text="just chatting among humans"
        )
        asked = world.telegram.push_text(
            chat_id=GROUP,
            user_id=USER,
            chat_type="supergroup",
            text=f"@{BOT_USERNAME} explain sorting please",
        )
        await settle(lambda: last_text(world, GROUP) == rendered(answer).text, within=5)
        reply_id = world.telegram.bot_messages(GROUP)[0].message_id
        world.telegram.push_text(
            chat_id=GROUP,
            user_id=USER,
            chat_type="supergroup",
            text="and why linear?",
            reply_to=reply_id,
        )
        await settle(lambda: last_text(world, GROUP) == follow, within=5)
    methods = [c.method for c in chat_calls(world, GROUP)]
    assert methods[0] == "sendChatAction"
    assert methods.count("sendChatAction") == 1, methods
    first_send = methods.index("sendMessage")
    assert "editMessageText" in methods[first_send:]
    assert chat_calls(world, GROUP)[first_send].params["reply_parameters"]["message_id"] == asked
    assert shown(world.telegram.bot_messages(GROUP))[0] == parts_of(rendered(answer))[0]
    questions = [r["messages"][-1]["content"] for r in world.openai.requests]
    assert questions == ["explain sorting please", "and why linear?"]


# ----- 4. 429 --------------------------------------------------------------------------


async def test_retry_after_is_waited_out(world: World, bot: BotRunner) -> None:
    """A 429 on an edit pauses the chat for retry_after; the final text is still exact."""
    answer = "A steady answer that keeps growing while Telegram asks us to slow down. " * 3
    world.openai.script.append(Answer(answer, piece=6, delay=0.03))
    async with bot(**FAST):
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="go")
        await settle(lambda: bool(world.telegram.bot_messages(CHAT)), within=3)
        mark = len(world.telegram.calls)
        world.telegram.inject(
            "editMessageText",
            status=429,
            description="Too Many Requests: retry after 1",
            retry_after=1,
        )
        await settle(lambda: last_text(world, CHAT) == rendered(answer).text, within=6)
    edits = [c for c in world.telegram.calls[mark:] if c.method == "editMessageText"]
    refused_at = edits[0].at
    after = [c.at - refused_at for c in chat_calls(world, CHAT) if c.at > refused_at]
    assert after and min(after) >= 0.95, f"next call {min(after):.3f} s after the 429"
    assert shown(world.telegram.bot_messages(CHAT)) == parts_of(rendered(answer))


# ----- 5. deleted message --------------------------------------------------------------


async def test_deleted_message_continues_in_a_new_one(world: World, bot: BotRunner) -> None:
    """When the user deletes the reply mid-stream, the answer continues in a fresh message."""
    answer = "This long answer survives the deletion of its message and goes on. " * 4
    world.openai.script.append(Answer(answer, piece=6, delay=0.03))
    async with bot(**FAST):
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="go")
        await settle(lambda: any(m.edits for m in world.telegram.bot_messages(CHAT)), within=3)
        deleted = world.telegram.bot_messages(CHAT)[0].message_id
        world.telegram.messages[CHAT].pop(deleted)
        await settle(lambda: last_text(world, CHAT) == rendered(answer).text, within=5)
    messages = world.telegram.bot_messages(CHAT)
    assert len(messages) == 1 and messages[0].message_id != deleted
    assert shown(messages) == parts_of(rendered(answer))
    assert len(world.telegram.calls_of("sendMessage")) == 2


# ----- 6. /stop ------------------------------------------------------------------------


async def test_stop_keeps_partial_answer(world: World, bot: BotRunner) -> None:
    """/stop closes the provider stream, marks the reply stopped and stores the partial answer."""
    partial = "Here is the beginning of a long **answer**"
    hold = asyncio.Event()
    world.openai.script.append(Answer(partial, piece=5, delay=0.01, hold=hold))
    stopped = rendered(partial, suffix=t("mark_stopped", "en"))
    try:
        async with bot(**FAST):
            world.telegram.push_text(chat_id=CHAT, user_id=USER, text="tell me a lot")
            await settle(lambda: last_text(world, CHAT) == rendered(partial).text, within=3)
            world.telegram.push_text(chat_id=CHAT, user_id=USER, text="/stop")
            await settle(lambda: last_text(world, CHAT) == stopped.text, within=3)
            await settle(lambda: world.openai.disconnects == 1, within=3)
            history = await stored_history(world.redis_url, f"u:{USER}", 2)
            world.telegram.push_text(chat_id=CHAT, user_id=USER, text="/stop")
            await settle(lambda: last_text(world, CHAT) == t("stop_nothing", "en"), within=3)
            world.telegram.push_text(chat_id=CHAT, user_id=USER, text="go on")
            await settle(lambda: len(world.openai.requests) == 2, within=3)
    finally:
        hold.set()
    assert shown(world.telegram.bot_messages(CHAT))[0] == parts_of(stopped)[0]
    assert [(h["role"], h["content"], h["interrupted"]) for h in history] == [
        ("user", "tell me a lot", False),
        ("assistant", partial, True),
    ]
    contents = [(m["role"], m["content"]) for m in world.openai.requests[1]["messages"][1:]]
    assert contents == [("user", "tell me a lot"), ("assistant", partial), ("user", "go on")]


# ----- 7. /retry -----------------------------------------------------------------------


async def test_retry_replaces_the_last_answer(world: World, bot: BotRunner) -> None:
    """/retry asks again without the old answer and stores the new answer in its place."""
    world.openai.script += [Answer("Old answer."), Answer("New answer.")]
    async with bot(**FAST):
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="question one")
        await settle(lambda: last_text(world, CHAT) == "Old answer.", within=3)
        await stored_history(world.redis_url, f"u:{USER}", 2)
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="/retry")
        await settle(lambda: last_text(world, CHAT) == "New answer.", within=3)
        history = await stored_history(world.redis_url, f"u:{USER}", 2)
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="question two")
        await settle(lambda: len(world.openai.requests) == 3, within=3)
    first, again, after = (
        [(m["role"], m["content"]) for m in r["messages"][1:]] for r in world.openai.requests
    )
    assert again == first == [("user", "question one")]
    assert [(h["role"], h["content"]) for h in history] == [
        ("user", "question one"),
        ("assistant", "New answer."),
    ]
    assert after == [
        ("user", "question one"),
        ("assistant", "New answer."),
        ("user", "question two"),
    ]
    assert [m.text for m in world.telegram.bot_messages(CHAT)][:2] == ["Old answer.", "New answer."]


# ----- 8. reasoning --------------------------------------------------------------------


def thought_seconds(text: str) -> int:
    """The whole seconds in a final frame's "Thought for Ns" title."""
    found = re.match(r"Thought for (\d+)s", text)
    assert found is not None, text
    return int(found.group(1))


async def test_reasoning_shown_then_collapsed_and_not_stored(world: World, bot: BotRunner) -> None:
    """Reasoning streams in a "Thinking…" blockquote, ends collapsed above the answer, unstored."""
    reasoning = "First I recall the question. Then I weigh two options carefully. " * 2
    answer = "The answer is **42**."
    world.openai.script += [
        Answer(answer, reasoning=reasoning, piece=8, delay=0.03),
        Answer("Noted."),
    ]
    async with bot(**FAST):
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="think")
        await settle(lambda: (last_text(world, CHAT) or "").endswith("The answer is 42."), within=5)
        final = world.telegram.bot_messages(CHAT)[0]
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="ok")
        await settle(lambda: len(world.openai.requests) == 2, within=3)
    frames = [
        c.params for c in chat_calls(world, CHAT) if c.method in ("sendMessage", "editMessageText")
    ]
    thinking = [f for f in frames if str(f["text"]).startswith("Thinking…")]
    assert thinking, "a thinking frame was shown"
    assert has_entity(thinking[-1].get("entities") or [], "expandable_blockquote", at=0)
    assert "weigh two options" in thinking[-1]["text"]
    expected = rendered(answer, reasoning=reasoning, thinking_seconds=thought_seconds(final.text))
    assert (final.text, final.entities) == parts_of(expected)[0]
    assert has_entity(final.entities, "expandable_blockquote", at=0)
    assistant = world.openai.requests[1]["messages"][-2]
    assert assistant == {"role": "assistant", "content": answer}


async def test_hidden_reasoning_leaves_no_blockquote(world: World, bot: BotRunner) -> None:
    """With reasoning hidden in /settings, no frame shows it and the final has no blockquote."""
    reasoning = "Secret chain of thought that the user chose not to see. " * 2
    answer = "Just the **answer**."
    world.openai.script.append(Answer(answer, reasoning=reasoning, piece=8, delay=0.02))
    async with bot(**FAST):
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="/settings")
        await settle(lambda: any(m.reply_markup for m in world.telegram.bot_messages(CHAT)))
        menu = next(m for m in world.telegram.bot_messages(CHAT) if m.reply_markup)
        button = menu.reply_markup["inline_keyboard"][0][0]
        assert button["callback_data"].endswith("reasoning|hide")
        world.telegram.push_callback(
            chat_id=CHAT, user_id=USER, message_id=menu.message_id, data=button["callback_data"]
        )
        await settle(lambda: bool(world.telegram.calls_of("answerCallbackQuery")))
        mark = len(world.telegram.calls)
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="think quietly")
        expected = parts_of(rendered(answer, reasoning=reasoning, show_reasoning=False))
        await settle(lambda: shown(world.telegram.bot_messages(CHAT)[1:]) == expected, within=5)
    frames = [
        c.params
        for c in world.telegram.calls[mark:]
        if c.method in ("sendMessage", "editMessageText")
    ]
    assert frames and not any("Secret chain" in str(f["text"]) for f in frames)
    assert not any(has_entity(f.get("entities") or [], "expandable_blockquote") for f in frames)
    assert world.telegram.bot_messages(CHAT)[1].text == "Just the answer."


# ----- 9. long answers -----------------------------------------------------------------


def long_answer() -> str:
    """About 9,000 characters: paragraphs, with a code block across the 4096-unit mark."""
    paragraph = (
        "Streaming a long answer means the bot must cut it into messages "
        "of at most four thousand and ninety six units each, at good places. "
    )
    before = "\n\n".join(f"{i}. {paragraph * 2}".strip() for i in range(1, 12))
    code = (
        "```python\n" + "".join(f"value_{i} = compute({i}, 'x' * {i})\n" for i in range(40)) + "```"
    )
    after = "\n\n".join(f"Part {i}: {paragraph * 2}".strip() for i in range(1, 18))
    return f"{before}\n\n{code}\n\n{after}"


def clipped(whole: Rendered, start: int, length: int) -> Entities:
    """The entities of ``whole`` inside units ``[start, start + length)``, rebased."""
    entities: Entities = []
    for entity in slice_rendered(whole, start).entities:
        if entity.offset < length:
            end = min(entity.offset + entity.length, length)
            entities.append({**entity.to_dict(), "length": end - entity.offset})
    return entities


async def test_long_answer_spans_messages(world: World, bot: BotRunner) -> None:
    """A 9,000-character answer ends as several messages <= 4096 units that add up exactly."""
    answer = long_answer()
    whole = rendered(answer)
    assert len(answer) > 8500 and utf16_len(whole.text) > 2 * 4096
    code_at = whole.text.index("value_0 = ")
    assert code_at < 4096 < whole.text.index("value_39 = "), "the code block spans the cut"
    world.openai.script.append(Answer(answer, piece=150, delay=0.01))
    async with bot(**FAST):
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="write a lot")
        await settle(
            lambda: "".join(m.text for m in world.telegram.bot_messages(CHAT)) == whole.text,
            within=8,
        )
        await asyncio.sleep(0.2)
    messages = world.telegram.bot_messages(CHAT)
    assert len(messages) >= 3
    assert all(utf16_len(m.text) <= 4096 for m in messages)
    assert "".join(m.text for m in messages) == whole.text
    start = 0
    for message in messages:
        assert message.entities == clipped(whole, start, utf16_len(message.text))
        start += utf16_len(message.text)
    calls = chat_calls(world, CHAT)
    sends = [i for i, c in enumerate(calls) if c.method == "sendMessage"]
    assert len(sends) == len(messages)
    for k, message in enumerate(messages[:-1]):
        late = [
            c
            for c in calls[sends[k + 1] :]
            if c.method == "editMessageText" and int(c.params["message_id"]) == message.message_id
        ]
        assert not late, f"message {k} was edited after message {k + 1} was sent"


# ----- 10. broken streams --------------------------------------------------------------


async def test_broken_stream_is_retried_once(world: World, bot: BotRunner) -> None:
    """A stream that breaks after text was shown is retried from the start; the retry wins."""
    broken = "This first attempt will be cut off before it ends, sadly."
    second = "The **second** attempt is complete."
    world.openai.script += [
        Answer(broken, piece=5, delay=0.03, truncate_after=6),
        Answer(second, piece=5, delay=0.02),
    ]
    async with bot(**FAST):
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="try hard")
        await settle(lambda: last_text(world, CHAT) == rendered(second).text, within=5)
        history = await stored_history(world.redis_url, f"u:{USER}", 2)
    assert len(world.openai.requests) == 2
    assert world.openai.requests[0]["messages"] == world.openai.requests[1]["messages"]
    frames = [str(c.params.get("text")) for c in chat_calls(world, CHAT)]
    assert any(f.startswith("This first") for f in frames), "the broken text had been shown"
    assert shown(world.telegram.bot_messages(CHAT)) == parts_of(rendered(second))
    assert [(h["content"], h["interrupted"]) for h in history] == [
        ("try hard", False),
        (second, False),
    ]


async def test_stream_broken_twice_is_marked_interrupted(world: World, bot: BotRunner) -> None:
    """A stream that breaks on its retry too keeps the partial text, marked and stored."""
    world.openai.script += [
        Answer("Attempt one is cut short here and there.", piece=5, delay=0.02, truncate_after=4),
        Answer("Attempt two is cut short as well, alas.", piece=5, delay=0.02, truncate_after=3),
    ]
    partial = "Attempt two is "
    expected = rendered(partial, suffix=t("mark_interrupted", "en"))
    async with bot(**FAST):
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="try again")
        await settle(lambda: last_text(world, CHAT) == expected.text, within=5)
        history = await stored_history(world.redis_url, f"u:{USER}", 2)
    assert len(world.openai.requests) == 2
    assert shown(world.telegram.bot_messages(CHAT)) == parts_of(expected)
    assert [(h["content"], h["interrupted"]) for h in history] == [
        ("try again", False),
        (partial, True),
    ]


async def test_retry_with_nothing_to_redo(
    world: World, bot: BotRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/retry with no answer yet says so and leaves no "typing" running in the chat."""
    monkeypatch.setattr("bot.reply.stream.TYPING_EVERY", 0.1)
    async with bot(**FAST):
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="/retry")
        await settle(lambda: last_text(world, CHAT) == t("retry_nothing", "en"), within=3)
        answered = len(chat_calls(world, CHAT))
        await asyncio.sleep(0.5)
        later = [c.method for c in chat_calls(world, CHAT)[answered:]]
    assert later == []
    assert not world.openai.requests
