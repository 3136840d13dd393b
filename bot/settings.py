"""The bot's one settings object, read from the environment and `.env`.

This is the only module that reads the environment. Secrets are ``SecretStr`` so
that they never show in a repr, a log line or an error message.

The built-in platforms' fields are not written out here: they come from
:data:`providers.registry.BUILTIN_PLATFORMS`, one ``str`` field per base-URL variable
(default: the row's base URL) and one ``SecretStr`` field per credential variable
(default empty), each named as its variable lower-cased (``ZJU_API_KEY`` →
``zju_api_key``). Read them with :meth:`Settings.base_url_of` and
:meth:`Settings.credentials_of`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from providers.registry import BUILTIN_PLATFORMS, PlatformSpec

__all__ = ["ConfigError", "CustomEndpoint", "Settings", "load_settings"]

_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
"""setWebhook ``secret_token``: 1-256 characters A-Z, a-z, 0-9, _ and - (Bot API)."""


class ConfigError(Exception):
    """The configuration is missing or invalid; ``str(err)`` is one line for the operator."""


class CustomEndpoint(BaseModel):
    """One extra OpenAI-compatible endpoint (DeepSeek, OpenAI, vLLM, Ollama, …)."""

    name: str
    base_url: str
    api_key: SecretStr = SecretStr("")
    models: list[str]
    vision_models: list[str] = []
    reasoning_models: list[str] = []


def _split_list(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


CommaList = Annotated[list[str], NoDecode]

_POSITIVE = re.compile(r"[0-9]*[1-9][0-9]*")
"""A positive integer written in ASCII digits."""


def _telegram_ids(value: Any, *, chats: bool) -> Any:
    """``value`` (a comma-separated string, or a list) as a list of int Telegram ids.

    User ids are positive; group, supergroup and channel ids negative (Bot API ``Chat.id``;
    a private chat's id is its user's id). Raises ``ValueError`` naming the first item that
    is not such an id, with how to find the right one. Anything else passes through for
    pydantic to refuse.
    """
    items = _split_list(value)
    if not isinstance(items, list):
        return items
    ids: list[int] = []
    for item in items:
        text = str(item).strip()
        negative = text.startswith("-") and bool(_POSITIVE.fullmatch(text[1:]))
        if not (negative or _POSITIVE.fullmatch(text)):
            if chats:
                raise ValueError(
                    f"{text!r} is not a numeric Telegram chat id (group and channel ids are "
                    "negative, e.g. -1001234567890; the bot logs the id of each group it "
                    "does not serve)"
                )
            raise ValueError(
                f"{text!r} is not a numeric Telegram user id (a user outside "
                "ALLOWED_USER_IDS who sends /start to the bot is told theirs)"
            )
        if chats and not negative:
            raise ValueError(
                f"{text!r} is a user's id: group and channel ids are negative "
                "(put users in ALLOWED_USER_IDS)"
            )
        if not chats and negative:
            raise ValueError(
                f"{text!r} is a group's or channel's id, not a user's "
                "(put chats in ALLOWED_CHAT_IDS)"
            )
        ids.append(int(text))
    return ids


def _platform_fields() -> dict[str, Any]:
    """Field name → ``(type, default)`` for every built-in platform's variables."""
    fields: dict[str, Any] = {}
    for spec in BUILTIN_PLATFORMS:
        fields[spec.base_url_env.lower()] = (str, spec.default_base_url)
        for env in spec.credential_envs:
            fields[env.lower()] = (SecretStr, SecretStr(""))
    return fields


if TYPE_CHECKING:  # the fields are made at run time; mypy sees the base class
    _PlatformSettings = BaseSettings
else:
    _PlatformSettings = create_model(
        "_PlatformSettings", __base__=BaseSettings, **_platform_fields()
    )


