"""End to end: rich messages (Bot API 10.1+) for users who chose them.

Drafts with a stop button then one rich message in private chats, a rich message then rich
edits in groups, the stop button, the fallback ladder (a refused rich message, a server
without rich messages, a refused draft, a send whose answer came late), the /settings
format choice and a group's default, and the one-time hint under a classic answer with a
table or a formula, in English and Chinese. Everything runs through the real PTB
Application against the fake Bot API server (:mod:`bench.fake_telegram`, whose rich
Markdown checker refuses what Telegram would) and the fake model server, on loopback.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

import pytest
import redis.asyncio as redis

from bench.fake_openai import Answer
from bench.fake_telegram import BOT_USERNAME, Call, StoredMessage
from bot.app.wiring import ALLOWED_UPDATES
from bot.render.markdown import ReplyStrings, compose_reply
from bot.render.rich import render_rich_reply
from bot.texts import Lang, t
from tests.e2e.conftest import BotRunner, World, settle, stored_history

pytestmark = pytest.mark.timeout(30)

CHAT = USER = 1201
OTHER = 1202
ADMIN = 1203
GROUP = -1001200
FAST: dict[str, Any] = {"limit_per_chat_per_second": 50.0, "limit_per_group_per_minute": 3000}
STRINGS = ReplyStrings(thinking=t("thinking", "en"), thought_for=t("thought_for", "en"))
TABLE = "| x | x² |\n|---|---|\n| 1 | 1 |\n| 2 | 4 |"
FORMULA = "$$e^{i\\pi} + 1 = 0$$"
ANSWER = (
    f"Squares of small numbers:\n\n{TABLE}\n\nEuler's identity:\n\n{FORMULA}\n\n"
    "and Pythagoras, $a^2 + b^2 = c^2$, for **every** right triangle."
)
REASONING = "The user wants a table of squares and a famous identity. " * 3


def rich_final(answer: str, **options: Any) -> str:
    """The one rich message an answer ends as (``options`` go to render_rich_reply)."""
    parts = render_rich_reply(answer, partial=False, strings=STRINGS, **options)
    assert len(parts) == 1
    return parts[0]


def classic_final(answer: str, **options: Any) -> str:
    """The text of the classic message an answer ends as."""
    return compose_reply(answer, partial=False, strings=STRINGS, **options).text


def calls_since(world: World, start: int, method: str, chat_id: int) -> list[Call]:
    """The calls of ``method`` into ``chat_id`` after the first ``start`` calls."""
    return [
        c
        for c in world.telegram.calls[start:]
        if c.method == method and str(c.params.get("chat_id")) == str(chat_id)
    ]


def markdown_of(call: Call) -> str:
    """The ``rich_message.markdown`` of a recorded call."""
    rich = call.params["rich_message"]
    assert isinstance(rich, dict)
    return str(rich["markdown"])


def answers(world: World, chat_id: int, after: int) -> list[StoredMessage]:
    """The bot's messages in ``chat_id`` with an id above ``after`` (the menus' are below)."""
    return [m for m in world.telegram.bot_messages(chat_id) if m.message_id > after]


def shows(world: World, chat_id: int, after: int, text: str) -> bool:
    """Whether one of the bot's messages in ``chat_id`` after ``after`` reads ``text``."""
    return any(m.text == text for m in answers(world, chat_id, after))


def answered(world: World, chat_id: int, after: int, count: int) -> bool:
    """Whether the bot has ``count`` messages in ``chat_id`` after ``after``."""
    return len(answers(world, chat_id, after)) == count


def newest_id(world: World) -> int:
    """The id of the newest message of any chat (0 when none)."""
    return max((m for chat in world.telegram.messages.values() for m in chat), default=0)


