"""Zhipu's legacy JWT authentication for keys shaped ``"id.secret"``.

Source: MetaGLM/zhipuai-sdk-python-v4 ``core/_jwt_token.py`` (docs/providers.md "Zhipu
details"): HS256 over ``{"api_key": id, "exp": now_ms + 210000, "timestamp": now_ms}``
(milliseconds), JOSE header ``{"alg": "HS256", "sign_type": "SIGN"}``, sent as
``Authorization: Bearer <token>``; the SDK caches a token for 180 s, so it is always
used well before its 210 s expiry.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import jwt
from jwt.warnings import InsecureKeyLengthWarning

__all__ = ["TOKEN_TTL_SECONDS", "ZhipuJWT", "is_jwt_key", "make_zhipu_jwt"]

TOKEN_TTL_SECONDS = 180.0
"""How long a generated token is reused, in seconds (the SDK's cache TTL)."""

_EXPIRY_MS = 210_000


def is_jwt_key(api_key: str) -> bool:
    """Return whether ``api_key`` has the ``id.secret`` shape (one dot, both sides non-empty)."""
    key_id, dot, secret = api_key.partition(".")
    return bool(dot and key_id and secret and "." not in secret)


def make_zhipu_jwt(api_key: str, *, now: float) -> str:
    """Sign a Zhipu JWT for ``api_key`` (``"id.secret"``) at ``now`` (Unix seconds).

    Claims are in milliseconds: ``timestamp = now_ms``, ``exp = now_ms + 210000``.
    Zhipu secrets are 16 characters, shorter than PyJWT's recommended HMAC key
    length; the platform chose them, so that warning is silenced here.
    Raises ``ValueError`` when the key is not ``id.secret`` shaped (the message never
    holds the key).
    """
    if not is_jwt_key(api_key):
        raise ValueError("Zhipu JWT auth needs a key shaped 'id.secret'")
    key_id, _, secret = api_key.partition(".")
    now_ms = int(now * 1000)
    claims = {"api_key": key_id, "exp": now_ms + _EXPIRY_MS, "timestamp": now_ms}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        return jwt.encode(
            claims, secret, algorithm="HS256", headers={"alg": "HS256", "sign_type": "SIGN"}
        )


class ZhipuJWT:
    """A cached token source: one token per ``ttl`` seconds (default 180).

    ``clock`` returns Unix seconds (``time.time`` by default; tests pass their own).
    """

    def __init__(
        self,
        api_key: str,
        *,
        ttl: float = TOKEN_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not is_jwt_key(api_key):
            raise ValueError("Zhipu JWT auth needs a key shaped 'id.secret'")
        self._api_key = api_key
        self._ttl = ttl
        self._clock = clock
        self._token = ""
        self._made_at = 0.0

    def token(self) -> str:
        """Return a valid token, signing a new one when the cached one is ``ttl`` old."""
        now = self._clock()
        if not self._token or now - self._made_at >= self._ttl or now < self._made_at:
            self._token = make_zhipu_jwt(self._api_key, now=now)
            self._made_at = now
        return self._token
