"""One message of a stored conversation and its JSON form."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from storage.tokens import IMAGE_TOKENS, estimate_tokens

__all__ = ["Role", "StoredMessage"]

Role = Literal["user", "assistant"]


@dataclass(frozen=True)
class StoredMessage:
    """One history message: chat-completions ``role`` and text ``content``.

    ``image_file_ids`` are Telegram ``file_id`` references (never image bytes);
    ``interrupted`` marks an assistant answer that was cut short (stream error, /stop).
    """

    role: Role
    content: str
    image_file_ids: tuple[str, ...] = ()
    interrupted: bool = False

    @property
    def tokens(self) -> int:
        """Estimated tokens of this message: text estimate + :data:`IMAGE_TOKENS` per image."""
        return estimate_tokens(self.content) + IMAGE_TOKENS * len(self.image_file_ids)

    def to_json(self, *, turn_id: str | None = None) -> str:
        """Serialize to compact UTF-8 JSON.

        Shape: ``{"role", "content", "images": [file_id…], "interrupted": bool,
        "tokens": int}``, plus ``"turn": turn_id`` when given. ``tokens`` is written for
        the Lua trim script only, ``turn`` for the append script's check that an
        exchange is not stored twice (``append_exchange.lua``); neither is read back.
        """
        fields: dict[str, object] = {
            "role": self.role,
            "content": self.content,
            "images": list(self.image_file_ids),
            "interrupted": self.interrupted,
            "tokens": self.tokens,
        }
        if turn_id is not None:
            fields["turn"] = turn_id
        return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, data: str | bytes) -> StoredMessage:
        """Parse what :meth:`to_json` wrote; ``tokens`` (recomputed on demand) and ``turn``
        are ignored.

        Raises ``ValueError`` when ``data`` is not JSON of that shape.
        """
        raw: Any = json.loads(data)
        if not isinstance(raw, dict):
            raise ValueError("stored message is not a JSON object")
        role, content = raw.get("role"), raw.get("content")
        images = raw.get("images", [])
        interrupted = raw.get("interrupted", False)
        if role not in ("user", "assistant") or not isinstance(content, str):
            raise ValueError("stored message has no valid role/content")
        if not isinstance(images, list) or not all(isinstance(i, str) for i in images):
            raise ValueError("stored message has invalid images")
        if not isinstance(interrupted, bool):
            raise ValueError("stored message has invalid interrupted flag")
        return cls(role, content, tuple(images), interrupted)
