"""The built-in platform registry: one row per platform the bot knows by name.

Each :class:`PlatformSpec` row gives a platform's catalogue name, display name, wire
kind (``"openai"``: :class:`~providers.openai_compat.OpenAICompatClient`; ``"ustb"``:
:class:`~providers.ustb.USTBClient`), default base URL, the environment variables of
its base URL and credentials, its :class:`~providers.openai_compat.OpenAIQuirks`, and
the hosts whose custom endpoints get the same quirks. Everything else is derived
from :data:`BUILTIN_PLATFORMS`:

- the settings fields (``bot.settings``: one ``str`` field per base-URL variable with the
  default base URL, one ``SecretStr`` field per credential variable, named as the
  variable lower-cased);
- the catalogue's platform list (:data:`providers.catalogue.BUILTIN_PLATFORMS`) and the
  platforms that ``models.toml`` entries may name;
- which platforms are enabled (``bot.app.platforms``: any credential variable set), the
  clients built for them, and the "set one of …" hints of ``python -m bot`` and
  ``python -m bot check`` (:func:`enable_hint`, :func:`credential_hint`);
- the quirks of custom endpoints on a known host (:data:`HOST_QUIRKS`).

Adding an OpenAI-compatible platform is one row here plus its ``[[models]]`` entries in
``providers/models.toml`` (and, for operators, its lines in ``.env.example`` and the
README's table; a test checks that ``.env.example`` names every setting).

Besides the rows, two kinds of endpoint are configured by the operator, not listed here:
the quick-start endpoint (``OPENAI_BASE_URL`` with ``OPENAI_MODELS``, named by
``OPENAI_NAME``) and ``CUSTOM_PROVIDERS``; both use :data:`STANDARD_QUIRKS` unless their
host is in :data:`HOST_QUIRKS`.

Quirk facts come from docs/providers.md ("OpenAI-compatible family", "Zhipu details") and the
platforms' SDKs; the reason for each departure is written next to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from providers.openai_compat import OpenAIQuirks

__all__ = [
    "BUILTIN_PLATFORMS",
    "CUSTOM_ENDPOINTS_ENV",
    "HOST_QUIRKS",
    "PLATFORM_QUIRKS",
    "QUICK_START_ENV",
    "STANDARD_QUIRKS",
    "PlatformSpec",
    "credential_hint",
    "enable_hint",
    "spec_of",
]

WireKind = Literal["openai", "ustb"]

STANDARD_QUIRKS = OpenAIQuirks()
"""Plain OpenAI chat completions: the quick-start and custom endpoints on unknown hosts."""


@dataclass(frozen=True)
class PlatformSpec:
    """One built-in platform.

    ``name`` is the catalogue key prefix (``"zhipu"`` in ``"zhipu:glm-4-flash"``);
    ``kind`` the wire protocol; ``default_base_url`` the API root used when
    ``base_url_env`` is unset. ``credential_envs`` are the variables that carry its
    credentials, any one of which enables the platform: for ``kind="openai"`` exactly
    one, the API key (sent as ``Authorization: Bearer``, or signed into a JWT when
    ``quirks.jwt_auth`` and the key is ``id.secret`` shaped); for ``kind="ustb"`` the
    ``easy_session`` and ``vjuid_login`` cookies, in that order. ``hosts`` are host
    suffixes (``"bigmodel.cn"``): a custom endpoint there gets this row's ``quirks``.
    """

    name: str
    display_name: str
    kind: WireKind
    default_base_url: str
    base_url_env: str
    credential_envs: tuple[str, ...]
    quirks: OpenAIQuirks = STANDARD_QUIRKS
    hosts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        wanted = 1 if self.kind == "openai" else 2
        if len(self.credential_envs) != wanted:
            raise ValueError(f"{self.name}: a {self.kind} platform has {wanted} credential(s)")


_ZHIPU_FAMILY = OpenAIQuirks(
    thinking="zhipu", image_format="raw_base64", clamp_sampling=True,
    stream_usage=False,  # Zhipu and Z.ai send usage on their last chunk anyway
)  # fmt: skip
"""Zhipu's SDK (thinking, raw base64 images, sampling clamp), which Z.ai shares."""

