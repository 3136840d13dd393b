"""Tests of the platform registry: settings → enabled platforms, catalogue, clients, default."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from bot.app.platforms import (
    build_catalogue,
    build_clients,
    check_default_model,
    enabled_platforms,
)
from bot.settings import ConfigError, CustomEndpoint, Settings
from providers.openai_compat import OpenAIQuirks
from providers.registry import BUILTIN_PLATFORMS, PlatformSpec
from providers.types import AnswerDelta, ChatMessage, ChatRequest, Finish

# Real Zhipu secrets are 16 characters; pyjwt warns on HMAC keys under 32 bytes, so the
# wiring test uses a longer one (the warning is zhipu_auth's concern, not the registry's).
ZHIPU_JWT_KEY = "0123456789abcdef0123456789abcdef.SeCrEtPaRt123456SeCrEtPaRt123456"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Drop every environment variable Settings would read, so a developer's env can't leak in."""
    fields = set(Settings.model_fields)
    for name in list(os.environ):
        if name.lower() in fields:
            monkeypatch.delenv(name)


def make_settings(**values: Any) -> Settings:
    """Settings with a valid bot token, no `.env`, and ``values`` on top."""
    return Settings(_env_file=None, telegram_bot_token=SecretStr("123:abc"), **values)  # type: ignore[call-arg]


def names(settings: Settings) -> list[str]:
    """The names of the enabled platforms, in order."""
    return [config.info.name for config in enabled_platforms(settings)]


def test_nothing_enabled_without_credentials() -> None:
    """With no credentials no platform is enabled and the default-model check says so."""
    settings = make_settings()
    assert names(settings) == []
    catalogue = build_catalogue(settings)
    assert catalogue.enabled_models() == []
    assert catalogue.get("zju:deepseek-v3-671b") is None
    with pytest.raises(ConfigError, match="no model is enabled: set one of ZJU_API_KEY"):
        check_default_model(settings, catalogue)


@pytest.mark.parametrize(
    ("setting", "platform"),
    [
        ("zju_api_key", "zju"),
        ("zhipuai_api_key", "zhipu"),
        ("zai_api_key", "zai"),
        ("dashscope_api_key", "dashscope"),
        ("ustb_easy_session", "ustb"),
        ("ustb_cookie_vjuid_login", "ustb"),
    ],
)
def test_each_credential_enables_its_platform(setting: str, platform: str) -> None:
    """Setting one platform's credential enables exactly that platform and its built-ins."""
    settings = make_settings(**{setting: "credential-value-1234"})
    assert names(settings) == [platform]
    assert list(build_catalogue(settings).by_platform()) == [platform]


REGISTRY_CREDENTIALS = [
    pytest.param(spec, env, id=env) for spec in BUILTIN_PLATFORMS for env in spec.credential_envs
]


@pytest.mark.parametrize(("spec", "env"), REGISTRY_CREDENTIALS)
def test_every_registry_variable_reaches_its_platform(
    monkeypatch: pytest.MonkeyPatch, spec: PlatformSpec, env: str
) -> None:
    """Each registry row's credential variable, read from the environment, enables just that
    platform, whose base URL is the row's default or its base-URL variable."""
    monkeypatch.setenv(env, "credential-value-1234")
    (config,) = enabled_platforms(make_settings())
    assert (config.info.name, config.info.kind) == (spec.name, spec.kind)
    assert config.info.base_url == spec.default_base_url
    assert config.source == " or ".join(spec.credential_envs)
    monkeypatch.setenv(spec.base_url_env, "http://127.0.0.1:9/api/ ")
    (config,) = enabled_platforms(make_settings())
    assert config.info.base_url == "http://127.0.0.1:9/api"


def test_no_model_enabled_names_every_way_to_enable_one() -> None:
    """With nothing enabled, the error names every registry credential and both endpoint kinds."""
    settings = make_settings()
    with pytest.raises(ConfigError) as info:
        check_default_model(settings, build_catalogue(settings))
    message = str(info.value)
    assert message.startswith("no model is enabled: set one of ZJU_API_KEY, ")
    for env in [e for spec in BUILTIN_PLATFORMS for e in spec.credential_envs]:
        assert env in message
    assert message.endswith("OPENAI_BASE_URL with OPENAI_MODELS, or CUSTOM_PROVIDERS")


@pytest.mark.parametrize("spec", [pytest.param(s, id=s.name) for s in BUILTIN_PLATFORMS if s.hosts])
def test_endpoints_on_a_platforms_host_get_its_quirks(spec: PlatformSpec) -> None:
    """A custom endpoint on a registry row's host gets that row's quirks."""
    endpoint = CustomEndpoint(
        name="mirror", base_url=f"https://api.{spec.hosts[0]}/v1", models=["m"]
    )
    (config,) = enabled_platforms(make_settings(custom_providers=[endpoint]))
    assert config.quirks == spec.quirks