async def press_setting(
    world: World, *, chat_id: int, user_id: int, ending: str, lang: Lang = "en"
) -> StoredMessage:
    """``user_id`` sends /settings in ``chat_id`` and presses the button whose data ends with
    ``ending``; returns the menu, once the press is answered."""
    shown = len(world.telegram.bot_messages(chat_id))
    chat_type = "private" if chat_id > 0 else "supergroup"
    world.telegram.push_text(
        chat_id=chat_id, user_id=user_id, text="/settings", language_code=lang, chat_type=chat_type
    )
    await settle(lambda: len(world.telegram.bot_messages(chat_id)) > shown)
    menu = world.telegram.bot_messages(chat_id)[-1]
    data = next(
        button["callback_data"]
        for row in menu.reply_markup["inline_keyboard"]
        for button in row
        if button["callback_data"].endswith(ending)
    )
    presses = len(world.telegram.calls_of("answerCallbackQuery"))
    world.telegram.push_callback(
        chat_id=chat_id,
        user_id=user_id,
        message_id=menu.message_id,
        data=data,
        language_code=lang,
    )
    await settle(lambda: len(world.telegram.calls_of("answerCallbackQuery")) > presses)
    return menu


async def choose_rich(world: World, user_id: int) -> None:
    """``user_id`` chooses the rich format in their private /settings."""
    await press_setting(world, chat_id=user_id, user_id=user_id, ending="format|rich")


def ask_in_group(world: World, user_id: int, text: str) -> int:
    """``user_id`` mentions the bot in GROUP; returns the message id."""
    return world.telegram.push_text(
        chat_id=GROUP, user_id=user_id, chat_type="supergroup", text=f"@{BOT_USERNAME} {text}"
    )


# ----- 1. private chats: drafts with a stop button, then one rich message ----------------


async def test_private_rich_answer_streams_drafts_then_one_rich_message(
    world: World, bot: BotRunner
) -> None:
    """A table and formulas, with reasoning: a <tg-thinking> placeholder, drafts (all with
    can_stop, the reasoning in <tg-thinking>), then exactly one sendRichMessage replying to
    the question, holding the table, the $$ formula and the reasoning collapsed in <details>;
    no classic message."""
    world.openai.script.append(Answer(ANSWER, piece=12, delay=0.03, reasoning=REASONING))
    async with bot(use_drafts=True, **FAST):
        await choose_rich(world, USER)
        start, first = len(world.telegram.calls), newest_id(world)
        question = world.telegram.push_text(chat_id=CHAT, user_id=USER, text="squares?")
        await settle(lambda: bool(world.telegram.rich_messages(CHAT)), within=5)
        await asyncio.sleep(0.2)
    drafts = calls_since(world, start, "sendRichMessageDraft", CHAT)
    sends = calls_since(world, start, "sendRichMessage", CHAT)
    assert markdown_of(drafts[0]).startswith("<tg-thinking>"), "the placeholder first"
    assert all(c.params.get("can_stop") is True for c in drafts), "every draft can be stopped"
    assert len({c.params["draft_id"] for c in drafts}) == 1
    assert any(
        markdown_of(c).startswith("<tg-thinking>") and "famous identity" in markdown_of(c)
        for c in drafts
    ), "the reasoning streams inside <tg-thinking>"
    assert any(TABLE.splitlines()[0] in markdown_of(c) for c in drafts), "the answer streams"
    assert len(sends) == 1 and sends[0].error_code is None
    final = markdown_of(sends[0])
    assert TABLE in final and FORMULA in final and "$a^2 + b^2 = c^2$" in final
    assert final.startswith("<details>") and "<summary>Thought for" in final
    assert "<tg-thinking>" not in final
    shown = answers(world, CHAT, first)
    assert [m.text for m in shown] == [final] and shown[0].reply_to == question
    for method in ("sendMessage", "sendMessageDraft", "editMessageText"):
        assert not calls_since(world, start, method, CHAT), method


async def test_hidden_reasoning_stays_out_of_rich_drafts_and_the_message(
    world: World, bot: BotRunner
) -> None:
    """A user who hides reasoning sees only the "Thinking…" header in the draft and no
    <details> block in the final rich message, which is exactly the rendered answer."""
    world.openai.script.append(Answer(ANSWER, piece=20, delay=0.02, reasoning=REASONING))
    async with bot(use_drafts=True, **FAST):
        await press_setting(world, chat_id=USER, user_id=USER, ending="reasoning|hide")
        await choose_rich(world, USER)
        start = len(world.telegram.calls)
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="squares?")
        await settle(lambda: bool(world.telegram.rich_messages(CHAT)), within=5)
    drafts = [markdown_of(c) for c in calls_since(world, start, "sendRichMessageDraft", CHAT)]
    assert drafts and not any("famous identity" in d for d in drafts)
    (send,) = calls_since(world, start, "sendRichMessage", CHAT)
    assert markdown_of(send) == rich_final(ANSWER, reasoning=REASONING, show_reasoning=False)
    assert "<details>" not in markdown_of(send)


