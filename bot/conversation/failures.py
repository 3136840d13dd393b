"""What a user is told, and what the operator is told, when a provider fails."""

from __future__ import annotations

import logging
import math

from bot.texts import Lang, t
from providers.errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ContentBlockedError,
    ContextTooLongError,
    NotFoundError,
    PermissionDeniedError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeout,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    SessionExpiredError,
    StreamBroken,
)

__all__ = ["describe_failure", "log_failure"]

log = logging.getLogger(__name__)

# Most specific first: the first class that matches decides the text.
_TEXT_KEYS: tuple[tuple[type[ProviderError], str], ...] = (
    (SessionExpiredError, "error_session_expired"),
    (AuthenticationError, "error_auth"),
    (PermissionDeniedError, "error_permission"),
    (NotFoundError, "error_not_found"),
    (ContextTooLongError, "error_context"),
    (ContentBlockedError, "error_blocked"),
    (BadRequestError, "error_bad_request"),
    (QuotaExceededError, "error_quota"),
    (RateLimitError, "error_rate_limited"),
    (ServerError, "error_server"),
    (ProviderTimeout, "error_timeout"),
    (ProviderConnectionError, "error_connection"),
    (StreamBroken, "error_stream"),
)

# Failures the operator must fix (keys, accounts, catalogue): logged at ERROR.
_OPERATOR_PROBLEMS = (
    AuthenticationError,
    PermissionDeniedError,
    NotFoundError,
    QuotaExceededError,
)

DEFAULT_RETRY_SECONDS = 20


def describe_failure(error: ProviderError, lang: Lang) -> str:
    """Return the short user-facing text for ``error`` in ``lang``: what happened and what next.

    A rate limit names the seconds to wait: the provider's ``retry_after`` rounded up,
    or 20 s when it did not say.
    """
    for cls, key in _TEXT_KEYS:
        if isinstance(error, cls):
            if key == "error_rate_limited":
                wait = getattr(error, "retry_after", None) or DEFAULT_RETRY_SECONDS
                return t(key, lang, seconds=max(1, math.ceil(wait)))
            return t(key, lang)
    return t("error_generic", lang)


def log_failure(error: ProviderError) -> None:
    """Log ``error`` for the operator: ERROR for what they must fix, WARNING otherwise.

    The line names the provider, model, HTTP status, business code and request id;
    the error text was redacted by the provider client, so it holds no secret.
    """
    status = error.status if isinstance(error, APIStatusError) else None
    code = error.code if isinstance(error, APIStatusError) else None
    level = logging.ERROR if isinstance(error, _OPERATOR_PROBLEMS) else logging.WARNING
    log.log(
        level,
        "provider failure: provider=%s model=%s status=%s code=%s request_id=%s error=%s: %s",
        error.provider or "?",
        error.model or "?",
        status,
        code,
        error.request_id,
        type(error).__name__,
        error.message,
    )