class Settings(_PlatformSettings):
    """Every setting of the bot; environment variable names are the field names upper-cased.

    The built-in platforms' fields come first (see the module docstring).
    """

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # Telegram
    telegram_bot_token: SecretStr
    telegram_base_url: str = "https://api.telegram.org/bot"
    telegram_base_file_url: str = "https://api.telegram.org/file/bot"
    # Access (handlers.access): numeric ids, comma-separated. ALLOWED_USER_IDS: who may use
    # the bot in private chats (and in groups while ALLOWED_CHAT_IDS is empty); empty:
    # everyone. ADMIN_USER_IDS: the bot's operators (bot-wide /stats), always let in.
    # ALLOWED_CHAT_IDS: the groups, supergroups and channels it works in (negative ids);
    # empty: all. UNLISTED_CHAT_ACTION: in any other, stay silent or leave.
    allowed_user_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    admin_user_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    allowed_chat_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    unlisted_chat_action: Literal["ignore", "leave"] = "ignore"

    # Storage
    redis_url: str = "memory://"
    history_max_turns: int = Field(20, ge=1, le=500)
    history_max_tokens: int = Field(12000, ge=256)
    history_ttl_seconds: int = Field(30 * 24 * 3600, ge=60)

    # Conversation
    default_model: str = ""
    system_prompt: str = "You are a helpful assistant. Answer in the language of the question."
    models_file: Path | None = None
    # Tokens one answer may take (the request's max_tokens) unless the model's catalogue
    # entry sets its own; 0: no cap sent.
    max_tokens: int = Field(4096, ge=0)
    user_daily_turns: int = Field(0, ge=0)
    user_turns_per_minute: int = Field(0, ge=0)
    # Daily token quotas (prompt + completion as the provider reports them; 0: no limit),
    # per user across chats and per group; the day starts at quota_reset_hour:00 in
    # quota_timezone (an IANA name). bot.conversation.quota, storage.usage.
    user_daily_tokens: int = Field(0, ge=0)
    chat_daily_tokens: int = Field(0, ge=0)
    quota_reset_hour: int = Field(0, ge=0, le=23)
    quota_timezone: str = "UTC"

    # The quick-start OpenAI-compatible endpoint
    openai_name: str = "openai"
    openai_base_url: str = ""
    openai_api_key: SecretStr = SecretStr("")
    openai_models: CommaList = Field(default_factory=list)
    openai_vision_models: CommaList = Field(default_factory=list)
    openai_reasoning_models: CommaList = Field(default_factory=list)

    # More OpenAI-compatible endpoints (the built-in platforms' fields: _PlatformSettings)
    custom_providers: Annotated[list[CustomEndpoint], NoDecode] = Field(default_factory=list)

    # Provider timeouts (seconds)
    provider_connect_timeout: float = Field(10.0, gt=0)
    provider_first_token_timeout: float = Field(60.0, gt=0)
    provider_idle_timeout: float = Field(60.0, gt=0)

    # Reply streaming
    private_edit_interval: float = Field(1.0, gt=0)
    group_edit_interval: float = Field(3.0, gt=0)
    use_drafts: bool = True
    draft_interval: float = Field(0.5, gt=0)
    limit_per_chat_per_second: float = Field(1.0, gt=0)
    limit_per_group_per_minute: int = Field(20, ge=1)
    limit_group_burst: int = Field(10, ge=1)
    limit_global_per_second: int = Field(24, ge=1)
    limit_global_burst: int = Field(2, ge=1)
    limit_max_in_flight: int = Field(10, ge=1)
    limit_final_reserve: int = Field(10, ge=0)
    reply_give_up_seconds: float = Field(300.0, gt=0)

    log_level: str = "INFO"

    # Shutdown (SIGTERM/SIGINT): seconds the replies in flight get to finish before the
    # rest are ended, marked "interrupted by a restart" (bot.app.shutdown). The process
    # exits within about this + 3 s: under Docker's stop timeout (compose.yaml
    # stop_grace_period; 10 s by default).
    shutdown_grace_seconds: float = Field(7.0, ge=0, le=3600)

    # Webhook mode (instead of long polling): Telegram POSTs updates to webhook_url.
    webhook_url: str = ""
    webhook_secret: SecretStr = SecretStr("")
    webhook_listen: str = "0.0.0.0"  # all interfaces: behind a reverse proxy, in a container
    webhook_port: int = Field(8080, ge=1, le=65535)

    # Health and metrics (/healthz, /readyz, /metrics; bot.app.health). Webhook mode serves
    # them on the webhook server; polling mode on metrics_host:metrics_port, 0 = no server.
    metrics_host: str = "127.0.0.1"  # loopback only unless set
    metrics_port: int = Field(0, ge=0, le=65535)

    @field_validator(
        "openai_models",
        "openai_vision_models",
        "openai_reasoning_models",
        mode="before",
    )
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("allowed_user_ids", "admin_user_ids", mode="before")
    @classmethod
    def _user_ids(cls, value: Any) -> Any:
        return _telegram_ids(value, chats=False)

    @field_validator("allowed_chat_ids", mode="before")
    @classmethod
    def _chat_ids(cls, value: Any) -> Any:
        return _telegram_ids(value, chats=True)

    @field_validator("unlisted_chat_action", mode="before")
    @classmethod
    def _action_lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("quota_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}: use an IANA name such as Asia/Shanghai or UTC"
            ) from None
        return value

    @field_validator("webhook_url")
    @classmethod
    def _webhook_https(cls, value: str) -> str:
        parts = urlsplit(value)
        if value and (parts.scheme != "https" or not parts.hostname):
            raise ValueError("must be an https:// URL (Telegram posts only to HTTPS)")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret_shape(cls, value: SecretStr) -> SecretStr:
        secret = value.get_secret_value()
        if secret and not _SECRET_TOKEN.fullmatch(secret):
            raise ValueError("must be 1-256 characters of A-Z, a-z, 0-9, _ and - (Bot API)")
        return value

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Settings:
        if self.webhook_url and not self.webhook_secret.get_secret_value():
            raise ValueError(
                "WEBHOOK_SECRET must be set with WEBHOOK_URL: it is how the bot "
                "knows a request comes from Telegram"
            )
        return self

    @field_validator("custom_providers", mode="before")
    @classmethod
    def _custom_json(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else []
        return value

    def base_url_of(self, spec: PlatformSpec) -> str:
        """The base URL of built-in platform ``spec`` (its variable, else its default)."""
        url: str = getattr(self, spec.base_url_env.lower())
        return url

    def credentials_of(self, spec: PlatformSpec) -> tuple[SecretStr, ...]:
        """The credentials of built-in platform ``spec``, in ``spec.credential_envs`` order."""
        values: tuple[SecretStr, ...] = tuple(
            getattr(self, env.lower()) for env in spec.credential_envs
        )
        return values

    @field_validator("telegram_bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        secret = value.get_secret_value()
        if ":" not in secret or not secret.split(":", 1)[0].isdigit():
            raise ValueError("must look like 123456:ABC… (the token @BotFather gave you)")
        return value


def load_settings(**overrides: Any) -> Settings:
    """Read the settings from the environment and `.env`, with ``overrides`` on top.

    Raises :class:`ConfigError` with one line naming the variable and the problem;
    the line never contains a secret value.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "configuration"
        if first["type"] == "missing":
            raise ConfigError(f"{name} is not set") from None
        reason = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{name} is invalid: {reason}") from None
