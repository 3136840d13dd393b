"""Rich replies: a model's answer as Telegram rich Markdown, frame by frame. Pure, no I/O.

Bot API 10.1 added rich messages (``sendRichMessage``, ``sendRichMessageDraft``, and
``rich_message`` on ``editMessageText``; https://core.telegram.org/bots/api-changelog).
Their ``markdown`` is parsed by Telegram, "compatible with GitHub Flavored Markdown where
possible" (https://core.telegram.org/bots/api#rich-messages), so tables, formulas,
task lists and ``<details>`` blocks show as such. This is the rich twin of
:mod:`bot.render.markdown` (which renders to text + entities for ``sendMessage``):

1. :func:`~bot.render.rich_sanitize.sanitize_rich_markdown` makes the model's Markdown
   safe for Telegram's parser (``$`` prices, ``\\(…\\)`` formulas, links, raw HTML);
2. :func:`~bot.render.rich_close.close_rich_markdown` closes what a partial answer
   leaves open at its edge (fences, ``$$``, tables, links, emphasis), so every frame
   parses;
3. :func:`compose_rich_reply` lays out one frame: the reasoning, the answer and a mark;
4. :func:`~bot.render.rich_split.split_rich_markdown` splits a frame over Telegram's
   limits (:class:`~bot.render.rich_limits.RichLimits`) into several messages.

Reasoning, as the classic path shows it: while the model thinks, a draft
(``sendRichMessageDraft``) shows it in ``<tg-thinking>``, Telegram's thinking
placeholder, which only drafts accept ("allowed only in sendRichMessageDraft",
https://core.telegram.org/bots/api/methods/sendrichmessagedraft); sent or edited
messages (groups, no drafts) show it in a collapsed ``<details>`` block instead. Once the
answer starts, and in the final message, the reasoning is a collapsed
``<details><summary>Thought for 12s</summary>…</details>`` above the answer, or hidden
when the user chose to hide it.
"""

from __future__ import annotations

import re

from bot.render.frame import ELLIPSIS, ReplyStrings, frame_header, start_tail_at_break
from bot.render.rich_close import close_rich_markdown
from bot.render.rich_limits import RichLimits, RichSize, measure_rich
from bot.render.rich_parse import ByteOffsets, clean_source, parse
from bot.render.rich_sanitize import escape_rich_text, sanitize_rich_markdown
from bot.render.rich_split import split_rich_markdown

__all__ = [
    "REASONING_CAP_CHARS",
    "THINKING_TAIL_CHARS",
    "ReplyStrings",
    "RichLimits",
    "RichSize",
    "close_rich_markdown",
    "compose_rich_reply",
    "escape_rich_text",
    "fits_rich",
    "measure_rich",
    "render_rich_markdown",
    "render_rich_reply",
    "sanitize_rich_markdown",
    "split_rich_markdown",
]

THINKING_TAIL_CHARS = 600
"""Characters of reasoning shown while the model thinks (its tail), as the classic path."""
REASONING_CAP_CHARS = 8000
"""Characters of reasoning kept (its tail) in the collapsed block above the answer."""
_INERT = {ch: f"&#{ord(ch)};" for ch in "\\`*_[]<>$|~=&!#"}
_INERT_RE = re.compile(r"[\\`*_\[\]<>$|~=&!#]")
_INERT_LINE_START_RE = re.compile(r"(?m)^[ \t]*([-+]|\d{1,9}(?=[.)]))")
_BLANK_LINES_RE = re.compile(r"\n[ \t]*(?:\n[ \t]*)+")


def render_rich_markdown(markdown: str, *, partial: bool = False) -> str:
    """The model's ``markdown`` as rich Markdown for one frame (not split, no reasoning).

    ``partial=True`` (a stream still growing) closes its edge first
    (:func:`close_rich_markdown`). Never raises.
    """
    source = close_rich_markdown(markdown) if partial else markdown
    return sanitize_rich_markdown(source).strip("\n")


