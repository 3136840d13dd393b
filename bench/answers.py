"""Deterministic benchmark answers: Markdown with Chinese text, emoji, code blocks and long lists.

An answer is a sequence of blocks chosen by a seeded ``random.Random`` (so every run
and every process builds the same text for the same variant): headings, mixed
Chinese/English paragraphs with bold, italic, inline code and links, long bulleted
and numbered lists (some nested), and fenced code blocks with Chinese comments.

A *token* is one provider chunk of ``chars_per_token`` characters (code points); an
answer of ``tokens`` tokens is built to be about ``tokens * chars_per_token``
characters long, cut at a line end and with any open code fence closed, so the
finished answer is always well-formed Markdown. :func:`chunk_count` gives the exact
number of chunks the fake provider streams for it.
"""

from __future__ import annotations

import math
import random

__all__ = ["chunk_count", "make_answer"]

_CHINESE = (
    "流式输出让用户更早看到答案",
    "机器人遵守每个聊天的频率限制",
    "这段文字用于测试中文渲染",
    "群组里每分钟最多二十条消息",
    "草稿会在私聊中实时更新",
    "代码块需要保持格式完整",
    "长列表会被拆分到多条消息里",
    "每一帧只发送最新的文本",
    "延迟越低体验越好",
)
_ENGLISH = (
    "The scheduler keeps every chat within its budget",
    "drafts animate the reply",
    "edits cost flood budget",
    "a long answer spans two messages",
    "the final text must match the rendered answer",
    "latency is measured at the server",
)
_EMOJI = ("😀", "🚀", "✅", "📚", "🎉", "🤖", "🔥", "💡", "🌏", "⚡")
_WORDS = ("alpha", "beta", "gamma", "delta", "流式", "限制", "草稿", "消息", "渲染")


def _sentence(rng: random.Random) -> str:
    """One sentence mixing Chinese, English, emoji and inline formatting."""
    parts = [rng.choice(_CHINESE), rng.choice(_ENGLISH), rng.choice(_EMOJI)]
    rng.shuffle(parts)
    style = rng.randrange(5)
    word = rng.choice(_WORDS)
    if style == 0:
        parts.append(f"**{word}**")
    elif style == 1:
        parts.append(f"*{word}*")
    elif style == 2:
        parts.append(f"`{word}_{rng.randrange(100)}`")
    elif style == 3:
        parts.append(f"[{word}](https://example.com/{word.encode().hex()})")
    return " ".join(parts) + rng.choice(("。", ". ", "！", "; "))


def _paragraph(rng: random.Random) -> str:
    return "".join(_sentence(rng) for _ in range(rng.randint(2, 4))).strip()


def _bullets(rng: random.Random) -> str:
    lines = []
    for i in range(rng.randint(8, 14)):
        lines.append(f"- {rng.choice(_EMOJI)} {rng.choice(_CHINESE)}：{rng.choice(_ENGLISH)}")
        if i % 4 == 3:
            lines.append(f"  - {rng.choice(_WORDS)} **{rng.choice(_WORDS)}** {rng.randrange(999)}")
    return "\n".join(lines)


def _numbered(rng: random.Random) -> str:
    return "\n".join(
        f"{i}. {rng.choice(_ENGLISH)} — {rng.choice(_CHINESE)} {rng.choice(_EMOJI)}"
        for i in range(1, rng.randint(8, 15))
    )


def _code(rng: random.Random) -> str:
    name = rng.choice(("stream", "render", "schedule", "split"))
    body = [f"def {name}_{rng.randrange(100)}(items):", f'    """{rng.choice(_CHINESE)}。"""']
    for i in range(rng.randint(3, 7)):
        body.append(f"    total = sum(x * {i + 1} for x in items)  # {rng.choice(_CHINESE)}")
    body.append(f"    return total  # {rng.choice(_EMOJI)}")
    return "```python\n" + "\n".join(body) + "\n```"


def _heading(rng: random.Random) -> str:
    return f"## {rng.choice(_EMOJI)} {rng.choice(_CHINESE)} — {rng.choice(_ENGLISH)}"


_BLOCKS = (_paragraph, _bullets, _paragraph, _code, _numbered, _heading)


def make_answer(variant: int, *, tokens: int, chars_per_token: int) -> str:
    """Build answer ``variant`` of about ``tokens * chars_per_token`` characters (code points).

    The same arguments give the same text in every process. The answer opens with a
    paragraph (so its first chunk renders as visible text), is cut at a line end, and
    ends with any open code fence closed. Raises ``ValueError`` for non-positive sizes.
    """
    if tokens < 1 or chars_per_token < 1:
        raise ValueError("tokens and chars_per_token must be >= 1")
    rng = random.Random(f"bench-answer-{variant}")
    target = tokens * chars_per_token
    blocks = [_paragraph(rng)]
    while sum(len(b) + 2 for b in blocks) < target:
        blocks.append(rng.choice(_BLOCKS)(rng))
    text = "\n\n".join(blocks)[:target]
    if "\n" in text and len(text) == target:
        text = text[: text.rindex("\n")]
    text = text.rstrip()
    if text.count("```") % 2:
        text += "\n```"
    return text


def chunk_count(answer: str, chars_per_token: int) -> int:
    """Return how many chunks of ``chars_per_token`` characters ``answer`` streams as."""
    return math.ceil(len(answer) / chars_per_token)
