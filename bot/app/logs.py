"""Logging set-up: one format, quiet HTTP libraries, and secrets redacted from every record."""

from __future__ import annotations

import logging
from collections.abc import Iterable

__all__ = ["RedactingFilter", "setup_logging"]


class RedactingFilter(logging.Filter):
    """Replaces each known secret (bot token, API keys, cookies) in a log record by ``***``.

    A safety net: code already avoids logging secrets, but a library's message (an
    httpx URL holding the bot token, say) must not slip through.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """``text`` with every secret replaced."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message with secrets removed; always keeps the record."""
        if self._secrets:
            message = record.getMessage()
            cleaned = self.redact(message)
            if record.exc_info and record.exc_info[1] is not None:
                cleaned_exc = self.redact(logging.Formatter().formatException(record.exc_info))
                cleaned = f"{cleaned}\n{cleaned_exc}"
                record.exc_info = None
                record.exc_text = None
            record.msg, record.args = cleaned, None
        return True


def setup_logging(level: str, *, secrets: Iterable[str]) -> None:
    """Log to stderr at ``level``; httpx/httpcore/telegram at WARNING; redact ``secrets``."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "telegram.ext.Updater", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