ONE_ROW = """
import json
from providers import registry
from providers.registry import PlatformSpec

registry.BUILTIN_PLATFORMS = (*registry.BUILTIN_PLATFORMS, PlatformSpec(
    "acme", "Acme", "openai", "https://api.acme.example/v1",
    base_url_env="ACME_BASE_URL", credential_envs=("ACME_API_KEY",)))

from bot.app.platforms import build_catalogue, check_default_model, enabled_platforms
from bot.settings import load_settings

settings = load_settings()
catalogue = build_catalogue(settings)
(config,) = enabled_platforms(settings)
print(json.dumps({
    "fields": [f for f in type(settings).model_fields if f.startswith("acme_")],
    "platform": [config.info.name, config.info.kind, config.info.base_url],
    "key": config.api_key.get_secret_value(),
    "default": check_default_model(settings, catalogue).key,
    "repr_leaks": "sk-acme-secret" in repr(settings),
}))
"""


@pytest.mark.timeout(30)
def test_one_registry_row_adds_a_platform(tmp_path: Path) -> None:
    """A new row plus its [[models]] entries is a whole platform: settings fields, enabling
    by its key, its default base URL, its models in the catalogue (a fresh process)."""
    models = tmp_path / "models.toml"
    models.write_text('[[models]]\nplatform = "acme"\nmodel = "acme-1"\n', encoding="utf-8")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
        "PYTHONPATH": str(Path(__file__).parents[2]), "TELEGRAM_BOT_TOKEN": "123:abc",
        "ACME_API_KEY": "sk-acme-secret", "MODELS_FILE": str(models),
    }  # fmt: skip
    done = subprocess.run([sys.executable, "-c", ONE_ROW], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=25, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "fields": ["acme_base_url", "acme_api_key"],
        "platform": ["acme", "openai", "https://api.acme.example/v1"],
        "key": "sk-acme-secret",
        "default": "acme:acme-1",
        "repr_leaks": False,
    }


def test_seed_platforms_come_in_display_order_with_their_base_urls() -> None:
    """All seed platforms enable in catalogue order, with base URLs from the settings."""
    settings = make_settings(
        ustb_easy_session="s" * 32,
        dashscope_api_key="k1",
        zai_api_key="k2",
        zhipuai_api_key="k3",
        zju_api_key="k4",
        zju_base_url="http://127.0.0.1:9/v1/",
    )
    configs = enabled_platforms(settings)
    assert [c.info.name for c in configs] == ["zju", "zhipu", "zai", "dashscope", "ustb"]
    assert configs[0].info.base_url == "http://127.0.0.1:9/v1"
    assert [c.info.kind for c in configs] == ["openai"] * 4 + ["ustb"]


def test_quirks_per_platform() -> None:
    """Each platform gets its documented quirks; JWT auth only for Zhipu id.secret keys."""
    settings = make_settings(
        zju_api_key="sk-zju",
        zhipuai_api_key=ZHIPU_JWT_KEY,
        zai_api_key=ZHIPU_JWT_KEY,
        dashscope_api_key="sk-ds",
        openai_base_url="http://127.0.0.1:11434/v1",
        openai_models="llama3.2",
    )
    quirks = {c.info.name: c.quirks for c in enabled_platforms(settings)}
    assert quirks["zju"] == OpenAIQuirks(stream_usage=False)
    zhipu_family = OpenAIQuirks(
        thinking="zhipu", image_format="raw_base64", clamp_sampling=True, stream_usage=False
    )
    assert quirks["zhipu"] == replace(zhipu_family, jwt_auth=True)
    assert quirks["zai"] == zhipu_family
    assert quirks["dashscope"] == OpenAIQuirks(thinking="dashscope", stream_usage=True)
    assert quirks["openai"] == OpenAIQuirks(stream_usage=True)
    plain = make_settings(zhipuai_api_key="plain-bearer-key")
    assert enabled_platforms(plain)[0].quirks.jwt_auth is False


def test_quick_start_models_carry_vision_and_reasoning_marks() -> None:
    """OPENAI_* models join the catalogue in order, marked from the vision/reasoning lists."""
    settings = make_settings(
        openai_name="ollama",
        openai_base_url="http://127.0.0.1:11434/v1",
        openai_models="llama3.2, llava:13b,deepseek-r1:8b",
        openai_vision_models="llava:13b",
        openai_reasoning_models="deepseek-r1:8b",
    )
    models = build_catalogue(settings).by_platform()["ollama"]
    assert [(m.key, m.vision, m.reasoning) for m in models] == [
        ("ollama:llama3.2", False, False),
        ("ollama:llava:13b", True, False),
        ("ollama:deepseek-r1:8b", False, True),
    ]
    assert check_default_model(settings, build_catalogue(settings)).key == "ollama:llama3.2"
    assert enabled_platforms(settings)[0].api_key.get_secret_value() == ""