async def test_an_answer_over_the_limits_goes_on_in_a_new_rich_message(
    world: World, bot: BotRunner
) -> None:
    """A ~40 KB answer (over 32,768 bytes) ends as two rich messages cut between
    paragraphs, exactly the renderer's split, the first replying to the question; each
    message is sent once."""
    answer = "".join(
        f"Paragraph {n}: " + "a sentence about limits and splitting. " * 10 + "\n\n"
        for n in range(100)
    )
    expected = render_rich_reply(answer, partial=False, strings=STRINGS)
    assert len(expected) == 2 and all(p.startswith("Paragraph") for p in expected)
    world.openai.script.append(Answer(answer, piece=3000, delay=0.02))
    async with bot(use_drafts=True, **FAST):
        await choose_rich(world, USER)
        start, first = len(world.telegram.calls), newest_id(world)
        question = world.telegram.push_text(chat_id=CHAT, user_id=USER, text="a long one")
        await settle(lambda: [m.text for m in answers(world, CHAT, first)] == expected, within=10)
        await asyncio.sleep(0.2)
    assert len(calls_since(world, start, "sendRichMessage", CHAT)) == 2
    assert answers(world, CHAT, first)[0].reply_to == question
    assert not calls_since(world, start, "sendMessage", CHAT)


# ----- 2. groups: a rich message, then rich edits ------------------------------------------


async def test_group_default_rich_sends_then_edits_and_a_member_may_keep_classic(
    world: World, bot: BotRunner
) -> None:
    """An admin makes rich the group's default in its /settings menu: a member who chose
    nothing gets sendRichMessage then editMessageText(rich_message=…) ending in the exact
    rich answer (no drafts, no classic message); a member who chose classic gets classic."""
    world.telegram.admins.add(ADMIN)
    world.openai.script += [Answer(ANSWER, piece=10, delay=0.05), Answer("Plain **text**.")]
    async with bot(**FAST):
        menu = await press_setting(world, chat_id=GROUP, user_id=ADMIN, ending="format|rich")
        await settle(lambda: t("format_rich", "en") in menu.text)
        await press_setting(world, chat_id=OTHER, user_id=OTHER, ending="format|classic")
        start = len(world.telegram.calls)
        asked = ask_in_group(world, USER, "squares?")
        await settle(lambda: bool(answers(world, GROUP, asked)), within=3)
        await settle(
            lambda: [m.text for m in answers(world, GROUP, asked)] == [rich_final(ANSWER)],
            within=8,
        )
        later = newest_id(world)
        ask_in_group(world, OTHER, "and you?")
        await settle(lambda: bool(answers(world, GROUP, later + 1)), within=5)
        await settle(
            lambda: answers(world, GROUP, later + 1)[-1].text == classic_final("Plain **text**."),
            within=5,
        )
    sends = calls_since(world, start, "sendRichMessage", GROUP)
    edits = [
        c for c in calls_since(world, start, "editMessageText", GROUP) if "rich_message" in c.params
    ]
    assert len(sends) == 1 and edits, "one rich message, then rich edits"
    assert markdown_of(edits[-1]) == rich_final(ANSWER)
    assert not calls_since(world, start, "sendRichMessageDraft", GROUP)
    classic = calls_since(world, start, "sendMessage", GROUP)
    assert len(classic) == 1, "the member who chose classic"
    assert len(world.telegram.rich_messages(GROUP)) == 1


# ----- 3. the stop button --------------------------------------------------------------------


def test_polling_and_the_webhook_ask_for_the_stop_button() -> None:
    """ALLOWED_UPDATES (given to getUpdates and setWebhook) names stopped_message_generation:
    an explicit list without it filters the press out."""
    assert "stopped_message_generation" in ALLOWED_UPDATES
    assert {"message", "callback_query", "channel_post"} <= set(ALLOWED_UPDATES)


