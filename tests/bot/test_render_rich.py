"""Rich Markdown: sanitising a model's Markdown, closing a partial answer, composing frames."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.render.markdown import ReplyStrings
from bot.render.rich import (
    close_rich_markdown,
    compose_rich_reply,
    escape_rich_text,
    render_rich_markdown,
    render_rich_reply,
    sanitize_rich_markdown,
)
from bot.texts import t
from tests.bot.rich_checks import events, problems

STRINGS = ReplyStrings()


def math_of(markdown: str) -> list[str]:
    """The formulas pulldown-cmark finds in ``markdown``."""
    return [
        data for kind, _, data, _, _ in events(markdown) if kind in ("InlineMath", "DisplayMath")
    ]


def links_of(markdown: str) -> list[str]:
    """The link targets pulldown-cmark finds in ``markdown``."""
    return [
        data["dest_url"]
        for kind, name, data, _, _ in events(markdown)
        if kind == "Start" and name == "Link"
    ]


# ----- the sanitiser: $ and formulas -------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "It costs $5 and $10.",
        "Plans run $5-$10 a month.",
        "From $5$10 to $20",
        "US$ 100 or $ 200",
        "$",
        "Save $$$ now",
    ],
)
def test_prices_are_escaped_and_never_formulas(text: str) -> None:
    """A ``$`` that is not a formula is escaped, so Telegram shows it and reads no math."""
    out = sanitize_rich_markdown(text)
    assert math_of(out) == []
    assert problems(out) == []
    assert out.replace("\\$", "$") == text


def test_formulas_are_kept_verbatim() -> None:
    """Inline and block formulas stay as the model wrote them (raw LaTeX, no escaping)."""
    text = "Euler: $e^{i\\pi}+1=0$, and\n\n$$\n\\int_0^1 x^2\\,dx = \\frac{1}{3}\n$$\n"
    assert sanitize_rich_markdown(text) == text
    assert math_of(text) == ["e^{i\\pi}+1=0", "\n\\int_0^1 x^2\\,dx = \\frac{1}{3}\n"]


def test_price_next_to_a_formula() -> None:
    """A price beside a real formula: the formula stays, the price is escaped."""
    out = sanitize_rich_markdown("Pay $5 for $x^2$ tokens")
    assert out == "Pay \\$5 for $x^2$ tokens"
    assert math_of(out) == ["x^2"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("where \\(x^2\\) grows", "where $x^2$ grows"),
        ("inner spaces \\( a+b \\) go", "inner spaces $a+b$ go"),
        ("\\[x\\]", "$$x$$"),
        ("so\n\\[\n\\int_0^1 f\n\\]\ndone", "so\n$$\\int_0^1 f$$\ndone"),
    ],
)
def test_latex_delimiters_become_dollars(text: str, expected: str) -> None:
    """``\\(…\\)`` and ``\\[…\\]`` (not rich Markdown) become ``$…$`` and ``$$…$$``."""
    out = sanitize_rich_markdown(text)
    assert out == expected
    assert len(math_of(out)) == 1


@pytest.mark.parametrize(
    "text",
    [
        "see \\[1\\] and \\[2, 3\\]",  # citations
        "`\\(x\\)` in code",
        "```\n\\[x\\] and $y$ and \\(z\\)\n```",
        "escaped \\\\(x\\\\)",
    ],
)
def test_latex_delimiters_left_alone_in_code_and_citations(text: str) -> None:
    """Code, escaped backslashes and bracketed citation numbers are not formulas."""
    assert sanitize_rich_markdown(text) == text


def test_dollars_inside_code_are_untouched() -> None:
    """``$`` in inline code and code blocks is never escaped; outside code it is."""
    text = "Run `echo $HOME` then:\n\n```bash\nexport A=$B\nprice='$5'\n```\n\nCost: $5"
    out = sanitize_rich_markdown(text)
    assert out == text.replace("Cost: $5", "Cost: \\$5")


def test_dollars_in_link_targets_and_autolinks_are_untouched() -> None:
    """A ``$`` in a URL is part of the address, not text."""
    text = "[shop $5](https://x.org/a$b) <https://x.org/c$d>"
    out = sanitize_rich_markdown(text)
    assert out == "[shop \\$5](https://x.org/a$b) <https://x.org/c$d>"
    assert links_of(out) == ["https://x.org/a$b", "https://x.org/c$d"]


# ----- links and images ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("see [the docs](./docs/a.md)", "see the docs"),
        ("jump [up](#top)", "jump up"),
        ("[passwd](file:///etc/passwd)", "passwd"),
        ("[x](javascript:alert(1))", "x"),
        ("[me](tg://user?id=1)", "me"),
        ("[site](https://example.org/a?b=1)", "[site](https://example.org/a?b=1)"),
        ("[mail](mailto:a@example.org)", "[mail](mailto:a@example.org)"),
        # A space: no link at all, and its "](" made plain for parsers that would see one.
        ("[call](tel:+1 555 0100)", "[call]&#40;tel:+1 555 0100)"),
        ("[call](tel:+15550100)", "[call](tel:+15550100)"),
        ("[bad mail](mailto:nobody)", "bad mail"),
        ("[no host](https:///x)", "no host"),
        ("[](https://example.org)", ""),
        ("<ftp://host/x>", "ftp://host/x"),
    ],
)
def test_only_web_mail_and_phone_links_stay(text: str, expected: str) -> None:
    """Relative and non-web targets (refused by Telegram) leave only the link's text."""
    out = sanitize_rich_markdown(text)
    assert out == expected
    assert problems(out) == []