BUILTIN_PLATFORMS: tuple[PlatformSpec, ...] = (
    PlatformSpec(
        "zju", "ZJU", "openai", "https://chat.zju.edu.cn/api/ai/v1",
        base_url_env="ZJU_BASE_URL", credential_envs=("ZJU_API_KEY",),
        # Whether ZJU's gateway accepts stream_options is unknown (docs/providers.md); not
        # sending it is the tolerant choice: the decoder takes usage wherever it arrives.
        quirks=OpenAIQuirks(stream_usage=False),
    ),
    PlatformSpec(
        "zhipu", "Zhipu (bigmodel.cn)", "openai", "https://open.bigmodel.cn/api/paas/v4",
        base_url_env="ZHIPUAI_BASE_URL", credential_envs=("ZHIPUAI_API_KEY",),
        # jwt_auth: a legacy ``id.secret`` key signs a JWT; any other key goes as Bearer.
        quirks=replace(_ZHIPU_FAMILY, jwt_auth=True),
        hosts=("bigmodel.cn",),
    ),
    PlatformSpec(
        "zai", "Z.ai", "openai", "https://api.z.ai/api/paas/v4",
        base_url_env="ZAI_BASE_URL", credential_envs=("ZAI_API_KEY",),
        quirks=_ZHIPU_FAMILY,
        hosts=("z.ai",),
    ),
    PlatformSpec(
        "dashscope", "DashScope", "openai", "https://dashscope.aliyuncs.com/compatible-mode/v1",
        base_url_env="DASHSCOPE_BASE_URL", credential_envs=("DASHSCOPE_API_KEY",),
        quirks=OpenAIQuirks(thinking="dashscope"),
        hosts=("aliyuncs.com",),
    ),
    PlatformSpec(
        "ustb", "USTB", "ustb", "http://chat.ustb.edu.cn",
        base_url_env="USTB_BASE_URL",
        credential_envs=("USTB_EASY_SESSION", "USTB_COOKIE_VJUID_LOGIN"),
    ),
)  # fmt: skip
"""The built-in platforms in display (and default-model) order."""

_DEEPSEEK_QUIRKS = OpenAIQuirks(thinking="deepseek")
"""DeepSeek ("Thinking Mode" guide): not a built-in platform, but a known custom host."""

HOST_QUIRKS: Mapping[str, OpenAIQuirks] = {
    "deepseek.com": _DEEPSEEK_QUIRKS,
    **{host: spec.quirks for spec in BUILTIN_PLATFORMS for host in spec.hosts},
}
"""Host suffix → the quirks of a custom endpoint whose host is it or ends in ``.<suffix>``."""

PLATFORM_QUIRKS: Mapping[str, OpenAIQuirks] = {
    "openai": STANDARD_QUIRKS,
    **{spec.name: spec.quirks for spec in BUILTIN_PLATFORMS},
    "deepseek": _DEEPSEEK_QUIRKS,
}
"""Known platforms' quirks by name. No platform gets ``user_field``: Telegram user ids
are not sent to providers unless a deployment opts in."""

QUICK_START_ENV = "OPENAI_BASE_URL with OPENAI_MODELS"
"""What enables the quick-start endpoint, for hints."""
CUSTOM_ENDPOINTS_ENV = "CUSTOM_PROVIDERS"
"""The variable that lists custom endpoints, for hints."""


def spec_of(name: str) -> PlatformSpec | None:
    """The built-in platform called ``name``, or ``None``."""
    return next((spec for spec in BUILTIN_PLATFORMS if spec.name == name), None)


def credential_hint(spec: PlatformSpec) -> str:
    """The variables that enable ``spec``, for a message: ``"USTB_EASY_SESSION or …"``."""
    return " or ".join(spec.credential_envs)


def enable_hint() -> str:
    """Every way to enable a platform, for a message: ``"ZJU_API_KEY, …, or CUSTOM_PROVIDERS"``."""
    ways = [credential_hint(spec) for spec in BUILTIN_PLATFORMS] + [QUICK_START_ENV]
    return ", ".join(ways) + f", or {CUSTOM_ENDPOINTS_ENV}"
