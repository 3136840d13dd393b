"""Settings in; enabled platforms, catalogue and provider clients out.

The built-in platforms are the rows of :data:`providers.registry.BUILTIN_PLATFORMS`
(ZJU, Zhipu, Z.ai, DashScope, USTB, in that order): each row names its credential and
base-URL variables, its default base URL, wire kind and quirks, and this module reads
nothing about a built-in platform from anywhere else. A platform is enabled when any of
its credential variables is set:

- ``zju`` by ``ZJU_API_KEY``: ``stream_usage`` off.
- ``zhipu`` by ``ZHIPUAI_API_KEY``: thinking ``zhipu``, raw base64 images, clamped
  sampling, ``stream_usage`` off, JWT auth when the key is ``id.secret`` shaped.
- ``zai`` by ``ZAI_API_KEY``: as Zhipu, always Bearer auth.
- ``dashscope`` by ``DASHSCOPE_API_KEY``: thinking ``dashscope``, ``stream_usage`` on.
- ``ustb`` by ``USTB_EASY_SESSION`` or ``USTB_COOKIE_VJUID_LOGIN``: the USTB client.

Then the endpoints the operator configures:

- ``OPENAI_NAME`` (default ``openai``) by ``OPENAI_BASE_URL`` with ``OPENAI_MODELS``
  (the key may be empty: Ollama, vLLM): standard quirks, ``stream_usage`` on.
- each ``CUSTOM_PROVIDERS`` entry: standard quirks, ``stream_usage`` on.

An endpoint whose host is a known platform's (:data:`providers.registry.HOST_QUIRKS`:
``api.deepseek.com``, ``bigmodel.cn``, ``z.ai``, ``aliyuncs.com``) gets that platform's
thinking and image quirks.

When ``DEFAULT_MODEL`` is empty, the default is the first enabled model in catalogue
order: built-in platforms in registry order, then the quick-start endpoint, then
custom endpoints, each platform's models in their listed order. With no platform
enabled, the error names every way to enable one (:func:`providers.registry.enable_hint`).

Nothing here logs a secret or puts one in an exception.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from bot.settings import ConfigError, CustomEndpoint, Settings
from providers import registry
from providers.base import ChatClient
from providers.catalogue import (
    Catalogue,
    CatalogueEntry,
    CatalogueError,
    ModelInfo,
    PlatformInfo,
    UnknownModelError,
    builtin_entries,
    load_catalogue_file,
)
from providers.openai_compat import OpenAIQuirks
from providers.registry import PlatformSpec, credential_hint
from providers.zhipu_auth import is_jwt_key

__all__ = [
    "PlatformConfig",
    "PlatformSetup",
    "build_catalogue",
    "build_clients",
    "build_platform_setups",
    "check_default_model",
    "enabled_platforms",
]


_NO_SECRET = SecretStr("")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class PlatformConfig:
    """An enabled platform: what it is, its credentials, client quirks, declared models.

    Credentials stay ``SecretStr`` until a client is built. ``models`` holds the
    entries an endpoint declares (``OPENAI_MODELS``, a custom endpoint's lists);
    ``source`` names the setting that enabled the platform, for error messages.
    """

    info: PlatformInfo
    source: str
    api_key: SecretStr = _NO_SECRET
    easy_session: SecretStr = _NO_SECRET
    cookie_vjuid_login: SecretStr = _NO_SECRET
    quirks: OpenAIQuirks = registry.STANDARD_QUIRKS
    models: tuple[CatalogueEntry, ...] = ()


@dataclass
class PlatformSetup:
    """An enabled platform and its provider client."""

    info: PlatformInfo
    client: ChatClient


def _builtin_platforms(settings: Settings) -> dict[str, PlatformInfo]:
    """The built-in platforms in display order, with the base URLs from ``settings``."""
    return {
        spec.name: PlatformInfo(
            spec.name, spec.display_name, spec.kind, settings.base_url_of(spec).strip().rstrip("/")
        )
        for spec in registry.BUILTIN_PLATFORMS
    }


def _builtin_config(spec: PlatformSpec, info: PlatformInfo, settings: Settings) -> PlatformConfig:
    """``spec`` as configured in ``settings``: its credentials by wire kind, its quirks."""
    credentials = settings.credentials_of(spec)
    source = credential_hint(spec)
    if spec.kind == "ustb":
        session, sso = credentials
        return PlatformConfig(info, source, easy_session=session, cookie_vjuid_login=sso)
    (key,) = credentials
    quirks = spec.quirks
    if quirks.jwt_auth:  # the client signs a JWT only for id.secret keys; say which
        quirks = replace(quirks, jwt_auth=is_jwt_key(key.get_secret_value()))
    return PlatformConfig(info, source, api_key=key, quirks=quirks)


def _builtin_configs(settings: Settings) -> list[PlatformConfig]:
    """The built-in platforms with any credential set, in display order."""
    platforms = _builtin_platforms(settings)
    return [
        _builtin_config(spec, platforms[spec.name], settings)
        for spec in registry.BUILTIN_PLATFORMS
        if any(value.get_secret_value() for value in settings.credentials_of(spec))
    ]


def _endpoint_quirks(base_url: str) -> OpenAIQuirks:
    """Standard quirks, or a known platform's when the endpoint's host belongs to it."""
    host = (urlsplit(base_url).hostname or "").lower()
    for suffix, quirks in registry.HOST_QUIRKS.items():
        if host == suffix or host.endswith("." + suffix):
            return quirks
    return registry.STANDARD_QUIRKS


def _endpoint_config(endpoint: CustomEndpoint, *, source: str) -> PlatformConfig:
    """Check one OpenAI-compatible endpoint and describe it; raise ``ConfigError`` if invalid."""
    name = endpoint.name.strip()
    if not _NAME.fullmatch(name):
        raise ConfigError(f"{source}: name {name!r} must be letters, digits, '-', '_' or '.'")
    if registry.spec_of(name.casefold()) is not None:
        raise ConfigError(f"{source}: name {name!r} is taken by a built-in platform")
    base_url = endpoint.base_url.strip().rstrip("/")
    if urlsplit(base_url).scheme not in ("http", "https") or not urlsplit(base_url).hostname:
        raise ConfigError(f"{source}: base_url must be an http:// or https:// URL")
    vision = {m.strip() for m in endpoint.vision_models}
    reasoning = {m.strip() for m in endpoint.reasoning_models}
    ids = dict.fromkeys(
        m.strip() for m in [*endpoint.models, *endpoint.vision_models, *endpoint.reasoning_models]
    )
    entries = tuple(
        CatalogueEntry(
            name, model, where=source, vision=model in vision, reasoning=model in reasoning
        )
        for model in ids
        if model
    )
    if not entries:
        raise ConfigError(f"{source}: no models listed (the endpoint serves which models?)")
    info = PlatformInfo(name, name, "openai", base_url)
    quirks = _endpoint_quirks(base_url)
    return PlatformConfig(info, source, api_key=endpoint.api_key, quirks=quirks, models=entries)


def _endpoint_configs(settings: Settings) -> list[PlatformConfig]:
    """The quick-start endpoint (when ``OPENAI_BASE_URL`` is set) and every custom endpoint."""
    configs = []
    if settings.openai_base_url.strip():
        if not settings.openai_models:
            raise ConfigError(
                "OPENAI_BASE_URL is set but OPENAI_MODELS is empty: list the model ids it serves"
            )
        quick_start = CustomEndpoint(
            name=settings.openai_name,
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key,
            models=settings.openai_models,
            vision_models=settings.openai_vision_models,
            reasoning_models=settings.openai_reasoning_models,
        )
        configs.append(_endpoint_config(quick_start, source="the OPENAI_* quick-start endpoint"))
    for index, endpoint in enumerate(settings.custom_providers, 1):
        source = f"CUSTOM_PROVIDERS entry {index} ({endpoint.name.strip()!r})"
        configs.append(_endpoint_config(endpoint, source=source))
    seen: set[str] = set()
    for config in configs:
        folded = config.info.name.casefold()
        if folded in seen:
            raise ConfigError(f"{config.source}: platform name {config.info.name!r} is used twice")
        seen.add(folded)
    return configs


def enabled_platforms(settings: Settings) -> list[PlatformConfig]:
    """Every enabled platform in catalogue order: seed platforms, quick-start, custom.

    Raises ``ConfigError`` (one line, no secret) for an invalid endpoint: a bad or
    duplicate name, a base URL that is not http(s), or an empty model list.
    """
    return [*_builtin_configs(settings), *_endpoint_configs(settings)]


def _catalogue_for(configs: Iterable[PlatformConfig], settings: Settings) -> Catalogue:
    """Built-ins, then endpoint-declared models, then ``MODELS_FILE``, for these platforms;
    ``MAX_TOKENS`` for the models that name no ``max_tokens``."""
    configs = list(configs)
    builtin = _builtin_platforms(settings)
    platforms = [*builtin.values(), *(c.info for c in configs if c.info.name not in builtin)]
    enabled = [c.info.name for c in configs]
    catalogue = Catalogue(platforms, enabled=enabled).apply(builtin_entries())
    catalogue = catalogue.apply(entry for c in configs for entry in c.models)
    if settings.models_file is not None:
        catalogue = catalogue.apply(load_catalogue_file(settings.models_file))
    return catalogue.with_default_max_tokens(settings.max_tokens)


def build_catalogue(settings: Settings) -> Catalogue:
    """The model catalogue for ``settings``: every built-in model (enabled or not) plus
    the models that endpoints declare, with ``MODELS_FILE`` applied on top.

    Raises ``ConfigError`` with one line naming the setting, or the file and entry.
    """
    configs = enabled_platforms(settings)
    try:
        return _catalogue_for(configs, settings)
    except CatalogueError as exc:
        raise ConfigError(f"MODELS_FILE {exc}") from None


def _make_client(
    config: PlatformConfig, settings: Settings, transport: httpx.AsyncBaseTransport | None
) -> ChatClient:
    """One provider client for ``config``; the client modules are imported only here."""
    info = config.info
    if info.kind == "ustb":
        from providers.ustb import USTBClient

        return USTBClient(
            info.name,
            base_url=info.base_url,
            easy_session=config.easy_session.get_secret_value(),
            cookie_vjuid_login=config.cookie_vjuid_login.get_secret_value(),
            connect_timeout=settings.provider_connect_timeout,
            first_token_timeout=settings.provider_first_token_timeout,
            idle_timeout=settings.provider_idle_timeout,
            transport=transport,
        )
    from providers.openai_compat import OpenAICompatClient

    return OpenAICompatClient(
        info.name,
        base_url=info.base_url,
        api_key=config.api_key.get_secret_value(),
        quirks=config.quirks,
        connect_timeout=settings.provider_connect_timeout,
        first_token_timeout=settings.provider_first_token_timeout,
        idle_timeout=settings.provider_idle_timeout,
        transport=transport,
    )


def build_platform_setups(
    settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
) -> list[PlatformSetup]:
    """A client for every enabled platform, in catalogue order.

    ``transport`` (tests) replaces the network for every client. The caller owns
    the clients and closes them with ``aclose()``. Raises ``ConfigError`` as
    :func:`enabled_platforms` does.
    """
    return [
        PlatformSetup(config.info, _make_client(config, settings, transport))
        for config in enabled_platforms(settings)
    ]


def build_clients(
    settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
) -> dict[str, ChatClient]:
    """Platform name → provider client for every enabled platform.

    See :func:`build_platform_setups` for ``transport``, ownership and errors.
    """
    return {s.info.name: s.client for s in build_platform_setups(settings, transport=transport)}


def check_default_model(settings: Settings, catalogue: Catalogue) -> ModelInfo:
    """The model new conversations use: ``DEFAULT_MODEL`` resolved, or the first enabled model.

    ``DEFAULT_MODEL`` may be a key (``zju:deepseek-v3-671b``) or a bare model id that
    only one enabled platform serves. Raises ``ConfigError`` (one line) when no model
    is enabled, or when ``DEFAULT_MODEL`` is unknown, ambiguous or not enabled.
    """
    name = settings.default_model.strip()
    if not name:
        enabled = catalogue.enabled_models()
        if not enabled:
            raise ConfigError(f"no model is enabled: set one of {registry.enable_hint()}")
        return enabled[0]
    try:
        return catalogue.resolve(name)
    except UnknownModelError as exc:
        hint = ""
        if exc.reason == "disabled":
            platforms = dict.fromkeys(key.partition(":")[0] for key in exc.candidates)
            needed = [credential_hint(spec) for p in platforms if (spec := registry.spec_of(p))]
            hint = f"; set {' / '.join(needed)}" if needed else ""
        raise ConfigError(f"DEFAULT_MODEL is invalid: {exc}{hint}") from None