def compose_rich_reply(
    answer_markdown: str,
    *,
    reasoning: str = "",
    thinking_seconds: float | None = None,
    show_reasoning: bool = True,
    partial: bool,
    draft: bool = False,
    strings: ReplyStrings,
    suffix: str = "",
) -> str:
    """One frame of a reply as one rich Markdown text (not yet split into messages).

    Layout, top to bottom, mirroring :func:`bot.render.markdown.compose_reply`:

    - still thinking (``partial``, reasoning but no answer yet): in a draft
      (``draft=True``), ``<tg-thinking>`` holding ``strings.thinking`` and the last
      ~600 characters of the reasoning (the header alone with ``show_reasoning=False``);
      in a message, a collapsed ``<details>`` titled ``strings.thinking`` over that tail
      (an italic header alone when hidden);
    - otherwise, with ``show_reasoning`` and reasoning: a collapsed ``<details>`` titled
      ``strings.thought_for`` holding the reasoning (its last ~8,000 characters, cut at a
      block), then the answer (closed at its edge when ``partial``, then sanitised);
    - ``suffix`` (e.g. "⏹ stopped"; several lines allowed), each line an italic
      paragraph.

    ``thinking_seconds`` is rounded to whole seconds; None uses the untimed texts. The
    text is empty when there is nothing to show yet. ``<tg-thinking>`` is refused outside
    drafts, so pass ``draft=True`` only for ``sendRichMessageDraft`` frames.
    """
    blocks: list[str] = []
    reasoning = clean_source(reasoning).strip()
    thinking, header = frame_header(
        strings,
        reasoning=reasoning,
        answer_markdown=answer_markdown,
        partial=partial,
        seconds=thinking_seconds,
    )
    if thinking:
        if draft:
            shown = f"{header}\n{_tail_text(reasoning)}" if show_reasoning else header
            blocks.append(f"<tg-thinking>{_inert(shown)}</tg-thinking>")
        elif show_reasoning:
            body = _reasoning_markdown(reasoning, THINKING_TAIL_CHARS, partial=True)
            blocks.append(_details(header, body))
        else:
            blocks.append(_italic(header))
    else:
        if reasoning and show_reasoning:
            body = _reasoning_markdown(reasoning, REASONING_CAP_CHARS, partial=False)
            blocks.append(_details(header, body))
        answer = render_rich_markdown(answer_markdown, partial=partial)
        if answer.strip():
            blocks.append(answer)
    blocks.extend(_italic(line) for line in suffix.splitlines() if line.strip())
    return "\n\n".join(blocks)


def render_rich_reply(
    answer_markdown: str,
    *,
    reasoning: str = "",
    thinking_seconds: float | None = None,
    show_reasoning: bool = True,
    partial: bool,
    draft: bool = False,
    strings: ReplyStrings,
    suffix: str = "",
    limits: RichLimits | None = None,
) -> list[str]:
    """:func:`compose_rich_reply` split into rich messages each within ``limits``
    (Telegram's by default); ``[]`` when there is nothing to show yet.

    A draft shows one message: send it the last part, after the parts before it went out
    as messages.
    """
    whole = compose_rich_reply(
        answer_markdown,
        reasoning=reasoning,
        thinking_seconds=thinking_seconds,
        show_reasoning=show_reasoning,
        partial=partial,
        draft=draft,
        strings=strings,
        suffix=suffix,
    )
    if whole.startswith("<tg-thinking>"):
        return [whole]  # a header and a short tail: always within the limits
    return split_rich_markdown(whole, limits)


def _details(summary: str, body: str) -> str:
    """A collapsed ``<details>`` block in Telegram's Markdown form (the opening tag and
    summary, a blank line, the Markdown body, a blank line, ``</details>``)."""
    opening = f"<details>\n<summary>{_inert(summary)}</summary>"
    if not body.strip():
        return f"{opening}\n\n</details>"
    return f"{opening}\n\n{body.strip(chr(10))}\n\n</details>"


def _italic(line: str) -> str:
    """One of our own lines as an italic paragraph, its characters shown literally."""
    return f"*{escape_rich_text(line.strip())}*"


def _inert(text: str) -> str:
    """``text`` shown literally whether Telegram reads it as HTML or as Markdown.

    Markdown's and HTML's special characters become numeric character references
    (every numeric entity works in rich messages; Bot API "Rich Message Formatting
    Options"), as do line-leading list markers, and blank lines are folded, so nothing
    inside can end the tag around it.
    """
    text = _BLANK_LINES_RE.sub("\n", text.strip())
    text = _INERT_RE.sub(lambda m: _INERT[m[0]], text)
    return _INERT_LINE_START_RE.sub(lambda m: "".join(f"&#{ord(ch)};" for ch in m[1]), text)


def _tail_text(text: str, max_chars: int = THINKING_TAIL_CHARS) -> str:
    """The last <= ``max_chars`` characters of ``text``, started at a line or word and
    marked "…" when cut."""
    if len(text) <= max_chars:
        return text
    return start_tail_at_break(text[-(max_chars - len(ELLIPSIS)) :])


def _reasoning_markdown(reasoning: str, max_chars: int, *, partial: bool) -> str:
    """The reasoning's last <= ``max_chars`` characters as sanitised rich Markdown, cut at
    a top-level block (else at a line) and led by "…" when cut."""
    text = reasoning
    if len(text) > max_chars:
        cut = len(text) - max_chars
        text = ELLIPSIS + "\n\n" + text[_block_start_after(text, cut) :].lstrip("\n")
    return render_rich_markdown(text, partial=partial)


def _block_start_after(text: str, index: int) -> int:
    """The first top-level block start at or after ``index``, else the next line start."""
    offsets = ByteOffsets(text)
    depth = 0
    for ev in parse(text):
        if ev.kind == "Start":
            if depth == 0 and offsets.index(ev.start) >= index:
                return offsets.index(ev.start)
            depth += 1
        elif ev.kind == "End":
            depth -= 1
    newline = text.find("\n", index)
    return newline + 1 if newline >= 0 else index


def fits_rich(markdown: str, limits: RichLimits | None = None) -> bool:
    """Whether ``markdown`` fits one rich message within ``limits`` (Telegram's)."""
    return measure_rich(markdown).fits(limits or RichLimits())