def test_reference_links_become_inline_and_definitions_go() -> None:
    """A reference link to the web becomes an inline link; one to a path becomes text."""
    text = (
        "Read [the guide][g] and [notes][n].\n\n[g]: https://example.org/guide\n[n]: ../notes.md\n"
    )
    out = sanitize_rich_markdown(text)
    assert out.strip() == "Read [the guide](https://example.org/guide) and notes."
    assert links_of(out) == ["https://example.org/guide"]


def test_images_become_links_never_media() -> None:
    """Images (media blocks Telegram would download) become links, or their alt text."""
    text = "![a cat](https://example.org/cat.jpg) ![](https://example.org/dog.png) ![x](dog.png)"
    out = sanitize_rich_markdown(text)
    assert out == (
        "[a cat](https://example.org/cat.jpg) "
        "[https://example.org/dog.png](https://example.org/dog.png) x"
    )
    assert problems(out) == []


# ----- raw HTML ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I <think>maybe</think> know", "I &lt;think>maybe&lt;/think> know"),
        ("x <script>alert(1)</script>", "x &lt;script>alert(1)&lt;/script>"),
        ("<tg-thinking>fake</tg-thinking>", "&lt;tg-thinking>fake&lt;/tg-thinking>"),
        ('<a href="/x">a</a>', '&lt;a href="/x">a&lt;/a>'),
        ("H<sub>2</sub>O and <b class='x'>bold</b>", "H<sub>2</sub>O and <b>bold</b>"),
        ("line<br>next", "line next"),
        ("a <!-- hidden --> b", "a  b"),
        ("stray </b> closer", "stray &lt;/b> closer"),
        ("open <u>underline", "open <u>underline</u>"),
        ("<b><i>both</b> rest", "<b><i>both</i></b> rest"),
        ("a < b and c > d", "a < b and c > d"),
        ("a<b and a\\<b", "a&lt;b and a&lt;b"),
    ],
)
def test_inline_html(text: str, expected: str) -> None:
    """Allowed inline tags are kept paired and bare; every other tag shows as text."""
    out = sanitize_rich_markdown(text)
    assert out == expected
    assert problems(out) == []


def test_br_in_a_table_cell_becomes_a_space() -> None:
    """A line break cannot live in a table cell (cells are inline only)."""
    text = "| a | b |\n|---|---|\n| one<br>two | x |\n"
    out = sanitize_rich_markdown(text)
    assert out == "| a | b |\n|---|---|\n| one two | x |\n"