async def test_the_stop_button_stops_the_answer_as_stop_does(world: World, bot: BotRunner) -> None:
    """With an allow-list on: the press (an update with no user for the gate) closes the
    provider stream; the partial answer is sent once as a rich message marked stopped and
    stored as interrupted."""
    partial = "Here is the beginning of a long **answer**"
    hold = asyncio.Event()
    world.openai.script.append(Answer(partial, piece=5, delay=0.01, hold=hold))
    try:
        async with bot(use_drafts=True, allowed_user_ids=[USER], **FAST):
            await choose_rich(world, USER)
            start = len(world.telegram.calls)
            world.telegram.push_text(chat_id=CHAT, user_id=USER, text="tell me a lot")
            await settle(
                lambda: any(
                    "long **answer**" in markdown_of(c)
                    for c in calls_since(world, start, "sendRichMessageDraft", CHAT)
                ),
                within=5,
            )
            draft_id = calls_since(world, start, "sendRichMessageDraft", CHAT)[-1].params[
                "draft_id"
            ]
            world.telegram.press_stop(CHAT, int(draft_id))
            await settle(lambda: world.openai.disconnects == 1, within=3)
            await settle(lambda: bool(calls_since(world, start, "sendRichMessage", CHAT)))
            history = await stored_history(world.redis_url, f"u:{USER}", 2)
            await asyncio.sleep(0.2)
    finally:
        hold.set()
    (send,) = calls_since(world, start, "sendRichMessage", CHAT)
    assert markdown_of(send) == rich_final(partial, suffix=t("mark_stopped", "en"))
    assert not calls_since(world, start, "sendMessage", CHAT), "no classic message"
    assert [(h["role"], h["content"], h["interrupted"]) for h in history] == [
        ("user", "tell me a lot", False),
        ("assistant", partial, True),
    ]


# ----- 4. the fallback ladder ----------------------------------------------------------------


async def test_a_refused_rich_message_sends_that_answer_classic_once(
    world: World, bot: BotRunner
) -> None:
    """Telegram refuses the final rich message (400 RICH_MESSAGE_URL_INVALID): that answer
    arrives once as a classic message; the next answer is rich again."""
    world.openai.script += [Answer(ANSWER, piece=20, delay=0.02), Answer("Next **one**.")]
    world.telegram.inject(
        "sendRichMessage", status=400, description="Bad Request: RICH_MESSAGE_URL_INVALID"
    )
    async with bot(use_drafts=True, **FAST):
        await choose_rich(world, USER)
        first = newest_id(world)
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="squares?")
        await settle(lambda: bool(answers(world, CHAT, first)), within=5)
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="next")
        await settle(lambda: len(answers(world, CHAT, first)) >= 2, within=5)
        await asyncio.sleep(0.2)
    shown = [m.text for m in answers(world, CHAT, first)]
    assert shown == [classic_final(ANSWER), rich_final("Next **one**.")]
    assert world.telegram.injections[0].times == 0, "the rich message was refused"


@pytest.mark.parametrize("chat", ["private", "group"])
async def test_a_server_without_rich_messages_turns_them_off_with_one_warning(
    world: World, bot: BotRunner, caplog: pytest.LogCaptureFixture, chat: str
) -> None:
    """A Bot API server before 10.1 (404 for the rich methods): the first answer goes on
    classic and arrives once, one WARNING says so, and the next answer tries no rich call."""
    world.telegram.rich_supported = False
    texts = ["First **answer**, with some length to stream.", "Second answer."]
    world.openai.script += [Answer(texts[0], piece=6, delay=0.02), Answer(texts[1])]
    chat_id = CHAT if chat == "private" else GROUP
    with caplog.at_level(logging.WARNING):
        async with bot(use_drafts=True, **FAST):
            await choose_rich(world, USER)
            first = newest_id(world)
            for n, text in enumerate(texts):
                done = len(world.telegram.calls)
                if chat == "private":
                    world.telegram.push_text(chat_id=CHAT, user_id=USER, text=f"q{n}")
                else:
                    ask_in_group(world, USER, f"q{n}")
                await settle(
                    functools.partial(shows, world, chat_id, first, classic_final(text)), within=5
                )
            await asyncio.sleep(0.2)
    shown = [m.text for m in answers(world, chat_id, first)]
    assert shown == [classic_final(text) for text in texts], "each answer once, classic"
    warnings = [r for r in caplog.records if "has no rich messages" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    rich_methods = ("sendRichMessage", "sendRichMessageDraft")
    assert not [c for c in world.telegram.calls[done:] if c.method in rich_methods]


async def test_a_refused_rich_draft_goes_on_in_rich_messages(world: World, bot: BotRunner) -> None:
    """A rich draft refused for the chat (400 TEXTDRAFT_PEER_INVALID): the answer goes on as
    a rich message and rich edits, ending as exactly one rich message; nothing classic."""
    answer = "A draft that fails, then an edited rich message with a **table**:\n\n" + TABLE
    world.openai.script.append(Answer(answer, piece=8, delay=0.03))
    world.telegram.inject(
        "sendRichMessageDraft", status=400, description="Bad Request: TEXTDRAFT_PEER_INVALID"
    )
    async with bot(use_drafts=True, **FAST):
        await choose_rich(world, USER)
        start, first = len(world.telegram.calls), newest_id(world)
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="go")
        await settle(
            lambda: [m.text for m in answers(world, CHAT, first)][-1:] == [rich_final(answer)],
            within=5,
        )
        await asyncio.sleep(0.2)
    assert world.telegram.injections[0].times == 0
    assert [m.text for m in answers(world, CHAT, first)] == [rich_final(answer)]
    assert len(calls_since(world, start, "sendRichMessage", CHAT)) == 1
    assert calls_since(world, start, "editMessageText", CHAT), "rich edits after the draft"
    assert not calls_since(world, start, "sendMessage", CHAT)
    assert len(calls_since(world, start, "sendRichMessageDraft", CHAT)) == 1


