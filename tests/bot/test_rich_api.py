"""bot.reply.rich_api: the rich-message helpers through PTB 22.8 against the fake Bot API on
loopback (sends, drafts, edits, the errors' meaning, the stop button's update)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyParameters,
    Update,
)
from telegram.error import BadRequest, EndPointNotFound, InvalidToken
from telegram.request import HTTPXRequest

from bench.fake_telegram import FakeTelegram
from bench.loopback import TOKEN, serve
from bot.reply.rich_api import (
    RICH_ALLOWED_UPDATES,
    StoppedGeneration,
    edit_message_rich_text,
    is_rich_rejected,
    is_rich_unsupported,
    send_rich_message,
    send_rich_message_draft,
    stopped_generation,
)

pytestmark = pytest.mark.timeout(15)

USER = 4242  # a private chat's id is its user's
GROUP = -100500


@asynccontextmanager
async def bot_on(telegram: FakeTelegram, *, initialize: bool = True) -> AsyncIterator[Bot]:
    """A PTB bot talking to ``telegram`` served on loopback (initialised: ``getMe`` done)."""
    async with serve(telegram.app) as port:
        request = HTTPXRequest()
        bot = Bot(TOKEN, base_url=f"http://127.0.0.1:{port}/bot", request=request)
        if not initialize:  # Bot.shutdown does nothing then: close its connections here
            try:
                yield bot
            finally:
                await request.shutdown()
            return
        async with bot:
            yield bot


async def test_send_rich_message_returns_the_message_and_the_fake_keeps_the_markdown() -> None:
    """sendRichMessage answers a Message without text whose blocks PTB keeps in api_kwargs;
    the reply target, topic and keyboard reach the server."""
    telegram = FakeTelegram()
    question = telegram.push_text(chat_id=USER, user_id=USER, text="what is a matrix?")
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("more", callback_data="more")]])
    markdown = "# Matrix\n\nA **table** of numbers:\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    async with bot_on(telegram) as bot:
        message = await send_rich_message(
            bot,
            USER,
            markdown,
            message_thread_id=7,
            reply_parameters=ReplyParameters(message_id=question),
            reply_markup=keyboard,
        )
    assert isinstance(message, Message)
    assert message.text is None
    assert message.message_thread_id == 7
    blocks = message.api_kwargs["rich_message"]["blocks"]
    assert [block["type"] for block in blocks] == ["heading", "paragraph", "table"]
    assert message.reply_markup == keyboard
    [stored] = telegram.rich_messages(USER)
    assert stored.text == markdown
    assert stored.reply_to == question
    [call] = telegram.calls_of("sendRichMessage")
    assert call.params["rich_message"] == {"markdown": markdown}


async def test_skip_entity_detection_is_sent_only_when_asked() -> None:
    """``skip_entity_detection=True`` adds the field to ``rich_message``; the default sends none."""
    telegram = FakeTelegram()
    async with bot_on(telegram) as bot:
        await send_rich_message(bot, USER, "plain", skip_entity_detection=True)
        await send_rich_message(bot, USER, "plain again")
    first, second = telegram.calls_of("sendRichMessage")
    assert first.params["rich_message"] == {"markdown": "plain", "skip_entity_detection": True}
    assert second.params["rich_message"] == {"markdown": "plain again"}


async def test_draft_frames_are_recorded_with_the_stop_options() -> None:
    """Each sendRichMessageDraft answers True; frames of one draft id accumulate with
    ``can_stop``/``keep_on_stop`` as last sent, and ``<tg-thinking>`` is accepted in a draft."""
    telegram = FakeTelegram()
    async with bot_on(telegram) as bot:
        first = await send_rich_message_draft(
            bot, USER, 11, "<tg-thinking>Thinking...</tg-thinking>", can_stop=True
        )
        second = await send_rich_message_draft(
            bot, USER, 11, "Partial *answer*", can_stop=True, keep_on_stop=True
        )
    assert first is True and second is True
    draft = telegram.rich_drafts[(USER, None, 11)]
    assert draft.frames == ["<tg-thinking>Thinking...</tg-thinking>", "Partial *answer*"]
    assert draft.can_stop and draft.keep_on_stop
    assert "keep_on_stop" not in telegram.calls_of("sendRichMessageDraft")[0].params


async def test_a_draft_into_a_group_is_a_bad_request_but_not_a_rejected_text() -> None:
    """Drafts are for private chats: a group's draft is refused with 400, which is neither
    "rich unsupported" nor "this content rejected"."""
    telegram = FakeTelegram()
    async with bot_on(telegram) as bot:
        with pytest.raises(BadRequest) as caught:
            await send_rich_message_draft(bot, GROUP, 5, "partial")
    assert not is_rich_rejected(caught.value)
    assert not is_rich_unsupported(caught.value)


async def test_edit_turns_a_plain_message_rich_and_the_same_content_is_not_modified() -> None:
    """editMessageText with rich_message (and no text) makes a sent plain message rich;
    the same Markdown again is "Message is not modified", which is no rejection."""
    telegram = FakeTelegram()
    async with bot_on(telegram) as bot:
        sent = await bot.send_message(USER, "streaming…")
        edited = await edit_message_rich_text(bot, USER, sent.message_id, "Final **answer**")
        with pytest.raises(BadRequest) as caught:
            await edit_message_rich_text(bot, USER, sent.message_id, "Final **answer**")
    assert isinstance(edited, Message)
    assert edited.text is None
    assert edited.api_kwargs["rich_message"]["blocks"][0]["text"] == "Final **answer**"
    [stored] = telegram.rich_messages(USER)
    assert (stored.message_id, stored.text, stored.edits) == (
        sent.message_id,
        "Final **answer**",
        1,
    )
    first_edit = telegram.calls_of("editMessageText")[0]
    assert "text" not in first_edit.params
    assert "not modified" in caught.value.message.lower()
    assert not is_rich_rejected(caught.value)


@pytest.mark.parametrize(
    "markdown",
    [
        "```python\nprint('never closed')",
        "It costs $5 today",
        "see [the notes](notes/chapter1.md)",
        "<details><summary>Why</summary>\n\nnever closed",
        "| a | b |\n|---|---|\n| 1 |",
        "<tg-thinking>Thinking...</tg-thinking>",
    ],
)
async def test_content_the_server_refuses_is_recognised_as_rejected(markdown: str) -> None:
    """A 400 for the Markdown itself (a RICH_* code or a parse failure, after PTB's
    capitalisation) is what ``is_rich_rejected`` recognises, and not "unsupported"."""
    telegram = FakeTelegram()
    async with bot_on(telegram) as bot:
        with pytest.raises(BadRequest) as caught:
            await send_rich_message(bot, USER, markdown)
    assert is_rich_rejected(caught.value), caught.value.message
    assert not is_rich_unsupported(caught.value)
    assert telegram.rich_messages(USER) == []


async def test_a_server_before_10_1_is_recognised_as_unsupported() -> None:
    """With ``rich_supported`` off, the two new methods raise ``EndPointNotFound`` (the 404
    on an initialised bot) and the edit "Message text is empty": all "unsupported"."""
    telegram = FakeTelegram(rich_supported=False)
    async with bot_on(telegram) as bot:
        sent = await bot.send_message(USER, "plain")
        with pytest.raises(EndPointNotFound) as send_error:
            await send_rich_message(bot, USER, "rich")
        with pytest.raises(EndPointNotFound) as draft_error:
            await send_rich_message_draft(bot, USER, 1, "rich")
        with pytest.raises(BadRequest) as edit_error:
            await edit_message_rich_text(bot, USER, sent.message_id, "rich")
    for error in (send_error.value, draft_error.value, edit_error.value):
        assert is_rich_unsupported(error), error
        assert not is_rich_rejected(error)
    assert telegram.bot_messages(USER)[0].text == "plain"


async def test_an_uninitialised_bot_cannot_tell_a_missing_method_from_a_bad_token() -> None:
    """Before ``initialize()`` PTB raises ``InvalidToken`` for the same 404, which is not
    taken as "unsupported" (it may be a revoked token)."""
    telegram = FakeTelegram(rich_supported=False)
    async with bot_on(telegram, initialize=False) as bot:
        with pytest.raises(InvalidToken) as caught:
            await send_rich_message(bot, USER, "rich")
    assert not is_rich_unsupported(caught.value)


async def test_the_stop_press_arrives_as_an_update_ptb_parses() -> None:
    """A press on a ``can_stop`` draft comes through getUpdates (asked with
    RICH_ALLOWED_UPDATES) as an Update whose chat, topic and draft id are read back."""
    telegram = FakeTelegram()
    async with bot_on(telegram) as bot:
        await send_rich_message_draft(bot, USER, 77, "partial", can_stop=True)
        await send_rich_message_draft(
            bot, USER, 78, "in a topic", message_thread_id=3, can_stop=True
        )
        telegram.press_stop(USER, 77)
        telegram.press_stop(USER, 78, message_thread_id=3)
        updates = await bot.get_updates(allowed_updates=["message", *RICH_ALLOWED_UPDATES])
    assert [stopped_generation(update) for update in updates] == [
        StoppedGeneration(chat_id=USER, draft_id=77),
        StoppedGeneration(chat_id=USER, draft_id=78, message_thread_id=3),
    ]


async def test_allowed_updates_without_the_name_never_deliver_the_press() -> None:
    """An explicit ``allowed_updates`` lacking ``stopped_message_generation`` (e.g. PTB's
    ``Update.ALL_TYPES``) filters the press out."""
    telegram = FakeTelegram()
    async with bot_on(telegram) as bot:
        await send_rich_message_draft(bot, USER, 9, "partial", can_stop=True)
        telegram.press_stop(USER, 9)
        telegram.push_text(chat_id=USER, user_id=USER, text="hello")
        updates = await bot.get_updates(allowed_updates=Update.ALL_TYPES)
    assert [stopped_generation(update) for update in updates] == [None]
    assert updates[0].message is not None and updates[0].message.text == "hello"


def test_updates_without_a_well_formed_stop_field_give_none() -> None:
    """A message update, or a stop field lacking an integer chat id or draft id, is no
    stop press."""
    bot = Bot(TOKEN)
    message = {
        "message_id": 1,
        "date": 0,
        "chat": {"id": USER, "type": "private"},
        "text": "hi",
    }
    plain = Update.de_json({"update_id": 1, "message": message}, bot)
    no_draft = Update.de_json(
        {"update_id": 2, "stopped_message_generation": {"chat": {"id": USER}}}, bot
    )
    text_ids = Update.de_json(
        {
            "update_id": 3,
            "stopped_message_generation": {"chat": {"id": "x"}, "draft_id": 4},
        },
        bot,
    )
    assert stopped_generation(plain) is None
    assert stopped_generation(no_draft) is None
    assert stopped_generation(text_ids) is None
