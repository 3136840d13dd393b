"""Decode OpenAI-style chat-completions streams into chunks, without touching HTTP.

The input is the stream's server-sent events (``httpx_sse.ServerSentEvent`` or
``(event, data)`` string pairs); the output is the chunk types of
:mod:`providers.types`. Wire facts (docs/providers.md "Common rules"; openai-python
``_streaming.py``; Zhipu SDK ``core/_sse_client.py``):

- ``data: [DONE]`` ends the stream; a stream that ends with neither ``[DONE]`` nor a
  ``finish_reason`` was truncated (:class:`~providers.errors.TruncatedStream`); a
  ``finish_reason`` without ``[DONE]`` is complete.
- ``finish_reason`` may be absent; ``object`` may be missing; every delta may repeat
  ``role: "assistant"`` (ignored; no empty deltas are emitted).
- ``usage`` arrives on the last chunk with non-empty ``choices`` (Zhipu, Z.ai) or on
  an extra chunk with empty ``choices`` (OpenAI, DashScope). The last one seen wins.
- Reasoning arrives as ``delta.reasoning_content`` (DeepSeek, Zhipu, DashScope),
  ``delta.reasoning`` (vLLM, OpenRouter), or inline ``<think>…</think>`` in
  ``delta.content`` (see :mod:`providers.thinktags`).
- A data object with an ``error`` key (or an ``event: error``) is an in-band error.

Chunk order: answer/reasoning deltas as they come, then at the end of the stream one
:class:`~providers.types.UsageReport` (when the platform sent usage) and last one
:class:`~providers.types.Finish`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from typing import Any, NamedTuple

from httpx_sse import ServerSentEvent

from providers.errors import MalformedChunk, TruncatedStream, error_from_status, redact
from providers.thinktags import ThinkTagSplitter
from providers.types import (
    Chunk,
    Finish,
    ReasoningDelta,
    Usage,
    UsageReport,
)

__all__ = [
    "ErrorFields",
    "OpenAIStreamDecoder",
    "SSEInput",
    "completion_chunks",
    "decode_openai_stream",
    "error_fields",
]

SSEInput = ServerSentEvent | tuple[str, str]
"""One server-sent event: httpx-sse's object, or an ``(event, data)`` pair."""

_SNIPPET = 200


class ErrorFields(NamedTuple):
    """What an error body says: business ``code`` (as sent), ``message``, ``request_id``."""

    code: str | int | None
    message: str
    request_id: str | None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else json.dumps(value))


def error_fields(body: Mapping[str, Any]) -> ErrorFields:
    """Pull code, message and request id out of an error body of any common shape.

    Shapes: ``{"error": {"code", "message", "type"}}`` (OpenAI, Zhipu with a string
    code, vLLM with an int code), ``{"error": "text"}``, top-level ``{"code",
    "message"}`` (DashScope), ``{"detail": …}`` (FastAPI servers), ``{"msg": …}``.
    An OpenAI ``type`` is added to the message when it is not already in it, so
    words such as ``insufficient_quota`` reach :func:`~providers.errors.error_from_status`.
    """
    error = body.get("error")
    inner: Mapping[str, Any] = error if isinstance(error, Mapping) else body
    code = inner.get("code")
    if not isinstance(code, str | int) or isinstance(code, bool):
        code = None
    if isinstance(error, str):
        message = error
    else:
        message = _text(inner.get("message") or inner.get("msg") or body.get("detail"))
    kind = inner.get("type")
    if isinstance(kind, str) and kind and kind not in message:
        message = f"{message} [{kind}]" if message else kind
    request_id = inner.get("request_id") or body.get("request_id") or body.get("id")
    return ErrorFields(code, message, request_id if isinstance(request_id, str) else None)


def _usage(raw: Mapping[str, Any]) -> Usage:
    def count(name: str) -> int:
        value = raw.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    prompt, completion = count("prompt_tokens"), count("completion_tokens")
    return Usage(prompt, completion, count("total_tokens") or prompt + completion)