async def test_a_rich_draft_refused_for_its_content_sends_the_answer_classic(
    world: World, bot: BotRunner
) -> None:
    """A rich draft refused for its content (400 RICH_MESSAGE_RICH_TEXT_INVALID): the answer
    goes on with classic drafts and ends as exactly one classic message."""
    answer = "Classic after a refused rich draft, with **bold** text streaming in."
    world.openai.script.append(Answer(answer, piece=6, delay=0.03))
    world.telegram.inject(
        "sendRichMessageDraft",
        status=400,
        description="Bad Request: RICH_MESSAGE_RICH_TEXT_INVALID",
    )
    async with bot(use_drafts=True, **FAST):
        await choose_rich(world, USER)
        start, first = len(world.telegram.calls), newest_id(world)
        world.telegram.push_text(chat_id=CHAT, user_id=USER, text="go")
        await settle(
            lambda: [m.text for m in answers(world, CHAT, first)][-1:] == [classic_final(answer)],
            within=5,
        )
        await asyncio.sleep(0.2)
    assert [m.text for m in answers(world, CHAT, first)] == [classic_final(answer)]
    assert len(calls_since(world, start, "sendRichMessageDraft", CHAT)) == 1
    assert calls_since(world, start, "sendMessageDraft", CHAT), "classic drafts after it"
    assert not calls_since(world, start, "sendRichMessage", CHAT)


async def test_a_refused_rich_edit_in_a_group_turns_that_message_classic(
    world: World, bot: BotRunner
) -> None:
    """A group's rich message whose next rich edit is refused (400): the same message is
    edited into the classic answer (never sent twice); no rich message is left."""
    answer = "The first words go out rich; then an edit is refused and **classic** takes over."
    world.openai.script.append(Answer(answer, piece=6, delay=0.05))
    async with bot(**FAST):
        await choose_rich(world, USER)
        start = len(world.telegram.calls)
        asked = ask_in_group(world, USER, "go")
        await settle(lambda: bool(calls_since(world, start, "sendRichMessage", GROUP)), within=5)
        world.telegram.inject(
            "editMessageText", status=400, description="Bad Request: RICH_MESSAGE_URL_INVALID"
        )
        await settle(
            lambda: [m.text for m in answers(world, GROUP, asked)] == [classic_final(answer)],
            within=8,
        )
        await asyncio.sleep(0.2)
    assert world.telegram.injections[0].times == 0, "a rich edit was refused"
    assert len(calls_since(world, start, "sendRichMessage", GROUP)) == 1
    assert not calls_since(world, start, "sendMessage", GROUP), "the message was kept"
    (message,) = answers(world, GROUP, asked)
    last = calls_since(world, start, "editMessageText", GROUP)[-1]
    assert last.params["message_id"] == message.message_id and "rich_message" not in last.params


