"""Logging set-up: one format, quiet HTTP libraries, and secrets redacted from every record.

The secrets are found, not listed: :func:`secrets_of` takes every ``SecretStr`` in the
settings (each field, and each field of a nested model such as a ``CUSTOM_PROVIDERS``
entry), plus the password in ``REDIS_URL``. A secret field added later is redacted
without a change here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from urllib.parse import quote, unquote, urlsplit

from pydantic import BaseModel, SecretStr

from bot.settings import Settings

__all__ = ["RedactingFilter", "secrets_of", "setup_logging"]


def _secret_values(value: object) -> Iterator[str]:
    """Every ``SecretStr`` value in ``value``: itself, a model's fields, list/dict items."""
    if isinstance(value, SecretStr):
        yield value.get_secret_value()
    elif isinstance(value, BaseModel):
        for _name, item in value:  # the model's fields (and extras) with their values
            yield from _secret_values(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _secret_values(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _secret_values(item)


def secrets_of(settings: Settings) -> list[str]:
    """Every non-empty secret in ``settings``: each ``SecretStr`` (nested ones included)
    and the password of ``REDIS_URL``, as written and percent-decoded."""
    found = list(_secret_values(settings))
    password = urlsplit(settings.redis_url).password
    if password:
        found += [password, unquote(password)]
    return [secret for secret in dict.fromkeys(found) if secret]


class RedactingFilter(logging.Filter):
    """Replaces each known secret (bot token, API keys, cookies) in a log record by ``***``.

    A safety net: code already avoids logging secrets, but a library's message (an
    httpx URL holding the bot token, say) must not slip through. Each secret is also
    replaced percent-encoded, as it shows in a URL (``123:abc`` → ``123%3Aabc`` in a
    webhook path of an access-log line). Secrets under 6 characters are left alone:
    they would blank out common words.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        kept = {s for s in secrets if len(s) >= 6}
        forms = kept | {quote(s, safe="") for s in kept} | {quote(s) for s in kept}
        self._secrets = sorted(forms, key=len, reverse=True)

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


def setup_logging(settings: Settings) -> None:
    """Log to stderr at ``LOG_LEVEL``; httpx/httpcore/telegram at WARNING; every secret of
    ``settings`` (:func:`secrets_of`) redacted from every record."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(secrets_of(settings)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    for noisy in ("httpx", "httpcore", "telegram.ext.Updater", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
