"""The one error tree of every provider client.

```
ProviderError                       provider, model, request_id; text never holds a secret
├── ProviderConnectionError          could not connect / connection dropped     (retried)
├── ProviderTimeout                                                            (retried)
│   ├── ConnectTimeout               no connection within the connect timeout
│   ├── FirstTokenTimeout            connected, no first chunk in time
│   └── IdleTimeout                  a stall between two chunks
├── StreamBroken                     the stream ended or broke before the answer did
│   ├── TruncatedStream              closed without [DONE] and without finish_reason
│   └── MalformedChunk               a chunk that is not valid JSON / not the protocol
└── APIStatusError                   status, code (HTTP or business), retry_after
    ├── BadRequestError              400 / 422, Zhipu 1214
    │   └── ContextTooLongError      prompt longer than the context window, Zhipu 1261
    ├── AuthenticationError          401, Zhipu 1000–1004
    │   └── SessionExpiredError      USTB 302 to the SSO login page
    ├── PermissionDeniedError        403
    ├── NotFoundError                404, Zhipu 1211 (unknown model)
    ├── ContentBlockedError          Zhipu 1301, a provider's safety review
    ├── RateLimitError               429, Zhipu 1302/1303/1305                   (retried)
    ├── QuotaExceededError           Zhipu 1113 (arrears, arrives as 429)  (never retried)
    ├── RetryableStatusError         408, 409                                    (retried)
    └── ServerError                  >= 500                                     (retried)
```

`error_from_status` is the one place where an HTTP status, a platform business code
and a body message become one of these classes. Sources: openai-python
`_base_client.py` / `_exceptions.py`, Zhipu SDK `core/_errors.py` and the business
codes in docs/providers.md, USTB envelope codes (isHarryh/USTB-OpenAI-Py).
"""

from __future__ import annotations

import re

__all__ = [
    "APIStatusError",
    "AuthenticationError",
    "BadRequestError",
    "ConnectTimeout",
    "ContentBlockedError",
    "ContextTooLongError",
    "FirstTokenTimeout",
    "IdleTimeout",
    "MalformedChunk",
    "NotFoundError",
    "PermissionDeniedError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderTimeout",
    "QuotaExceededError",
    "RateLimitError",
    "RetryableStatusError",
    "ServerError",
    "SessionExpiredError",
    "StreamBroken",
    "TruncatedStream",
    "error_from_status",
    "redact",
]

_SECRET_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]+"),
    re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}"),
    re.compile(
        r"(?i)((?:easy_session|cookie_vjuid_login|api[_-]?key|token)\s*[=:]\s*)[^\s;,&\"']+"
    ),
)


def redact(text: str, *secrets: str | None) -> str:
    """Return ``text`` with every given secret and anything shaped like one replaced by ``***``.

    Shapes removed: ``Bearer <token>``, ``sk-…`` keys, ``name=value`` for cookie and
    key names. Secrets shorter than 4 characters are ignored (they would match noise).
    """
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.lastindex else "") + "***", text)
    return text


class ProviderError(Exception):
    """Base of every error a provider client raises.

    ``provider`` is the platform name, ``model`` the model id of the request,
    ``request_id`` the platform's request id when it sent one.
    """

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        model: str = "",
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.model = model
        self.request_id = request_id


class ProviderConnectionError(ProviderError):
    """The connection could not be made or was dropped before any answer."""

    retryable = True


class ProviderTimeout(ProviderError):
    """A timeout: connecting, waiting for the first chunk, or between chunks."""

    retryable = True


class ConnectTimeout(ProviderTimeout):
    """No connection within the connect timeout."""


class FirstTokenTimeout(ProviderTimeout):
    """Connected, but the first chunk did not arrive within the first-token timeout."""


class IdleTimeout(ProviderTimeout):
    """The stream stalled longer than the idle timeout between two chunks."""


class StreamBroken(ProviderError):
    """The stream ended or broke before the answer was complete."""

    retryable = True


class TruncatedStream(StreamBroken):
    """The stream closed without ``[DONE]`` and without a ``finish_reason``."""


class MalformedChunk(StreamBroken):
    """A chunk was not valid JSON or not shaped as the protocol says."""


