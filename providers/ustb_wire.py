"""USTB web chat wire format, free of HTTP: history folding, form fields, event data.

Everything here is pure (strings in, values out) so it can be tested with plain
lists; the multipart encoding and the SSE parsing are httpx's and httpx-sse's (see
:mod:`providers.ustb`). Protocol facts come from docs/providers.md "USTB web chat"
and isHarryh/USTB-OpenAI-Py (``resources/chat/completions/completions.py``,
``_utils/form_request_builder.py``, ``api_models/compose_chat.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from providers.errors import BadRequestError
from providers.thinktags import ThinkSplitter
from providers.types import ChatMessage, Chunk, Finish, ReasoningDelta, Usage, UsageReport

__all__ = [
    "EventParts",
    "StreamState",
    "compose_fields",
    "envelope_error",
    "fold_messages",
    "loads_or_none",
    "parse_event",
]

Turn = tuple[Literal["user", "assistant"], str]


def _bad_request(message: str, *, provider: str, model: str) -> BadRequestError:
    return BadRequestError(f"{provider}: {message}", status=0, provider=provider, model=model)


def _merged_turns(messages: Iterable[ChatMessage]) -> tuple[str, list[Turn]]:
    """Collect the system text and the user/assistant turns, merging same-role runs."""
    system_parts: list[str] = []
    turns: list[Turn] = []
    for message in messages:
        text = message.content.strip()
        if not text:
            continue
        if message.role == "system":
            system_parts.append(text)
        elif turns and turns[-1][0] == message.role:
            turns[-1] = (message.role, f"{turns[-1][1]}\n\n{text}")
        else:
            turns.append((message.role, text))
    return "\n\n".join(system_parts), turns


def fold_messages(
    messages: Sequence[ChatMessage], *, provider: str = "ustb", model: str = ""
) -> tuple[str, list[Turn]]:
    """Fold chat-completions ``messages`` into USTB's ``(content, history)``.

    USTB rejects a history that does not strictly alternate user/assistant and end
    with assistant (``{"e": 4028, "m": "history参数异常"}``). So: empty messages are
    skipped; all system messages are joined and put before the first user turn
    (``system + "\\n\\n" + user``); consecutive same-role turns are joined with
    ``"\\n\\n"`` (so trailing user messages merge into ``content``); assistant turns
    before the first user turn are dropped (they answer a question that was trimmed
    away). Returns ``content`` (the last user turn) and ``history`` as
    ``[(role, text), …]``. Raises BadRequestError (status 0) if a message has
    images (USTB takes text only) or if the conversation does not end with a user
    message.
    """
    if any(message.images for message in messages):
        raise _bad_request(
            "USTB web chat takes text only; remove the images or choose a vision model",
            provider=provider,
            model=model,
        )
    system, turns = _merged_turns(messages)
    while turns and turns[0][0] == "assistant":
        turns.pop(0)
    if not turns or turns[-1][0] != "user":
        raise _bad_request(
            "the conversation must end with a user message", provider=provider, model=model
        )
    if system:
        turns[0] = ("user", f"{system}\n\n{turns[0][1]}")
    return turns[-1][1], turns[:-1]


def compose_fields(
    content: str, history: Sequence[Turn], *, model_name: str
) -> list[tuple[str, str]]:
    """The ``POST /site/ai/compose_chat`` form fields, in the order the web page sends.

    ``content``, then ``history[i][role]`` / ``history[i][content]``, then
    ``compose_id=3``, ``deep_search=1``, ``model_name``, ``internet_search=2``
    (isHarryh/USTB-OpenAI-Py ``completions.py``). ``auth_tag`` is left out: the
    known-good field list has none, and the sister deployment uses it as a user
    identity label ("本科生") whose empty value has no known effect.
    """
    fields = [("content", content)]
    for index, (role, text) in enumerate(history):
        fields.append((f"history[{index}][role]", role))
        fields.append((f"history[{index}][content]", text))
    fields += [
        ("compose_id", "3"),
        ("deep_search", "1"),
        ("model_name", model_name),
        ("internet_search", "2"),
    ]
    return fields


@dataclass(frozen=True, slots=True)
class EventParts:
    """What one USTB event says: an error, or answer/reasoning text, finish, usage.

    ``error`` is ``(code, message)`` for an envelope with ``e != 0`` (or an
    ``error`` object inside ``original_stream``).
    """

    answer: str = ""
    reasoning: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    error: tuple[str, str] | None = None


def _count(value: Any) -> int:
    """A token count, or 0 when the field is missing or not a number."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    return int(value) if is_number else 0


def _usage(value: Any) -> Usage | None:
    """``usage`` of an OpenAI-style chunk; ``total_tokens`` defaults to the sum."""
    if not isinstance(value, dict):
        return None
    prompt, completion = _count(value.get("prompt_tokens")), _count(value.get("completion_tokens"))
    return Usage(prompt, completion, _count(value.get("total_tokens")) or prompt + completion)


