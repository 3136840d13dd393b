"""What every rich Markdown frame must satisfy, checked on pulldown-cmark's parse (pyromark).

Shared by the rich renderer's tests (tests/bot/test_render_rich*.py). The checks read the
parser's events directly, not the renderer's helpers, so they hold the renderer to rules
it does not write itself.
"""

from __future__ import annotations

import re
from typing import Any

import pyromark

OPTIONS = (
    pyromark.Options.ENABLE_TABLES
    | pyromark.Options.ENABLE_MATH
    | pyromark.Options.ENABLE_STRIKETHROUGH
    | pyromark.Options.ENABLE_TASKLISTS
    | pyromark.Options.ENABLE_FOOTNOTES
)
ALLOWED_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "mark", "sub", "sup",
    "code", "details", "summary",
}  # fmt: skip
WEB_LINK = re.compile(r"(https?://[^\s/]+\.[^\s]*|mailto:[^@\s]+@[^@\s]+|tel:\+?[0-9].*)", re.I)
TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)")


def events(markdown: str) -> list[tuple[str, str, Any, int, int]]:
    """(kind, name, data, start, end) per event; offsets are UTF-8 bytes."""
    found = []
    for event, span in pyromark.events_with_range(markdown, options=OPTIONS):
        start, end = span["start"], span["end"]
        if isinstance(event, str):
            found.append((event, event, None, start, end))
            continue
        ((kind, payload),) = dict(event).items()
        if kind in ("Start", "End") and not isinstance(payload, str):
            ((name, data),) = dict(payload).items()
            found.append((kind, name, data, start, end))
        elif kind in ("Start", "End"):
            found.append((kind, payload, None, start, end))
        else:
            found.append((kind, kind, payload, start, end))
    return found


def escaped(source: bytes, index: int) -> bool:
    """True when ``source[index]`` follows an odd run of backslashes."""
    count = 0
    while index - count > 0 and source[index - count - 1] == 0x5C:
        count += 1
    return count % 2 == 1


def row_cells(row: bytes) -> int:
    """Cells of one table row's source: GFM splits at every unescaped pipe."""
    content = row.strip(b" \t\n")
    if content.startswith(b"|"):
        content = content[1:]
    if content.endswith(b"|") and not escaped(content, len(content) - 1):
        content = content[:-1]
    return 1 + sum(1 for i, b in enumerate(content) if b == 0x7C and not escaped(content, i))


def problems(markdown: str, *, draft: bool = False) -> list[str]:
    """Why ``markdown`` is not a complete, safe rich Markdown frame (``[]`` when it is).

    Checks: every fenced code block closed; no unescaped ``$`` in text (every ``$`` that
    is not escaped or in code is part of a formula) and an even number of ``$$`` outside
    code; ``<details>`` opened as often as closed; table rows with the header's cell
    count; only the allowed HTML tags (``<tg-thinking>`` too in drafts); links only to
    web, mail and phone targets.
    """
    source = markdown.encode()
    found: list[str] = []
    evs = events(markdown)
    code: list[tuple[int, int]] = []
    details = 0
    columns = 0
    for kind, name, data, start, end in evs:
        if kind == "Start" and name == "CodeBlock":
            code.append((start, end))
            if isinstance(data, dict):
                lines = source[start:end].rstrip(b"\n").split(b"\n")
                fence = re.match(rb"`{3,}|~{3,}", source[start:end])
                last = lines[-1].lstrip(b" \t>").rstrip()
                closed = (
                    fence is not None
                    and len(lines) > 1
                    and last
                    and set(last) == {fence[0][0]}
                    and len(last) >= len(fence[0])
                )
                if not closed:
                    found.append(f"unclosed fence at {start}")
        elif kind == "Code":
            code.append((start, end))
        elif kind == "Text" and not any(a <= start < b for a, b in code):
            chunk = source[start:end]
            for index in range(start, end):
                if source[index] == 0x24 and chunk == data.encode() and not escaped(source, index):
                    found.append(f"bare $ at {index}")
        elif kind in ("Html", "InlineHtml"):
            for match in TAG.finditer(source[start:end].decode()):
                tag = match[2].lower()
                if tag == "details" and kind == "Html":
                    details += -1 if match[1] else 1
                    if details < 0:
                        found.append("</details> without <details>")
                        details = 0
                elif tag == "tg-thinking" and draft:
                    continue
                elif tag not in ALLOWED_TAGS or tag == "details":
                    found.append(f"tag <{match[1]}{tag}> at {start}")
        elif kind == "Start" and name == "Table":
            columns = len(data)
        elif kind == "Start" and name in ("TableHead", "TableRow"):
            cells = row_cells(source[start:end])
            if cells != columns:
                found.append(f"row with {cells} cells in a {columns}-column table at {start}")
        elif kind == "Start" and name in ("Link", "Image"):
            if name == "Image":
                found.append(f"image (a media block) at {start}")
            elif data["link_type"] != "Email" and not WEB_LINK.fullmatch(data["dest_url"]):
                found.append(f"link to {data['dest_url']!r}")
    if details:
        found.append(f"{details} <details> left open")
    outside = bytearray(source)
    for a, b in code:
        outside[a:b] = b" " * (b - a)
    doubles, index = 0, 0
    while index < len(outside):
        dollar = outside[index] == 0x24 and not escaped(source, index)
        if dollar and outside[index + 1 : index + 2] == b"$":
            doubles += 1
            index += 1
        index += 1
    if doubles % 2:
        found.append("odd number of $$")
    return found