def test_quick_start_without_models_is_a_config_error() -> None:
    """OPENAI_BASE_URL without OPENAI_MODELS is refused with a one-line hint."""
    with pytest.raises(ConfigError, match="OPENAI_MODELS is empty"):
        enabled_platforms(make_settings(openai_base_url="http://127.0.0.1:8000/v1"))


def test_custom_providers_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """CUSTOM_PROVIDERS JSON enables each endpoint; a DeepSeek host gets the deepseek quirk."""
    endpoints = [
        {
            "name": "deepseek",
            "base_url": "https://api.deepseek.com",
            "api_key": "sk-deepseek-secret",
            "models": ["deepseek-chat"],
            "reasoning_models": ["deepseek-reasoner"],
        },
        {"name": "vllm", "base_url": "http://127.0.0.1:8000/v1", "models": ["qwen3-8b"]},
    ]
    monkeypatch.setenv("CUSTOM_PROVIDERS", json.dumps(endpoints))
    settings = make_settings()
    configs = enabled_platforms(settings)
    assert [c.info.name for c in configs] == ["deepseek", "vllm"]
    assert configs[0].quirks == OpenAIQuirks(thinking="deepseek", stream_usage=True)
    assert configs[1].quirks == OpenAIQuirks(stream_usage=True)
    catalogue = build_catalogue(settings)
    assert catalogue.resolve("deepseek-reasoner").reasoning
    assert [m.key for m in catalogue.enabled_models()] == [
        "deepseek:deepseek-chat",
        "deepseek:deepseek-reasoner",
        "vllm:qwen3-8b",
    ]


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ({"name": "zju", "models": ["m"]}, "taken by a built-in platform"),
        ({"name": "my provider", "models": ["m"]}, "must be letters, digits"),
        ({"name": "x", "base_url": "ftp://host/v1", "models": ["m"]}, "http:// or https://"),
        ({"name": "x", "models": []}, "no models listed"),
        ({"name": "openai", "models": ["m"]}, "'openai' is used twice"),
    ],
)
def test_invalid_custom_endpoints_are_config_errors(endpoint: dict[str, Any], message: str) -> None:
    """A bad custom endpoint raises a one-line ConfigError naming it and never its key."""
    fields = {"base_url": "http://127.0.0.1:1/v1", "api_key": "sk-never-shown-123", **endpoint}
    settings = make_settings(
        openai_base_url="http://127.0.0.1:2/v1",
        openai_models="m",
        custom_providers=[CustomEndpoint(**fields)],
    )
    with pytest.raises(ConfigError, match=message) as info:
        enabled_platforms(settings)
    assert "CUSTOM_PROVIDERS entry 1" in str(info.value)
    assert "sk-never-shown" not in str(info.value)


def test_secrets_stay_out_of_reprs() -> None:
    """The repr of the enabled platforms never shows a key or cookie."""
    settings = make_settings(zhipuai_api_key=ZHIPU_JWT_KEY, ustb_easy_session="e" * 32)
    text = repr(enabled_platforms(settings))
    assert "SeCrEtPaRt" not in text and "e" * 32 not in text


def test_models_file_extends_overrides_and_removes(tmp_path: Path) -> None:
    """MODELS_FILE entries apply on top of built-ins and endpoint models."""
    path = tmp_path / "models.toml"
    path.write_text(
        '[[models]]\nplatform = "zju"\nmodel = "QwQ-32B"\nremove = true\n'
        '[[models]]\nplatform = "zju"\nmodel = "deepseek-v3-671b"\ncontext_window = 131072\n'
        '[[models]]\nplatform = "mine"\nmodel = "m1"\ndisplay_name = "Mine One"\nvision = true\n',
        encoding="utf-8",
    )
    endpoint = CustomEndpoint(name="mine", base_url="http://127.0.0.1:1/v1", models=["m1"])
    settings = make_settings(zju_api_key="k", custom_providers=[endpoint], models_file=path)
    catalogue = build_catalogue(settings)
    assert catalogue.get("zju:QwQ-32B") is None
    assert catalogue.resolve("deepseek-v3-671b").context_window == 131072
    mine = catalogue.resolve("m1")
    assert (mine.display_name, mine.vision) == ("Mine One", True)