class APIStatusError(ProviderError):
    """The platform answered with an error status or an error body.

    ``status`` is the HTTP status (0 for an in-band error), ``code`` the platform's
    business code as a string when it sent one (Zhipu ``"1302"``, USTB ``"4028"``),
    ``retry_after`` the seconds the platform asked to wait, if it said.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str | None = None,
        retry_after: float | None = None,
        provider: str = "",
        model: str = "",
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, provider=provider, model=model, request_id=request_id)
        self.status = status
        self.code = code
        self.retry_after = retry_after


class BadRequestError(APIStatusError):
    """The request was malformed or had an invalid parameter (400, 422, Zhipu 1214)."""


class ContextTooLongError(BadRequestError):
    """The prompt is longer than the model's context window (Zhipu 1261, OpenAI
    ``context_length_exceeded``)."""


class AuthenticationError(APIStatusError):
    """The API key or session was rejected (401, Zhipu 1000–1004)."""


class SessionExpiredError(AuthenticationError):
    """The USTB session cookie expired (a 302 to the SSO login page)."""


class PermissionDeniedError(APIStatusError):
    """The key is valid but may not use this resource (403)."""


class NotFoundError(APIStatusError):
    """The endpoint or model does not exist (404, Zhipu 1211)."""


class ContentBlockedError(APIStatusError):
    """The provider's safety review blocked the prompt or the answer (Zhipu 1301)."""


class RateLimitError(APIStatusError):
    """Too many requests (429, Zhipu 1302/1303/1305); ``retry_after`` when known."""

    retryable = True


class QuotaExceededError(APIStatusError):
    """The account is out of credit or quota (Zhipu 1113); retrying cannot help."""


class RetryableStatusError(APIStatusError):
    """A status worth one more try: 408 request timeout, 409 conflict."""

    retryable = True


class ServerError(APIStatusError):
    """The platform failed (HTTP 5xx)."""

    retryable = True


_ZHIPU_CODES: dict[str, type[APIStatusError]] = {
    **{str(c): AuthenticationError for c in range(1000, 1005)},
    "1113": QuotaExceededError,
    "1211": NotFoundError,
    "1214": BadRequestError,
    "1261": ContextTooLongError,
    "1301": ContentBlockedError,
    "1302": RateLimitError,
    "1303": RateLimitError,
    "1305": RateLimitError,
}

_CODE_WORDS: tuple[tuple[tuple[str, ...], type[APIStatusError]], ...] = (
    (
        ("context_length_exceeded", "maximum context length", "too long", "prompt is too long"),
        ContextTooLongError,
    ),
    (("insufficient_quota", "arrears", "欠费", "余额不足"), QuotaExceededError),
    (("data_inspection_failed", "content_filter", "sensitive", "敏感"), ContentBlockedError),
    (("model_not_found", "does not exist", "模型不存在"), NotFoundError),
)


def _class_for_status(status: int) -> type[APIStatusError]:
    if status in (400, 422):
        return BadRequestError
    if status == 401:
        return AuthenticationError
    if status == 403:
        return PermissionDeniedError
    if status == 404:
        return NotFoundError
    if status in (408, 409):
        return RetryableStatusError
    if status == 429:
        return RateLimitError
    if status >= 500:
        return ServerError
    return APIStatusError


def error_from_status(
    status: int,
    *,
    code: str | int | None = None,
    message: str = "",
    retry_after: float | None = None,
    provider: str = "",
    model: str = "",
    request_id: str | None = None,
) -> APIStatusError:
    """Build the error for an HTTP ``status`` and an optional business ``code``.

    The business code wins over the status (Zhipu 1113 arrives as 429 but is quota,
    not rate limit); then well-known words in the code or message (OpenAI
    ``context_length_exceeded``, DashScope ``data_inspection_failed``); then the
    status. ``status`` 0 stands for an in-band error with no HTTP status.
    """
    code_text = str(code) if code is not None and str(code) != "" else None
    cls: type[APIStatusError] | None = _ZHIPU_CODES.get(code_text or "")
    if cls is None:
        haystack = f"{code_text or ''} {message}".lower()
        for words, word_cls in _CODE_WORDS:
            if any(word in haystack for word in words):
                cls = word_cls
                break
    if cls is None:
        cls = _class_for_status(status) if status else APIStatusError
    label = f"HTTP {status}" if status else "in-band error"
    if code_text:
        label += f" code {code_text}"
    text = f"{provider or 'provider'}: {label}: {message}".rstrip(": ")
    return cls(
        text,
        status=status,
        code=code_text,
        retry_after=retry_after,
        provider=provider,
        model=model,
        request_id=request_id,
    )