async def test_a_late_answer_to_a_rich_send_does_not_send_it_twice(
    world: World, bot: BotRunner
) -> None:
    """In a group every sendRichMessage is answered after 1 s while the bot waits 0.5 s: the
    first message cannot be edited, so the rest follows in one more rich message with the
    final frame; no send is repeated and together they read the answer once."""
    words = "one two three four five six seven eight nine ten eleven twelve thirteen"
    world.openai.script.append(Answer(words, piece=5, delay=0.05))
    world.telegram.slow["sendRichMessage"] = 1.0
    async with bot(**FAST) as app:
        await choose_rich(world, USER)
        app.bot_data.services.replies.send_timeout = 0.5
        start = len(world.telegram.calls)
        asked = ask_in_group(world, USER, "count")
        await settle(lambda: len(answers(world, GROUP, asked)) == 2, within=8)
        await asyncio.sleep(1.5)
    sends = calls_since(world, start, "sendRichMessage", GROUP)
    assert len(sends) == 2 and all(c.result is not None for c in sends)
    assert not calls_since(world, start, "editMessageText", GROUP), "unconfirmed: never edited"
    shown = "".join("".join(m.text.split()) for m in answers(world, GROUP, asked))
    assert shown == "".join(words.split())


# ----- 5. the setting and the one-time hint -----------------------------------------------


@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_the_format_setting_shows_both_choices_and_saves_the_press(
    world: World, bot: BotRunner, redis_url: str, lang: Lang
) -> None:
    """/settings shows the reasoning toggle, then Classic (checked: the default) and Rich,
    in the user's language; pressing Rich stores it and moves the check."""
    classic, rich = t("settings_format_classic", lang), t("settings_format_rich", lang)
    async with bot():
        world.telegram.push_text(chat_id=USER, user_id=USER, text="/settings", language_code=lang)
        await settle(lambda: bool(world.telegram.bot_messages(USER)))
        (menu,) = world.telegram.bot_messages(USER)
        labels = [row[0]["text"] for row in menu.reply_markup["inline_keyboard"]]
        data = menu.reply_markup["inline_keyboard"][2][0]["callback_data"]
        assert data == f"s|{USER}|format|rich"
        world.telegram.push_callback(
            chat_id=USER, user_id=USER, message_id=menu.message_id, data=data, language_code=lang
        )
        await settle(
            lambda: (
                [row[0]["text"] for row in menu.reply_markup["inline_keyboard"]][1:]
                == [classic, f"✅ {rich}"]
            )
        )
    assert labels[1:] == [f"✅ {classic}", rich]
    assert labels[0] == t("settings_reasoning_show", lang)
    client = redis.from_url(redis_url)
    try:
        stored = [
            await client.hget(key, "format") async for key in client.scan_iter(f"*{{u:{USER}}}*")
        ]
    finally:
        await client.aclose()
    assert b"rich" in stored


@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_the_first_classic_table_or_formula_carries_the_hint_once(
    world: World, bot: BotRunner, lang: Lang
) -> None:
    """A user who chose no format: a plain answer has no hint, the first with a table ends
    with the one-line hint in their language, the next with a formula has none; a user who
    chose classic never gets it."""
    plain, table, formula = "Just words.", f"Here:\n\n{TABLE}", "So $x^2 = 4$, $x = 2$."
    world.openai.script += [Answer(plain), Answer(table), Answer(formula), Answer(table)]
    async with bot(**FAST):
        await press_setting(world, chat_id=OTHER, user_id=OTHER, ending="format|classic")
        first = newest_id(world)
        for n in range(3):
            world.telegram.push_text(chat_id=CHAT, user_id=USER, text=f"q{n}", language_code=lang)
            await settle(functools.partial(answered, world, CHAT, first, n + 1), within=5)
        world.telegram.push_text(chat_id=OTHER, user_id=OTHER, text="q", language_code=lang)
        await settle(lambda: len(answers(world, OTHER, first)) == 1, within=5)
        await asyncio.sleep(0.2)
    shown = [m.text for m in answers(world, CHAT, first)]
    hint = t("rich_hint", lang)
    assert shown[0] == classic_final(plain)
    assert shown[1] == classic_final(table, suffix=hint) and shown[1].endswith(hint)
    assert shown[2] == classic_final(formula)
    other = [m.text for m in answers(world, OTHER, first)]
    assert other == [classic_final(table)]
