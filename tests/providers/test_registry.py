"""The platform registry's rows are consistent with each other and with models.toml."""

from __future__ import annotations

import pytest

from providers.catalogue import BUILTIN_PLATFORMS as CATALOGUE_PLATFORMS
from providers.catalogue import builtin_entries
from providers.registry import (
    BUILTIN_PLATFORMS,
    HOST_QUIRKS,
    PlatformSpec,
    credential_hint,
    enable_hint,
    spec_of,
)


def test_names_and_variables_are_unique() -> None:
    """No two rows share a platform name or an environment variable (a settings field each)."""
    names = [spec.name for spec in BUILTIN_PLATFORMS]
    envs = [e for spec in BUILTIN_PLATFORMS for e in (spec.base_url_env, *spec.credential_envs)]
    assert len(set(names)) == len(names)
    assert len(set(envs)) == len(envs)


def test_every_row_has_models_and_every_model_a_row() -> None:
    """models.toml names only registry platforms, and each row ships at least one model."""
    platforms = {entry.platform for entry in builtin_entries()}
    assert platforms == {spec.name for spec in BUILTIN_PLATFORMS}


def test_the_catalogue_lists_the_rows_in_order() -> None:
    """The catalogue's built-in platforms are the rows, in order, with their defaults."""
    assert [(p.name, p.kind, p.base_url) for p in CATALOGUE_PLATFORMS.values()] == [
        (spec.name, spec.kind, spec.default_base_url) for spec in BUILTIN_PLATFORMS
    ]


def test_a_row_has_the_credentials_of_its_wire_kind() -> None:
    """An OpenAI-compatible row takes one key variable; a USTB row its two cookie variables."""
    with pytest.raises(ValueError, match="openai platform has 1 credential"):
        PlatformSpec("x", "X", "openai", "https://x.example/v1", base_url_env="X_BASE_URL",
                     credential_envs=("X_KEY", "X_OTHER"))  # fmt: skip
    with pytest.raises(ValueError, match="ustb platform has 2 credential"):
        PlatformSpec("y", "Y", "ustb", "http://y.example", base_url_env="Y_BASE_URL",
                     credential_envs=("Y_SESSION",))  # fmt: skip


def test_hints_name_the_variables() -> None:
    """The hints join a row's variables with "or" and list every way to enable a platform."""
    ustb = spec_of("ustb")
    assert ustb is not None
    assert credential_hint(ustb) == "USTB_EASY_SESSION or USTB_COOKIE_VJUID_LOGIN"
    assert enable_hint() == (
        "ZJU_API_KEY, ZHIPUAI_API_KEY, ZAI_API_KEY, DASHSCOPE_API_KEY, "
        "USTB_EASY_SESSION or USTB_COOKIE_VJUID_LOGIN, OPENAI_BASE_URL with OPENAI_MODELS, "
        "or CUSTOM_PROVIDERS"
    )
    assert spec_of("nowhere") is None


def test_known_hosts() -> None:
    """DeepSeek's host and the rows' hosts carry quirks; Zhipu's host signs JWTs as Zhipu does."""
    assert set(HOST_QUIRKS) == {"deepseek.com", "bigmodel.cn", "z.ai", "aliyuncs.com"}
    assert HOST_QUIRKS["deepseek.com"].thinking == "deepseek"
    assert HOST_QUIRKS["bigmodel.cn"].jwt_auth and not HOST_QUIRKS["z.ai"].jwt_auth