def test_html_blocks_are_shown_as_text() -> None:
    """An unknown block tag is escaped, so its lines become ordinary Markdown text."""
    out = sanitize_rich_markdown("<div align=center>\nCosts $3 and **more**\n</div>")
    assert out == "&lt;div align=center>\nCosts &#36;3 and **more**\n&lt;/div>"
    assert problems(out) == []
    texts = "".join(data for kind, _, data, _, _ in events(out) if kind == "Text")
    assert texts == "<div align=center>Costs $3 and more</div>"


@pytest.mark.parametrize(
    "text",
    [
        "<details></details> x",  # text after the closer on its line
        "- <details>\n  <summary>s</summary>",  # not at the top level
        "> <details>\n> body",
        "<details>body on the line\n\n</details>",
    ],
)
def test_details_outside_the_documented_form_show_as_text(text: str) -> None:
    """Only a top-level ``<details>`` first on its line (then at most a summary) and a
    ``</details>`` alone on its line are kept; other ones are shown as text."""
    out = sanitize_rich_markdown(text)
    assert "<details" not in out.replace("&lt;details", "")
    assert problems(out) == []


def test_model_details_blocks_are_kept_and_closed() -> None:
    """A model's ``<details>`` passes (attributes but ``open`` dropped) and is closed if open."""
    text = '<details open class="x">\n<summary>Why $5?</summary>\n\nBecause **$5**.'
    out = sanitize_rich_markdown(text)
    assert out == (
        "<details open>\n<summary>Why &#36;5?</summary>\n\nBecause **\\$5**.\n\n</details>\n"
    )
    assert problems(out) == []


def test_stray_details_closer_is_escaped() -> None:
    """A ``</details>`` with nothing open would end nothing: it is shown as text."""
    out = sanitize_rich_markdown("text\n\n</details>\n")
    assert out == "text\n\n&lt;/details>\n"
    assert problems(out) == []


def test_entities_outside_telegrams_list_are_replaced() -> None:
    """Named entities Telegram does not list become their characters; the rest stay."""
    assert sanitize_rich_markdown("&copy; 2026 &lt;tag&gt; &#36;5") == "© 2026 &lt;tag&gt; &#36;5"


# ----- tables, fences, footnotes ---------------------------------------------------------------


def test_table_rows_get_the_header_cell_count() -> None:
    """Short rows are padded and long ones cut, as GFM reads them."""
    text = "| a | b |\n|---|---|\n| 1 |\n| 1 | 2 | 3 |\n2 | x\n"
    out = sanitize_rich_markdown(text)
    assert out == "| a | b |\n|---|---|\n| 1 | |\n| 1 | 2 |\n2 | x\n"
    assert problems(out) == []


def test_pipes_in_code_spans_of_a_table_are_escaped() -> None:
    """``a|b`` in a code span would split the cell; escaped, the span stays whole."""
    out = sanitize_rich_markdown("| op | use |\n|---|---|\n| `a|b` | or |\n")
    assert out == "| op | use |\n|---|---|\n| `a\\|b` | or |\n"
    assert problems(out) == []


def test_tables_over_twenty_columns_become_code() -> None:
    """A table wider than Telegram's 20 columns is shown as a code block of its source."""
    header = "|" + "|".join(f"c{i}" for i in range(21)) + "|"
    table = f"{header}\n|{'---|' * 21}\n|{'$1|' * 21}\n"
    out = sanitize_rich_markdown(f"Wide:\n\n{table}\nAfter $2")
    assert out == f"Wide:\n\n```\n{table}```\n\nAfter \\$2"
    assert problems(out) == []


def test_wide_table_in_a_quote_stays_in_the_quote() -> None:
    """The code block replacing a wide table keeps the quote's ``>`` on every line."""
    row = "|" + "x|" * 21
    text = f"> {row}\n> |{'-|' * 21}\n> {row}\n"
    out = sanitize_rich_markdown(text)
    assert out == f"> ```\n> {row}\n> |{'-|' * 21}\n> {row}\n> ```\n"


def test_an_unclosed_fence_is_closed() -> None:
    """A final answer cut inside a code block gets its closing fence."""
    assert (
        sanitize_rich_markdown("Code:\n\n~~~~py\nx = '$'\n") == "Code:\n\n~~~~py\nx = '$'\n~~~~\n"
    )
    assert sanitize_rich_markdown("- item\n\n  ```\n  y") == "- item\n\n  ```\n  y\n  ```"


