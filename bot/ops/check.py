"""``python -m bot check``: validate the configuration, then probe every enabled platform.

The check, in order:

1. builds the catalogue and resolves the default model (a :class:`ConfigError` is
   printed as one line, exit status 2);
2. opens the store named by ``REDIS_URL`` (unreachable: exit status 1) and restores
   persisted provider sessions, as the bot does at start;
3. sends one minimal streaming request (``"ping"``) to each enabled platform's
   default model, all at once, under one overall deadline; each stream is read up
   to its first answer or reasoning chunk and then closed. No provider-level
   retries, so a failure shows at once;
4. prints one row per platform: name, base URL, model, whether the credentials
   were accepted, the first-token latency, and a short redacted error.

Exit status 1 when the default model's platform (or the store) fails, else 0: the
other platforms' rows are information for the operator.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from typing import Literal, TextIO

import httpx

from bot.app.logs import secrets_of
from bot.app.platforms import (
    PlatformSetup,
    build_catalogue,
    build_platform_setups,
    check_default_model,
)
from bot.app.services import open_configured_store, restore_sessions
from bot.settings import ConfigError, Settings
from providers.catalogue import Catalogue, ModelInfo
from providers.errors import (
    APIStatusError,
    AuthenticationError,
    PermissionDeniedError,
    ProviderError,
    StreamBroken,
    redact,
)
from providers.types import AnswerDelta, ChatMessage, ChatRequest, Chunk, ReasoningDelta
from storage import StorageUnavailable

__all__ = [
    "CHECK_TIMEOUT",
    "PROBE_CONNECT_TIMEOUT",
    "PROBE_FIRST_TOKEN_TIMEOUT",
    "ProbeResult",
    "probe_model",
    "probe_platforms",
    "run_check",
]

CHECK_TIMEOUT = 30.0
"""Seconds the probes of all platforms may take together."""
PROBE_CONNECT_TIMEOUT = 10.0
"""Upper bound (seconds) of a probe's connect timeout (``PROVIDER_CONNECT_TIMEOUT`` if lower)."""
PROBE_FIRST_TOKEN_TIMEOUT = 20.0
"""Upper bound (seconds) of a probe's first-token wait (or ``PROVIDER_FIRST_TOKEN_TIMEOUT``)."""
ERROR_WIDTH = 120
"""Characters of an error message shown in the table."""

