"""The fake Bot API's rich messages: the independent Markdown validator (samples, each
limit at its edge) and the server's methods over raw HTTP (request formats, errors,
drafts and the stop button)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from bench.fake_rich import (
    ERRORS,
    MAX_BLOCKS,
    MAX_CHARACTERS,
    MAX_DEPTH,
    MAX_MEDIA,
    MAX_TABLE_COLUMNS,
    SERVER_ERRORS,
    parse_rich_markdown,
    validate_rich_markdown,
)
from bench.fake_telegram import FakeTelegram
from bench.loopback import TOKEN, serve

pytestmark = pytest.mark.timeout(15)

USER = 4242
GROUP = -100500

VALID = [
    "Just a line.",
    "# Title\n\nSome **bold**, `code with $ and |`, and $x^2$ inline.",
    "```python\nprice = '$5'\n```",
    "~~~\nunclosed ``` inside a tilde fence\n~~~",
    "$$\n\\int_0^1 x\\,dx\n$$",
    "$$E=mc^2$$",
    "```math\na^2+b^2=c^2\n```",
    "It costs \\$5, or `$5`.",
    "- one\n- two\n  - nested $y$\n\n1. first\n2. second",
    "- [ ] todo\n- [x] done",
    "> quoted\n> > deeper",
    "| a | b |\n|:--|--:|\n| 1 | 2 |\n| `x\\|y` | 4 |",
    "<details open><summary>Why</summary>\n\nBecause $z$.\n\n</details>",
    "<details><summary>Code</summary>\n\n```html\n</details>\n```\n\n</details>",
    "[site](https://example.org) [mail](mailto:a@b.c) [call](tel:+100) [top](#top)",
    '![](https://example.org/a.jpg "a caption")',
    "![👍](tg://emoji?id=5368324170671202286) inline emoji",
    "---\n\nafter a divider",
]

INVALID = [
    ("```python\nprint('never closed')", "unclosed code fence"),
    ("````\ncode\n```", "unclosed code fence"),
    ("$$\nx^2", "unclosed $$"),
    ("It costs $5 today", "unclosed $"),
    ("a $b\n\nc$ d", "unclosed $"),
    ("<details><summary>s</summary>\n\nbody", "unclosed <details>"),
    ("text\n\n</details>", "</details> without <details>"),
    ("a <details> inline", "<details> inside a paragraph"),
    ("| a | b |\n|---|---|\n| 1 |", "has 1 cells"),
    ("| a | b |\n|---|---|\n| 1 | 2 |\nnext line", "has 1 cells"),
    ("| a | b |\n|---|\n", "the header has 2 cells"),
    ("| a | b |\n|---|---|\n| `x|y` | 2 |", "has 3 cells"),
]


@pytest.mark.parametrize("markdown", VALID)
def test_valid_samples_pass(markdown: str) -> None:
    """Well-formed rich Markdown (each construct of the style) is accepted."""
    assert validate_rich_markdown(markdown) is None


@pytest.mark.parametrize(("markdown", "detail"), INVALID)
def test_unbalanced_samples_are_parse_errors(markdown: str, detail: str) -> None:
    """Unclosed fences, formulas and ``<details>``, and ragged tables are refused with a
    parse error naming the problem."""
    error = validate_rich_markdown(markdown)
    assert error is not None
    assert error.startswith("Bad Request: can't parse rich message: ")
    assert detail in error


def test_each_limit_holds_at_its_edge_and_breaks_past_it() -> None:
    """Characters, blocks, depth, table columns and media pass at the limit and are
    refused one past it, each with its own error."""

    def table(columns: int) -> str:
        return "|" + "|".join("c" * columns) + "|\n|" + "|".join(["-"] * columns) + "|"

    def quotes(levels: int) -> str:  # a paragraph inside levels - 1 quotes: depth levels
        return ">" * (levels - 1) + " x"

    def media(count: int) -> str:
        return "\n\n".join(f"![](https://example.org/{i}.jpg)" for i in range(count))

    cases = [
        ("a" * MAX_CHARACTERS, "a" * (MAX_CHARACTERS + 1), ERRORS["too_long"]),
        (
            "\n\n".join(["p"] * MAX_BLOCKS),
            "\n\n".join(["p"] * (MAX_BLOCKS + 1)),
            ERRORS["too_many_blocks"],
        ),
        (quotes(MAX_DEPTH), quotes(MAX_DEPTH + 1), ERRORS["too_deep"]),
        (table(MAX_TABLE_COLUMNS), table(MAX_TABLE_COLUMNS + 1), ERRORS["too_many_columns"]),
        (media(MAX_MEDIA), media(MAX_MEDIA + 1), ERRORS["too_many_media"]),
    ]
    for at_limit, past_limit, error in cases:
        assert validate_rich_markdown(at_limit) is None, error
        assert validate_rich_markdown(past_limit) == error


def test_nested_blocks_list_items_and_table_rows_count_as_blocks() -> None:
    """A list counts itself and each item; a table itself and each row; a quote itself
    and what it holds."""
    parsed = parse_rich_markdown("- a\n- b\n\n| h |\n|---|\n| 1 |\n| 2 |\n\n> q")
    # list + 2 items + 2 paragraphs; table + 3 rows; quote + paragraph
    assert parsed.block_count == 5 + 4 + 2
    assert [block["type"] for block in parsed.blocks] == ["list", "table", "blockquote"]


@pytest.mark.parametrize(
    "markdown",
    ["<tg-thinking>Thinking...</tg-thinking>", "Partial <tg-thinking>hmm</tg-thinking> text"],
)
def test_thinking_is_for_drafts_only(markdown: str) -> None:
    """``<tg-thinking>`` passes in a draft frame and is refused in a message."""
    assert validate_rich_markdown(markdown, draft=True) is None
    assert validate_rich_markdown(markdown) == ERRORS["not_allowed"]


@pytest.mark.parametrize("target", ["notes/a.md", "./a.png", "file:///etc/hosts", ""])
def test_relative_and_local_link_targets_are_url_invalid(target: str) -> None:
    """A link whose target is not http(s), mailto, tel, tg or an anchor is refused as
    Telegram does (RICH_MESSAGE_URL_INVALID)."""
    assert validate_rich_markdown(f"see [this]({target})") == ERRORS["url_invalid"]


def test_empty_markdown_is_refused() -> None:
    """Blank Markdown is an empty rich message."""
    assert validate_rich_markdown(" \n\n ") == ERRORS["empty"]


# ----- the server ---------------------------------------------------------------------


async def call(
    client: httpx.AsyncClient,
    port: int,
    method: str,
    *,
    form: dict[str, Any] | None = None,
    body: dict[str, Any] | None = None,
) -> tuple[int, dict[str, Any]]:
    """POST ``method`` as a form (non-string values JSON-encoded, as PTB sends them) or as
    a JSON body; returns the status and the answer."""
    url = f"http://127.0.0.1:{port}/bot{TOKEN}/{method}"
    if form is not None:
        fields = {k: v if isinstance(v, str) else json.dumps(v) for k, v in form.items()}
        response = await client.post(url, data=fields)
    else:
        response = await client.post(url, json=body)
    return response.status_code, response.json()


async def test_form_and_json_bodies_both_carry_rich_message() -> None:
    """``rich_message`` as a JSON string in a form body and as an object in a JSON body
    both send; the answer has ``rich_message.blocks`` and no ``text``."""
    telegram = FakeTelegram()
    rich = {"markdown": "# Hi\n\nthere"}
    async with serve(telegram.app) as port, httpx.AsyncClient() as client:
        form = await call(
            client, port, "sendRichMessage", form={"chat_id": USER, "rich_message": rich}
        )
        body = await call(
            client, port, "sendRichMessage", body={"chat_id": USER, "rich_message": rich}
        )
    for status, answer in (form, body):
        assert status == 200
        assert "text" not in answer["result"]
        types = [block["type"] for block in answer["result"]["rich_message"]["blocks"]]
        assert types == ["heading", "paragraph"]
    assert [m.text for m in telegram.rich_messages(USER)] == [rich["markdown"]] * 2


@pytest.mark.parametrize(
    ("rich", "error"),
    [
        ({"markdown": "a", "html": "<b>a</b>"}, SERVER_ERRORS["one_source"]),
        ({}, SERVER_ERRORS["one_source"]),
        ({"html": "<b>a</b>"}, SERVER_ERRORS["markdown_only"]),
        ("not json", SERVER_ERRORS["json"]),
        ({"markdown": "```\nopen"}, None),
    ],
)
async def test_malformed_rich_message_objects_are_refused(rich: Any, error: str | None) -> None:
    """A rich_message with other than exactly one source, an html/blocks one, or one that is
    not JSON is a 400 with the fake's description; bad Markdown gets the validator's."""
    telegram = FakeTelegram()
    async with serve(telegram.app) as port, httpx.AsyncClient() as client:
        status, answer = await call(
            client, port, "sendRichMessage", form={"chat_id": USER, "rich_message": rich}
        )
    expected = error or validate_rich_markdown(rich["markdown"])
    assert (status, answer["description"]) == (400, expected)
    assert telegram.rich_messages(USER) == []


async def test_drafts_need_a_private_chat_and_a_non_zero_id() -> None:
    """sendRichMessageDraft answers 400 for a group chat or ``draft_id`` 0, and True (the
    draft kept) otherwise."""
    telegram = FakeTelegram()
    rich = {"markdown": "partial"}
    async with serve(telegram.app) as port, httpx.AsyncClient() as client:
        group = await call(
            client,
            port,
            "sendRichMessageDraft",
            body={"chat_id": GROUP, "draft_id": 1, "rich_message": rich},
        )
        zero = await call(
            client,
            port,
            "sendRichMessageDraft",
            body={"chat_id": USER, "draft_id": 0, "rich_message": rich},
        )
        fine = await call(
            client,
            port,
            "sendRichMessageDraft",
            form={"chat_id": USER, "draft_id": 2, "rich_message": rich, "can_stop": True},
        )
    assert group == (
        400,
        {"ok": False, "error_code": 400, "description": SERVER_ERRORS["draft_peer"]},
    )
    assert zero[1]["description"] == SERVER_ERRORS["draft_id"]
    assert fine == (200, {"ok": True, "result": True})
    assert list(telegram.rich_drafts) == [(USER, None, 2)]
    assert telegram.rich_drafts[(USER, None, 2)].can_stop


async def test_edit_takes_text_or_rich_message_not_both() -> None:
    """editMessageText with both ``text`` and ``rich_message`` is a 400, and the message
    stays as it was."""
    telegram = FakeTelegram()
    async with serve(telegram.app) as port, httpx.AsyncClient() as client:
        _, sent = await call(client, port, "sendMessage", body={"chat_id": USER, "text": "plain"})
        message_id = sent["result"]["message_id"]
        status, answer = await call(
            client,
            port,
            "editMessageText",
            body={
                "chat_id": USER,
                "message_id": message_id,
                "text": "t",
                "rich_message": {"markdown": "r"},
            },
        )
    assert (status, answer["description"]) == (400, SERVER_ERRORS["text_and_rich"])
    assert telegram.bot_messages(USER)[0].text == "plain"
    assert telegram.rich_messages(USER) == []


async def test_a_new_keyboard_with_the_same_markdown_is_a_modification() -> None:
    """The same Markdown with a different keyboard edits; only identical content and
    keyboard is "message is not modified"."""
    telegram = FakeTelegram()
    rich = {"markdown": "final"}
    keyboard = {"inline_keyboard": [[{"text": "more", "callback_data": "more"}]]}
    async with serve(telegram.app) as port, httpx.AsyncClient() as client:
        _, sent = await call(
            client, port, "sendRichMessage", body={"chat_id": USER, "rich_message": rich}
        )
        target = {"chat_id": USER, "message_id": sent["result"]["message_id"], "rich_message": rich}
        with_keyboard = await call(
            client, port, "editMessageText", body={**target, "reply_markup": keyboard}
        )
        again = await call(
            client, port, "editMessageText", body={**target, "reply_markup": keyboard}
        )
    assert with_keyboard[0] == 200
    assert with_keyboard[1]["result"]["reply_markup"] == keyboard
    assert again[1]["description"] == SERVER_ERRORS["not_modified"]


async def test_the_stop_button_exists_only_on_a_shown_can_stop_draft() -> None:
    """``press_stop`` refuses a draft sent without ``can_stop``, one a bot message has
    cleared, and one already stopped; a shown ``can_stop`` draft queues the update."""
    telegram = FakeTelegram()
    rich = {"markdown": "partial"}
    async with serve(telegram.app) as port, httpx.AsyncClient() as client:
        for draft_id, can_stop in ((1, False), (2, True), (3, True)):
            await call(
                client,
                port,
                "sendRichMessageDraft",
                body={
                    "chat_id": USER,
                    "draft_id": draft_id,
                    "rich_message": rich,
                    "can_stop": can_stop,
                },
            )
        telegram.press_stop(USER, 3)
        with pytest.raises(ValueError, match="no stop button"):
            telegram.press_stop(USER, 3)
        with pytest.raises(ValueError, match="no stop button"):
            telegram.press_stop(USER, 1)
        await call(client, port, "sendRichMessage", body={"chat_id": USER, "rich_message": rich})
        with pytest.raises(ValueError, match="no stop button"):
            telegram.press_stop(USER, 2)  # the final message cleared the draft
    assert [u["stopped_message_generation"]["draft_id"] for u in telegram.updates] == [3]