def test_a_fence_left_open_by_its_container_is_closed() -> None:
    """A fence in a list item or quote ends with its container: it is closed there."""
    assert sanitize_rich_markdown("- ```\n  a\nb") == "- ```\n  a\n  ```\nb"
    assert sanitize_rich_markdown("> ```\n> a\n\nb") == "> ```\n> a\n> ```\n\nb"


def test_footnote_without_definition_is_escaped() -> None:
    """``[^1]`` with no definition (not yet streamed) shows as text; with one it stays."""
    assert sanitize_rich_markdown("Fact[^1].") == "Fact\\[^1]."
    defined = "Fact[^1].\n\n[^1]: Source."
    assert sanitize_rich_markdown(defined) == defined


def test_escape_rich_text_shows_every_character() -> None:
    """Our own texts (marks, URLs) are escaped so nothing in them is read as markup."""
    text = "- *a* _b_ `c` [d](e) <f> $g | h ~~i~~ ==j== #k !l &m;\n1. n"
    escaped = escape_rich_text(text)
    shown = "".join(data for kind, _, data, _, _ in events(escaped) if kind == "Text")
    assert shown == text.replace("\n", "")
    assert [kind for kind, *_ in events(escaped)].count("Start") == 1  # one paragraph


# ----- the sanitiser as a whole --------------------------------------------------------------

FRAGMENTS = st.sampled_from(
    [
        "$5", "$x^2$", "$$a$$", "\\(y\\)", "\\[z\\]", "`$c`", "**b", "*i*", "<think>",
        "</think>", "<br>", "<b>", "</b>", "<details>", "</details>", "<summary>s</summary>",
        "[l](./r)", "[w](https://w.org)", "![i](https://w.org/i.png)", "&copy;", "[^1]",
        "<!-- c -->", "<div>", "|", "| a | b |", "|---|---|", "```", "~~~", "- ", "1. ",
        "> ", "# ", "\n", "\n\n", " ", "word", "中文", "\\", "$$", "{", "}", "[", "]",
    ]
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(FRAGMENTS, max_size=40).map("".join))
def test_sanitised_text_is_safe_and_stable(text: str) -> None:
    """Whatever the model writes, the result has no bare ``$``, no foreign tag, no bad
    link, no image, balanced ``<details>``, full table rows and closed fences, and
    sanitising again changes nothing."""
    out = sanitize_rich_markdown(text)
    assert problems(out) == []
    assert sanitize_rich_markdown(out) == out


# ----- the closer ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("partial", "expected"),
    [
        ("Here:\n\n```python\nx = '$5'", "Here:\n\n```python\nx = '$5'\n```"),
        ("```py\nx = 1\n``", "```py\nx = 1\n```"),
        ("so $x^2 + ", "so $x^2 +$"),
        ("so $$\n\\frac{a}{b", "so $$\n\\frac{a}{b}$$"),
        ("so $\\sqrt{2", "so $\\sqrt{2}$"),
        ("it costs $5", "it costs $5"),  # a price: left for the sanitiser to escape
        ("a formula: $$", "a formula:"),
        ("| a | b |\n|---|---|\n| 1 | 2", "| a | b |\n|---|---|\n"),
        ("| a | b |\n|--", ""),
        ("text\n\n| a | b |", "text\n\n"),
        ("**bold $a_1 * b_2", "**bold $a_1 * b_2$**"),
        ("*it $x^*$ and", "*it $x^*$ and*"),
        ("see [docs](https://exa", "see docs"),
        ("x <det", "x "),
        ("x <!-- note", "x"),
        ("`echo $HOME", "`echo $HOME`"),
        ("- one\n- ", "- one\n"),
        ("done.", "done."),
    ],
)
def test_close_rich_markdown(partial: str, expected: str) -> None:
    """Each open structure at the edge of a partial answer is closed (or dropped)."""
    assert close_rich_markdown(partial) == expected