Auth = Literal["yes", "no", "?"]


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of one platform's probe.

    ``auth`` is ``"yes"`` (the server accepted the credentials or at least answered
    without an auth error), ``"no"`` (401/403/expired session) or ``"?"`` (no answer:
    unreachable or timed out); ``latency_ms`` the milliseconds from sending the
    request to the first answer or reasoning text, ``None`` when none came;
    ``error`` a short redacted ``"<ErrorClass>: <message>"``, empty on success.
    """

    platform: str
    base_url: str
    model: str
    auth: Auth
    latency_ms: int | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        """True when the first answer or reasoning text arrived."""
        return self.latency_ms is not None and not self.error


def probe_model(platform: str, catalogue: Catalogue, default: ModelInfo) -> ModelInfo | None:
    """The model probed on ``platform``: the default model if it is there, else its first one."""
    if default.platform == platform:
        return default
    models = catalogue.by_platform().get(platform, [])
    return models[0] if models else None


def _auth_of(error: ProviderError) -> Auth:
    """``"no"`` for a rejected key or session, ``"yes"`` when the server answered, else ``"?"``."""
    if isinstance(error, AuthenticationError | PermissionDeniedError):
        return "no"  # SessionExpiredError is an AuthenticationError
    if isinstance(error, APIStatusError | StreamBroken):
        return "yes"
    return "?"


def _short_error(error: ProviderError, secrets: Sequence[str]) -> str:
    """``"<ErrorClass>: <message>"`` on one line, redacted and cut to :data:`ERROR_WIDTH`."""
    text = " ".join(f"{type(error).__name__}: {error.message}".split())
    text = redact(text, *secrets)
    return text if len(text) <= ERROR_WIDTH else text[: ERROR_WIDTH - 1] + "…"


async def _aclose(stream: AsyncIterator[Chunk]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


async def _first_text_ms(setup: PlatformSetup, model: ModelInfo) -> int | None:
    """Milliseconds until the first answer or reasoning text; ``None`` when the stream had none.

    Raises :class:`ProviderError` as the client does; the stream is closed on every path.
    """
    request = ChatRequest(model=model.model, messages=(ChatMessage("user", "ping"),))
    started = time.perf_counter()
    stream = setup.client.stream_chat(request)
    try:
        async for chunk in stream:
            if isinstance(chunk, AnswerDelta | ReasoningDelta) and chunk.text:
                return round((time.perf_counter() - started) * 1000)
        return None
    finally:
        await _aclose(stream)


async def _probe_one(
    setup: PlatformSetup,
    model: ModelInfo | None,
    *,
    deadline: float,
    time_limit: float,
    secrets: Sequence[str],
) -> ProbeResult:
    """Probe one platform before ``deadline`` (event-loop time); never raises ProviderError."""
    info = setup.info
    if model is None:
        return ProbeResult(info.name, info.base_url, "-", "?", error="no model is listed")
    row = ProbeResult(info.name, info.base_url, model.key, "?")
    try:
        async with asyncio.timeout_at(deadline):
            latency = await _first_text_ms(setup, model)
    except TimeoutError:
        return replace(row, error=f"no answer within {time_limit:g} s (the check's deadline)")
    except ProviderError as exc:
        return replace(row, auth=_auth_of(exc), error=_short_error(exc, secrets))
    if latency is None:
        return replace(row, auth="yes", error="the stream ended without any answer text")
    return replace(row, auth="yes", latency_ms=latency)


async def probe_platforms(
    setups: Sequence[PlatformSetup],
    catalogue: Catalogue,
    default: ModelInfo,
    *,
    time_limit: float = CHECK_TIMEOUT,
    secrets: Sequence[str] = (),
) -> list[ProbeResult]:
    """Probe every platform of ``setups`` concurrently; all finish within ``time_limit`` seconds.

    Returns one :class:`ProbeResult` per setup, in the order given. ``secrets`` are
    removed from error texts (the clients redact their own key already).
    """
    deadline = asyncio.get_running_loop().time() + time_limit
    probes = [
        _probe_one(
            setup,
            probe_model(setup.info.name, catalogue, default),
            deadline=deadline,
            time_limit=time_limit,
            secrets=secrets,
        )
        for setup in setups
    ]
    return list(await asyncio.gather(*probes))


def _table(results: Sequence[ProbeResult]) -> list[str]:
    """The result rows as aligned text lines, with a header line first."""
    header = ("platform", "base URL", "model", "auth OK", "first token", "error")
    rows = [header] + [
        (
            r.platform,
            r.base_url,
            r.model,
            r.auth,
            "-" if r.latency_ms is None else f"{r.latency_ms} ms",
            r.error or "-",
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    return [
        "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]])
        for row in rows
    ]


async def _open_store_line(settings: Settings, setups: Sequence[PlatformSetup]) -> str | None:
    """Open the store, restore provider sessions, close it; returns the error line or None."""
    try:
        store, _embedded = await open_configured_store(settings)
    except StorageUnavailable as exc:
        return f"storage: unavailable: {redact(str(exc), *secrets_of(settings))}"
    try:
        await restore_sessions(store, {setup.info.name: setup.client for setup in setups})
    finally:
        await store.aclose()
    return None


async def _check(
    settings: Settings,
    catalogue: Catalogue,
    default: ModelInfo,
    *,
    transport: httpx.AsyncBaseTransport | None,
    out: TextIO,
    time_limit: float,
) -> int:
    """Probe the store and the platforms, print the table; returns the exit status."""
    probe_settings = settings.model_copy(
        update={
            "provider_connect_timeout": min(
                settings.provider_connect_timeout, PROBE_CONNECT_TIMEOUT
            ),
            "provider_first_token_timeout": min(
                settings.provider_first_token_timeout, PROBE_FIRST_TOKEN_TIMEOUT
            ),
        }
    )
    setups = build_platform_setups(probe_settings, transport=transport)
    try:
        storage_error = await _open_store_line(settings, setups)
        results = await probe_platforms(
            setups, catalogue, default, time_limit=time_limit, secrets=secrets_of(settings)
        )
    finally:
        for setup in setups:
            await setup.client.aclose()
    print(storage_error or f"storage: OK ({_store_kind(settings.redis_url)})", file=out)
    print("\n".join(_table(results)), file=out)
    failed = [r for r in results if r.platform == default.platform and not r.ok]
    if failed:
        print(f"FAILED: the default model's platform {default.platform!r} did not answer", file=out)
    return 1 if failed or storage_error else 0


def _store_kind(url: str) -> str:
    return "embedded, history lost at restart" if url in ("", "memory://") else "redis"


def run_check(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    out: TextIO | None = None,
    timeout: float = CHECK_TIMEOUT,
) -> int:
    """Validate ``settings`` and probe every enabled platform; print a report to ``out``
    (default: ``sys.stdout`` as it is at the call).

    Returns the exit status: 0 when the default model's platform answered, 1 when it
    (or the store) failed, 2 for a configuration error (one line). ``transport``
    (tests) replaces the network for every provider client; ``timeout`` bounds all
    probes together, in seconds. No secret is ever printed.
    """
    out = sys.stdout if out is None else out
    try:
        catalogue = build_catalogue(settings)
        default = check_default_model(settings, catalogue)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=out)
        return 2
    enabled = len(catalogue.enabled_models())
    print(f"configuration: OK ({enabled} models enabled, default {default.key})", file=out)
    return asyncio.run(
        _check(settings, catalogue, default, transport=transport, out=out, time_limit=timeout)
    )