def test_bad_models_file_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    """An invalid MODELS_FILE, or one naming an unconfigured platform, fails with its path."""
    path = tmp_path / "models.toml"
    path.write_text("[[models]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="invalid TOML") as info:
        build_catalogue(make_settings(zju_api_key="k", models_file=path))
    assert str(path) in str(info.value)
    path.write_text('[[models]]\nplatform = "nowhere"\nmodel = "m"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown platform 'nowhere'"):
        build_catalogue(make_settings(zju_api_key="k", models_file=path))


def test_default_model_resolves_a_key_or_a_unique_bare_id() -> None:
    """DEFAULT_MODEL may be a key or a bare id; empty means the first enabled model."""
    base = {"zju_api_key": "k", "dashscope_api_key": "k"}
    for name, key in [
        ("", "zju:deepseek-v3-671b"),
        ("dashscope:qwen-max", "dashscope:qwen-max"),
        ("qwen3-235b-a22b", "dashscope:qwen3-235b-a22b"),
    ]:
        settings = make_settings(default_model=name, **base)
        assert check_default_model(settings, build_catalogue(settings)).key == key


def test_default_model_ambiguous_between_zhipu_and_zai() -> None:
    """A bare id served by both Zhipu and Z.ai is refused, naming both keys."""
    settings = make_settings(zhipuai_api_key="k", zai_api_key="k", default_model="glm-4.5")
    with pytest.raises(ConfigError, match=re.escape("zhipu:glm-4.5, zai:glm-4.5")) as info:
        check_default_model(settings, build_catalogue(settings))
    assert str(info.value).startswith("DEFAULT_MODEL is invalid: ")


def test_default_model_of_a_disabled_platform_names_the_credential() -> None:
    """A DEFAULT_MODEL whose platform has no credentials says which variable(s) to set."""
    settings = make_settings(zju_api_key="k", default_model="qwen-plus")
    with pytest.raises(ConfigError, match=r"not enabled .*set DASHSCOPE_API_KEY$"):
        check_default_model(settings, build_catalogue(settings))
    settings = make_settings(zju_api_key="k", default_model="ustb:DeepSeek")
    with pytest.raises(ConfigError, match=r"set USTB_EASY_SESSION or USTB_COOKIE_VJUID_LOGIN$"):
        check_default_model(settings, build_catalogue(settings))


def test_unknown_default_model_lists_close_matches() -> None:
    """An unknown DEFAULT_MODEL lists close matches among enabled models in one line."""
    settings = make_settings(zju_api_key="k", default_model="deepseek-v3")
    with pytest.raises(ConfigError, match=r"close matches: .*zju:deepseek-v3-671b") as info:
        check_default_model(settings, build_catalogue(settings))
    assert "\n" not in str(info.value)


class Recorder:
    """A fake network edge: records requests and answers each with a canned response."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path.endswith("/compose_chat"):
            body = b'data: {"e":0,"m":"","d":{"answer":"hi"}}\n\n'
        else:
            chunk = {"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]}
            body = b"data: " + json.dumps(chunk).encode() + b"\n\ndata: [DONE]\n\n"
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})


async def collect(client: Any, model: str) -> list[Any]:
    """Stream one short request through ``client`` and return its chunks."""
    request = ChatRequest(model=model, messages=(ChatMessage("user", "hello"),))
    return [chunk async for chunk in client.stream_chat(request)]


@pytest.mark.timeout(10)
async def test_clients_reach_their_platforms_through_the_transport() -> None:
    """build_clients wires each platform's URL, auth and timeouts to a working client."""
    recorder = Recorder()
    settings = make_settings(
        zju_api_key="sk-zju-key-1234",
        zhipuai_api_key=ZHIPU_JWT_KEY,
        ustb_easy_session="u" * 32,
        provider_first_token_timeout=7.0,
    )
    clients = build_clients(settings, transport=httpx.MockTransport(recorder))
    try:
        assert list(clients) == ["zju", "zhipu", "ustb"]
        for name, model in [("zju", "deepseek-v3-671b"), ("zhipu", "glm-4-flash")]:
            assert await collect(clients[name], model) == [AnswerDelta("hi"), Finish("stop")]
        assert AnswerDelta("hi") in await collect(clients["ustb"], "DeepSeek")
    finally:
        for client in clients.values():
            await client.aclose()
    zju, zhipu, ustb = recorder.requests
    assert str(zju.url) == "https://chat.zju.edu.cn/api/ai/v1/chat/completions"
    assert zju.headers["authorization"] == "Bearer sk-zju-key-1234"
    assert "stream_options" not in json.loads(zju.content)
    assert str(zhipu.url) == "https://open.bigmodel.cn/api/paas/v4/chat/completions"
    assert ZHIPU_JWT_KEY not in zhipu.headers["authorization"]  # a JWT, not the key
    assert str(ustb.url) == "http://chat.ustb.edu.cn/site/ai/compose_chat"
    assert "easy_session=" + "u" * 32 in ustb.headers["cookie"]
    assert getattr(clients["zju"], "first_token_timeout", None) == 7.0