def test_open_details_is_closed_in_a_frame() -> None:
    """A ``<details>`` the model has not closed yet is closed after its body."""
    frame = render_rich_markdown("<details>\n<summary>Hi</summary>\n\nbody **so", partial=True)
    assert frame == "<details>\n<summary>Hi</summary>\n\nbody **so**\n\n</details>"


SAMPLES = [
    "# Prices\n\nIt costs $5 and $10 (or `$20` in code).\n\n"
    "| item | price | note |\n|:--|--:|:-:|\n| tea | $3 | $x^2$ |\n| cake | $5 | *sweet* |\n\n"
    "Done.",
    "The integral\n\n$$\n\\int_0^1 \\frac{x^2}{2}\\,dx = \\frac{1}{6}\n$$\n\n"
    "and inline \\(a^2+b^2=c^2\\) with **bold $y_1$** and [a link](https://example.org/x).",
    "Steps:\n\n1. Install:\n   ```bash\n   pip install x  # costs $0\n   ```\n"
    "2. Run `x --y`.\n   - nested *item* with $z$\n   - another ~~one~~\n3. Done\n",
    "<details>\n<summary>Details</summary>\n\nInside $p$ and `q`.\n\n- a\n- b\n\n</details>\n\n"
    "> quoted **text** with <b>bold</b> and <think>raw</think>\n> more\n\n---\n\nEnd.",
    "中文答案：价格是 $5，公式 $E=mc^2$。\n\n```\n代码 $x\n```\n\n"
    "| 列 | 值 |\n|---|---|\n| 甲 | 1 |",
]


@pytest.mark.parametrize("sample", SAMPLES)
def test_every_prefix_of_an_answer_is_a_complete_frame(sample: str) -> None:
    """Cut anywhere, a streamed answer renders to a frame that passes every check."""
    for end in range(len(sample) + 1):
        frame = render_rich_markdown(sample[:end], partial=True)
        assert problems(frame) == [], (sample[:end], frame)


@pytest.mark.parametrize("sample", SAMPLES)
def test_a_finished_answer_keeps_its_structure(sample: str) -> None:
    """The final frame keeps the formulas, tables and code blocks of the answer."""
    out = render_rich_markdown(sample)
    assert problems(out) == []
    names = {name for kind, name, *_ in events(out) if kind == "Start"}
    wanted = {name for kind, name, *_ in events(sample) if kind == "Start"} - {"Image"}
    assert wanted <= names


# ----- frames ----------------------------------------------------------------------------------


def test_draft_shows_reasoning_in_tg_thinking() -> None:
    """While thinking, a draft shows the header and the reasoning's tail in <tg-thinking>,
    with Markdown and HTML characters made inert."""
    frame = compose_rich_reply(
        "",
        reasoning="Maybe $5 <b>or</b> *more*\n\n- a",
        thinking_seconds=3.4,
        partial=True,
        draft=True,
        strings=STRINGS,
    )
    assert frame == (
        "<tg-thinking>Thinking… 3s\nMaybe &#36;5 &#60;b&#62;or&#60;/b&#62; &#42;more&#42;\n"
        "&#45; a</tg-thinking>"
    )
    assert problems(frame, draft=True) == []


def test_draft_with_reasoning_hidden_shows_only_the_header() -> None:
    """With reasoning hidden, the thinking block holds the timed header alone."""
    frame = compose_rich_reply(
        "", reasoning="secret", thinking_seconds=7, partial=True, draft=True,
        show_reasoning=False, strings=STRINGS,
    )  # fmt: skip
    assert frame == "<tg-thinking>Thinking… 7s</tg-thinking>"


def test_thinking_tail_is_cut_at_a_word() -> None:
    """Long reasoning shows only its last ~600 characters, started at a word, after "…"."""
    reasoning = " ".join(f"w{i}" for i in range(1000))
    frame = compose_rich_reply("", reasoning=reasoning, partial=True, draft=True, strings=STRINGS)
    body = frame.removeprefix("<tg-thinking>Thinking…\n").removesuffix("</tg-thinking>")
    assert body.startswith("…w")
    assert body.endswith("w999")
    assert len(body) <= 600