class OpenAIStreamDecoder:
    """Turn the ``data`` of each server-sent event into chunks (push style, no I/O).

    Call :meth:`feed` per event and :meth:`finish` once at the end of the stream.
    ``provider``/``model`` label errors; ``secrets`` are redacted from error text.
    Raises :class:`~providers.errors.MalformedChunk` for data that is not JSON or not
    shaped as the protocol says, an :class:`~providers.errors.APIStatusError`
    subclass for an in-band error, :class:`~providers.errors.TruncatedStream` from
    :meth:`finish` when neither ``[DONE]`` nor a ``finish_reason`` arrived.
    """

    def __init__(self, *, provider: str = "", model: str = "", secrets: Sequence[str] = ()) -> None:
        self.provider = provider
        self.model = model
        self._secrets = tuple(secrets)
        self._splitter = ThinkTagSplitter()
        self._usage: Usage | None = None
        self.done = False
        """Whether ``data: [DONE]`` was seen (later events are ignored)."""
        self.finish_reason: str | None = None
        """The last non-empty ``finish_reason`` seen."""
        self.request_id: str | None = None
        """The chunk ``id`` the platform sent, if any."""

    def feed(self, data: str, *, event: str = "message") -> list[Chunk]:
        """Decode one event's ``data`` and return the chunks it yields (maybe none)."""
        payload = data.strip()
        if self.done or not payload:
            return []
        if payload == "[DONE]":
            self.done = True
            return []
        try:
            obj = json.loads(payload)
        except ValueError as exc:
            raise self._malformed("chunk is not JSON", payload) from exc
        if event == "error" and isinstance(obj, dict) and "error" not in obj:
            obj = {"error": obj}
        return self.feed_object(obj)

    def feed_object(self, obj: Any) -> list[Chunk]:
        """Decode one already-parsed chunk (or a whole non-stream completion)."""
        if not isinstance(obj, dict):
            raise self._malformed("chunk is not a JSON object", json.dumps(obj))
        if obj.get("error"):
            self._raise_in_band(obj)
        if isinstance(obj.get("id"), str):
            self.request_id = obj["id"]
        usage = obj.get("usage")
        if isinstance(usage, dict):
            self._usage = _usage(usage)
        choices = obj.get("choices")
        if choices is None:
            return []
        if not isinstance(choices, list):
            raise self._malformed("choices is not a list", json.dumps(obj))
        out: list[Chunk] = []
        for choice in choices:
            if not isinstance(choice, dict):
                raise self._malformed("choice is not an object", json.dumps(obj))
            if choice.get("index", 0) == 0:
                out.extend(self._choice(choice))
        return out

    def finish(self, *, complete: bool = False) -> list[Chunk]:
        """End the stream: flush held-back text, then ``UsageReport`` (if any) and ``Finish``.

        ``complete=True`` says the source is known to be whole (a non-stream
        completion), so a missing ``finish_reason`` is not truncation. A stream that
        ended after ``[DONE]`` without a ``finish_reason`` finishes as ``"stop"``.
        """
        if not (complete or self.done or self.finish_reason):
            raise TruncatedStream(
                f"{self.provider or 'provider'}: stream ended without [DONE] or finish_reason",
                provider=self.provider,
                model=self.model,
                request_id=self.request_id,
            )
        out: list[Chunk] = list(self._splitter.flush())
        if self._usage is not None:
            out.append(UsageReport(self._usage))
        out.append(Finish(self.finish_reason or "stop"))
        return out

    def _choice(self, choice: Mapping[str, Any]) -> list[Chunk]:
        delta = choice.get("delta")
        if delta is None:
            delta = choice.get("message") or {}  # some servers send "message" in chunks
        if not isinstance(delta, dict):
            raise self._malformed("delta is not an object", json.dumps(choice))
        out: list[Chunk] = []
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            out.append(ReasoningDelta(reasoning))
        content = delta.get("content")
        if isinstance(content, str):
            out.extend(self._splitter.feed(content))
        reason = choice.get("finish_reason")
        if isinstance(reason, str) and reason:
            self.finish_reason = reason
        return out

    def _raise_in_band(self, obj: Mapping[str, Any]) -> None:
        fields = error_fields(obj)
        code = fields.code
        # vLLM and some gateways put the HTTP status in the in-band error's code.
        status = code if isinstance(code, int) and 400 <= code < 600 else 0
        raise error_from_status(
            status,
            code=None if status else code,
            message=redact(fields.message, *self._secrets),
            provider=self.provider,
            model=self.model,
            request_id=fields.request_id or self.request_id,
        )

    def _malformed(self, what: str, payload: str) -> MalformedChunk:
        snippet = redact(payload[:_SNIPPET], *self._secrets)
        return MalformedChunk(
            f"{self.provider or 'provider'}: {what}: {snippet!r}",
            provider=self.provider,
            model=self.model,
            request_id=self.request_id,
        )


def _event_fields(event: SSEInput) -> tuple[str, str]:
    if isinstance(event, ServerSentEvent):
        return event.event, event.data
    return event


async def decode_openai_stream(
    events: AsyncIterable[SSEInput],
    *,
    provider: str = "",
    model: str = "",
    secrets: Sequence[str] = (),
) -> AsyncIterator[Chunk]:
    """Yield the chunks of an OpenAI-style event stream; stop reading at ``[DONE]``.

    Raises what :class:`OpenAIStreamDecoder` raises. The caller owns ``events`` and
    closes it (this generator only stops iterating it).
    """
    decoder = OpenAIStreamDecoder(provider=provider, model=model, secrets=secrets)
    async for event in events:
        name, data = _event_fields(event)
        for chunk in decoder.feed(data, event=name):
            yield chunk
        if decoder.done:
            break
    for chunk in decoder.finish():
        yield chunk


def completion_chunks(
    body: Any, *, provider: str = "", model: str = "", secrets: Sequence[str] = ()
) -> list[Chunk]:
    """Turn a non-stream chat completion (or an error body) into the same chunks.

    Some servers answer a streaming request with ``application/json``: either an
    error body (raised as in-band error) or a whole completion with
    ``choices[0].message``. A JSON object without ``choices`` or ``error`` raises
    :class:`~providers.errors.MalformedChunk`.
    """
    decoder = OpenAIStreamDecoder(provider=provider, model=model, secrets=secrets)
    if isinstance(body, dict) and not body.get("error") and not body.get("choices"):
        raise decoder._malformed("JSON answer has neither choices nor error", json.dumps(body))
    chunks = decoder.feed_object(body)
    return chunks + decoder.finish(complete=True)