def _original_stream(ext: Any) -> dict[str, Any] | None:
    """The OpenAI-style chunk in ``d.ext.original_stream`` (a JSON string), if valid."""
    raw = ext.get("original_stream") if isinstance(ext, dict) else None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    return raw if isinstance(raw, dict) else None


def _parts_from_chunk(chunk: dict[str, Any]) -> EventParts:
    """Read an OpenAI-style chunk: delta content/reasoning_content, finish_reason, usage."""
    error = chunk.get("error")
    if isinstance(error, dict):
        return EventParts(error=(str(error.get("code", "")), str(error.get("message", ""))))
    choices = chunk.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    choice = choice if isinstance(choice, dict) else {}
    delta = choice.get("delta")
    delta = delta if isinstance(delta, dict) else {}
    content, reasoning = delta.get("content"), delta.get("reasoning_content")
    finish = choice.get("finish_reason")
    return EventParts(
        answer=content if isinstance(content, str) else "",
        reasoning=reasoning if isinstance(reasoning, str) else "",
        finish_reason=finish if isinstance(finish, str) and finish else None,
        usage=_usage(chunk.get("usage")),
    )


def parse_event(data: str) -> EventParts:
    """Parse one event's ``data``: ``{"e":0,"m":…,"d":{"answer":…,"ext":…}}``.

    One source per event, so text is never doubled: when ``d.ext.original_stream``
    holds a valid OpenAI-style chunk, answer, reasoning, finish_reason and usage
    come from it alone and ``d.answer`` is ignored; otherwise the answer is
    ``d.answer``. ``d.ext`` may be ``[]`` (an empty PHP array); ``d.type`` is
    ignored; empty data and ``[DONE]`` say nothing. Raises ValueError if ``data``
    is not a JSON object.
    """
    if data.strip() in ("", "[DONE]"):
        return EventParts()
    envelope = json.loads(data)
    if not isinstance(envelope, dict):
        raise ValueError("event data is not a JSON object")
    code = envelope.get("e", 0)
    if code not in (0, "0", None):
        return EventParts(error=(str(code), str(envelope.get("m") or "")))
    body = envelope.get("d")
    if not isinstance(body, dict):
        return EventParts()
    chunk = _original_stream(body.get("ext"))
    if chunk is not None:
        return _parts_from_chunk(chunk)
    answer = body.get("answer")
    return EventParts(answer=answer if isinstance(answer, str) else "")


def envelope_error(envelope: Any) -> tuple[str, str] | None:
    """``(code, message)`` of a parsed ``{"e", "m", "d"}`` envelope with ``e != 0``, else None."""
    if not isinstance(envelope, dict):
        return None
    code = envelope.get("e")
    if code in (0, "0", None):
        return None
    return str(code), str(envelope.get("m") or "")


def loads_or_none(body: bytes | str) -> Any:
    """The JSON value of ``body``, or None when it is not JSON."""
    try:
        return json.loads(body)
    except ValueError:
        return None


class StreamState:
    """Turns parsed events into chunks for one stream; the think splitting happens here.

    ``d.answer`` text (or ``content`` from ``original_stream``) goes through the
    think splitter, so inline ``<think>…</think>`` becomes ReasoningDelta even when
    a tag is cut across events; ``reasoning_content`` becomes ReasoningDelta
    directly. The first ``finish_reason`` is yielded as Finish at once; usage is
    kept and reported once at the end.
    """

    def __init__(self, splitter: ThinkSplitter) -> None:
        self.splitter = splitter
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.saw_text = False

    def on_event(self, parts: EventParts) -> list[Chunk]:
        """Chunks for one event (the caller raises ``parts.error`` before this)."""
        chunks: list[Chunk] = []
        if parts.reasoning:
            chunks.append(ReasoningDelta(parts.reasoning))
        if parts.answer:
            chunks.extend(self.splitter.feed(parts.answer))
        if parts.usage is not None:
            self.usage = parts.usage
        self.saw_text = self.saw_text or bool(chunks)
        if parts.finish_reason and self.finish_reason is None:
            chunks.extend(self.splitter.flush())
            self.finish_reason = parts.finish_reason
            chunks.append(Finish(parts.finish_reason))
        return chunks

    def on_end(self) -> list[Chunk]:
        """Chunks at the connection close: held-back text, Finish("stop") if none, usage."""
        chunks: list[Chunk] = list(self.splitter.flush())
        self.saw_text = self.saw_text or bool(chunks)
        if self.finish_reason is None:
            chunks.append(Finish("stop"))
        if self.usage is not None:
            chunks.append(UsageReport(self.usage))
        return chunks