def test_message_frames_never_use_tg_thinking() -> None:
    """Outside drafts (groups: sent and edited messages) thinking is a collapsed details
    block, or an italic header when hidden: <tg-thinking> is for drafts only."""
    shown = compose_rich_reply(
        "", reasoning="step **one**", thinking_seconds=2, partial=True, strings=STRINGS
    )
    assert shown == "<details>\n<summary>Thinking… 2s</summary>\n\nstep **one**\n\n</details>"
    hidden = compose_rich_reply(
        "", reasoning="x", thinking_seconds=2, partial=True, show_reasoning=False,
        strings=STRINGS,
    )  # fmt: skip
    assert hidden == "*Thinking… 2s*"


def test_final_frame_collapses_reasoning_above_the_answer() -> None:
    """The final message: reasoning in <details> titled "Thought for Ns", then the answer."""
    frame = compose_rich_reply(
        "Answer: $5.", reasoning="Because.", thinking_seconds=12.2, partial=False,
        strings=STRINGS,
    )  # fmt: skip
    assert frame == (
        "<details>\n<summary>Thought for 12s</summary>\n\nBecause.\n\n</details>\n\nAnswer: \\$5."
    )
    assert problems(frame) == []


def test_hidden_reasoning_is_left_out() -> None:
    """With reasoning hidden, the final message is the answer alone."""
    frame = compose_rich_reply(
        "Answer", reasoning="Because.", thinking_seconds=1, partial=False,
        show_reasoning=False, strings=STRINGS,
    )  # fmt: skip
    assert frame == "Answer"


def test_reasoning_is_sanitised_and_capped_at_a_block() -> None:
    """Reasoning is model Markdown too: sanitised, and only its last ~8,000 characters
    are kept, cut where a paragraph starts and led by "…"."""
    reasoning = "\n\n".join(f"Paragraph {i} costs $1." for i in range(1000))
    frame = compose_rich_reply("A", reasoning=reasoning, partial=False, strings=STRINGS)
    body = frame.split("</summary>\n\n", 1)[1].split("\n\n</details>", 1)[0]
    assert body.startswith("…\n\nParagraph ")
    assert body.endswith("Paragraph 999 costs \\$1.")
    assert len(body.replace("\\$", "$")) <= 8000 + len("…\n\n")
    assert problems(frame) == []


def test_marks_are_italic_lines_as_in_the_classic_path() -> None:
    """The stopped/interrupted marks (bot.texts) come last, one italic line each, escaped."""
    suffix = t("mark_interrupted", "en") + "\n" + t("mark_stopped", "zh")
    frame = compose_rich_reply("Partial *answer", partial=False, strings=STRINGS, suffix=suffix)
    lines = frame.split("\n\n")
    assert lines[0] == "Partial *answer"
    assert lines[1:] == [
        f"*{escape_rich_text(t('mark_interrupted', 'en'))}*",
        f"*{escape_rich_text(t('mark_stopped', 'zh'))}*",
    ]
    italic = [kind for kind, name, *_ in events(lines[1]) if name == "Emphasis"]
    assert italic == ["Start", "End"]


def test_waiting_text_alone() -> None:
    """Before any chunk, a frame can be just the waiting mark; with nothing it is empty."""
    assert compose_rich_reply("", partial=True, strings=STRINGS, suffix="Waiting… 10 s") == (
        "*Waiting… 10 s*"
    )
    assert render_rich_reply("", partial=True, strings=STRINGS) == []


def test_streamed_reply_frames_are_complete() -> None:
    """Every frame of a reply streamed chunk by chunk, with reasoning, passes the checks."""
    answer = SAMPLES[0] + "\n\n" + SAMPLES[2]
    for end in range(0, len(answer) + 1, 7):
        for draft in (True, False):
            parts = render_rich_reply(
                answer[:end], reasoning="Think $1 `x", thinking_seconds=1.0, partial=True,
                draft=draft, strings=STRINGS,
            )  # fmt: skip
            assert parts, end
            for part in parts:
                assert problems(part, draft=draft) == [], (end, part)
